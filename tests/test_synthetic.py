"""Synthetic signature generator: kinematics, determinism, image properties, corpus layout and
the difficulty of its skilled forgeries for a simple non-learned baseline."""

from __future__ import annotations

import itertools
import json
import math

import cv2
import numpy as np
import pytest

from workbench.data.synthetic import (
    LognormalStroke,
    SynthConfig,
    WriterTemplate,
    generate_corpus,
    make_writer,
    render_forgery,
    render_genuine,
    sample_writer,
)
from workbench.data.synthetic_render import lognormal_trajectory, lognormal_velocity, stroke_array
from workbench.metrics import eer
from workbench.preprocess import preprocess


def test_one_stroke_is_a_circular_arc_of_length_d():
    # Speed is D times a lognormal density, so the path length is D; the direction follows the
    # same lognormal CDF, i.e. it turns linearly with arc length: a circular arc whose chord is
    # D sin(turn / 2) / (turn / 2), pointing at the mean direction.
    for turn in (0.0, math.pi / 2, math.pi):
        stroke = LognormalStroke(
            D=2.0, t0=0.0, mu=-1.6, sigma=0.25, theta_s=0.3, theta_e=0.3 + turn
        )
        points, speed = lognormal_trajectory(stroke_array((stroke,)), dt=0.001)
        length = np.hypot(*np.diff(points, axis=0).T).sum()
        chord = 2.0 * (math.sin(turn / 2) / (turn / 2) if turn else 1.0)
        mid = 0.3 + turn / 2
        assert length == pytest.approx(2.0, rel=2e-3)
        np.testing.assert_allclose(
            points[-1], [chord * math.cos(mid), chord * math.sin(mid)], atol=5e-3
        )
    # Peak speed of a lognormal at its mode exp(mu - sigma^2).
    mode = math.exp(-1.6 - 0.25**2)
    v = lognormal_velocity(np.array([[1.0, 0.0, -1.6, 0.25, 0.0, 0.0]]), np.array([mode]))
    expected = math.exp(-0.5 * 0.25**2 + 1.6 + 0.25**2) / (0.25 * math.sqrt(2 * math.pi))
    np.testing.assert_allclose(v, [[expected, 0.0]], rtol=1e-9)


def test_same_seed_same_images_and_different_seed_different():
    first = sample_writer(5, writer=2, genuine=2, forgeries=2)
    again = sample_writer(5, writer=2, genuine=2, forgeries=2)
    other = sample_writer(6, writer=2, genuine=2, forgeries=2)
    for a, b, c in zip(first[0] + first[1], again[0] + again[1], other[0] + other[1]):
        np.testing.assert_array_equal(a, b)
        assert a.shape != c.shape or not np.array_equal(a, c)
    assert not np.array_equal(first[0][0], first[0][1])  # two samples of a writer differ
    template = make_writer(np.random.default_rng(3))
    assert isinstance(template, WriterTemplate)
    assert template == make_writer(np.random.default_rng(3))
    assert template != make_writer(np.random.default_rng(4))


def test_images_look_like_scans():
    config = SynthConfig()
    for seed in range(3):
        rng = np.random.default_rng(seed)
        template = make_writer(rng, config)
        assert 1 <= len(template.components) <= 3
        assert all(len(c) >= config.strokes_range[0] for c in template.components)
        for image in (render_genuine(template, rng, config), render_forgery(template, rng, config)):
            assert image.dtype == np.uint8 and image.ndim == 2
            h, w = image.shape
            assert config.height_range[0] <= h <= config.height_range[1]
            assert config.width_range[0] <= w <= config.width_range[1]
            assert 2.0 <= w / h <= 5.0
            ink = image < 128
            assert 0.003 < ink.mean() < 0.15, "some ink, mostly paper"
            assert image[ink].mean() < 90, "dark ink"
            assert 200 < np.median(image) < 255, "light paper, not pure white"
            assert image[~ink].std() > 1.0, "paper texture and noise"
            assert not ink[0].any() and not ink[-1].any(), "margins above and below the ink"


def _tree(root) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_generate_corpus_layout_determinism_and_stability(tmp_path):
    summary = generate_corpus(tmp_path / "a", writers=2, genuine=2, forgeries=3, seed=11)
    assert summary == {
        "writers": 2,
        "genuine": 4,
        "forged": 6,
        "seed": 11,
        "out": str(tmp_path / "a"),
    }
    first = _tree(tmp_path / "a")
    expected = {
        f"synth_{w:04d}/{kind}/{kind}_{i:02d}.png"
        for w in (1, 2)
        for kind, count in (("genuine", 2), ("forged", 3))
        for i in range(1, count + 1)
    }
    assert set(first) == expected
    generate_corpus(tmp_path / "b", writers=2, genuine=2, forgeries=3, seed=11)
    assert _tree(tmp_path / "b") == first, "same seed, byte-identical files"
    # More writers and samples leave the existing files unchanged.
    generate_corpus(tmp_path / "c", writers=3, genuine=3, forgeries=3, seed=11)
    bigger = _tree(tmp_path / "c")
    assert len(bigger) == 18
    assert {name: bigger[name] for name in first} == first
    # The in-memory helper gives exactly the written images.
    genuine, forged = sample_writer(11, writer=1, genuine=2, forgeries=3)
    for i, image in enumerate(genuine):
        on_disk = cv2.imread(
            str(tmp_path / "a" / "synth_0002" / "genuine" / f"genuine_{i + 1:02d}.png"), 0
        )
        np.testing.assert_array_equal(on_disk, image)
    assert len(forged) == 3


def test_generate_corpus_progress_and_errors(tmp_path, capsys):
    summary = generate_corpus(tmp_path, writers=1, genuine=1, forgeries=0, seed=0, progress=True)
    assert summary["genuine"] == 1 and summary["forged"] == 0
    assert "synthetic signatures" in capsys.readouterr().err
    assert (tmp_path / "synth_0001" / "forged").is_dir()
    with pytest.raises(ValueError, match="lossless"):
        generate_corpus(tmp_path, writers=1, genuine=1, forgeries=1, seed=0, ext="jpg")
    with pytest.raises(ValueError, match="non-negative"):
        generate_corpus(tmp_path, writers=-1, genuine=1, forgeries=1, seed=0)
    with pytest.raises(ValueError, match=">= 0"):
        sample_writer(-3)


def _unit(image: np.ndarray) -> np.ndarray:
    v = (255.0 - preprocess(image)[0].astype(np.float64)).ravel()
    v -= v.mean()
    return v / np.linalg.norm(v)


def test_skilled_forgeries_are_not_trivial_for_a_correlation_baseline(output_dir, record_property):
    # Pearson correlation of preprocessed images (eq. 1-5). 16 writers x 6 genuine x 6
    # forgeries: 240 genuine pairs, 576 skilled-forgery pairs, 576 random-forgery pairs (each
    # writer's genuine against the next writer's). Over 16 seeds this setting gave skilled EERs
    # of 0.17-0.27 and random EERs of 0.03-0.10 (on 60 writers: about 0.22 and 0.07).
    writers = [sample_writer(2024, writer=w, genuine=6, forgeries=6) for w in range(16)]
    vectors = [([_unit(g) for g in real], [_unit(f) for f in fake]) for real, fake in writers]
    positive, skilled, random = [], [], []
    for w, (real, fake) in enumerate(vectors):
        positive += [float(a @ b) for a, b in itertools.combinations(real, 2)]
        skilled += [float(a @ b) for a in real for b in fake]
        random += [float(a @ b) for a in real for b in vectors[(w + 1) % len(vectors)][0]]
    skilled_eer = eer([1] * len(positive) + [0] * len(skilled), positive + skilled)[0]
    random_eer = eer([1] * len(positive) + [0] * len(random), positive + random)[0]
    report = {
        "baseline": "Pearson correlation of preprocessed images",
        "writers": 16,
        "genuine": 6,
        "forgeries": 6,
        "seed": 2024,
        "skilled_forgery_eer": skilled_eer,
        "random_forgery_eer": random_eer,
    }
    (output_dir / "synthetic_baseline_eer.json").write_text(json.dumps(report, indent=1) + "\n")
    record_property("skilled_forgery_eer", skilled_eer)
    print(
        f"correlation baseline: skilled-forgery EER {skilled_eer:.3f}, "
        f"random-forgery EER {random_eer:.3f}"
    )
    assert skilled_eer > 0.10
    assert random_eer < skilled_eer
    assert np.mean(positive) > np.mean(skilled) > np.mean(random), "forgeries imitate, imperfectly"
