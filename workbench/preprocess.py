"""Signature preprocessing: loading, grayscale normalization (eq. 1), moment normalization
(eq. 2-5).

Pure functions on numpy arrays; DESIGN.md section 1 fixes how the paper is read. Images are
2-D ``uint8`` arrays of grey levels 0..255 with dark ink on light paper.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import asdict, dataclass
from typing import Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from workbench.config import PreprocessConfig
from workbench.errors import SignatureInputError

ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, Image.Image, np.ndarray]

DEFAULT_CONFIG = PreprocessConfig()
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


@dataclass(frozen=True)
class PreprocessRecord:
    """What preprocessing measured and did to one image, for display and reports.

    Coordinates are in pixels of the loaded (EXIF-rotated) image, x to the right, y down.
    """

    original_height: int
    original_width: int
    foreground_threshold: float
    foreground_pixels: int
    foreground_mean: float
    foreground_std: float
    centroid_x: float
    centroid_y: float
    alpha: float
    antialias_sigma: float
    output_height: int
    output_width: int

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- loading


def load_signature(source: ImageSource, *, config: PreprocessConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Decode a signature image into grey levels.

    Args:
        source: a file path, the file's bytes, a PIL image or a numpy array (H x W, H x W x 1,
            H x W x 3 RGB or H x W x 4 RGBA; uint8, uint16, bool or float in 0..1). Any format PIL
            reads (PNG, JPEG, TIFF 8/16-bit or palette, BMP, WebP...). EXIF orientation is
            applied and transparency is composited on white paper.
        config: the size and ink limits.

    Returns:
        ``uint8`` array of shape (H, W), 0 = black ink, 255 = white paper.

    Raises:
        SignatureInputError: not an image, an empty or truncated file, more than
            ``config.max_pixels`` pixels, a side under ``config.min_side`` px, or no ink.
    """
    if isinstance(source, np.ndarray):
        gray = array_to_gray(source)
    else:
        gray = _pil_to_gray(_open_image(source, config))
    _check_size(gray.shape[0], gray.shape[1], config)
    check_ink(gray, config=config)
    return gray


def _open_image(source: ImageSource, config: PreprocessConfig) -> Image.Image:
    name = "the image"
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        elif isinstance(source, (str, os.PathLike)):
            name = os.fspath(source)
            if not os.path.exists(name):
                raise SignatureInputError(f"File not found: {_label(name)}")
            if os.path.isdir(name):
                raise SignatureInputError(f"{_label(name)} is a folder, not an image file.")
            with open(name, "rb") as handle:
                data = handle.read()
        else:
            raise SignatureInputError(
                f"Cannot read a signature from a {type(source).__name__}: "
                "give a file path, the file's bytes, a PIL image or a numpy array."
            )
        if not data:
            raise SignatureInputError(
                f"{_label(name)} is empty (0 bytes): upload the image file again."
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise SignatureInputError(_too_large_message(name, None, config)) from None
        except UnidentifiedImageError:
            raise SignatureInputError(
                f"{_label(name)} is not an image PIL can read: use PNG, JPEG, TIFF, BMP or WebP."
            ) from None
        except Exception as error:  # noqa: BLE001 - a damaged header: PIL's plugins raise
            # OSError, SyntaxError, struct.error, IndexError... on hostile bytes.
            raise SignatureInputError(
                f"{_label(name)} is damaged or truncated and cannot be read "
                f"({type(error).__name__}). Save or scan it again."
            ) from None
    width, height = image.size
    if width * height > config.max_pixels:
        raise SignatureInputError(_too_large_message(name, (width, height), config))
    _check_size(height, width, config)
    try:
        image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image)
    except Exception as error:  # noqa: BLE001 - hostile bytes make PIL raise anything
        raise SignatureInputError(
            f"{_label(name)} is damaged or truncated and cannot be decoded ({error}). "
            "Save or scan it again."
        ) from None
    return image


def _label(name: str) -> str:
    # The file's own name only: on a server the folder is a temporary one the user never saw.
    return "The image" if name == "the image" else f"'{os.path.basename(name)}'"


def _too_large_message(name: str, size: tuple[int, int] | None, config: PreprocessConfig) -> str:
    shown = f" ({size[0]} x {size[1]} px)" if size else ""
    return (
        f"{_label(name)} is too large{shown}: at most {config.max_pixels / 1e6:.0f} megapixels are "
        "accepted. Crop the signature or scan at 300-600 dpi."
    )


def _check_size(height: int, width: int, config: PreprocessConfig) -> None:
    if height * width > config.max_pixels:
        raise SignatureInputError(_too_large_message("the image", (width, height), config))
    if min(height, width) < config.min_side:
        raise SignatureInputError(
            f"The image is only {width} x {height} px; a signature needs at least "
            f"{config.min_side} px on each side. Scan it at a higher resolution."
        )


def _pil_to_gray(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return array_to_gray(np.asarray(image))
    if mode == "1":
        image = image.convert("L")
    elif mode == "P" or mode in _ALPHA_MODES or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in _ALPHA_MODES:
        return array_to_gray(np.asarray(image.convert("RGBA")))
    if image.mode != "L":
        image = image.convert("RGB").convert("L")
    return np.asarray(image, dtype=np.uint8).copy()


def array_to_gray(array: np.ndarray) -> np.ndarray:
    """Any supported numpy image to (H, W) uint8; alpha composited on white."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise SignatureInputError(
            f"An image array must be H x W, H x W x 3 (RGB) or H x W x 4 (RGBA); "
            f"got shape {a.shape}."
        )
    values = _to_unit_float(a)
    if values.ndim == 3:
        alpha = values[:, :, 3:4] if values.shape[2] == 4 else None
        rgb = values[:, :, :3]
        if alpha is not None:
            rgb = rgb * alpha + (1.0 - alpha)
        values = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def _to_unit_float(a: np.ndarray) -> np.ndarray:
    if a.size == 0:
        raise SignatureInputError("The image array is empty.")
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if np.issubdtype(a.dtype, np.integer):
        top = float(a.max())
        scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
        return np.clip(a.astype(np.float32) / scale, 0.0, 1.0)
    if np.issubdtype(a.dtype, np.floating):
        f = a.astype(np.float32)
        if not np.isfinite(f).all():
            raise SignatureInputError("The image array holds NaN or infinite values.")
        return np.clip(f if f.max() <= 1.0 else f / 255.0, 0.0, 1.0)
    raise SignatureInputError(f"Unsupported image array type {a.dtype}.")


# --------------------------------------------------------------------------- eq. 1


def foreground_mask(
    gray: np.ndarray, *, config: PreprocessConfig = DEFAULT_CONFIG
) -> tuple[np.ndarray, float]:
    """Stroke pixels by Otsu's threshold on the lightly denoised image.

    Args:
        gray: ``uint8`` (H, W), dark ink on light paper.

    Returns:
        (mask, threshold): boolean (H, W), True on ink; pixels at or below ``threshold`` are ink.
    """
    smooth = cv2.medianBlur(gray, config.denoise_ksize) if config.denoise_ksize > 1 else gray
    threshold, _ = cv2.threshold(smooth, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return smooth <= threshold, float(threshold)


def check_ink(gray: np.ndarray, *, config: PreprocessConfig = DEFAULT_CONFIG) -> None:
    """Raise ``SignatureInputError`` when the page holds no ink (blank or nearly uniform)."""
    mask, _ = foreground_mask(gray, config=config)
    count = int(mask.sum())
    blank = SignatureInputError(
        "No signature found: the image looks blank (no dark strokes on the paper). "
        "Check that the right file was chosen and that the scan is not empty or over-exposed."
    )
    if count < config.min_ink_pixels or count == mask.size:
        raise blank
    contrast = float(gray[~mask].mean()) - float(gray[mask].mean())
    if contrast < config.min_ink_contrast:
        raise blank


def grayscale_normalize(
    gray: np.ndarray, *, config: PreprocessConfig = DEFAULT_CONFIG, clip: bool = True
) -> tuple[np.ndarray, dict]:
    """Eq. 1: map stroke grey levels to mean 30, std 10 and paper to 255.

    ``g' = (g - E(g_f)) * 10 / std(g_f) + 30`` on foreground pixels (a zero std counts as 1).

    Args:
        gray: ``uint8`` (H, W).
        clip: True gives ``uint8`` clipped to 0..255; False gives the ``float32`` values before
            clipping (foreground exactly mean 30 / std 10, background 255).

    Returns:
        (image, info) with info keys ``threshold``, ``pixels``, ``mean``, ``std`` (of the
        original foreground grey levels).
    """
    mask, threshold = foreground_mask(gray, config=config)
    values = gray[mask].astype(np.float64)
    if values.size == 0:
        raise SignatureInputError("No signature found: the image has no ink pixels.")
    mean = float(values.mean())
    std = float(values.std()) or 1.0
    out = np.full(gray.shape, 255.0, dtype=np.float32)
    out[mask] = (values - mean) * (config.foreground_std / std) + config.foreground_mean
    info = {"threshold": threshold, "pixels": int(values.size), "mean": mean, "std": std}
    if not clip:
        return out, info
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), info


# --------------------------------------------------------------------------- eq. 2-5


def image_moments(image: np.ndarray) -> dict:
    """Centroid and central moments (eq. 5) of the inverted image ``255 - f``.

    Returns:
        dict with ``m00``, ``xc``, ``yc``, ``mu20``, ``mu02``, ``mu11`` (pixel index coordinates).
    """
    moments = cv2.moments(255.0 - image.astype(np.float32), binaryImage=False)
    m00 = moments["m00"]
    if m00 <= 0:
        raise SignatureInputError("No signature found: the image has no ink.")
    return {
        "m00": m00,
        "xc": moments["m10"] / m00,
        "yc": moments["m01"] / m00,
        "mu20": moments["mu20"],
        "mu02": moments["mu02"],
        "mu11": moments["mu11"],
    }


def moment_alpha(moments: dict, *, height: int, width: int, factor: float = 0.6) -> float:
    """Eq. 4: ``0.6 * min(H sqrt(mu00) / (2 sqrt(2 mu02)), W sqrt(mu00) / (2 sqrt(2 mu20)))``."""
    candidates = []
    for size, mu in ((height, moments["mu02"]), (width, moments["mu20"])):
        if mu > 0:
            candidates.append(size * math.sqrt(moments["m00"]) / (2.0 * math.sqrt(2.0 * mu)))
    if not candidates:
        raise SignatureInputError("No signature found: the ink is a single dot.")
    return factor * min(candidates)


def moment_normalize(
    image: np.ndarray, *, config: PreprocessConfig = DEFAULT_CONFIG
) -> tuple[np.ndarray, dict]:
    """Eq. 2-5: centre the strokes' centroid and scale their spread to fill the frame.

    The output pixel (x', y') samples the input at ``x = (x' - x'_c) / alpha + x_c`` (same for y),
    bilinear, white outside. When ``alpha < 1`` and ``config.antialias`` is set, the ink is first
    low-passed with a Gaussian of sigma ``(1 / alpha - 1) / 2`` so thin strokes survive shrinking.

    Args:
        image: ``uint8`` (H, W), usually the output of ``grayscale_normalize``.

    Returns:
        (normalized, info): ``uint8`` (config.height, config.width) and a dict with ``xc``,
        ``yc``, ``alpha``, ``antialias_sigma``.
    """
    moments = image_moments(image)
    alpha = moment_alpha(
        moments, height=config.height, width=config.width, factor=config.moment_factor
    )
    ink = 255.0 - image.astype(np.float32)
    sigma = (1.0 / alpha - 1.0) / 2.0 if (config.antialias and alpha < 1.0) else 0.0
    if sigma > 0.05:
        ink = cv2.GaussianBlur(
            ink, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT
        )
    out_xc = (config.width - 1) / 2.0
    out_yc = (config.height - 1) / 2.0
    matrix = np.array(
        [
            [alpha, 0.0, out_xc - alpha * moments["xc"]],
            [0.0, alpha, out_yc - alpha * moments["yc"]],
        ],
        dtype=np.float64,
    )
    warped = cv2.warpAffine(
        ink,
        matrix,
        (config.width, config.height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    out = np.clip(np.rint(255.0 - warped), 0, 255).astype(np.uint8)
    return out, {"xc": moments["xc"], "yc": moments["yc"], "alpha": alpha, "antialias_sigma": sigma}


def preprocess(
    source: ImageSource, *, config: PreprocessConfig = DEFAULT_CONFIG
) -> tuple[np.ndarray, PreprocessRecord]:
    """Load a signature and apply eq. 1 then eq. 2-5.

    Returns:
        (image, record): ``uint8`` (config.height, config.width), dark strokes of mean grey ~30 on
        255 paper, and the measurements made on the way.

    Raises:
        SignatureInputError: for inputs ``load_signature`` refuses.
    """
    _, image, record = normalize_stages(load_signature(source, config=config), config=config)
    return image, record


def normalize_stages(
    gray: np.ndarray, *, config: PreprocessConfig = DEFAULT_CONFIG
) -> tuple[np.ndarray, np.ndarray, PreprocessRecord]:
    """Eq. 1 then eq. 2-5 on a loaded ``uint8`` (H, W) image.

    Returns:
        (grayscale, image, record): the (H, W) image after eq. 1, the normalized
        (config.height, config.width) image and the measurements.
    """
    grayscale, fg = grayscale_normalize(gray, config=config)
    image, geometry = moment_normalize(grayscale, config=config)
    record = PreprocessRecord(
        original_height=int(gray.shape[0]),
        original_width=int(gray.shape[1]),
        foreground_threshold=fg["threshold"],
        foreground_pixels=fg["pixels"],
        foreground_mean=fg["mean"],
        foreground_std=fg["std"],
        centroid_x=float(geometry["xc"]),
        centroid_y=float(geometry["yc"]),
        alpha=float(geometry["alpha"]),
        antialias_sigma=float(geometry["antialias_sigma"]),
        output_height=config.height,
        output_width=config.width,
    )
    return grayscale, image, record
