"""Frozen configuration dataclasses and their defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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

    height: int = 224
    width: int = 224
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
