"""The Workbench: one object the UI and the command lines call; no Gradio inside."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.config import PreprocessConfig
from workbench.preprocess import ImageSource, PreprocessRecord, load_signature, normalize_stages


@dataclass(frozen=True)
class NormalizedSignature:
    """A signature at each preprocessing stage, for display.

    Attributes:
        original: ``uint8`` (H, W) grey levels as loaded.
        grayscale: ``uint8`` (H, W) after eq. 1 (strokes mean 30 / std 10, paper 255).
        image: ``uint8`` (224, 224) after eq. 2-5, the network's input.
        record: what was measured on the way.
    """

    original: np.ndarray
    grayscale: np.ndarray
    image: np.ndarray
    record: PreprocessRecord


class Workbench:
    """Loads once, then serves typed requests (preprocessing now; verify, identify, explain later)."""

    def __init__(self, *, preprocess_config: PreprocessConfig | None = None) -> None:
        self.preprocess_config = preprocess_config or PreprocessConfig()

    def normalize(self, source: ImageSource) -> NormalizedSignature:
        """Every stage of eq. 1-5 for one signature.

        Raises:
            SignatureInputError: for inputs that are not usable signatures.
        """
        config = self.preprocess_config
        original = load_signature(source, config=config)
        grayscale, image, record = normalize_stages(original, config=config)
        return NormalizedSignature(original=original, grayscale=grayscale, image=image, record=record)
