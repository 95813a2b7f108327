"""Cleaning a signature image before eq. 1 (issue 14): illumination flattening, deskew,
removal of ruled lines, grid and box borders, and a crop to the ink with a margin.

Each stage is a pure function on a ``uint8`` (H, W) grey image (dark ink on light paper) with a
switch in ``CleaningConfig``, and each acts only where it finds something to do: an image with
even light, no long straight lines and little blank margin comes back unchanged, so a clean
crop (a BHSig scan, a generator signature) gives the very image the shipped weights were
measured on (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CleaningConfig:
    """Switches and limits of the cleaning stages.

    Attributes:
        flatten, deskew, remove_lines, crop: each stage on or off.
        uneven_light: the background's spread (grey levels, 2nd to 98th percentile of the
            estimated background) above which illumination is flattened.
        line_length: shortest straight run, as a share of the image's side along it, that
            counts as a ruled line, grid line or box border. Removal also asks that it run
            from edge to edge (``edge_to_edge`` of the side): a pen stroke, however straight,
            stops short of the paper's edges, and a printed line does not.
        edge_to_edge: the share of the side a line must cover to be removed.
        min_skew_deg, max_skew_deg: a skew measured on the lines is corrected when its size
            lies between these.
        crop_below: the image is cropped to its ink (plus ``margin``) when that box covers less
            than this share of the image's area.
        margin: blank border kept around the ink, as a share of the ink box's larger side.
    """

    flatten: bool = True
    deskew: bool = True
    remove_lines: bool = True
    crop: bool = True
    uneven_light: float = 40.0
    line_length: float = 0.8
    edge_to_edge: float = 0.95
    min_skew_deg: float = 0.3
    max_skew_deg: float = 10.0
    crop_below: float = 0.3
    margin: float = 0.05


DEFAULT_CLEANING = CleaningConfig()


@dataclass(frozen=True)
class CleaningStep:
    """One stage's outcome: its name, whether it changed the image, what it measured."""

    name: str
    applied: bool
    detail: str
    image: np.ndarray


def _small_background(gray: np.ndarray, *, blur: bool = True) -> np.ndarray:
    """``estimate_background`` at reduced size (at most 400 pixels on the long side); without
    ``blur``, the max filter alone (enough to measure how uneven the light is)."""
    h, w = gray.shape
    scale = min(1.0, 400.0 / max(h, w))
    small = (
        cv2.resize(
            gray, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA
        )
        if scale < 1
        else gray
    )
    k = max(3, int(round(0.04 * max(small.shape))) | 1)
    background = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if not blur:
        return background.astype(np.float32)
    return cv2.GaussianBlur(background.astype(np.float32), (0, 0), k)


def estimate_background(gray: np.ndarray) -> np.ndarray:
    """The paper's grey level under the ink: a max filter wider than any stroke, then a blur,
    computed at reduced size. ``float32`` (H, W)."""
    h, w = gray.shape
    return cv2.resize(_small_background(gray), (w, h), interpolation=cv2.INTER_LINEAR)


def flatten_illumination(
    gray: np.ndarray, *, config: CleaningConfig = DEFAULT_CLEANING
) -> tuple[np.ndarray, str | None]:
    """Divide out uneven light (shadow, vignetting, a photo's light gradient).

    Returns:
        (image, detail): the flattened image with paper near 255, or the input unchanged and
        None when the background's spread is under ``config.uneven_light``.
    """
    low, high = np.percentile(_small_background(gray, blur=False), [2, 98])
    if high - low < config.uneven_light:
        return gray, None
    background = estimate_background(gray)
    flat = gray.astype(np.float32) * 255.0 / np.maximum(background, 1.0)
    return np.clip(flat + 0.5, 0, 255).astype(np.uint8), (
        f"background spread {high - low:.0f} grey levels (paper {low:.0f}..{high:.0f})"
    )


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Ink by Otsu's threshold (boolean (H, W)); all False on a page without contrast."""
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = gray <= threshold
    if gray.max() - gray.min() < 40 or mask.mean() > 0.5:
        return np.zeros_like(mask)
    return mask


def find_lines(ink: np.ndarray, *, config: CleaningConfig = DEFAULT_CLEANING) -> np.ndarray:
    """Straight ink segments at least ``config.line_length`` of the image's width (height for
    vertical ones) long and within ``config.max_skew_deg`` of the axis: (N, 4) ``x1, y1, x2,
    y2`` in pixels of ``ink``, from one probabilistic Hough transform at reduced size (at most
    500 pixels on the long side)."""
    h, w = ink.shape
    scale = min(1.0, 500.0 / max(h, w))
    small = ink.astype(np.uint8) * 255
    if scale < 1:
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        small = (cv2.resize(small, size, interpolation=cv2.INTER_AREA) > 64).astype(np.uint8) * 255
    shortest = config.line_length * min(small.shape)
    segments = cv2.HoughLinesP(small, 1, np.pi / 720, threshold=int(shortest * 0.8),
                               minLineLength=int(shortest), maxLineGap=3)  # fmt: skip
    found = []
    for x1, y1, x2, y2 in [] if segments is None else segments.reshape(-1, 4) / scale:
        dx, dy = abs(x2 - x1), abs(y2 - y1)
        vertical = dy > dx
        off = np.degrees(np.arctan2(min(dx, dy), max(dx, dy)))
        long_enough = np.hypot(dx, dy) >= config.line_length * (h if vertical else w) * 0.95
        if off <= config.max_skew_deg and long_enough:
            found.append((x1, y1, x2, y2))
    return np.array(found, dtype=float).reshape(-1, 4)


def skew_degrees(lines: np.ndarray) -> float:
    """The median tilt of the near-horizontal ``lines`` (degrees, counter-clockwise positive
    in image coordinates); 0 unless at least two of them lie apart (ruled or squared paper: a
    single long stroke may be the signature's own)."""
    angles, rows = [], []
    for x1, y1, x2, y2 in lines:
        if abs(x2 - x1) >= abs(y2 - y1):
            angles.append(np.degrees(np.arctan2(y2 - y1, x2 - x1)))
            rows.append((y1 + y2) / 2)
    if len(rows) < 2 or np.ptp(rows) < 10:
        return 0.0
    return float(np.median(angles))


def rotate(gray: np.ndarray, degrees: float) -> np.ndarray:
    """``gray`` turned by ``degrees`` about its centre, the corners filled with paper (its
    90th-percentile grey level)."""
    h, w = gray.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    paper = float(np.percentile(gray, 90))
    return cv2.warpAffine(gray, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=paper)


def remove_lines(
    gray: np.ndarray, *, config: CleaningConfig = DEFAULT_CLEANING
) -> tuple[np.ndarray, int]:
    """Paint ruled lines, grid lines and box borders (axis-aligned straight runs of ink at
    least ``config.line_length`` of the image's side) with the paper's grey level.

    Returns:
        (image, pixels removed); the input itself when none were found.
    """
    ink = ink_mask(gray).astype(np.uint8)
    h, w = gray.shape
    lines = np.zeros_like(ink)
    for size in (
        (max(3, int(config.line_length * w)), 1),
        (1, max(3, int(config.line_length * h))),
    ):
        # A line's pixels may wander a row up or down (print, scan): dilate across it first.
        across = (1, 3) if size[1] == 1 else (3, 1)
        tall = cv2.dilate(ink, np.ones(across[::-1], np.uint8))
        found = cv2.morphologyEx(tall, cv2.MORPH_OPEN, np.ones(size[::-1], np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(found, connectivity=8)
        span = stats[:, cv2.CC_STAT_WIDTH] if size[1] == 1 else stats[:, cv2.CC_STAT_HEIGHT]
        side = w if size[1] == 1 else h
        lines |= np.isin(
            labels, [i for i in range(1, count) if span[i] >= config.edge_to_edge * side]
        ).astype(np.uint8)
    lines &= ink
    removed = int(lines.sum())
    if removed == 0:
        return gray, 0
    lines = cv2.dilate(lines, np.ones((3, 3), np.uint8)).astype(bool)
    out = gray.copy()
    out[lines] = np.uint8(np.percentile(gray[~ink.astype(bool)], 50) if (ink == 0).any() else 255)
    return out, removed


def crop_box(
    gray: np.ndarray, *, config: CleaningConfig = DEFAULT_CLEANING
) -> tuple[int, int, int, int] | None:
    """The ink's box plus margin ``(x0, y0, x1, y1)``, or None when it covers at least
    ``config.crop_below`` of the image (nothing to crop) or there is no ink."""
    ink = ink_mask(gray).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    keep = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= 4]  # not specks
    if not keep:
        return None
    x0 = min(stats[i, 0] for i in keep)
    y0 = min(stats[i, 1] for i in keep)
    x1 = max(stats[i, 0] + stats[i, 2] for i in keep)
    y1 = max(stats[i, 1] + stats[i, 3] for i in keep)
    pad = int(round(config.margin * max(x1 - x0, y1 - y0))) + 2
    h, w = gray.shape
    box = (max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad))
    if (box[2] - box[0]) * (box[3] - box[1]) >= config.crop_below * h * w:
        return None
    return box


def clean_signature(
    gray: np.ndarray, *, config: CleaningConfig = DEFAULT_CLEANING
) -> tuple[np.ndarray, list[CleaningStep]]:
    """Every cleaning stage in order: flatten, deskew, remove lines, crop.

    Args:
        gray: ``uint8`` (H, W), dark ink on light paper.

    Returns:
        (image, steps): the cleaned ``uint8`` image and one ``CleaningStep`` per stage (its
        image is the result after that stage).
    """
    steps = []
    image = gray
    detail = None
    if config.flatten:
        image, detail = flatten_illumination(image, config=config)
    steps.append(
        CleaningStep(
            "flatten illumination", detail is not None, detail or "even light: unchanged", image
        )
    )
    lines = (
        find_lines(ink_mask(image), config=config) if config.deskew or config.remove_lines else []
    )
    angle = skew_degrees(lines) if config.deskew else 0.0
    turned = config.min_skew_deg <= abs(angle) <= config.max_skew_deg
    if turned:
        image = rotate(image, angle)
    steps.append(
        CleaningStep(
            "deskew",
            turned,
            f"lines tilted {angle:+.2f} degrees" if turned else "no tilted ruled line: unchanged",
            image,
        )
    )
    removed = 0
    if config.remove_lines and len(lines):  # no long straight run found: nothing to remove
        image, removed = remove_lines(image, config=config)
    steps.append(
        CleaningStep(
            "remove lines",
            removed > 0,
            f"{removed} line pixels painted over"
            if removed
            else "no ruled line or border: unchanged",
            image,
        )
    )
    box = crop_box(image, config=config) if config.crop else None
    if box is not None:
        image = image[box[1] : box[3], box[0] : box[2]]
    steps.append(
        CleaningStep(
            "crop to the ink",
            box is not None,
            f"box x {box[0]}..{box[2]}, y {box[1]}..{box[3]}"
            if box
            else "ink fills the image: unchanged",
            image,
        )
    )
    return image, steps
