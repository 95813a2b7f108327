"""Synthetic signatures: our own data for tests and ``examples/``.

A writer is a template of sigma-lognormal strokes (``synthetic_render``) grouped in pen-down
components, plus a pen style. A genuine sample perturbs the template slightly (stroke
parameters, size, slant, rotation, timing); a skilled forgery imitates the same template with
larger errors, slower and hesitant drawing (tremor, pauses, pen lifts) and a different pen
width and pressure profile. Images are rendered at scan-like sizes with paper texture and noise.

Everything is deterministic from a seed: in ``generate_corpus`` an image depends only on
(seed, writer index, class, sample index) through ``np.random.SeedSequence``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from workbench.data.synthetic_render import (
    LognormalStroke,
    PenStyle,
    Tremor,
    compose_page,
    draw_ink,
    fit_to_canvas,
    lognormal_trajectory,
    pen_runs,
    perturb_strokes,
    stroke_array,
)

__all__ = [
    "LognormalStroke",
    "PenStyle",
    "SynthConfig",
    "WriterTemplate",
    "forger_pen",
    "generate_corpus",
    "make_writer",
    "render_forgery",
    "render_genuine",
    "sample_writer",
]

_TEMPLATE, _GENUINE, _FORGED = 0, 1, 2


@dataclass(frozen=True)
class SynthConfig:
    """Settings of the synthetic signature generator.

    Noise levels scale ``perturb_strokes``' base noise and the global jitter (slant 0.04, width
    4%, component shifts 0.08 x-heights, rotation ``rotation_deg`` x max(level, 1)). The defaults
    put the skilled-forgery EER of a correlation baseline near 20% (random forgeries near 6%).

    Attributes:
        height_range, width_range: canvas size in pixels (scan-like; BHSig is ~280 x 950).
        aspect_range: canvas width / height.
        components_range: pen-down components per writer (inclusive).
        strokes_range: sigma-lognormal strokes per component (inclusive).
        pen_width_range: writers' nominal stroke width in output pixels.
        genuine_variation: noise level of a genuine sample.
        forgery_error: noise level of a skilled forgery.
        forgery_slowdown: range of the forger's spacing-out of stroke onsets (1 = writer's tempo).
        tremor_px: RMS lateral tremor of forgeries in output pixels.
        hesitations_max: most pauses (blobs, pen lifts) in one forgery.
        rotation_deg: standard deviation of a genuine sample's rotation, degrees.
        paper_range: mean paper grey level range.
        paper_texture: low-frequency paper shading, grey levels (std).
        noise_sigma: gaussian sensor noise, grey levels (std).
        supersample: drawing resolution factor before area-averaging (1 = fastest).
    """

    height_range: tuple[int, int] = (200, 400)
    width_range: tuple[int, int] = (600, 1200)
    aspect_range: tuple[float, float] = (2.5, 4.0)
    components_range: tuple[int, int] = (1, 3)
    strokes_range: tuple[int, int] = (8, 16)
    pen_width_range: tuple[float, float] = (1.8, 4.0)
    genuine_variation: float = 0.55
    forgery_error: float = 2.0
    forgery_slowdown: tuple[float, float] = (1.05, 1.35)
    tremor_px: float = 0.6
    hesitations_max: int = 3
    rotation_deg: float = 1.5
    paper_range: tuple[float, float] = (222.0, 250.0)
    paper_texture: float = 3.0
    noise_sigma: float = 3.0
    supersample: int = 2

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if name.endswith(("_range", "_slowdown")) and not 0 < value[0] <= value[1]:
                raise ValueError(
                    f"SynthConfig.{name} must be (low, high) with 0 < low <= high, got {value}."
                )
        if (
            self.supersample < 1
            or min(self.genuine_variation, self.forgery_error, self.tremor_px) < 0
        ):
            raise ValueError("SynthConfig: supersample must be >= 1 and noise levels >= 0.")


@dataclass(frozen=True)
class WriterTemplate:
    """A writer's signature: strokes grouped in pen-down components, and the writer's style.

    Attributes:
        components: per component, its strokes in time order.
        offsets: per component, its starting point (x, y) in x-height units (y up).
        slant: italic shear, x += slant * y (about -0.2..0.5).
        pen: the writer's pen width, ink darkness and pressure profile.
        canvas_height: nominal canvas height in pixels; canvas_aspect: width / height.
    """

    components: tuple[tuple[LognormalStroke, ...], ...]
    offsets: tuple[tuple[float, float], ...]
    slant: float
    pen: PenStyle
    canvas_height: int
    canvas_aspect: float


def _make_component(
    rng: np.random.Generator, n: int, flourish: bool
) -> tuple[LognormalStroke, ...]:
    """Alternating up- and down-strokes with curvature and occasional loops, kept near a
    baseline; ``flourish`` adds a final long stroke sweeping back under the writing."""
    strokes, t0, x, y = [], 0.0, 0.0, 0.0
    for k in range(n + int(flourish)):
        turn = rng.normal(0.0, 0.8)
        if rng.random() < 0.22:
            turn = rng.choice([-1.0, 1.0]) * rng.uniform(3.0, 5.5)
        if k == n:
            mid, turn, d = (
                rng.uniform(2.9, 3.5),
                rng.normal(0.0, 0.5),
                max(1.0, x * rng.uniform(0.6, 0.9)),
            )
        elif k % 2 == 0:  # up-stroke, leaning right: it carries the writing forward
            tall = rng.random() < 0.25  # ascenders are longer and more upright
            mid = rng.uniform(0.55, 1.2) + 0.25 * tall
            d = rng.uniform(0.7, 1.4) * (1.9 if tall else 1.0)
        else:  # down-stroke: aims back at the baseline, sometimes below it
            mid = rng.uniform(-1.9, -1.4)
            d = max(0.4, y + rng.normal(0.8, 0.3) + (0.8 if rng.random() < 0.12 else 0.0))
        chord = d * np.sinc(turn / (2 * math.pi))  # an arc of length d turning by `turn`
        x, y = x + chord * math.cos(mid), y + chord * math.sin(mid)
        mu, sigma = rng.normal(-1.6, 0.12), rng.uniform(0.18, 0.32)
        theta_s, theta_e = float(mid - turn / 2), float(mid + turn / 2)
        strokes.append(LognormalStroke(float(d), t0, float(mu), float(sigma), theta_s, theta_e))
        t0 += float(rng.uniform(0.07, 0.15))
    return tuple(strokes)


def make_writer(rng: np.random.Generator, config: SynthConfig = SynthConfig()) -> WriterTemplate:
    """Draw a new writer: components of several strokes each, slant, pen style and canvas size."""
    low, high = config.components_range
    n_comp = int(rng.integers(low, high + 1))
    components, offsets, extent, x = [], [], [], 0.0
    for c in range(n_comp):
        n = int(rng.integers(config.strokes_range[0], config.strokes_range[1] + 1))
        n += config.strokes_range[0] if n_comp == 1 else 0  # one-piece signatures are longer
        flourish = c == n_comp - 1 and rng.random() < 0.3
        for _ in range(12):  # handwriting runs along a line: redraw steep or cramped ones
            comp = _make_component(rng, n, flourish)
            points, _ = lognormal_trajectory(stroke_array(comp))
            slope = (
                np.polyfit(points[:, 0], points[:, 1], 1)[0] if np.ptp(points[:, 0]) > 0 else np.inf
            )
            if abs(slope) < 0.3 and np.ptp(points[:, 0]) > 0.3 * n:
                break
        gap = rng.uniform(0.4, 1.2) if components else 0.0
        start = (x - float(points[:, 0].min()) + gap, float(rng.normal(0.0, 0.25)))
        components.append(comp)
        offsets.append(start)
        extent.append(points + np.array(start))
        x = start[0] + float(points[:, 0].max())
    slant = float(rng.uniform(-0.15, 0.45))
    allpts = np.vstack(extent)
    sheared = allpts[:, 0] + slant * allpts[:, 1]
    ink_aspect = float(np.ptp(sheared)) / max(float(np.ptp(allpts[:, 1])), 1e-6)
    # width, darkness, attack, release, speed_gain, pressure_wobble: tapered ends, light wobble.
    style = rng.uniform(
        [config.pen_width_range[0], 0.75, 0.02, 0.03, 0.3, 0.05],
        [config.pen_width_range[1], 0.95, 0.12, 0.2, 0.9, 0.15],
    )
    pen = PenStyle(*(float(v) for v in style))
    return WriterTemplate(
        components=tuple(components),
        offsets=tuple(offsets),
        slant=slant,
        pen=pen,
        canvas_height=int(rng.integers(config.height_range[0], config.height_range[1] + 1)),
        canvas_aspect=float(np.clip(ink_aspect * rng.uniform(0.75, 1.0), *config.aspect_range)),
    )


def _render(
    template: WriterTemplate,
    rng: np.random.Generator,
    config: SynthConfig,
    *,
    level: float,
    tempo: float,
    pen: PenStyle,
    tremor: Tremor,
) -> np.ndarray:
    """Perturb the template at noise ``level``, lay it out on a canvas and draw it."""
    paths, speeds = [], []
    for comp, offset in zip(template.components, template.offsets):
        points, speed = lognormal_trajectory(perturb_strokes(stroke_array(comp), rng, level, tempo))
        paths.append(points + np.array(offset) + rng.normal(0.0, 0.08 * level, 2))
        speeds.append(speed)
    slant = template.slant + rng.normal(0.0, 0.04 * level)
    stretch = math.exp(rng.normal(0.0, 0.04 * level))
    angle = math.radians(rng.normal(0.0, config.rotation_deg * max(level, 1.0)))
    c, s = math.cos(angle), math.sin(angle)
    matrix = np.array([[c, -s], [s, c]]) @ np.array([[stretch, stretch * slant], [0.0, 1.0]])
    jitter = np.exp(rng.normal(0.0, 0.04, 2))
    height = int(np.clip(template.canvas_height * jitter[0], *config.height_range))
    width = int(np.clip(height * template.canvas_aspect * jitter[1], *config.width_range))
    polylines, blobs = [], []
    placed = fit_to_canvas([p @ matrix.T for p in paths], rng, size=(height, width))
    for points, speed in zip(placed, speeds):
        lines, dots = pen_runs(points, speed, pen, tremor, rng)
        polylines += lines
        blobs += dots
    coverage = draw_ink((height, width), polylines, blobs, supersample=config.supersample)
    paper = rng.uniform(*config.paper_range)
    return compose_page(
        coverage,
        rng,
        darkness=pen.darkness,
        paper_level=paper,
        paper_texture=config.paper_texture,
        noise_sigma=config.noise_sigma,
    )


def render_genuine(
    template: WriterTemplate, rng: np.random.Generator, config: SynthConfig = SynthConfig()
) -> np.ndarray:
    """One genuine signature of ``template``.

    Returns:
        ``uint8`` (H, W) grayscale, dark ink on light paper (paper ~220-250, ink ~15-70);
        H within ``config.height_range``, W within ``config.width_range``.
    """
    pen = replace(template.pen, width=template.pen.width * math.exp(rng.normal(0.0, 0.06)))
    tempo = float(np.exp(rng.normal(0.0, 0.04)))
    level = config.genuine_variation
    return _render(template, rng, config, level=level, tempo=tempo, pen=pen, tremor=Tremor())


def forger_pen(
    template: WriterTemplate, rng: np.random.Generator, config: SynthConfig = SynthConfig()
) -> PenStyle:
    """A forger's pen: another width and darkness, blunt heavy ends, more thickening when slow."""
    change = rng.uniform(0.2, 0.5) * (1.0 if rng.random() < 0.5 else -0.6)
    low, high = config.pen_width_range
    width = np.clip(template.pen.width * (1.0 + change), low, 1.2 * high)
    # darkness, attack, release, speed_gain, pressure_wobble: blunt ends, uneven pressure.
    style = rng.uniform([0.75, 0.0, 0.0, 0.8, 0.12], [0.95, 0.03, 0.04, 1.6, 0.25])
    return PenStyle(float(width), *(float(v) for v in style))


def render_forgery(
    template: WriterTemplate, rng: np.random.Generator, config: SynthConfig = SynthConfig()
) -> np.ndarray:
    """One skilled forgery of ``template``: same shape, larger errors, slow hesitant strokes.

    Returns:
        ``uint8`` (H, W) grayscale, dark ink on light paper, sized like ``render_genuine``.
    """
    tremor = Tremor(
        amplitude=config.tremor_px * rng.uniform(0.6, 1.4),
        wavelength=rng.uniform(3.0, 8.0),
        hesitations=int(rng.integers(0, config.hesitations_max + 1)),
    )
    tempo = rng.uniform(*config.forgery_slowdown)
    pen = forger_pen(template, rng, config)
    return _render(
        template, rng, config, level=config.forgery_error, tempo=tempo, pen=pen, tremor=tremor
    )


def _rng(seed: int, writer: int, kind: int, index: int) -> np.random.Generator:
    # Always four words: SeedSequence ignores trailing zeros, so [s, w] would equal [s, w, 0, 0].
    return np.random.default_rng(np.random.SeedSequence([seed, writer, kind, index]))


def sample_writer(
    seed: int,
    *,
    writer: int = 0,
    genuine: int = 4,
    forgeries: int = 4,
    config: SynthConfig = SynthConfig(),
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """In memory, the images ``generate_corpus(seed=seed, config=config)`` writes for writer
    index ``writer`` (0-based; folder ``synth_<writer + 1>``).

    Returns:
        (genuine images, forgery images): lists of ``uint8`` (H, W) arrays as ``render_genuine``.
    """
    if min(seed, writer, genuine, forgeries) < 0:
        raise ValueError(
            f"seed, writer, genuine and forgeries must be >= 0 (seed={seed}, writer={writer})."
        )
    template = make_writer(_rng(seed, writer, _TEMPLATE, 0), config)
    real = [
        render_genuine(template, _rng(seed, writer, _GENUINE, i), config) for i in range(genuine)
    ]
    fake = [
        render_forgery(template, _rng(seed, writer, _FORGED, i), config) for i in range(forgeries)
    ]
    return real, fake


def generate_corpus(
    out_dir: str | Path,
    *,
    writers: int,
    genuine: int,
    forgeries: int,
    seed: int,
    ext: str = "png",
    progress: bool = False,
    config: SynthConfig = SynthConfig(),
) -> dict:
    """Write a synthetic corpus in the writer-folders layout.

    Files are ``<out>/synth_<WWWW>/genuine/genuine_<NN>.<ext>`` and
    ``<out>/synth_<WWWW>/forged/forged_<NN>.<ext>``, writers from ``synth_0001`` and samples from
    ``01``. Image (w, kind, i) depends only on (seed, w, kind, i): asking for more writers or
    samples leaves existing files unchanged, and the same seed gives byte-identical files.

    Returns:
        {"writers", "genuine", "forged", "seed", "out"}: counts written, the seed, the folder.
    """
    if min(writers, genuine, forgeries, seed) < 0:
        raise ValueError("writers, genuine, forgeries and seed must be non-negative integers.")
    ext = ext.lower().lstrip(".")
    if ext not in ("png", "bmp", "tif", "tiff", "webp"):
        raise ValueError(
            f"ext must name a lossless format (png, bmp, tif, tiff, webp), got {ext!r}."
        )
    out = Path(out_dir)
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == "webp" else []
    bar = tqdm(
        total=writers * (genuine + forgeries), desc="synthetic signatures", disable=not progress
    )
    for w in range(writers):
        template = make_writer(_rng(seed, w, _TEMPLATE, 0), config)
        for kind, name, count, render in (
            (_GENUINE, "genuine", genuine, render_genuine),
            (_FORGED, "forged", forgeries, render_forgery),
        ):
            folder = out / f"synth_{w + 1:04d}" / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                path = folder / f"{name}_{i + 1:02d}.{ext}"
                if not cv2.imwrite(
                    str(path), render(template, _rng(seed, w, kind, i), config), params
                ):
                    raise ValueError(f"Could not write {path}: check that the folder is writable.")
                bar.update(1)
    bar.close()
    return {
        "writers": writers,
        "genuine": writers * genuine,
        "forged": writers * forgeries,
        "seed": seed,
        "out": str(out),
    }
