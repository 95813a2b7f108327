"""FAR, FRR, EER and AUC on hand-made score lists."""

import numpy as np
import pytest

from workbench.metrics import auc, eer, far_frr, summary

GENUINE = [0.9, 0.8, 0.7, 0.4]
FORGED = [0.6, 0.3, 0.2, 0.1]
LABELS = [1] * 4 + [0] * 4
SCORES = GENUINE + FORGED


def test_far_frr_by_hand():
    at_half = far_frr(LABELS, SCORES, 0.5)
    assert at_half == {"far": 0.25, "frr": 0.25, "acc": 0.75, "threshold": 0.5}
    strict = far_frr(LABELS, SCORES, 0.75)  # rejects 0.7, 0.4; accepts no forgery
    assert (strict["far"], strict["frr"], strict["acc"]) == (0.0, 0.5, 0.75)
    inclusive = far_frr(LABELS, SCORES, 0.6)  # score >= threshold is accepted
    assert inclusive["far"] == 0.25


def test_eer_where_far_equals_frr():
    rate, threshold = eer(LABELS, SCORES)
    assert rate == pytest.approx(0.25)
    at = far_frr(LABELS, SCORES, threshold)
    assert at["far"] == at["frr"] == pytest.approx(0.25)


def test_best_accuracy_counts_the_pairs_as_they_are():
    from workbench.metrics import best_accuracy

    # 3 genuine, 5 forgeries: accepting the top 4 (one forgery among them) is right on 7 of 8
    labels = [1, 1, 1, 0, 0, 0, 0, 0]
    scores = [0.9, 0.7, 0.65, 0.8, 0.6, 0.3, 0.2, 0.1]
    accuracy, threshold = best_accuracy(labels, scores)
    assert accuracy == pytest.approx(7 / 8) and threshold == pytest.approx(0.65)
    assert accuracy == pytest.approx(
        np.mean((np.array(scores) >= threshold) == np.array(labels, dtype=bool))
    )
    # a tie goes to the higher threshold: accepting 0.9 alone and accepting 0.9, 0.8 and 0.7
    # are both right on 4 of 5
    assert best_accuracy([1, 1, 0, 0, 0], [0.9, 0.7, 0.8, 0.3, 0.2]) == (pytest.approx(0.8), 0.9)


def test_eer_interpolates_between_roc_points():
    labels = [1, 1, 1, 0, 0, 0, 0]
    scores = [0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.05]
    # FAR stays 1/4 while FRR falls from 1/3 to 0: they cross at 1/4.
    assert eer(labels, scores)[0] == pytest.approx(0.25)


def test_perfect_and_inverted_scores():
    assert eer([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])[0] == 0.0
    assert auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert eer([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])[0] == 1.0
    assert auc(LABELS, SCORES) == pytest.approx(15 / 16)


def test_summary_and_errors():
    s = summary(LABELS, SCORES)
    assert (
        s["eer"] == pytest.approx(0.25) and s["auc"] == pytest.approx(15 / 16) and s["acc"] == 0.75
    )
    with pytest.raises(ValueError, match="both"):
        eer([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="labels"):
        far_frr([1, 0], [0.1], 0.5)
