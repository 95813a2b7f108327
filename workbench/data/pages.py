"""Synthetic documents for the intake bench (issue 14): a generator signature signed on a
rendered page (printed text in several fonts, ruled lines, a box or a line to sign on, a stamp),
then degraded as a scan or as a phone photo, with the signature's true box.

``python -m workbench.data pages --out DIR`` writes ``page_NNNN.jpg`` (or ``.png``) and
``truth.json``: per page its file, the signature's box ``[x0, y0, x1, y1]`` (pixels of the
written file, x right, y down, ends exclusive), how it was degraded, and the generator writer
and sample the signature is (``sample_writer(seed, writer=w)``'s genuine image ``sample``), so
references of the same writer can be drawn from the generator too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from workbench.data.synthetic import sample_writer

A4_MM = (210.0, 297.0)
FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
    cv2.FONT_HERSHEY_SIMPLEX | cv2.FONT_ITALIC,
)
WORDS = (
    "agreement party parties the of and to in shall be this contract payment date account "
    "hereby signed undersigned bank amount transfer company address witness terms clause "
    "section schedule thereof pursuant notice period whereas herein provided receipt customer "
    "name number total invoice delivery order reference branch period signature declare"
).split()
# Pen colours (RGB) of the signature and of stamps: black, blue-black, blue; red, violet, blue.
PENS = ((25, 25, 30), (20, 30, 80), (30, 50, 150))
STAMPS = ((190, 40, 50), (110, 50, 150), (40, 70, 170))


@dataclass(frozen=True)
class PageSpec:
    """What one synthetic page holds and how it is degraded (recorded in ``truth.json``)."""

    dpi: int
    photo: bool
    writer: int
    sample: int
    layout: str  # "line", "box" or "free": where the signature goes
    ruled: str  # "none", "lines" or "grid": the paper itself
    stamp: bool
    table: bool


def _mm(value: float, dpi: int) -> int:
    return int(round(value * dpi / 25.4))


def _text_line(page, x, y, rng, font, height_px, width_px, colour=(35, 35, 35)) -> None:
    """Random words from ``x`` along baseline ``y`` until ``width_px`` is used."""
    scale = height_px / 22.0  # Hershey capitals are about 22 px high at scale 1
    thickness = max(1, int(round(height_px / 14 * rng.uniform(0.5, 1.1))))
    words = []
    while True:
        word = str(rng.choice(WORDS))
        candidate = " ".join([*words, word])
        (w, _), _ = cv2.getTextSize(candidate, font, scale, thickness)
        if w > width_px:
            break
        words.append(word)
    if words:
        cv2.putText(page, " ".join(words), (x, y), font, scale, colour, thickness, cv2.LINE_AA)


def signature_ink(signature: np.ndarray, width_px: int) -> np.ndarray:
    """A grey signature image (dark ink on light paper) as ink opacity 0..1, cropped to its ink
    and scaled to ``width_px`` wide."""
    image = np.asarray(signature, dtype=np.float32)
    paper = float(np.percentile(image, 90))
    # Paper texture and sensor noise stay behind: only what is clearly ink is pasted.
    ink = np.clip(((paper - image) / max(paper, 1.0) - 0.12) / 0.88, 0.0, 1.0)
    ys, xs = np.nonzero(ink > 0.15)
    ink = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    height = max(2, int(round(ink.shape[0] * width_px / ink.shape[1])))
    return cv2.resize(ink, (width_px, height), interpolation=cv2.INTER_AREA)


def _stamp(rng, dpi: int, colour) -> tuple[np.ndarray, np.ndarray]:
    """A round stamp: two rings and a few words, as (opacity (S, S), RGB colour)."""
    size = _mm(rng.uniform(28, 40), dpi)
    layer = np.zeros((size, size), np.uint8)
    c = size // 2
    ring = max(2, _mm(0.5, dpi))
    cv2.circle(layer, (c, c), c - ring, 255, ring, cv2.LINE_AA)
    cv2.circle(layer, (c, c), int(c * 0.72), 255, max(1, ring // 2), cv2.LINE_AA)
    font = int(rng.choice(FONTS[:4]))
    scale = _mm(3.0, dpi) / 22.0
    for i, word in enumerate(rng.choice(WORDS, size=2)):
        (w, h), _ = cv2.getTextSize(str(word).upper(), font, scale, 2)
        cv2.putText(
            layer,
            str(word).upper(),
            (c - w // 2, c - h // 2 + i * int(h * 1.8)),
            font,
            scale,
            255,
            2,
            cv2.LINE_AA,
        )
    return layer.astype(np.float32) / 255.0 * rng.uniform(0.55, 0.85), np.array(colour)


def render_page(
    spec: PageSpec, rng: np.random.Generator, signature: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The clean page (RGB ``uint8`` (H, W, 3)) with ``signature`` (a grey image) signed on
    it, and the signature's ink mask (``uint8`` (H, W), 255 where its opacity exceeds 0.25)."""
    dpi = spec.dpi
    width, height = _mm(A4_MM[0], dpi), _mm(A4_MM[1], dpi)
    paper = rng.uniform(236, 252)
    page = np.full((height, width, 3), paper, np.float32)
    canvas = np.full((height, width, 3), 255, np.uint8)  # printed matter, multiplied in later
    if spec.ruled != "none":
        step = _mm(rng.uniform(5, 8), dpi)
        colour = (150, 180, 215) if rng.random() < 0.7 else (170, 170, 170)
        for y in range(step, height, step):
            cv2.line(canvas, (0, y), (width, y), colour, 1, cv2.LINE_AA)
        if spec.ruled == "grid":
            for x in range(step, width, step):
                cv2.line(canvas, (x, 0), (x, height), colour, 1, cv2.LINE_AA)
    margin = _mm(rng.uniform(18, 25), dpi)
    font = int(rng.choice(FONTS))
    text_h = _mm(rng.uniform(2.3, 3.3), dpi)
    y = margin + _mm(10, dpi)
    _text_line(canvas, margin, y, rng, font, int(text_h * 1.8), width - 2 * margin - _mm(40, dpi))
    y += int(text_h * 4)
    # Body text down to where the signature block starts.
    sign_top = int(height * rng.uniform(0.55, 0.75))
    while y < sign_top - text_h * 3:
        if spec.table and rng.random() < 0.08:
            rows, cols = int(rng.integers(3, 6)), int(rng.integers(3, 5))
            row_h = int(text_h * 2.2)
            if y + rows * row_h > sign_top - text_h * 3:
                break
            col_w = (width - 2 * margin) // cols
            for r in range(rows + 1):
                cv2.line(
                    canvas,
                    (margin, y + r * row_h),
                    (margin + cols * col_w, y + r * row_h),
                    (40, 40, 40),
                    max(1, dpi // 150),
                )
            for k in range(cols + 1):
                cv2.line(
                    canvas,
                    (margin + k * col_w, y),
                    (margin + k * col_w, y + rows * row_h),
                    (40, 40, 40),
                    max(1, dpi // 150),
                )
            for r in range(rows):
                for k in range(cols):
                    _text_line(
                        canvas,
                        margin + k * col_w + text_h // 2,
                        y + r * row_h + int(text_h * 1.5),
                        rng,
                        font,
                        text_h,
                        col_w - text_h,
                    )
            y += rows * row_h + int(text_h * 2)
            continue
        line_w = width - 2 * margin - (0 if rng.random() < 0.8 else _mm(rng.uniform(20, 90), dpi))
        _text_line(canvas, margin, y, rng, font, text_h, line_w)
        y += int(text_h * rng.uniform(1.9, 2.3)) + (int(text_h * 2) if rng.random() < 0.12 else 0)
    # The signature block.
    sig_w = _mm(rng.uniform(38, 62), dpi)
    ink = signature_ink(signature, sig_w)
    sh, sw = ink.shape
    x0 = (
        margin + int(rng.uniform(0, 0.45) * (width - 2 * margin - sw - _mm(30, dpi))) + _mm(25, dpi)
    )
    base = min(sign_top + _mm(rng.uniform(12, 25), dpi), height - margin - _mm(20, dpi))
    # The block (a box up to 9 mm of padding each side, a label) starts below the body text.
    base = min(max(base, y + 2 * text_h + sh + _mm(20, dpi)), height - margin - 3 * text_h)
    label = "Signature:" if rng.random() < 0.5 else "Signed"
    if spec.layout == "line":
        # The signature sits on a printed line, its lowest stroke a little below it.
        _text_line_label(canvas, label, x0 - _mm(28, dpi), base, font, text_h)
        cv2.line(
            canvas,
            (x0 - _mm(3, dpi), base),
            (x0 + sw + _mm(15, dpi), base),
            (40, 40, 40),
            max(1, dpi // 150),
        )
        top = base - int(sh * rng.uniform(0.8, 0.95))
    elif spec.layout == "box":
        pad = _mm(rng.uniform(5, 9), dpi)
        box_top = base - sh - 2 * pad
        cv2.rectangle(
            canvas, (x0 - pad, box_top), (x0 + sw + pad, base), (40, 40, 40), max(1, dpi // 150)
        )
        _text_line_label(
            canvas,
            "Sign here",
            x0 - pad + _mm(1.5, dpi),
            box_top + int(text_h * 1.3),
            font,
            int(text_h * 0.8),
        )
        top = box_top + pad + int(rng.uniform(0.3, 1.0) * pad)
    else:
        _text_line_label(canvas, "Yours faithfully,", x0, base - sh - _mm(6, dpi), font, text_h)
        top = base - sh
    name_y = min(top + sh + int(text_h * 2.2), height - margin)
    _text_line(canvas, x0, name_y, rng, font, text_h, _mm(50, dpi))
    page *= canvas.astype(np.float32) / 255.0
    if spec.stamp:
        layer, colour = _stamp(rng, dpi, STAMPS[int(rng.integers(len(STAMPS)))])
        size = layer.shape[0]
        sx = x0 + sw + _mm(rng.uniform(8, 20), dpi)
        if sx + size > width - _mm(5, dpi):
            sx = max(_mm(5, dpi), x0 - size - _mm(rng.uniform(25, 35), dpi))
        sy = int(np.clip(top + sh // 2 - size // 2, 0, height - size))
        region = page[sy : sy + size, sx : sx + size]
        region *= 1.0 - layer[..., None] * (1.0 - colour / 255.0)
    pen = np.array(PENS[int(rng.integers(len(PENS)))], np.float32)
    region = page[top : top + sh, x0 : x0 + sw]
    region *= 1.0 - ink[..., None] * (1.0 - pen / 255.0) * rng.uniform(0.85, 1.0)
    mask = np.zeros((height, width), np.uint8)
    mask[top : top + sh, x0 : x0 + sw] = np.where(ink > 0.25, 255, 0)
    return np.clip(page, 0, 255).astype(np.uint8), mask


def _text_line_label(canvas, text, x, y, font, height_px) -> None:
    scale = height_px / 22.0
    cv2.putText(
        canvas, text, (x, y), font, scale, (35, 35, 35), max(1, int(height_px / 14)), cv2.LINE_AA
    )


def degrade(page: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *, photo: bool):
    """A scan (slight rotation, noise) or a phone photo (perspective, uneven light, grey paper,
    blur, noise) of ``page``; returns (image RGB ``uint8``, the signature's box
    ``[x0, y0, x1, y1]`` after the same geometry, from its ink ``mask``)."""
    h, w = page.shape[:2]
    image = page.astype(np.float32)
    if photo:
        image *= rng.uniform(0.72, 0.93)  # grey paper under room light
        d = 0.035 * np.array([w, h])
        corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        moved = corners + rng.uniform(-1, 1, (4, 2)).astype(np.float32) * d
        out_w, out_h = int(rng.uniform(0.75, 1.0) * w), 0
        out_h = int(out_w * h / w)
        scale = np.float32([out_w / w, out_h / h])
        matrix = cv2.getPerspectiveTransform(corners, (moved * scale).astype(np.float32))
        surround = rng.uniform(60, 110)
        image = cv2.warpPerspective(
            image, matrix, (out_w, out_h), flags=cv2.INTER_AREA, borderValue=(surround,) * 3
        )
        mask = cv2.warpPerspective(mask, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR)
        yy, xx = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
        angle = rng.uniform(0, 2 * math.pi)
        ramp = (xx / out_w - 0.5) * math.cos(angle) + (yy / out_h - 0.5) * math.sin(angle)
        light = 1.0 - rng.uniform(0.15, 0.35) * (ramp + 0.5)
        cx, cy = rng.uniform(0.2, 0.8, 2)
        light *= 1.0 - 0.25 * ((xx / out_w - cx) ** 2 + (yy / out_h - cy) ** 2)
        image *= light[..., None]
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.6, 1.4))
        noise = 4.0
    else:
        angle = rng.uniform(-1.5, 1.5)
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        image = cv2.warpAffine(
            image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=(250,) * 3
        )
        mask = cv2.warpAffine(mask, matrix, (w, h), flags=cv2.INTER_LINEAR)
        noise = 2.0
    image += noise * rng.standard_normal(image.shape[:2], dtype=np.float32)[..., None]
    ys, xs = np.nonzero(mask >= 128)
    return np.clip(image, 0, 255).astype(np.uint8), [
        int(xs.min()),
        int(ys.min()),
        int(xs.max()) + 1,
        int(ys.max()) + 1,
    ]


def page_spec(rng: np.random.Generator, *, dpi: int, writers: int) -> PageSpec:
    return PageSpec(
        dpi=dpi,
        photo=bool(rng.random() < 0.5),
        writer=int(rng.integers(writers)),
        sample=int(rng.integers(4)),
        layout=str(rng.choice(["line", "box", "free"])),
        ruled=str(rng.choice(["none", "none", "lines", "grid"])),
        stamp=bool(rng.random() < 0.5),
        table=bool(rng.random() < 0.4),
    )


def document_with(
    signature: np.ndarray, seed: int, *, dpi: int = 150, photo: bool = True
) -> tuple[np.ndarray, list[int]]:
    """One synthetic document with ``signature`` signed on it on a line, a stamp beside it,
    photographed (or scanned): (RGB ``uint8`` image, the signature's box)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 14, 1]))
    spec = PageSpec(dpi=dpi, photo=photo, writer=-1, sample=-1, layout="line", ruled="none",
                    stamp=True, table=True)  # fmt: skip
    clean, mask = render_page(spec, rng, signature)
    return degrade(clean, mask, rng, photo=photo)


def generate_pages(
    out_dir: str | Path,
    *,
    pages: int,
    seed: int,
    dpi: int = 300,
    writers: int = 50,
    progress: bool = False,
) -> dict:
    """Write ``pages`` synthetic documents and ``truth.json`` into ``out_dir``.

    The signatures are genuine images of generator writers ``0 .. writers - 1`` of seed
    ``seed`` (samples 0-3); page i depends only on (seed, i). Photos are JPEG (quality 60-85),
    scans PNG.

    Returns:
        {"pages", "photos", "seed", "dpi", "out"}.
    """
    if pages < 1 or writers < 1 or not 50 <= dpi <= 600:
        raise ValueError("pages and writers must be at least 1 and dpi between 50 and 600.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth = []
    for i in tqdm(range(pages), desc="synthetic pages", disable=not progress):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 14, i, 0]))
        spec = page_spec(rng, dpi=dpi, writers=writers)
        genuine, _ = sample_writer(seed, writer=spec.writer, genuine=spec.sample + 1, forgeries=0)
        clean, mask = render_page(spec, rng, genuine[spec.sample])
        image, box = degrade(clean, mask, rng, photo=spec.photo)
        name = f"page_{i + 1:04d}.jpg"
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        quality = int(rng.integers(60, 86)) if spec.photo else int(rng.integers(88, 96))
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        if not cv2.imwrite(str(out / name), bgr, params):
            raise ValueError(f"Could not write {out / name}: check that the folder is writable.")
        truth.append({"file": name, "box": box, "seed": seed, **spec.__dict__})
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    photos = sum(t["photo"] for t in truth)
    return {"pages": pages, "photos": photos, "seed": seed, "dpi": dpi, "out": str(out)}
