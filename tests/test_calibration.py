"""Score-to-LR calibration, Cllr, Cllr_min, bounds and the verbal scale
(workbench/verification/calibration.py), with values computed by hand."""

import numpy as np
import pytest

from workbench.verification.calibration import (
    Calibration,
    cllr,
    cllr_min,
    elub_bounds,
    fit_calibration,
    pav_log10_lr,
    verbal_equivalent,
)


def test_cllr_by_hand():
    assert cllr([0.0], [0.0]) == pytest.approx(1.0)  # LR = 1 always: one bit
    # LR 10 for the same-writer comparison, LR 0.1 for the other:
    # 0.5 * (log2(1 + 1/10) + log2(1 + 1/10))
    assert cllr([1.0], [-1.0]) == pytest.approx(np.log2(1.1))
    # a misleading system costs more than a bit
    assert cllr([-2.0], [2.0]) == pytest.approx(np.log2(101))
    assert cllr([300.0], [-300.0]) == pytest.approx(0.0, abs=1e-12)  # no overflow
    with pytest.raises(ValueError, match="both hypotheses"):
        cllr([], [0.0])


def test_pav_gives_zero_cost_to_separated_scores_and_pools_tied_ones():
    same, different = np.array([0.8, 0.9]), np.array([0.1, 0.2, 0.3])
    assert cllr_min(same, different) == pytest.approx(0.0)
    # One same-writer score among the different ones: PAV pools it with the scores above it.
    same, different = np.array([0.2, 0.9]), np.array([0.1, 0.3, 0.4])
    lr_same, lr_different = pav_log10_lr(same, different)
    assert lr_same[1] == np.inf and lr_different[0] == -np.inf
    # The pooled group {0.2, 0.3, 0.4} holds 1 of 2 same (weight 1/4) and 2 of 3 different
    # (weight 1/3): posterior (1/4) / (1/4 + 1/3) = 3/7, LR 3/4.
    assert lr_same[0] == pytest.approx(np.log10(0.75))
    np.testing.assert_allclose(lr_different[1:], np.log10(0.75))
    expected = 0.5 * (np.log2(1 + 4 / 3) / 2 + 2 * np.log2(1 + 0.75) / 3)
    assert cllr_min(same, different) == pytest.approx(expected)


def test_bounds_never_exceed_what_the_number_of_comparisons_supports():
    rng = np.random.default_rng(0)
    same, different = rng.normal(3, 1, 50), rng.normal(-3, 1, 40)
    lower, upper = elub_bounds(same, different)
    assert 0 < upper <= np.log10(41) and -np.log10(51) <= lower < 0
    # All H2 comparisons far below and all H1 far above: the bounds are what the counts support
    # (with one misleading comparison added on each side), never the system's raw 10^20:
    # above: 9 of 10 H1 against 1 of 100 H2, LR 90; below: 99 of 100 H2 against 1 of 10 H1.
    lower, upper = elub_bounds(np.full(9, 20.0), np.full(99, -20.0))
    assert upper == pytest.approx(np.log10(90)) and lower == pytest.approx(-np.log10(9.9))
    # Raw LRs inside what the data support stay unbounded: the bound is the largest raw LR.
    lower, upper = elub_bounds(np.array([0.5, 1.0, 1.0]), np.array([-1.0] * 30))
    assert upper == 1.0  # supported: (2 of 4 H1) / (1 of 31 H2) is LR 15.5 >= 10
    # A system that says nothing beyond LR 1 is bounded at LR 1.
    assert elub_bounds(np.zeros(5), np.zeros(5)) == (0.0, 0.0)


def test_fit_calibration_on_separated_scores_is_valid_monotone_and_bounded():
    rng = np.random.default_rng(1)
    same = rng.beta(8, 2, 400)
    different = rng.beta(2, 8, 400)
    fitted = fit_calibration(same, different, alternative="skilled", references=5, data="test")
    assert fitted.slope > 0 and fitted.n_same == 400 and fitted.references == 5
    assert 0 <= fitted.cllr_min <= fitted.cllr < 0.5
    scores = np.linspace(0, 1, 101)
    lrs = fitted.log10_lr(scores)
    assert np.all(np.diff(lrs) >= 0)
    assert lrs.min() >= fitted.bounds[0] and lrs.max() <= fitted.bounds[1]
    assert fitted.bounds[1] <= np.log10(401) and fitted.bounds[0] >= -np.log10(401)
    assert fitted.log10_lr([0.5])[0] == pytest.approx(0.0, abs=0.3)  # symmetric classes
    again = Calibration.from_dict(fitted.to_dict())
    assert again == fitted
    # Weighting: ten times more H2 comparisons of the same kind do not move the LR much.
    more = fit_calibration(same, np.tile(different, 10), alternative="skilled")
    assert more.log10_lr([0.7])[0] == pytest.approx(fitted.log10_lr([0.7])[0], abs=0.1)


def test_uninformative_scores_calibrate_to_lr_near_one():
    rng = np.random.default_rng(2)
    fitted = fit_calibration(rng.random(300), rng.random(300), alternative="random")
    assert np.abs(fitted.log10_lr(np.linspace(0.01, 0.99, 9))).max() < 0.3
    assert fitted.cllr == pytest.approx(1.0, abs=0.05)


def test_fit_calibration_refuses_bad_input():
    with pytest.raises(ValueError, match="at least 2 validation comparisons"):
        fit_calibration([0.9], [0.1, 0.2], alternative="skilled")
    with pytest.raises(ValueError, match="lie in 0..1"):
        fit_calibration([0.9, 1.5], [0.1, 0.2], alternative="skilled")
    with pytest.raises(ValueError, match="Choose the alternative"):
        fit_calibration([0.9, 0.8], [0.1, 0.2], alternative="forged")
    with pytest.raises(ValueError, match="Not a calibration record"):
        Calibration.from_dict({"slope": 1})


@pytest.mark.parametrize(
    ("log10_lr", "words"),
    [
        (0.5, "weak support for: the reference writer wrote it"),
        (1.0, "moderate support for: the reference writer wrote it"),
        (2.5, "moderately strong support"),
        (3.2, "strong support"),
        (4.0, "very strong support"),
        (6.5, "extremely strong support"),
        (-1.5, "moderate support for: a skilled forgery"),
        (0.0, "no support for either proposition"),
    ],
)
def test_enfsi_verbal_scale(log10_lr, words):
    assert verbal_equivalent(log10_lr).startswith(words)


def test_verbal_scale_names_the_random_alternative():
    assert verbal_equivalent(-0.5, "random") == "weak support for: another writer wrote it"


def test_reference_comparisons_by_hand():
    from workbench.data.pairs import Pair
    from workbench.verification.reference_sets import (
        aggregate,
        reference_comparisons,
        unique_pairs,
        writer_images,
    )

    pairs = [
        Pair("a/g1", "a/g2", 1, "a", "genuine"),
        Pair("a/g1", "a/g10", 1, "a", "genuine"),
        Pair("a/g1", "a/f1", 0, "a", "skilled"),
        Pair("b/g1", "b/g2", 1, "b", "genuine"),
        Pair("b/g2", "b/g3", 1, "b", "genuine"),
        Pair("b/g1", "a/g2", 0, "b", "random"),  # a random pair adds no image to b
    ]
    images = writer_images(pairs)
    assert images == {
        "a": {"genuine": ["a/g1", "a/g2", "a/g10"], "skilled": ["a/f1"]},
        "b": {"genuine": ["b/g1", "b/g2", "b/g3"], "skilled": []},
    }
    comparisons = reference_comparisons(images, k=2, random_per_writer=5, seed=0)
    a = [c for c in comparisons if c.writer == "a"]
    assert [(c.questioned, c.kind, c.label) for c in a] == [
        ("a/g10", "genuine", 1), ("a/f1", "skilled", 0), ("b/g3", "random", 0)
    ]  # fmt: skip
    assert all(c.references == ("a/g1", "a/g2") for c in a)
    needed = unique_pairs(comparisons)
    # each comparison's 2 pairs, and one pair of the 2 references per writer
    assert len(needed) == 2 * len(comparisons) + 2
    assert len(needed) == len({(p.reference, p.questioned) for p in needed})
    scores = np.arange(len(needed), dtype=float)
    lookup = {(p.reference, p.questioned): s for p, s in zip(needed, scores, strict=True)}
    first = comparisons[0]
    assert aggregate(comparisons, needed, scores)[0] == pytest.approx(
        (lookup[("a/g1", first.questioned)] + lookup[("a/g2", first.questioned)]) / 2
    )
    assert aggregate(comparisons, needed, scores, k=1)[0] == lookup[("a/g1", first.questioned)]
    with pytest.raises(ValueError, match="No writer has the 4 genuine"):
        reference_comparisons(images, k=3, random_per_writer=0, seed=0)
    with pytest.raises(ValueError, match="at least one reference"):
        reference_comparisons(images, k=0, random_per_writer=0, seed=0)


def test_ece_is_cllr_at_even_prior_and_the_prior_entropy_for_neutral_lrs(tmp_path):
    from workbench.plots import ece_figure, tippett_figure
    from workbench.verification.calibration import empirical_cross_entropy

    same, different = np.array([1.0, 0.5, -0.2]), np.array([-1.0, 0.3])
    prior = np.array([-1.0, 0.0, 1.0])
    ece = empirical_cross_entropy(same, different, prior)
    assert ece[1] == pytest.approx(cllr(same, different))
    neutral = empirical_cross_entropy(np.zeros(3), np.zeros(2), prior)
    p = 1 / (1 + 10.0**-prior)
    np.testing.assert_allclose(neutral, -(p * np.log2(p) + (1 - p) * np.log2(1 - p)))
    lr_same, lr_different = pav_log10_lr(same, different)
    for figure, name in (
        (tippett_figure(same, different, title="t"), "tippett.png"),
        (ece_figure(same, different, lr_same, lr_different, title="t"), "ece.png"),
    ):
        figure.savefig(tmp_path / name)
        assert (tmp_path / name).stat().st_size > 5000


def test_writer_normalization_by_hand():
    from workbench.data.pairs import Pair
    from workbench.verification.reference_sets import (
        MIN_SPREAD,
        Comparison,
        unique_pairs,
        writer_normalized,
    )

    comparisons = [
        Comparison("a", ("r1", "r2", "r3"), "q", "genuine"),
        Comparison("a", ("r1", "r2", "r3"), "f", "skilled"),
    ]
    pairs = unique_pairs(comparisons)
    assert len(pairs) == 2 * 3 + 3  # 3 mutual pairs of the references, once
    given = {("r1", "r2"): 0.8, ("r1", "r3"): 0.6, ("r2", "r3"): 0.7,
             ("r1", "q"): 0.9, ("r2", "q"): 0.6, ("r3", "q"): 0.6,
             ("r1", "f"): 0.2, ("r2", "f"): 0.3, ("r3", "f"): 0.1}  # fmt: skip
    scores = np.array([given[(p.reference, p.questioned)] for p in pairs])
    mutual = np.array([0.8, 0.6, 0.7])
    expected = (np.array([0.7, 0.2]) - mutual.mean()) / mutual.std()
    np.testing.assert_allclose(
        writer_normalized(comparisons, pairs, scores, k=3), expected, atol=1e-12
    )
    # Two references: one mutual score, no spread: divide by the floor.
    two = writer_normalized(comparisons, pairs, scores, k=2)
    np.testing.assert_allclose(two, (np.array([0.75, 0.25]) - 0.8) / MIN_SPREAD)
    assert isinstance(pairs[0], Pair)
    with pytest.raises(ValueError, match="at least 2 references"):
        writer_normalized(comparisons, pairs, scores, k=1)


def test_a_fused_calibration_uses_both_scores_and_weighs_the_informative_one():
    rng = np.random.default_rng(5)
    n = 400
    # the pair score is pure noise; the writer space's similarity separates the hypotheses
    score_same, score_different = rng.random(n), rng.random(n)
    sim_same = np.clip(rng.normal(0.5, 0.2, n), -1, 1)
    sim_different = np.clip(rng.normal(-0.2, 0.2, n), -1, 1)
    fused = fit_calibration(
        score_same, score_different, alternative="skilled", references=5,
        similarities_same=sim_same, similarities_different=sim_different,
    )  # fmt: skip
    alone = fit_calibration(score_same, score_different, alternative="skilled", references=5)
    assert fused.uses_writer_space and not alone.uses_writer_space
    assert fused.writer_space_slope > 0 and abs(fused.slope) < 0.5 * fused.writer_space_slope
    assert fused.cllr < 0.5 < 0.9 < alone.cllr
    assert fused.cllr_min <= fused.cllr + 1e-9
    # the LR rises with the similarity at a fixed pair score, within the bounds
    lrs = fused.log10_lr(np.full(5, 0.5), np.linspace(-0.9, 0.9, 5))
    assert np.all(np.diff(lrs) > 0) or lrs[-1] == fused.bounds[1]
    assert fused.bounds[0] <= lrs.min() and lrs.max() <= fused.bounds[1]
    with pytest.raises(ValueError, match="give both"):
        fused.log10_lr([0.5])
    assert Calibration.from_dict(fused.to_dict()) == fused
    # a record written before fusion existed reads as a pair-score calibration
    old = {k: v for k, v in alone.to_dict().items() if k != "writer_space_slope"}
    assert Calibration.from_dict(old) == alone
    with pytest.raises(ValueError, match="one writer-space similarity per comparison"):
        fit_calibration(
            score_same,
            score_different,
            alternative="skilled",
            similarities_same=sim_same[:-1],
            similarities_different=sim_different,
        )
    with pytest.raises(ValueError, match="lie in -1..1"):
        fit_calibration(
            score_same,
            score_different,
            alternative="skilled",
            similarities_same=sim_same + 5,
            similarities_different=sim_different,
        )


def test_a_fused_calibration_never_lets_the_lr_fall_as_a_score_rises():
    rng = np.random.default_rng(6)
    n = 300
    score_same, score_different = rng.beta(6, 2, n), rng.beta(2, 6, n)
    # a similarity that runs the wrong way: higher for the alternative
    sim_same = np.clip(rng.normal(-0.3, 0.2, n), -1, 1)
    sim_different = np.clip(rng.normal(0.3, 0.2, n), -1, 1)
    fitted = fit_calibration(
        score_same, score_different, alternative="random",
        similarities_same=sim_same, similarities_different=sim_different,
    )  # fmt: skip
    alone = fit_calibration(score_same, score_different, alternative="random")
    assert not fitted.uses_writer_space and fitted.score_used == "the mean pair score"
    assert fitted.slope == pytest.approx(alone.slope) and fitted.cllr == pytest.approx(alone.cllr)
    # and the other way round: an anti-informative pair score is dropped for the similarity
    flipped = fit_calibration(
        1 - score_same, 1 - score_different, alternative="random",
        similarities_same=-sim_same, similarities_different=-sim_different,
    )  # fmt: skip
    assert flipped.slope == 0.0 and flipped.writer_space_slope > 0
    assert flipped.score_used == "the writer space's similarity"
    lrs = flipped.log10_lr(np.full(3, 0.5), [-0.5, 0.0, 0.5])
    assert np.all(np.diff(lrs) >= 0)
