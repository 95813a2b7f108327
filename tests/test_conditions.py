"""Out-of-conditions warning (workbench/verification/conditions.py)."""

import json

import numpy as np
import pytest

from workbench.verification.conditions import (
    STATISTICS,
    Conditions,
    ConditionsCheck,
    TowerGaussians,
    check_conditions,
    corpus_threshold,
    fit_conditions,
    fit_gaussian,
    fit_tower,
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


def test_tower_gaussians_by_hand_and_through_json():
    rng = np.random.default_rng(2)
    a = rng.normal(0, [1.0, 2.0, 0.5], size=(3000, 3))
    b = rng.normal(50, 1.0, size=(3000, 3))
    tower = fit_tower({"a": a, "b": b})
    assert tower.corpora == ("a", "b")
    points = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [50.0, 50.0, 50.0], [0.0, 0.0, 9.0]])
    # By hand: standardize, then the Mahalanobis distance to the nearest corpus's Gaussian.
    z = lambda x: (x - tower.centre) / tower.scale  # noqa: E731
    expected = []
    for x in points:
        found = []
        for data in (a, b):
            mean, precision = fit_gaussian(z(data))
            d = z(x) - mean
            found.append(np.sqrt(d @ precision @ d))
        expected.append(min(found))
    np.testing.assert_allclose(tower.distances(points), expected, rtol=1e-5, atol=1e-4)
    assert tower.distances(points)[1] == pytest.approx(2.0, rel=0.1)  # two spreads out on axis 0
    assert tower.distances(points)[3] == pytest.approx(18.0, rel=0.1)  # 9 / 0.5
    again = TowerGaussians.from_dict(json.loads(json.dumps(tower.to_dict())))
    np.testing.assert_allclose(again.distances(points), tower.distances(points), atol=1e-4)
    with pytest.raises(ValueError, match="3 backbone features, not 2"):
        tower.distances(points[:, :2])
    broken = tower.to_dict()
    broken["choleskys"] = broken["choleskys"][:1]
    with pytest.raises(ValueError, match="Not a conditions record"):
        TowerGaussians.from_dict(broken)
    with pytest.raises(ValueError, match="at least 2 training images"):
        fit_tower({"a": a[:1]})


def test_the_threshold_keeps_the_quantile_of_every_validated_corpus_inside():
    rng = np.random.default_rng(3)
    near, far = rng.normal(size=1000), rng.normal(size=1000) + 1.0  # two corpora's distances
    values, groups = np.r_[near, far], ["near"] * 1000 + ["far"] * 1000
    assert corpus_threshold(values, 0.9) == pytest.approx(np.quantile(values, 0.9))
    threshold = corpus_threshold(values, 0.95, groups)
    assert threshold == pytest.approx(np.quantile(far, 0.95))  # the farther corpus's sets it
    assert np.mean(far > threshold) <= 0.05 and np.mean(near > threshold) < 0.01
    assert threshold > corpus_threshold(values, 0.95)  # the pooled quantile lets 'far' out


def test_a_script_the_tower_never_saw_is_flagged_when_its_statistics_look_familiar():
    rng = np.random.default_rng(4)
    statistics = {"scans": rng.normal(size=(1500, 7))}
    tower = {"scans": rng.normal(size=(1500, 12))}
    val_statistics = [rng.normal(size=(6, 7)) for _ in range(400)]
    val_tower = [rng.normal(size=(6, 12)) for _ in range(400)]
    fitted = fit_conditions(
        statistics, val_statistics, tower_train=tower, tower_val=val_tower, quantile=0.95
    )
    checks = [fitted.check(s, t) for s, t in zip(val_statistics, val_tower)]
    by_statistics = np.mean([c.distance > c.threshold for c in checks])
    by_tower = np.mean([c.tower_distance > c.tower_threshold for c in checks])
    assert by_statistics <= 0.05 and by_tower <= 0.05  # each check alone: the quantile
    assert 0.05 < np.mean([c.outside for c in checks]) <= 0.1  # together at most twice it
    # Familiar ink and paper, features far from the training corpus's: flagged, by the tower.
    check = fitted.check(rng.normal(size=(6, 7)), rng.normal(3.0, 1.0, size=(6, 12)))
    assert check.outside and check.distance <= check.threshold
    assert check.tower_distance > check.tower_threshold
    text = check.message()
    assert "network's own features" in text and "seven image statistics" not in text
    assert "at least 95% of the validation writers' comparisons of every corpus" in text
    again = Conditions.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert again.check(rng.normal(size=(6, 7)), rng.normal(3.0, 1.0, size=(6, 12))).outside
    assert again.tower_threshold == pytest.approx(fitted.tower_threshold)
    with pytest.raises(ValueError, match="backbone features"):
        fitted.check(val_statistics[0])
    with pytest.raises(ValueError, match="tower features"):
        fit_conditions(statistics, val_statistics, tower_train=tower)
    with pytest.raises(ValueError, match="one group"):
        fit_conditions(statistics, val_statistics, val_groups=["scans"])
    # Validation comparisons of two corpora: each corpus's own quantile, the larger one kept.
    grouped = fit_conditions(
        statistics, val_statistics, tower_train=tower, tower_val=val_tower,
        val_groups=["a"] * 200 + ["b"] * 200,
    )  # fmt: skip
    first = [float(fitted.distances(v).mean()) for v in val_statistics]
    assert grouped.threshold == pytest.approx(
        max(np.quantile(first[:200], 0.95), np.quantile(first[200:], 0.95))
    )
    # Conditions stored before the tower existed: the statistics' check alone.
    old = fitted.to_dict()
    del old["tower"], old["tower_threshold"]
    legacy = Conditions.from_dict(json.loads(json.dumps(old)))
    assert legacy.tower is None and legacy.check(val_statistics[0]).tower_distance is None


def test_the_verify_tab_warns_when_the_networks_features_lie_outside(
    tiny_verifier, tmp_path, signature
):
    import cv2

    from workbench.ui.verify_tab import _verdict_markdown
    from workbench.verification.scoring import pooled_features
    from workbench.verification.workbench import Workbench

    bench = Workbench(tiny_verifier.weights)
    image = bench.normalize(signature).image
    stats = statistics_of([image])
    pooled = pooled_features(bench.model, [image])
    assert pooled.shape == (1, 2 * bench.model.backbone.out_channels)
    rng = np.random.default_rng(5)
    statistics = {"synthetic": stats + rng.normal(0, 0.05, size=(300, stats.shape[1]))}
    spread = pooled.std() + 1e-3

    def fitted_around(centre):
        def around(values, scale, n):
            return values + rng.normal(0, scale, size=(n, values.shape[1]))

        # Validation comparisons spread around the centre as the training images are: the
        # image at the centre itself lies nearer than most of them.
        return fit_conditions(
            statistics, [around(stats, 0.05, 2) for _ in range(40)],
            tower_train={"synthetic": around(centre, 0.05 * spread, 300)},
            tower_val=[around(centre, 0.05 * spread, 2) for _ in range(40)], quantile=0.8,
        )  # fmt: skip

    near = fitted_around(pooled)
    bench = Workbench(tiny_verifier.save(tmp_path / "near", extra={"conditions": near.to_dict()}))
    verdict = bench.verify([signature], signature)
    inside = bench.conditions_check(verdict)
    assert inside.tower_distance is not None and not inside.outside
    direct = check_conditions(near, [image, image], np.vstack([pooled, pooled]))
    assert inside.tower_distance == pytest.approx(direct.tower_distance, rel=1e-4)
    # The same images against a tower fitted elsewhere: the statistics are familiar, the
    # network's features are not, and the Verify tab says so.
    far = fitted_around(pooled + 40 * spread)
    bench = Workbench(tiny_verifier.save(tmp_path / "far", extra={"conditions": far.to_dict()}))
    verdict = bench.verify([signature], signature)
    outside = bench.conditions_check(verdict)
    assert outside.outside and outside.distance <= outside.threshold
    shown = _verdict_markdown(verdict, 1, conditions=outside)
    assert "conditions-warning" in shown and "own features of them lie farther" in shown
    # programs get the same warning from /verify_data, not a bare LR
    from workbench.ui.verify_tab import verify_data

    path = tmp_path / "signature.png"
    cv2.imwrite(str(path), signature)
    data = verify_data(bench, [str(path)], str(path))
    assert data["outside_validated_conditions"] is True and data["possible_copy"] is None
    assert any("own features of them lie farther" in w for w in data["warnings"])
    near_bench = Workbench(tmp_path / "near.safetensors")
    data = verify_data(near_bench, [str(path)], str(path))
    assert data["outside_validated_conditions"] is False and data["warnings"] == []
