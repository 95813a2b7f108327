"""Finding handwritten signatures on a page (issue 14): candidate regions of handwriting, told
apart from printed text, ruled lines, box borders and stamps, best first.

At a working size of about 1,400 pixels on the page's long side: the light is flattened
(``cleaning.flatten_illumination``), ink found by Otsu's threshold, straight lines removed by
morphological opening, round stamps by the circularity of their outline, and the rest grouped
into regions. Printed text is small and regular: the page's text height is the median height
of its ink pieces, and a region counts as handwriting by how tall its strokes are in units of
that height and how irregular their heights and baselines are. Boxes are returned in pixels of
the page as given.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from workbench.intake.cleaning import CleaningConfig, flatten_illumination

WORKING_SIDE = 1400
MAX_CANDIDATES = 6
SEED_EXTENT, SEED_DENSITY = 1.5, 0.3  # a stroke: this many text heights long, this thin
RIM_TOLERANCE, RIM_INKED = 7, 0.8  # a stamp's rim: inked within 3 px all round
GROW_AREA = 40  # full-resolution pixels: not a speck of noise or a grid crossing
JOIN_DENSITY = 0.35  # printed letters beside a signature are denser than its strokes
SHARED_ROWS, SHARED_ROWS_BELOW = 0.6, 0.25  # a piece beside a region shares its rows so much
MERGE_GAP, MERGE_REACH = 2.0, 9.0  # regions this close (their heights, text heights) are one
INK_CONTRAST = 40.0  # grey levels below the paper; a faint printed grid stays paper
FAINT_CONTRAST = 24.0  # a second look, on a page where no handwriting was that dark


@dataclass(frozen=True)
class Candidate:
    """A region of handwriting on a page.

    Attributes:
        box: ``(x0, y0, x1, y1)`` in pixels of the page, ends exclusive.
        score: how much it looks like a signature (higher is more; only the order matters).
        mask: ``bool`` (y1 - y0, x1 - x0): the region's own ink pieces, grown a little, so that
            printed matter overlapping the box can be left out of the crop.
    """

    box: tuple[int, int, int, int]
    score: float
    mask: np.ndarray

    def to_dict(self) -> dict:
        return {"box": list(self.box), "score": round(float(self.score), 4)}


def _working(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """The page at about ``WORKING_SIDE`` pixels on its long side (averaged down), and the
    scale used."""
    scale = min(1.0, WORKING_SIDE / max(gray.shape))
    if scale == 1.0:
        return gray, 1.0
    size = (max(1, int(round(gray.shape[1] * scale))), max(1, int(round(gray.shape[0] * scale))))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA), scale


def _ink(gray: np.ndarray, contrast: float = INK_CONTRAST) -> np.ndarray:
    """Ink: clearly darker than the (flattened) paper, light pen strokes included, which
    Otsu's threshold loses on a page of black print."""
    flat, _ = flatten_illumination(gray, config=CleaningConfig(uneven_light=0.0))
    paper = float(np.median(flat))
    spread = 1.4826 * float(np.median(np.abs(flat.astype(np.float32) - paper)))
    return (flat < paper - max(contrast, 6.0 * spread)).astype(np.uint8)


def _without_lines(ink: np.ndarray, length: int, tall: int | None = None) -> np.ndarray:
    """``ink`` minus horizontal straight runs of at least ``length`` pixels and vertical ones
    of at least ``tall`` (default ``length``); where a stroke crossed a line, the line's pixels
    between its two ends are given back.

    Returns:
        the ink without lines, ``uint8`` 0/1.
    """
    kept = ink.copy()
    # A scanned line drifts a pixel or two over ``length`` (a slight tilt): dilate across it.
    mend = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    for kernel, across in (((1, length), (5, 1)), ((tall or length, 1), (1, 5))):
        wide = cv2.dilate(ink, np.ones(across, np.uint8))
        line = cv2.morphologyEx(wide, cv2.MORPH_OPEN, np.ones(kernel, np.uint8)) & ink
        line = cv2.dilate(line, np.ones(across, np.uint8)) & ink
        if line.any():
            # Where a stroke crosses or runs along the line, the ink across the line is
            # thicker than the line itself: those pixels are the stroke's and stay.
            runs = _runs_across(ink, vertical=kernel[0] == 1)
            line &= (runs <= np.median(runs[line > 0]) + 2).astype(np.uint8)
        rest = ink & (1 - line)
        kept &= 1 - line
        kept |= cv2.morphologyEx(rest, cv2.MORPH_CLOSE, mend) & line
    return kept


def _runs_across(ink: np.ndarray, *, vertical: bool) -> np.ndarray:
    """For each ink pixel, the length of the run of ink through it along columns
    (``vertical``) or rows; 0 on paper. ``int32`` (H, W)."""
    image = ink if vertical else ink.T
    h, w = image.shape
    edges = np.diff(np.pad(image.astype(np.int8), ((1, 1), (0, 0))), axis=0)
    starts, ends = np.nonzero(edges.T == 1), np.nonzero(edges.T == -1)
    lengths = ends[1] - starts[1]
    steps = np.zeros((h + 1, w), np.int32)
    np.add.at(steps, (starts[1], starts[0]), lengths)
    np.add.at(steps, (ends[1], ends[0]), -lengths)
    runs = np.cumsum(steps, axis=0)[:h]
    return runs if vertical else runs.T


def _components(ink: np.ndarray):
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    h, w = ink.shape
    keep = np.zeros(count, bool)
    for i in range(1, count):
        x, y, cw, ch, area = stats[i]
        touches = x == 0 or y == 0 or x + cw >= w or y + ch >= h
        keep[i] = area >= 3 and not (touches and max(cw / w, ch / h) > 0.2)
    return labels, stats, keep


def text_height(stats, keep) -> float:
    """The page's printed text height: the median height of its ink pieces (pixels)."""
    big_enough = keep & (stats[:, cv2.CC_STAT_AREA] >= 10)  # not specks of noise
    heights = stats[big_enough, cv2.CC_STAT_HEIGHT]
    heights = heights[heights >= 4]
    return float(np.median(heights)) if len(heights) else 10.0


def _is_ring(labels: np.ndarray, index: int, box) -> bool:
    """A stamp's ring: a square-ish piece whose pixels lie on the ellipse inscribed in its box."""
    x, y, w, h = box
    if not 0.75 <= w / max(h, 1) <= 1.33:
        return False
    ys, xs = np.nonzero(labels[y : y + h, x : x + w] == index)
    radius = np.hypot((xs + 0.5 - w / 2) / (w / 2), (ys + 0.5 - h / 2) / (h / 2))
    return len(xs) > 0 and float(np.mean(radius > 0.8)) > 0.8


def _complete(box, candidates: np.ndarray, geometry, unit: float) -> tuple[int, int, int, int]:
    """Grow a group's box by the pieces beside it (the end of a name, a dot): pieces within
    half its height (at least two text heights) to either side that share most of its rows,
    until none is left."""
    x, y, w, h = geometry
    x0, y0, x1, y1 = box
    while True:
        reach = max(0.5 * (y1 - y0), 2 * unit)
        overlap = np.minimum(y + h, y1) - np.maximum(y, y0)
        # A piece hanging below the region's rows joins more readily than one reaching above:
        # strokes dip under the line a signature sits on, the print above is a heading.
        shared = np.where(y >= y0, SHARED_ROWS_BELOW, SHARED_ROWS) * h
        beside = (x + w >= x0 - reach) & (x <= x1 + reach) & (overlap >= shared)
        inside = (x >= x0) & (y >= y0) & (x + w <= x1) & (y + h <= y1)
        near = candidates & beside & ~inside
        if not near.any():
            return int(x0), int(y0), int(x1), int(y1)
        x0, y0 = min(x0, x[near].min()), min(y0, y[near].min())
        x1, y1 = max(x1, (x + w)[near].max()), max(y1, (y + h)[near].max())


def _refine(
    gray: np.ndarray,
    core,
    pieces: np.ndarray | None = None,
    scale: float = 1.0,
    contrast: float = INK_CONTRAST,
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """The region's box and ink at the page's own resolution: around the ``core`` box found at
    working size, lines are removed again (thin here, so strokes that dip just below the line
    a signature sits on survive) and the ink pieces that lie mostly inside the core make the
    box and the mask. The region is first averaged as at the working size (``scale``), so a
    faint grid that was paper there stays paper. With ``pieces`` (the region's own ink at
    working size, a boolean mask of the core box), ink beside their columns is dropped, a piece
    mostly outside them keeps only its part near them, and a piece must overlap them: the
    remnants of a grid or of a tilted signing line stay out."""
    height, width = gray.shape
    x0, y0, x1, y1 = core
    bw, bh = max(1, x1 - x0), max(1, y1 - y0)
    rx0, rx1 = max(0, x0 - bw // 10), min(width, x1 + bw // 10)
    ry0, ry1 = max(0, y0 - bh // 2), min(height, y1 + bh // 2)
    region = gray[ry0:ry1, rx0:rx1]
    if scale < 1.0:
        # Averaged as at the working size, so that a faint grid that was paper there is
        # paper here too, while the box keeps the page's own resolution.
        k = int(round(1.0 / scale))
        region = cv2.blur(region, (k, k))
    ink = _without_lines(
        _ink(region, contrast), max(25, (rx1 - rx0) // 2), max(25, (ry1 - ry0) // 2)
    )
    cx0, cy0, cx1, cy1 = x0 - rx0, y0 - ry0, x1 - rx0, y1 - ry0
    reach = 2 * max(3, int(round(0.06 * bh))) + 1
    support = None
    if pieces is None or not pieces.any():
        count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    else:
        grown = cv2.resize(pieces.astype(np.uint8), (bw, bh), interpolation=cv2.INTER_NEAREST)
        grown = cv2.dilate(grown, np.ones((reach, reach), np.uint8))
        support = np.zeros(ink.shape, np.uint8)
        support[cy0 : cy0 + bh, cx0 : cx0 + bw] = grown[: ink.shape[0] - cy0, : ink.shape[1] - cx0]
        # Ink left or right of the region's own (a signing line running on) is not its.
        columns = np.nonzero(support.any(axis=0))[0]
        ink[:, : columns[0]] = 0
        ink[:, columns[-1] + 1 :] = 0
        count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        touched = np.bincount(labels[support > 0], minlength=count)
        # A piece mostly outside the region's own ink (a tilted line the strokes touch, too
        # slanted to be removed here) keeps only its part within it, not the strokes' loss.
        poor = touched < 0.3 * stats[:, cv2.CC_STAT_AREA]
        poor[0] = False
        if (poor & (touched > 0)).any():
            ink[np.isin(labels, np.nonzero(poor & (touched > 0))[0]) & (support == 0)] = 0
            count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
            touched = np.bincount(labels[support > 0], minlength=count)
    chosen = []
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        shared = max(0, min(x + w, cx1) - max(x, cx0)) * max(0, min(y + h, cy1) - max(y, cy0))
        if area >= 10 and shared >= 0.25 * w * h and (support is None or touched[i] >= 0.3 * area):
            long = max(w, h) >= 0.3 * min(bw, bh)
            if not (long and _on_its_frame(labels, i, (x, y, w, h), band=4)):
                chosen.append(i)
    if not chosen:
        return (x0, y0, min(width, x1), min(height, y1)), np.ones((bh, bw), bool)
    # A stroke's loop below the line it is signed on, cut off by the line's removal: a piece
    # within a few pixels of the chosen ones and under them.
    near = cv2.dilate(np.isin(labels, chosen).astype(np.uint8), np.ones((reach, reach), np.uint8))
    left = min(stats[i, 0] for i in chosen)
    right = max(stats[i, 0] + stats[i, 2] for i in chosen)
    for i in np.unique(labels[near > 0]):
        x, y, w, h, area = stats[i]
        if i and i not in chosen and area >= GROW_AREA and x >= left and x + w <= right:
            chosen.append(i)
    bx0 = min(stats[i, 0] for i in chosen)
    by0 = min(stats[i, 1] for i in chosen)
    bx1 = max(stats[i, 0] + stats[i, 2] for i in chosen)
    by1 = max(stats[i, 1] + stats[i, 3] for i in chosen)
    mask = np.isin(labels[by0:by1, bx0:bx1], chosen).astype(np.uint8)
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8)).astype(bool)
    return (int(rx0 + bx0), int(ry0 + by0), int(rx0 + bx1), int(ry0 + by1)), mask


def _circles(ink: np.ndarray, unit: float) -> list[tuple[float, float, float]]:
    """Round stamps: circles 6 to 20 text heights across whose rim is inked nearly all round
    (a Hough transform at half the working size, each circle checked on 120 points of its rim
    at the working size)."""
    half = cv2.resize(ink * 255, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    found = cv2.HoughCircles(
        cv2.GaussianBlur(half, (3, 3), 1.0), cv2.HOUGH_GRADIENT, dp=1,
        minDist=2 * unit, param1=100, param2=25,
        minRadius=int(1.5 * unit), maxRadius=int(5 * unit),
    )  # fmt: skip
    rings = []
    near = cv2.dilate(ink, np.ones((RIM_TOLERANCE, RIM_TOLERANCE), np.uint8))
    angles = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    for cx, cy, r in [] if found is None else 2 * found.reshape(-1, 3):
        xs = np.clip((cx + r * np.cos(angles)).astype(int), 0, ink.shape[1] - 1)
        ys = np.clip((cy + r * np.sin(angles)).astype(int), 0, ink.shape[0] - 1)
        if near[ys, xs].mean() >= RIM_INKED:
            rings.append((float(cx), float(cy), float(r)))
    return rings


def _on_its_frame(labels: np.ndarray, index: int, box, band: int = 2) -> bool:
    """A piece whose pixels nearly all lie along the edges of its own box: a straight bar, or
    the L or U of a box's corner left by line removal. A pen stroke curves through the inside."""
    x, y, w, h = box
    if min(w, h) < 3:
        return max(w, h) >= 8
    ys, xs = np.nonzero(labels[y : y + h, x : x + w] == index)
    edge = (xs <= band) | (xs >= w - 1 - band) | (ys <= band) | (ys >= h - 1 - band)
    return float(edge.mean()) >= 0.9


def _groups(boxes: list, gap: float, reach: float, *, shorter: bool = False) -> list[list[int]]:
    """Union of boxes that overlap vertically and lie within ``gap`` x their height (the
    taller's, or the ``shorter``'s) or ``reach`` pixels apart, whichever is more."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            height = (min if shorter else max)(a[3] - a[1], b[3] - b[1])
            dx = max(0, max(a[0], b[0]) - min(a[2], b[2]))
            dy = max(0, max(a[1], b[1]) - min(a[3], b[3]))
            if dx <= max(gap * height, reach) and dy <= 0.25 * height:
                parent[root(i)] = root(j)
    found: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        found.setdefault(root(i), []).append(i)
    return list(found.values())


def find_signatures(gray: np.ndarray, *, limit: int = MAX_CANDIDATES) -> list[Candidate]:
    """Candidate signature regions on a page, best first.

    Args:
        gray: ``uint8`` (H, W) page, dark ink on light paper.
        limit: most candidates returned.

    Returns:
        Up to ``limit`` ``Candidate``; an empty list when the page holds no handwriting.
    """
    small, scale = _working(gray)
    found = _find(gray, small, scale, INK_CONTRAST)
    # Pale pen or pencil on a photo breaks into specks at the usual contrast: look again.
    return (found or _find(gray, small, scale, FAINT_CONTRAST))[:limit]


def _find(gray: np.ndarray, small: np.ndarray, scale: float, contrast: float) -> list[Candidate]:
    """``find_signatures`` with ink ``contrast`` grey levels below the paper, all candidates."""
    # Lines at least 6% of the page's long side: ruled lines, box sides, table rules, never
    # the arc of a stamp's ring.
    raw = _ink(small, contrast)
    ink = _without_lines(raw, max(25, int(0.06 * max(small.shape))))
    labels, stats, keep = _components(ink)
    unit = text_height(stats, keep)
    x, y, w, h, area = (stats[:, i].astype(int) for i in range(5))
    for i in np.nonzero(keep & (h >= 3 * unit))[0]:
        if _is_ring(labels, i, (x[i], y[i], w[i], h[i])):  # a stamp, and the words inside it
            keep &= ~((x >= x[i]) & (y >= y[i]) & (x + w <= x[i] + w[i]) & (y + h <= y[i] + h[i]))
    # A ring that ruled lines cut into arcs is still a circle: found on the ink before the
    # lines were removed.
    for cx, cy, r in _circles(raw, unit):
        inside = np.hypot(x + w / 2 - cx, y + h / 2 - cy) <= 1.1 * r
        keep &= ~inside
    # Handwriting: thin strokes that run long in units of the printed letters' height.
    density = area / np.maximum(w * h, 1)
    extent = np.maximum(w, h)
    seeds = np.nonzero(keep & (extent >= SEED_EXTENT * unit) & (density <= SEED_DENSITY))[0]
    framed = [i for i in seeds if _on_its_frame(labels, i, (x[i], y[i], w[i], h[i]))]
    keep[framed] = False  # the remnant of a box's corner or a ruled line: no handwriting
    seeds = np.array([i for i in seeds if i not in set(framed)], dtype=int)
    boxes = [(x[i], y[i], x[i] + w[i], y[i] + h[i]) for i in seeds]
    joinable = keep & (h >= 0.5 * unit) & ((density <= JOIN_DENSITY) | (h >= 1.8 * unit))
    regions = []  # (completed box, the seeds' total extent in text heights)
    for group in _groups(boxes, gap=1.6, reach=4 * unit):
        grouped = tuple(f(boxes[g][k] for g in group) for k, f in enumerate((min, min, max, max)))
        strokes = float(sum(extent[seeds[g]] for g in group)) / unit
        regions.append((_complete(grouped, joinable, (x, y, w, h), unit), strokes))
    edge = 0.01 * max(small.shape)

    def on_edge(box) -> bool:  # the page's own edge or the desk around it, in a photo
        x0, y0, x1, y1 = box
        return min(x0, y0) <= edge or x1 >= small.shape[1] - edge or y1 >= small.shape[0] - edge

    regions = [r for r in regions if not on_edge(r[0])]  # nor do they join the rest
    # Completed regions that now lie close (two halves of a name, joined through the small
    # pieces between them) are one candidate.
    merged = []
    # A speck far beside a tall signature is not its half: the gap counts in the shorter's height.
    boxes = [r[0] for r in regions]
    for group in _groups(boxes, gap=MERGE_GAP, reach=MERGE_REACH * unit, shorter=True):
        box = tuple(f(regions[g][0][k] for g in group) for k, f in enumerate((min, min, max, max)))
        merged.append((box, sum(regions[g][1] for g in group)))
    candidates = []
    for (x0, y0, x1, y1), strokes in merged:
        inside = keep & (x >= x0) & (y >= y0) & (x + w <= x1) & (y + h <= y1)
        heights = h[np.nonzero(inside)[0]].astype(float)
        irregular = np.std(heights) / max(np.mean(heights), 1.0)
        score = np.log((y1 - y0) / unit) + np.log(strokes) + 0.3 * min(irregular, 3)
        core = tuple(int(round(v / scale)) for v in (x0, y0, x1, y1))
        pieces = np.isin(labels[y0:y1, x0:x1], np.nonzero(inside)[0])
        box, mask = _refine(gray, core, pieces, scale, contrast)
        candidates.append(Candidate(box, float(score), mask))
    candidates.sort(key=lambda c: -c.score)
    return candidates
