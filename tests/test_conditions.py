"""Out-of-conditions warning (workbench/verification/conditions.py)."""

import json

import numpy as np
import pytest

from workbench.verification.conditions import (
    STATISTICS,
    Conditions,
    ConditionsCheck,
    fit_conditions,
    fit_gaussian,
    image_statistics,
    statistics_of,
    stored_conditions,
)


def _gaussians(*corpora):
    return tuple((name, tuple(m), tuple(map(tuple, p))) for name, (m, p) in corpora)


def test_mahalanobis_distance_by_hand_and_the_nearest_corpus():
    rng = np.random.default_rng(0)
    train = rng.normal(0, [1.0, 3.0], size=(4000, 2))
    far_corpus = rng.normal(100, 1.0, size=(4000, 2))
    conditions = Conditions(
        _gaussians(("a", fit_gaussian(train)), ("b", fit_gaussian(far_corpus))), 2.0, 0.95, 8000, 1
    )
    mean = fit_gaussian(train)[0]
    # Axis-aligned variances 1 and 9: (3, 0) and (0, 9) are both three standard deviations out.
    far = conditions.distances(np.array([[3.0, 0.0], [0.0, 9.0]]) + mean)
    np.testing.assert_allclose(far, [3.0, 3.0], rtol=0.05)
    assert conditions.distances(np.array([[100.0, 100.0]]))[0] < 0.2  # near corpus b
    again = Conditions.from_dict(json.loads(json.dumps(conditions.to_dict())))
    np.testing.assert_allclose(again.distances(far[None, :2]), conditions.distances(far[None, :2]))
    with pytest.raises(ValueError, match="Not a conditions record"):
        Conditions.from_dict({"threshold": 1})


def test_the_threshold_keeps_the_quantile_of_validation_comparisons_inside():
    rng = np.random.default_rng(1)
    train = {"x": rng.normal(size=(2000, 3))}
    val = [rng.normal(size=(6, 3)) for _ in range(400)]
    fitted = fit_conditions(train, val, quantile=0.9, data="d")
    inside = [fitted.distances(v).mean() <= fitted.threshold for v in val]
    assert np.mean(inside) == pytest.approx(0.9, abs=0.01)
    shifted = [v + 4.0 for v in val[:50]]  # another corpus, far from training
    assert all(fitted.distances(v).mean() > fitted.threshold for v in shifted)
    check = ConditionsCheck(5.0, fitted.threshold, 0.9)
    assert check.outside and "OUTSIDE VALIDATED CONDITIONS" in check.message()
    assert "90% of the validation" in check.message()
    assert ConditionsCheck(0.1, 1.0).message() == ""
    with pytest.raises(ValueError, match="quantile"):
        fit_conditions(train, val, quantile=1.0)
    with pytest.raises(ValueError, match="No validation comparisons"):
        fit_conditions(train, [])
    with pytest.raises(ValueError, match="at least 2 training images"):
        fit_conditions({"x": train["x"][:1]}, val)


def test_image_statistics_by_hand():
    image = np.full((40, 60), 255, np.uint8)
    image[10:15, 10:50] = 30  # one bar, 5 px thick
    stats = dict(zip(STATISTICS, image_statistics(image), strict=True))
    assert stats["log ink pixels"] == pytest.approx(np.log(200))
    assert stats["log connected pieces"] == pytest.approx(np.log(2))
    assert stats["grey-level spread inside the ink"] == 0.0
    assert stats["grey-level spread of the paper"] == 0.0
    assert 1.0 < stats["mean stroke half-width (px)"] < 2.5
    blank = image_statistics(np.full((40, 60), 255, np.uint8))
    assert blank.shape == (7,) and blank[0] == 0.0
    assert statistics_of([image, image]).shape == (2, 7)


def test_the_verify_tab_warns_on_signatures_far_from_the_training_images(
    tiny_verifier, tmp_path, signature
):
    from workbench.ui.verify_tab import _verdict_markdown
    from workbench.verification.workbench import Workbench

    bench = Workbench(tiny_verifier.weights)
    verdict = bench.verify([signature], signature)
    assert stored_conditions(bench.card) is None and bench.conditions_check(verdict) is None
    # Conditions fitted around this signature's statistics: the same signature is inside, a
    # page of ink blots is not.
    stats = statistics_of([bench.normalize(signature).image])
    rng = np.random.default_rng(0)
    train = {"synthetic": stats + rng.normal(0, 0.05, size=(300, stats.shape[1]))}
    fitted = fit_conditions(train, [np.vstack([stats, stats])], quantile=0.5)
    bench = Workbench(tiny_verifier.save(tmp_path / "w", extra={"conditions": fitted.to_dict()}))
    assert stored_conditions(bench.card).threshold == pytest.approx(fitted.threshold)
    inside = bench.conditions_check(bench.verify([signature], signature))
    assert not inside.outside
    import cv2

    blots = np.full((200, 500), 240, np.uint8)  # filled disks, nothing like a signature
    for x, y, r in zip(rng.integers(0, 500, 40), rng.integers(0, 200, 40), rng.integers(5, 20, 40)):
        cv2.circle(blots, (int(x), int(y)), int(r), 0, -1)
    verdict = bench.verify([blots], blots)
    outside = bench.conditions_check(verdict)
    assert outside.outside and outside.distance > inside.distance
    shown = _verdict_markdown(verdict, 1, conditions=outside)
    assert "conditions-warning" in shown and "OUTSIDE VALIDATED CONDITIONS" in shown
