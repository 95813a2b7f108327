"""Sigma-lognormal pen trajectories and their rendering as scanned ink on paper.

The kinematic model is Plamondon's sigma-lognormal: a pen-down component is a sum of strokes,
stroke j having speed ``D / (sigma sqrt(2 pi) (t - t0)) exp(-(ln(t - t0) - mu)^2 / (2 sigma^2))``
for ``t > t0`` and a direction that turns from ``theta_s`` to ``theta_e`` as
``theta_s + (theta_e - theta_s) / 2 (1 + erf((ln(t - t0) - mu) / (sigma sqrt 2)))``. The pen
position is the time integral of the summed velocity vectors, so overlapping strokes give
smooth cursive motion. Rendering turns a trajectory into a ``uint8`` page with numpy and cv2
only, fast enough for tens of images per second on one core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

STROKE_FIELDS = ("D", "t0", "mu", "sigma", "theta_s", "theta_e")
_SQRT2 = math.sqrt(2.0)
_SHIFT = 3  # cv2 fixed-point bits: sub-pixel vertex positions


@dataclass(frozen=True)
class PenStyle:
    """How a hand holds and presses the pen (a writer's, or a forger's imitation).

    Attributes:
        width: nominal stroke width in output pixels (about 1.5-5 on a 300 x 900 scan).
        darkness: ink opacity 0..1 (0.9 = near-black ink).
        attack: fraction of a component's duration over which pressure builds up (0 = blunt).
        release: fraction at the end over which pressure fades (0 = blunt ending).
        speed_gain: how much thicker slow parts are than fast ones (0 = none).
        pressure_wobble: relative amplitude of slow pressure changes along a component.
    """

    width: float
    darkness: float
    attack: float
    release: float
    speed_gain: float
    pressure_wobble: float


@dataclass(frozen=True)
class Tremor:
    """The unsteadiness of a slow, hesitant copy (all zero for a genuine signature).

    Attributes:
        amplitude: lateral jitter of the pen in output pixels (RMS).
        wavelength: correlation length of the jitter along the path, in output pixels.
        hesitations: number of pauses; each leaves a blob and may lift and re-land the pen.
    """

    amplitude: float = 0.0
    wavelength: float = 6.0
    hesitations: int = 0


@dataclass(frozen=True)
class LognormalStroke:
    """One sigma-lognormal stroke: amplitude D (x-height units), onset t0 (s), log-time delay
    mu and log-response time sigma, start and end direction (radians, y up)."""

    D: float
    t0: float
    mu: float
    sigma: float
    theta_s: float
    theta_e: float


def stroke_array(component: tuple[LognormalStroke, ...]) -> np.ndarray:
    """float64 (n, 6) array of a component's strokes, columns ``STROKE_FIELDS``."""
    rows = [(s.D, s.t0, s.mu, s.sigma, s.theta_s, s.theta_e) for s in component]
    return np.array(rows, dtype=np.float64)


def perturb_strokes(
    strokes: np.ndarray, rng: np.random.Generator, level: float, tempo: float
) -> np.ndarray:
    """A noisy copy of (n, 6) stroke parameters, noise scaled by ``level``.

    Amplitudes, onset gaps and sigmas vary multiplicatively, mu and directions additively;
    ``tempo`` > 1 spaces the onsets out (less overlap between strokes: stiffer, slower motion).
    """
    n = len(strokes)
    out = strokes.copy()
    out[:, 0] *= np.exp(rng.normal(0.0, 0.06 * level, n))
    gaps = np.diff(strokes[:, 1]) * tempo * np.exp(rng.normal(0.0, 0.08 * level, n - 1))
    out[:, 1] = np.concatenate([[0.0], np.cumsum(gaps)])
    out[:, 2] += rng.normal(0.0, 0.05 * level, n)
    out[:, 3] *= np.exp(rng.normal(0.0, 0.06 * level, n))
    out[:, 4:6] += rng.normal(0.0, 0.06 * level, (n, 1)) + rng.normal(0.0, 0.03 * level, (n, 2))
    return out


def erf(x: np.ndarray) -> np.ndarray:
    """Error function, Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7), any float array."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


def lognormal_velocity(strokes: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Summed velocity of sigma-lognormal strokes.

    Args:
        strokes: float (n, 6), columns ``STROKE_FIELDS`` (D, t0, mu, sigma, theta_s, theta_e);
            D in length units, t0 in seconds, angles in radians (y up).
        t: float (T,) sample times in seconds.

    Returns:
        float64 (T, 2) velocity (vx, vy) in length units per second.
    """
    d, t0, mu, sigma, th_s, th_e = (strokes[:, i : i + 1] for i in range(6))
    tau = t[None, :] - t0
    active = tau > 1e-9
    log_tau = np.log(np.where(active, tau, 1.0))
    z = (log_tau - mu) / sigma
    density = np.exp(-0.5 * z * z) / (sigma * math.sqrt(2 * math.pi) * np.where(active, tau, 1.0))
    speed = np.where(active, d * density, 0.0)
    phi = th_s + (th_e - th_s) * 0.5 * (1.0 + erf(z / _SQRT2))
    return np.stack([(speed * np.cos(phi)).sum(0), (speed * np.sin(phi)).sum(0)], axis=1)


def lognormal_trajectory(
    strokes: np.ndarray, *, dt: float = 0.005
) -> tuple[np.ndarray, np.ndarray]:
    """Pen positions of one pen-down component, starting at (0, 0).

    Args:
        strokes: float (n, 6) as in ``lognormal_velocity``.
        dt: sampling period in seconds (200 Hz by default).

    Returns:
        (points, speed): float64 (T, 2) positions (y up) and (T,) speed, both in length units.
    """
    # A lognormal has (practically) finished 3.5 sigma after its median time exp(mu).
    end = float(np.max(strokes[:, 1] + np.exp(strokes[:, 2] + 3.5 * strokes[:, 3])))
    t = np.arange(float(strokes[:, 1].min()), end + dt, dt)
    velocity = lognormal_velocity(strokes, t)
    points = np.vstack([[0.0, 0.0], np.cumsum(velocity[:-1] * dt, axis=0)])
    return points, np.hypot(velocity[:, 0], velocity[:, 1])


def resample_path(
    points: np.ndarray, values: np.ndarray, step: float
) -> tuple[np.ndarray, np.ndarray]:
    """Resample a polyline at equal arc-length ``step`` (pixels), interpolating ``values``
    (T, k).
    """
    seg = np.hypot(*np.diff(points, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(arc[-1] / step) + 1)
    s = np.linspace(0.0, arc[-1], n)
    out = np.stack([np.interp(s, arc, points[:, 0]), np.interp(s, arc, points[:, 1])], axis=1)
    vals = np.stack([np.interp(s, arc, values[:, k]) for k in range(values.shape[1])], axis=1)
    return out, vals


def _smooth_noise(rng: np.random.Generator, n: int, length: float) -> np.ndarray:
    """Unit-RMS noise with correlation length ``length`` samples (gaussian-filtered white noise)."""
    half = max(1, int(2 * length))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / max(length, 0.5)) ** 2)
    noise = np.convolve(rng.standard_normal(n + 2 * half), kernel, mode="valid")[:n]
    return noise / (noise.std() + 1e-9)


def pen_runs(
    points: np.ndarray,
    speed: np.ndarray,
    pen: PenStyle,
    tremor: Tremor,
    rng: np.random.Generator,
) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], list[tuple[np.ndarray, float, float]]]:
    """Turn one component's pixel-space path into drawable pieces.

    Args:
        points: float (T, 2) positions in output pixels (y down).
        speed: float (T,) pen speed (any unit; only its relative value matters).

    Returns:
        (polylines, blobs): polylines as (points (k, 2), width per point (k,), ink 0..1 per point
        (k,)) pieces between pen lifts; blobs as (centre (2,), radius px, ink 0..1).
    """
    rel = speed / (np.percentile(speed, 90) + 1e-9)
    pts, vals = resample_path(
        points, np.stack([rel, np.linspace(0.0, 1.0, len(points))], axis=1), 1.0
    )
    rel, u = np.clip(vals[:, 0], 0.0, 1.0), vals[:, 1]
    n = len(pts)
    envelope = np.minimum(1.0, u / max(pen.attack, 1e-3)) * np.minimum(
        1.0, (1 - u) / max(pen.release, 1e-3)
    )
    pressure = (0.35 + 0.65 * np.sqrt(np.clip(envelope, 0.0, 1.0))) * (
        1.0 + pen.pressure_wobble * _smooth_noise(rng, n, 40.0)
    )
    width = (
        pen.width * pressure * (1.0 + pen.speed_gain * (1.0 - rel)) / (1.0 + 0.5 * pen.speed_gain)
    )
    ink = np.clip(0.75 + 0.25 * pressure, 0.0, 1.0)
    if tremor.amplitude > 0 and n > 3:
        tangent = np.gradient(pts, axis=0)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) / (
            np.hypot(*tangent.T)[:, None] + 1e-9
        )
        pts = pts + normal * (tremor.amplitude * _smooth_noise(rng, n, tremor.wavelength))[:, None]
    blobs: list[tuple[np.ndarray, float, float]] = []
    cuts: list[int] = []
    if tremor.hesitations > 0 and n > 20:
        # Forgers pause where the pen is slow anyway: at turns and stroke ends.
        slow = (1.05 - rel[5 : n - 5]) ** 2
        count = min(tremor.hesitations, n // 10)
        picks = rng.choice(np.arange(5, n - 5), size=count, replace=False, p=slow / slow.sum())
        for c in np.sort(picks):
            blobs.append((pts[c].copy(), float(width[c]) * rng.uniform(0.55, 0.9), float(ink[c])))
            if rng.random() < 0.6:  # lift and re-land slightly off the intended line
                cuts.append(int(c))
                pts[c + 1 :] += rng.normal(0.0, 1.2, size=2)
    polylines = []
    for start, stop in zip([0] + [c + 1 for c in cuts], cuts + [n - 1]):
        if stop - start >= 1:
            polylines.append(
                (pts[start : stop + 1], width[start : stop + 1], ink[start : stop + 1])
            )
    return polylines, blobs


def draw_ink(
    shape: tuple[int, int],
    polylines: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    blobs: list[tuple[np.ndarray, float, float]],
    *,
    supersample: int = 2,
) -> np.ndarray:
    """Anti-aliased ink coverage of variable-width polylines.

    Lines are drawn with ``cv2.polylines`` at ``supersample`` x resolution, one call per
    (width, ink) level, then area-averaged down, so widths vary in 1/supersample px steps.

    Returns:
        float32 (H, W) ink coverage 0..1.
    """
    h, w = shape
    s = supersample
    layer = np.zeros((h * s, w * s), dtype=np.uint8)
    groups: dict[tuple[int, int], list[np.ndarray]] = {}
    scale = s * (1 << _SHIFT)
    for pts, width, ink in polylines:
        thick = np.maximum(1, np.rint(width * s)).astype(np.int32)
        level = np.rint(ink * 8).astype(np.int32)
        key = thick * 16 + level
        ipts = np.rint((pts + 0.5) * scale - (1 << _SHIFT) * 0.5).astype(np.int32)
        change = np.flatnonzero(key[1:-1] != key[:-2]) + 1
        bounds = np.concatenate([[0], change, [len(key) - 1]])
        for a, b in zip(bounds[:-1], bounds[1:]):
            groups.setdefault((int(thick[a]), int(level[a])), []).append(ipts[a : b + 1])
    for (thick, level), runs in sorted(groups.items()):
        cv2.polylines(layer, runs, False, int(round(255 * level / 8)), thick, cv2.LINE_AA, _SHIFT)
    for centre, radius, ink in blobs:
        c = tuple(int(v) for v in np.rint((centre + 0.5) * scale - (1 << _SHIFT) * 0.5))
        radius_fixed = max(1, int(round(radius * scale)))
        cv2.circle(layer, c, radius_fixed, int(round(255 * ink)), -1, cv2.LINE_AA, _SHIFT)
    if s > 1:
        layer = cv2.resize(layer, (w, h), interpolation=cv2.INTER_AREA)
    return layer.astype(np.float32) * (1.0 / 255.0)


def fit_to_canvas(
    paths: list[np.ndarray], rng: np.random.Generator, *, size: tuple[int, int]
) -> list[np.ndarray]:
    """Scale and place paths (y up, any unit) on a canvas with random margins, keeping aspect.

    Args:
        paths: float (T_i, 2) pen positions, y up.
        size: (height, width) of the canvas in pixels.

    Returns:
        The paths in pixel coordinates (x right, y down), inside the canvas with margins of
        about 6-16% of each side.
    """
    height, width = size
    flipped = [p * np.array([1.0, -1.0]) for p in paths]
    allpts = np.vstack(flipped)
    lo, hi = allpts.min(0), allpts.max(0)
    margin = rng.uniform([0.08, 0.06], [0.2, 0.16]) * np.array([width, height])
    span = np.maximum(hi - lo, 1e-6)
    fit = min((width - 2 * margin[0]) / span[0], (height - 2 * margin[1]) / span[1])
    scale = fit * rng.uniform(0.88, 1.0)
    origin = (np.array([width, height]) - span * scale) * rng.uniform(0.35, 0.65, 2) - lo * scale
    return [p * scale + origin for p in flipped]


def compose_page(
    coverage: np.ndarray,
    rng: np.random.Generator,
    *,
    darkness: float,
    paper_level: float,
    paper_texture: float,
    noise_sigma: float,
) -> np.ndarray:
    """Ink on paper as a scanner sees it.

    Args:
        coverage: float32 (H, W) ink coverage 0..1.
        darkness: ink opacity 0..1; it varies slowly across the page by about 8%.
        paper_level: mean paper grey level (0..255, e.g. 235).
        paper_texture: standard deviation of the low-frequency paper shading, grey levels.
        noise_sigma: standard deviation of per-pixel gaussian sensor noise, grey levels.

    Returns:
        ``uint8`` (H, W) page, dark ink on light paper.
    """
    h, w = coverage.shape
    cells = rng.standard_normal((2, h // 64 + 3, w // 64 + 3)).astype(np.float32)
    paper = paper_level + paper_texture * cv2.resize(
        cells[0], (w, h), interpolation=cv2.INTER_CUBIC
    )
    opacity = darkness * (1.0 + 0.08 * cv2.resize(cells[1], (w, h), interpolation=cv2.INTER_LINEAR))
    page = paper * (1.0 - np.clip(coverage * opacity, 0.0, 0.98))
    page += noise_sigma * rng.standard_normal((h, w), dtype=np.float32)
    return np.clip(page + 0.5, 0, 255).astype(np.uint8)
