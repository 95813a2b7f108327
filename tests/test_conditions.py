"""Out-of-conditions warning (workbench/verification/conditions.py)."""

import json
import shutil

import numpy as np
import pytest

from workbench.verification.conditions import (
    Conditions,
    ConditionsCheck,
    fit_conditions,
    fit_gaussian,
    stored_conditions,
    tower_features,
)


def test_mahalanobis_distance_by_hand():
    rng = np.random.default_rng(0)
    train = rng.normal(0, [1.0, 3.0], size=(4000, 2))
    mean, precision = fit_gaussian(train)
    conditions = Conditions(tuple(mean), tuple(map(tuple, precision)), 2.0, 0.95, 4000, 1)
    # Axis-aligned variances 1 and 9: (3, 0) and (0, 9) are both three standard deviations out.
    far = conditions.distances(np.array([[3.0, 0.0], [0.0, 9.0]]) + mean)
    np.testing.assert_allclose(far, [3.0, 3.0], rtol=0.05)
    assert conditions.distances(mean[None])[0] == pytest.approx(0.0, abs=1e-9)
    assert Conditions.from_dict(conditions.to_dict()).threshold == 2.0


def test_the_threshold_keeps_the_quantile_of_validation_comparisons_inside():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(2000, 3))
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
        fit_conditions(train[:1], val)


def test_the_verify_tab_warns_on_signatures_far_from_the_training_images(
    tiny_verifier, tmp_path, signature
):
    from workbench.ui.verify_tab import _verdict_markdown
    from workbench.verification.workbench import Workbench

    for suffix in (".safetensors", ".json"):
        shutil.copy(tiny_verifier.weights.with_suffix(suffix), tmp_path / f"w{suffix}")
    bench = Workbench(tmp_path / "w.safetensors")
    verdict = bench.verify([signature], signature)
    assert stored_conditions(bench.card) is None and bench.conditions_check(verdict) is None
    # Conditions fitted on this very signature's features, slightly jittered, and a threshold
    # that keeps it inside: the same signature is inside, a page of noise is not.
    image = bench.normalize(signature).image
    features = tower_features(bench.model, np.stack([image, image]))
    rng = np.random.default_rng(0)
    train = features[0] + rng.normal(0, 0.05, size=(300, features.shape[1]))
    fitted = fit_conditions(train, [features], quantile=0.5)
    card = json.loads((tmp_path / "w.json").read_text())
    card["conditions"] = fitted.to_dict()
    (tmp_path / "w.json").write_text(json.dumps(card))
    bench = Workbench(tmp_path / "w.safetensors")
    assert stored_conditions(bench.card).threshold == pytest.approx(fitted.threshold, rel=1e-4)
    inside = bench.conditions_check(bench.verify([signature], signature))
    assert not inside.outside
    bars = np.full((200, 500), 240, np.uint8)
    bars[:, ::6] = 0  # a page of ruled bars, nothing like a signature
    bars[::10, :] = 0
    verdict = bench.verify([bars], bars)
    outside = bench.conditions_check(verdict)
    assert outside.outside and outside.distance > inside.distance
    shown = _verdict_markdown(verdict, 1, conditions=outside)
    assert "conditions-warning" in shown and "OUTSIDE VALIDATED CONDITIONS" in shown
