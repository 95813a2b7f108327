"""Weights as safetensors plus one typed card (``NAME.json``): configuration, preprocessing,
training data and splits, budget, thresholds and curves.

Nothing is pickled: ``NAME.safetensors`` holds tensors only and ``NAME.json`` everything a
reader needs to rebuild the model, preprocess its inputs and know what it was measured on. The
JSON is read and written here only, as a ``WeightsCard``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from workbench.config import FALLBACK_THRESHOLD, PreprocessConfig
from workbench.data.dedupe import file_sha256

__all__ = [
    "FORMAT_VERSION",
    "Validation",
    "WeightsCard",
    "file_sha256",
    "load_module",
    "load_verifier",
    "read_card",
    "save_model",
    "write_card",
]

FORMAT_VERSION = 1
# A card without an architecture predates the others: it describes a verifier.
DEFAULT_ARCHITECTURE = "siamese_densenet36"

_NUMBER = (int, float)
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "integer", _NUMBER: "number"}


def _checked(values: dict, key: str, kind, where: str):
    """``values[key]`` (None when absent or null), refused unless it is of JSON type ``kind``."""
    value = values.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise ValueError(
            f"{where}: {key!r} must be a JSON {_JSON_TYPES[kind]}, not {type(value).__name__} "
            f"({str(value)[:60]}). Fix or re-export the file."
        )
    return value


def _json_safe(value):
    """``value`` as the JSON file will hold it (tuples become lists, paths strings)."""
    return json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class Validation:
    """What the validation writers (carved out of the training writers) measured.

    Attributes:
        epoch: the epoch whose weights were kept (lowest validation EER).
        eer: equal error rate, 0..1.
        threshold: the score (0..1) where the EER lies, the weights' decision threshold: scores
            at or above it are accepted as genuine.
        far, frr: error rates in 0..1 at ``threshold``, where a writer records them.
        acc_at_argmax: accuracy in 0..1 at the argmax threshold 0.5 (JSON key ``acc_at_0.5``).
        auc: area under the ROC curve.
        curve: FAR and FRR at tabulated thresholds (``workbench.cli.ship --val-eval``):
            ``{"threshold": [...], "far": [...], "frr": [...], "n_genuine": int, "n_forged": int}``.
        extra: keys this version does not know, kept and written back unchanged.
    """

    epoch: int | None = None
    eer: float | None = None
    threshold: float | None = None
    far: float | None = None
    frr: float | None = None
    acc_at_argmax: float | None = None
    auc: float | None = None
    curve: dict | None = None
    extra: dict = field(default_factory=dict)

    # JSON key -> (attribute, JSON type); the order is the file's.
    _KEYS = {
        "epoch": ("epoch", int),
        "eer": ("eer", _NUMBER),
        "threshold": ("threshold", _NUMBER),
        "far": ("far", _NUMBER),
        "frr": ("frr", _NUMBER),
        "acc_at_0.5": ("acc_at_argmax", _NUMBER),
        "auc": ("auc", _NUMBER),
        "curve": ("curve", dict),
    }

    def __post_init__(self) -> None:
        object.__setattr__(self, "curve", None if self.curve is None else _json_safe(self.curve))
        object.__setattr__(self, "extra", _json_safe(self.extra))

    @classmethod
    def from_dict(cls, values: dict, *, where: str = "validation") -> Validation:
        """The JSON object ``validation``; ValueError when a known key has the wrong type."""
        known = {
            attr: _checked(values, key, kind, where) for key, (attr, kind) in cls._KEYS.items()
        }
        return cls(**known, extra={k: v for k, v in values.items() if k not in cls._KEYS})

    def to_dict(self) -> dict:
        """The JSON object: known keys that are set, then the unknown ones."""
        out = {key: getattr(self, attr) for key, (attr, _) in self._KEYS.items()}
        return {k: v for k, v in out.items() if v is not None} | self.extra


@dataclass(frozen=True)
class WeightsCard:
    """Everything ``NAME.json`` holds next to ``NAME.safetensors``.

    A field that is None was not recorded and is not written back, so a file read and written
    again is unchanged; only ``architecture``, ``model`` and ``preprocess`` are always written
    (with their defaults when a file lacks them). JSON lists are held as tuples; dicts are
    copied as the JSON holds them (tuples become lists, paths strings).

    Attributes:
        model: the model configuration (``ModelConfig``, ``WriterClassifierConfig`` or
            ``EmbeddingConfig`` ``.to_dict()``), what ``load_module`` rebuilds the network from.
        architecture: a model of the registry (``workbench.models.MODELS``).
        preprocess: the preprocessing the network was trained with.
        name: the model's name (``verifier`` for the shipped one).
        training: the training budget and arguments (``seed``, ``epochs_run``, ``pairs_seen``,
            ``wall_seconds``, ``protocol``, ...).
        data: per corpus, its path, protocol, deduplication and writer split.
        validation: what the validation writers measured, with the threshold.
        test: one ``workbench.cli.evaluate`` result per test corpus.
        examples: the shipped examples' pair scores the regression test checks.
        classes: writer names in output order (writer classifier).
        split: the classifier's writers and image split (writer classifier).
        weights_sha256: SHA-256 of the ``.safetensors`` file.
        format_version: version of this layout (``FORMAT_VERSION`` when written).
        extra: top-level keys this version does not know, kept and written back unchanged.
    """

    model: dict = field(default_factory=dict)
    architecture: str = DEFAULT_ARCHITECTURE
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    name: str | None = None
    training: dict | None = None
    data: tuple[dict, ...] | None = None
    validation: Validation | None = None
    test: tuple[dict, ...] | None = None
    examples: tuple[dict, ...] | None = None
    classes: tuple[str, ...] | None = None
    split: dict | None = None
    weights_sha256: str | None = None
    format_version: int | None = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    # The file's keys in order; the plain ones map to a field of the same name and JSON type.
    _KEYS = (
        "format_version",
        "name",
        "architecture",
        "model",
        "preprocess",
        "classes",
        "split",
        "training",
        "data",
        "validation",
        "weights_sha256",
        "test",
        "examples",
    )
    _PLAIN = {
        "format_version": int,
        "name": str,
        "architecture": str,
        "model": dict,
        "training": dict,
        "split": dict,
        "weights_sha256": str,
    }
    _LISTS = ("data", "test", "examples", "classes")

    def __post_init__(self) -> None:
        for key in ("model", "training", "split", "extra"):
            value = getattr(self, key)
            object.__setattr__(self, key, None if value is None else _json_safe(value))
        for key in self._LISTS:
            value = getattr(self, key)
            object.__setattr__(self, key, None if value is None else tuple(_json_safe(value)))

    @property
    def threshold(self) -> float:
        """The validation threshold, or ``FALLBACK_THRESHOLD`` (0.5, the argmax) without one."""
        stored = self.stored_threshold
        return FALLBACK_THRESHOLD if stored is None else stored

    @property
    def stored_threshold(self) -> float | None:
        """The validation threshold the card stores; None when ``threshold`` is the fallback."""
        if self.validation is None or self.validation.threshold is None:
            return None
        return float(self.validation.threshold)

    @property
    def training_seconds(self) -> float | None:
        """Wall-clock seconds of training (``training.wall_seconds``), None when not recorded."""
        return (self.training or {}).get("wall_seconds")

    @classmethod
    def from_dict(cls, values: dict, *, where: str = "the weights' JSON") -> WeightsCard:
        """The card a parsed JSON object describes.

        Raises:
            ValueError: not an object, a known key of the wrong type, or a newer format.
        """
        if not isinstance(values, dict):
            raise ValueError(f"{where} must hold a JSON object, not {type(values).__name__}.")
        plain = {key: _checked(values, key, kind, where) for key, kind in cls._PLAIN.items()}
        version = plain["format_version"]
        if version is not None and version > FORMAT_VERSION:
            raise ValueError(
                f"{where} has format version {version}; this workbench reads up to "
                f"{FORMAT_VERSION}: update the workbench."
            )
        lists = {key: _checked(values, key, list, where) for key in cls._LISTS}
        for key in ("data", "test", "examples"):
            if lists[key] is not None and not all(isinstance(v, dict) for v in lists[key]):
                raise ValueError(f"{where}: every entry of {key!r} must be a JSON object.")
        preprocess = _checked(values, "preprocess", dict, where) or {}
        try:
            preprocess = PreprocessConfig(**preprocess)
        except TypeError as error:
            raise ValueError(
                f"{where}: 'preprocess' has settings this version lacks ({error})."
            ) from None
        validation = _checked(values, "validation", dict, where)
        if validation is not None:
            validation = Validation.from_dict(validation, where=f"{where}, validation")
        return cls(
            **{k: v for k, v in plain.items() if v is not None or k == "format_version"},
            preprocess=preprocess,
            **lists,
            validation=validation,
            extra={k: v for k, v in values.items() if k not in cls._KEYS},
        )

    def to_dict(self) -> dict:
        """The JSON object: known keys that are set, in the file's order, then unknown ones."""
        out = {}
        for key in self._KEYS:
            value = getattr(self, key)
            if key == "preprocess":
                value = value.to_dict()
            elif key == "validation" and value is not None:
                value = value.to_dict()
            elif key in self._LISTS and value is not None:
                value = list(value)
            if value is not None:
                out[key] = value
        return out | self.extra


def _paths(stem: str | Path) -> tuple[Path, Path]:
    """(``NAME.safetensors``, ``NAME.json``) for ``NAME`` given with or without either suffix."""
    stem = Path(stem)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def read_card(stem: str | Path) -> WeightsCard:
    """The card of ``stem`` (``NAME``, ``NAME.json`` or ``NAME.safetensors``).

    Raises:
        ValueError: the JSON is missing, is not valid JSON, or does not describe a card.
    """
    _, path = _paths(stem)
    if not path.is_file():
        raise ValueError(
            f"Model description not found: {path} (it must sit next to the .safetensors file)."
        )
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}): re-export or restore it.") from None
    return WeightsCard.from_dict(values, where=str(path))


def write_card(stem: str | Path, card: WeightsCard) -> Path:
    """Write ``card`` to ``stem.json`` (one-space indent, a final newline); returns its path."""
    _, path = _paths(stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(card.to_dict(), indent=1) + "\n", encoding="utf-8")
    return path


def save_model(model: nn.Module, stem: str | Path, card: WeightsCard | dict) -> tuple[Path, Path]:
    """Write ``stem.safetensors`` (state dict, contiguous) and ``stem.json`` (``card`` with the
    current ``FORMAT_VERSION`` and the weights' SHA-256).

    ``card`` may be a plain dict in the JSON's layout (``WeightsCard.from_dict``).

    Returns:
        (weights path, JSON path)
    """
    if isinstance(card, dict):
        card = WeightsCard.from_dict(card, where=f"the description of {stem}")
    weights, _ = _paths(stem)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(weights))
    card = replace(card, format_version=FORMAT_VERSION, weights_sha256=file_sha256(weights))
    return weights, write_card(stem, card)


def load_module(
    stem: str | Path, *, architecture: str | None = None
) -> tuple[nn.Module, WeightsCard, PreprocessConfig]:
    """Any model saved with ``save_model``, rebuilt by the model registry from its card
    (``build_model(card.architecture, config=card.model)``), weights loaded; eval mode.

    Args:
        architecture: when given, the card must describe this architecture.

    Returns:
        (model, card, card.preprocess)

    Raises:
        ValueError: files missing, another architecture, or weights that do not fit the
            described model.
    """
    weights, _ = _paths(stem)
    if not weights.exists():
        raise ValueError(f"Weights not found: {weights}")
    card = read_card(stem)
    if not card.model:
        raise ValueError(f"{stem} has no model configuration ('model') in its JSON: re-export it.")
    if architecture is not None and card.architecture != architecture:
        raise ValueError(
            f"{weights} holds a {card.architecture} model, not a {architecture}: "
            "pass other weights."
        )
    from workbench.models import build_model

    model = build_model(card.architecture, config=card.model)
    try:
        model.load_state_dict(load_file(str(weights)))
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise ValueError(
            f"{weights} does not match the model its JSON describes ({first})."
        ) from None
    return model.eval(), card, card.preprocess


def load_verifier(
    stem: str | Path, *, device: str = "cpu", fuse: bool = False
) -> tuple[nn.Module, WeightsCard, PreprocessConfig]:
    """Rebuild the verifier a checkpoint describes and load its weights, in eval mode.

    With ``fuse=True`` BatchNorm is folded into convolutions for faster inference (not for
    further training or saving).

    Returns:
        (model, card, card.preprocess)
    """
    model, card, pre = load_module(stem, architecture="siamese_densenet36")
    if fuse:
        from workbench.models.fusion import fuse_for_inference

        model = fuse_for_inference(model)
    return model.to(device), card, pre
