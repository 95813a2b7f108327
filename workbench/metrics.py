"""Verification metrics (eq. 13-15): FAR, FRR, accuracy, EER, AUC.

Scores are "same writer" scores: higher means more likely genuine. Labels are 1 for a genuine
pair, 0 for a forgery pair. A pair is accepted as genuine when ``score >= threshold``.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from workbench.config import FALLBACK_THRESHOLD


def _check(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=int).ravel()
    s = np.asarray(scores, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{y.size} labels but {s.size} scores.")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("Labels must be 0 (forgery pair) or 1 (genuine pair).")
    if y.min(initial=1) == 1 or y.max(initial=0) == 0:
        raise ValueError("Need both genuine (1) and forgery (0) pairs to measure errors.")
    return y, s


def far_frr(labels, scores, threshold: float) -> dict[str, float]:
    """Error rates at a threshold.

    Returns:
        ``far`` = FP / (TN + FP) over forgery pairs, ``frr`` = FN / (TP + FN) over genuine
        pairs, ``acc`` over all pairs, each in 0..1, and the ``threshold``.
    """
    y, s = _check(labels, scores)
    accepted = s >= threshold
    far = float(accepted[y == 0].mean())
    frr = float((~accepted[y == 1]).mean())
    acc = float((accepted == (y == 1)).mean())
    return {"far": far, "frr": frr, "acc": acc, "threshold": float(threshold)}


def eer(labels, scores) -> tuple[float, float]:
    """Equal error rate and the threshold where FAR and FRR meet.

    From sklearn's ROC: FAR = FPR, FRR = 1 - TPR. Between the two ROC points where FAR - FRR
    changes sign, the EER is interpolated linearly (the usual convex-hull reading).

    Returns:
        (eer, threshold): ``eer`` in 0..1; accepting ``score >= threshold`` gives FAR ~ FRR.
    """
    y, s = _check(labels, scores)
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    fnr = 1.0 - tpr
    diff = fpr - fnr  # rises from -1 (threshold +inf) to +1 (threshold -inf)
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0 or i == 0:
        return float(fpr[i]), float(thresholds[i]) if np.isfinite(thresholds[i]) else float(s.max())
    j = i - 1
    w = -diff[j] / (diff[i] - diff[j])
    rate = float(fpr[j] + w * (fpr[i] - fpr[j]))
    threshold = float(thresholds[i]) if w >= 0.5 else float(thresholds[j])
    if not np.isfinite(threshold):
        threshold = float(s.max())
    return rate, threshold


def best_accuracy(labels, scores) -> tuple[float, float]:
    """The highest accuracy over thresholds and the threshold that gives it (the highest such
    threshold where several tie): accepting ``score >= threshold``, the share of all pairs
    decided right, counted over the pairs as they are (not class-balanced).

    Returns:
        (accuracy, threshold), accuracy in 0..1.
    """
    y, s = _check(labels, scores)
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    positives, negatives = int(y.sum()), int((y == 0).sum())
    right = tpr * positives + (1.0 - fpr) * negatives
    finite = np.isfinite(thresholds)
    i = int(np.argmax(np.where(finite, right, -1.0)))
    return float(right[i] / len(y)), float(thresholds[i])


def auc(labels, scores) -> float:
    """Area under the ROC curve (0.5 = chance, 1 = perfect)."""
    y, s = _check(labels, scores)
    return float(roc_auc_score(y, s))


def summary(labels, scores, *, threshold: float = FALLBACK_THRESHOLD) -> dict[str, float]:
    """FAR, FRR, accuracy at ``threshold``, EER (with its threshold) and AUC."""
    out = far_frr(labels, scores, threshold)
    out["eer"], out["eer_threshold"] = eer(labels, scores)
    out["auc"] = auc(labels, scores)
    return out


def rate_curve(labels, scores, *, steps: int = 200) -> dict:
    """FAR and FRR at thresholds 0, 1/steps, ..., 1 (lists of floats in 0..1), with the pair
    counts: the validation curve a weights' card carries for the threshold slider."""
    y, s = _check(labels, scores)
    thresholds = [round(i / steps, 6) for i in range(steps + 1)]
    rates = [far_frr(y, s, t) for t in thresholds]
    return {
        "threshold": thresholds,
        "far": [r["far"] for r in rates],
        "frr": [r["frr"] for r in rates],
        "n_genuine": int(y.sum()),
        "n_forged": int((y == 0).sum()),
    }
