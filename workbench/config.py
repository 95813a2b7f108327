"""Frozen configuration dataclasses and their defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

# The project's folders: shipped weights and the synthetic examples sit beside the package.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = PROJECT_ROOT / "weights"
EXAMPLES_DIR = PROJECT_ROOT / "examples"
DEFAULT_VERIFIER = WEIGHTS_DIR / "verifier.safetensors"
DEFAULT_CLASSIFIER = WEIGHTS_DIR / "writer_classifier.safetensors"
# The paper's input size (H_norm = W_norm = 224) and the argmax of the two logits, the threshold
# of weights that store no validation threshold.
INPUT_SIZE = 224
FALLBACK_THRESHOLD = 0.5


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of the paper's preprocessing (eq. 1-5) and of the input checks.

    Attributes:
        height, width: size of the normalized image (the paper's H_norm, W_norm: 224 x 224).
        moment_factor: the 0.6 of eq. 4: the signature's moment spread fills 60% of the frame.
        foreground_mean, foreground_std: target grey level statistics of the strokes (eq. 1).
        denoise_ksize: median filter size applied before Otsu's threshold (odd, 0 = none).
        antialias: low-pass the image before shrinking it in eq. 2-3, so that thin strokes do not
            break up when alpha < 1 (bilinear sampling alone aliases).
        max_pixels: larger images are refused (decompression bombs).
        min_side: images with a side below this are refused.
        min_ink_contrast: grey levels between paper and ink below which a page counts as blank.
        min_ink_pixels: fewest foreground pixels a signature may have.
    """

    height: int = INPUT_SIZE
    width: int = INPUT_SIZE
    moment_factor: float = 0.6
    foreground_mean: float = 30.0
    foreground_std: float = 10.0
    denoise_ksize: int = 3
    antialias: bool = True
    max_pixels: int = 40_000_000
    min_side: int = 16
    min_ink_contrast: float = 40.0
    min_ink_pixels: int = 20

    def to_dict(self) -> dict:
        return asdict(self)


ATTENTIONS = ("none", "se", "cbam", "simam", "diff_simam")
# Backbone widths: (growth rate, stem channels). `paper` is DenseNet's usual 32/64; `compact`
# keeps CPU training and inference fast (trade-off measured by `python -m workbench.cli.bench`).
WIDTHS = {"paper": (32, 64), "compact": (8, 16)}


@dataclass(frozen=True)
class ModelConfig:
    """The Siamese verifier and every switch of the paper's ablations (Tables 2-4).

    Attributes:
        width: ``paper`` or ``compact``: the defaults for ``growth_rate`` and ``stem_channels``.
        growth_rate, stem_channels: 0 = from ``WIDTHS[width]``; stored resolved, so a checkpoint
            keeps its shape even if a width's meaning changes.
        block_config: bottleneck layers per dense block: (3, 4, 6, 3) gives DenseNet-36.
        bn_size: bottleneck width as a multiple of the growth rate.
        attention: module after each dense block, one of ``ATTENTIONS``.
        cross_attention: cross-writer attention between the token sequences (eq. 7-10).
        cross_hidden: hidden width d of the cross-attention; 0 = the backbone's output channels.
        spp_levels: spatial pyramid levels (1, 2, 4) -> 21 tokens.
        dropout: before the final linear layer.
        simam_lambda: lambda of SimAM's energy.
        input_height, input_width: the network's input size (224 x 224 in the paper).
    """

    width: str = "compact"
    growth_rate: int = 0
    stem_channels: int = 0
    block_config: tuple[int, int, int, int] = (3, 4, 6, 3)
    bn_size: int = 4
    attention: str = "diff_simam"
    cross_attention: bool = True
    cross_hidden: int = 0
    spp_levels: tuple[int, ...] = (1, 2, 4)
    dropout: float = 0.1
    simam_lambda: float = 1e-4
    input_height: int = INPUT_SIZE
    input_width: int = INPUT_SIZE

    def __post_init__(self) -> None:
        if self.width not in WIDTHS:
            raise ValueError(f"Unknown width {self.width!r}: choose one of {', '.join(WIDTHS)}.")
        if self.attention not in ATTENTIONS:
            raise ValueError(
                f"Unknown attention {self.attention!r}: choose one of {', '.join(ATTENTIONS)}."
            )
        growth, stem = WIDTHS[self.width]
        object.__setattr__(self, "growth_rate", self.growth_rate or growth)
        object.__setattr__(self, "stem_channels", self.stem_channels or stem)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        fields = dict(values)
        for key in ("block_config", "spp_levels"):
            if key in fields:
                fields[key] = tuple(fields[key])
        return cls(**fields)


class NestsBackbone:
    """Mixin of the dataclass configurations that hold a ``ModelConfig`` as ``backbone`` (the
    embedding Siamese, the writer pre-trainer): their JSON form nests the backbone's."""

    def to_dict(self) -> dict:
        values = asdict(self)
        values["backbone"] = self.backbone.to_dict()
        return values

    @staticmethod
    def _parsed(values: dict) -> dict:
        """``values`` with a nested ``backbone`` dict read back as a ``ModelConfig``."""
        fields = dict(values)
        if isinstance(fields.get("backbone"), dict):
            fields["backbone"] = ModelConfig.from_dict(fields["backbone"])
        return fields
