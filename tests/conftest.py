"""Shared fixtures: synthetic signatures from the project's generator, one tiny untrained
verifier saved once per session, and the optional real data."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SIGNATURE_DATA", ROOT.parent / "shared" / "data"))


def real_data(*parts: str) -> Path:
    """A folder of ../shared/data (or $SIGNATURE_DATA); skips the test when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set SIGNATURE_DATA)")
    return path


def synthetic_signature(seed: int, *, forgery: bool = False) -> np.ndarray:
    """One synthetic signature (uint8, dark ink on light paper) from the project's generator."""
    from workbench.data.synthetic import make_writer, render_forgery, render_genuine

    rng = np.random.default_rng(seed)
    template = make_writer(rng)
    return (render_forgery if forgery else render_genuine)(template, rng)


@pytest.fixture(scope="session")
def signature() -> np.ndarray:
    return synthetic_signature(7)


@pytest.fixture()
def output_dir() -> Path:
    """test-output/ at the project root: screenshots and figures a person may want to look at."""
    path = ROOT / "test-output"
    path.mkdir(exist_ok=True)
    return path


# --------------------------------------------------------------------------- the tiny verifier

TINY_SIZE = 96  # px: the tiny verifier's input and preprocessing size (H = W)
TINY_THRESHOLD = 0.5


@dataclass(frozen=True)
class TinyVerifier:
    """An untrained verifier (default ``ModelConfig`` at 96 x 96, ``torch.manual_seed(0)``)
    saved as ``tiny.safetensors`` + ``tiny.json``: what a test needs when the page's or the
    pipeline's behaviour, not the weights' accuracy, is under test.

    Attributes:
        weights: the ``.safetensors`` path; its JSON records the name ``tiny``, the model and
            preprocessing (96 x 96) and the validation threshold 0.5, nothing else.
        meta: that JSON as the plain dict it was saved from (``save_model`` accepts one).
    """

    weights: Path
    meta: dict

    @property
    def size(self) -> int:
        """Input height = width in pixels."""
        return self.meta["model"]["input_height"]

    def load(self):
        """A fresh copy of the model (eval mode, channels_last), independent of the file."""
        from safetensors.torch import load_file

        from workbench.models import build_model

        model = build_model(config=self.meta["model"])
        model.load_state_dict(load_file(str(self.weights)))
        return model.eval()

    def save(
        self,
        stem: Path,
        *,
        validation: dict | None = None,
        extra: dict | None = None,
        edit: Callable[[object], None] | None = None,
    ) -> Path:
        """The same weights saved again at ``stem`` (``stem.safetensors`` + ``stem.json``);
        returns the ``.safetensors`` path.

        Args:
            validation: replaces the JSON's ``validation`` record (e.g. another threshold or a
                FAR/FRR curve).
            extra: more top-level JSON records (e.g. ``calibration``, ``copy_check``,
                ``conditions``, as ``cli.calibrate`` writes them).
            edit: ``edit(model)`` runs under ``torch.no_grad()`` before saving (e.g. to set
                the head's weights).
        """
        import torch

        from workbench.checkpoint import save_model

        model = self.load()
        if edit is not None:
            with torch.no_grad():
                edit(model)
        meta = copy.deepcopy(self.meta)
        if validation is not None:
            meta["validation"] = copy.deepcopy(validation)
        meta.update(copy.deepcopy(extra or {}))
        weights, _ = save_model(model, stem, meta)
        return weights


@pytest.fixture(scope="session")
def tiny_verifier(tmp_path_factory) -> TinyVerifier:
    """The session's one tiny untrained verifier (see ``TinyVerifier``); use ``save`` for a
    variant (another threshold, an edited head) instead of building another model."""
    import torch

    from workbench.checkpoint import save_model
    from workbench.config import ModelConfig, PreprocessConfig
    from workbench.models import build_model

    config = ModelConfig(input_height=TINY_SIZE, input_width=TINY_SIZE)
    with torch.random.fork_rng():  # the session's random state is left as it was
        torch.manual_seed(0)
        model = build_model(config=config).eval()
    meta = {
        "name": "tiny",
        "model": config.to_dict(),
        "preprocess": PreprocessConfig(height=TINY_SIZE, width=TINY_SIZE).to_dict(),
        "validation": {"threshold": TINY_THRESHOLD},
    }
    weights, _ = save_model(model, tmp_path_factory.mktemp("tiny-verifier") / "tiny", meta)
    return TinyVerifier(weights=weights, meta=meta)
