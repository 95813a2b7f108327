"""Too identical is suspicious: the copy / tracing check (workbench/verification/copies.py)."""

import numpy as np
import pytest

from workbench.data.synthetic import make_writer, render_genuine
from workbench.verification.copies import (
    CopyCheck,
    check_copies,
    copy_similarity,
    fit_copy_check,
)
from workbench.verification.workbench import Workbench


@pytest.fixture(scope="module")
def normalized():
    """Two genuine signings of one synthetic writer and one of another, normalized (224 px)."""
    bench = Workbench(None)
    rng = np.random.default_rng(5)
    writer, other = make_writer(rng), make_writer(rng)
    images = [render_genuine(writer, rng), render_genuine(writer, rng), render_genuine(other, rng)]
    return [bench.normalize(image).image for image in images]


def test_a_pixel_copy_and_a_shifted_copy_score_one_and_other_signings_less(normalized):
    first, second, stranger = normalized
    assert copy_similarity(first, first) == pytest.approx(1.0, abs=1e-4)
    shifted = np.full_like(first, 255)
    shifted[3:, 5:] = first[:-3, :-5]  # a rescan lands a few pixels away
    assert copy_similarity(first, shifted) > 0.98
    assert copy_similarity(first, shifted, max_shift=2) < copy_similarity(first, shifted)
    genuine = copy_similarity(first, second)
    assert genuine < 0.9 and copy_similarity(first, stranger) < 0.9
    blank = np.full_like(first, 255)
    assert copy_similarity(first, blank) == 0.0
    with pytest.raises(ValueError, match="one size"):
        copy_similarity(first, first[:100])


def test_the_threshold_is_the_most_any_validation_genuine_pair_reached():
    check = fit_copy_check([0.2, 0.55, 0.4, 0.61], data="validation writers", quantile=1.0)
    assert check.threshold == 0.61 and check.n_pairs == 4 and check.above == 0
    values = np.r_[np.linspace(0.2, 0.7, 1998), 0.95, 0.99]  # two second scans of one signing
    robust = fit_copy_check(values)
    assert robust.threshold == pytest.approx(np.quantile(values, 0.999))
    assert robust.threshold < 0.95 and robust.above == 2 and robust.maximum == 0.99
    assert check.percentile_99 == pytest.approx(np.percentile([0.2, 0.55, 0.4, 0.61], 99))
    assert CopyCheck.from_dict(check.to_dict()) == check
    with pytest.raises(ValueError, match="No genuine validation pairs"):
        fit_copy_check([])
    with pytest.raises(ValueError, match="quantile"):
        fit_copy_check([0.5], quantile=0.0)
    with pytest.raises(ValueError, match="Not a copy-check record"):
        CopyCheck.from_dict({"nope": 1})


def test_a_copy_of_a_reference_is_flagged_and_another_signing_is_not(normalized):
    first, second, _ = normalized
    check = fit_copy_check([copy_similarity(first, second) + 0.05], quantile=1.0)
    flag = check_copies(check, [second, first], first)
    assert flag.flagged and flag.reference == 1 and "POSSIBLE COPY OR TRACING" in flag.message()
    assert "reference 2" in flag.message()
    honest = check_copies(check, [first], second)
    assert not honest.flagged and honest.message() == ""


def test_the_verify_tab_warns_when_the_questioned_file_is_a_copy_of_a_reference(
    tiny_verifier, tmp_path, signature
):
    from workbench.ui.verify_tab import _verdict_markdown

    assert Workbench(tiny_verifier.weights).copy_check is None
    rule = fit_copy_check([0.5, 0.7], data="validation", quantile=1.0).to_dict()
    bench = Workbench(tiny_verifier.save(tmp_path / "w", extra={"copy_check": rule}))
    assert bench.copy_check.threshold == 0.7
    other = np.asarray(signature)[:, ::-1].copy()  # another shape of ink
    verdict = bench.verify([other, signature], signature)
    flag = bench.copy_flag(verdict)
    assert flag.flagged and flag.reference == 1
    shown = _verdict_markdown(verdict, 2, copy=flag)
    assert "copy-warning" in shown and "POSSIBLE COPY OR TRACING" in shown
    honest = bench.verify([other], signature)
    assert not bench.copy_flag(honest).flagged
    assert "copy-warning" not in _verdict_markdown(honest, 1, copy=bench.copy_flag(honest))
