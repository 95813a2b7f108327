"""Weights as safetensors plus a JSON file of configuration, preprocessing, data and metrics.

Nothing is pickled: a ``NAME.safetensors`` holds tensors only and ``NAME.json`` everything a
reader needs to rebuild the model, preprocess its inputs and know what it was measured on.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from workbench.config import ModelConfig, PreprocessConfig
from workbench.data.dedupe import file_sha256

FORMAT_VERSION = 1


def _paths(stem: str | Path) -> tuple[Path, Path]:
    stem = Path(stem)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_model(model: nn.Module, stem: str | Path, meta: dict) -> tuple[Path, Path]:
    """Write ``stem.safetensors`` (state dict, contiguous) and ``stem.json`` (``meta`` + format).

    ``meta`` should hold ``model`` (a ModelConfig dict) and ``preprocess`` (a PreprocessConfig dict).
    """
    weights, card = _paths(stem)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(weights))
    record = {"format_version": FORMAT_VERSION, **meta, "weights_sha256": file_sha256(weights)}
    card.write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
    return weights, card


def load_meta(stem: str | Path) -> dict:
    _, card = _paths(stem)
    if not card.exists():
        raise ValueError(
            f"Model description not found: {card} (it must sit next to the .safetensors file)."
        )
    return json.loads(card.read_text(encoding="utf-8"))


def load_module(stem: str | Path, build) -> tuple[nn.Module, dict, PreprocessConfig]:
    """Any model saved with ``save_model``: ``build(meta["model"])`` makes the module, then the
    weights are loaded; eval mode.

    Raises:
        ValueError: files missing, or weights that do not fit the described model.
    """
    weights, _ = _paths(stem)
    if not weights.exists():
        raise ValueError(f"Weights not found: {weights}")
    meta = load_meta(stem)
    model = build(meta["model"])
    try:
        model.load_state_dict(load_file(str(weights)))
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise ValueError(
            f"{weights} does not match the model its JSON describes ({first})."
        ) from None
    return model.eval(), meta, PreprocessConfig(**meta.get("preprocess", {}))


def load_verifier(stem: str | Path, *, device: str = "cpu", fuse: bool = False):
    """Rebuild the verifier a checkpoint describes and load its weights, in eval mode.

    With ``fuse=True`` BatchNorm is folded into convolutions for faster inference (not for
    further training or saving).

    Returns:
        (model, meta, preprocess_config)
    """
    from workbench.models import build_model

    def build(values: dict) -> nn.Module:
        return build_model(architecture, config=ModelConfig.from_dict(values))

    architecture = load_meta(stem).get("architecture", "siamese_densenet36")
    model, meta, pre = load_module(stem, build)
    if fuse:
        from workbench.models.fusion import fuse_for_inference

        model = fuse_for_inference(model)
    return model.to(device), meta, pre
