"""ROC, DET and score-histogram figures (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402
from sklearn.metrics import det_curve, roc_curve  # noqa: E402

from workbench import metrics  # noqa: E402
from workbench.config import FALLBACK_THRESHOLD  # noqa: E402


def roc_figure(labels, scores, *, title: str = "") -> plt.Figure:
    fpr, tpr, _ = roc_curve(labels, scores)
    rate, _ = metrics.eer(labels, scores)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot(fpr, tpr, lw=2, label=f"AUC {metrics.auc(labels, scores):.4f}")
    ax.plot([0, 1], [0, 1], ls=":", c="grey", label="chance")
    ax.plot([rate], [1 - rate], "o", c="crimson", label=f"EER {100 * rate:.2f}%")
    ax.set(
        xlabel="FAR (forgeries accepted)",
        ylabel="1 - FRR (genuine accepted)",
        title=f"ROC {title}".strip(),
    )
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def det_figure(labels, scores, *, title: str = "") -> plt.Figure:
    far, frr, _ = det_curve(labels, scores)
    clip = lambda v: np.clip(v, 1e-4, 1 - 1e-4)  # noqa: E731
    rate, _ = metrics.eer(labels, scores)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot(norm.ppf(clip(far)), norm.ppf(clip(frr)), lw=2)
    ax.plot(
        [norm.ppf(clip(rate))],
        [norm.ppf(clip(rate))],
        "o",
        c="crimson",
        label=f"EER {100 * rate:.2f}%",
    )
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8])
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}%" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}%" for t in ticks])
    lim = norm.ppf([0.0005, 0.9])
    ax.set(xlim=lim, ylim=lim, xlabel="FAR", ylabel="FRR", title=f"DET {title}".strip())
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def histogram_figure(
    labels, scores, *, title: str = "", thresholds: dict[str, float] | None = None
) -> plt.Figure:
    labels, scores = np.asarray(labels), np.asarray(scores)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    bins = np.linspace(0, 1, 41)
    ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label="genuine pairs", color="tab:green")
    ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label="forgery pairs", color="tab:red")
    for name, value in (thresholds or {str(FALLBACK_THRESHOLD): FALLBACK_THRESHOLD}).items():
        ax.axvline(value, ls="--", c="k", lw=1)
        ax.text(value, ax.get_ylim()[1] * 0.95, f" {name}", fontsize=8)
    ax.set(
        xlabel="score (same-writer probability)", ylabel="pairs", title=f"Scores {title}".strip()
    )
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    return fig


def save_curves(labels, scores, out: str | Path, *, title: str = "") -> dict[str, Path]:
    """Write ``roc.png``, ``det.png`` and ``histogram.png`` into ``out``; returns their paths."""
    out = Path(out)
    paths = {}
    for name, make in (("roc", roc_figure), ("det", det_figure), ("histogram", histogram_figure)):
        fig = make(labels, scores, title=title)
        paths[name] = out / f"{name}.png"
        fig.savefig(paths[name])
        plt.close(fig)
    return paths


def tippett_figure(log10_same, log10_different, *, title: str = "") -> plt.Figure:
    """Tippett plot: the share of same-writer and of different-writer comparisons whose log10
    LR is at least each value."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for values, label, colour in (
        (log10_same, "H1 true (same writer)", "tab:blue"),
        (log10_different, "H2 true (forgery / other writer)", "tab:red"),
    ):
        ordered = np.sort(np.asarray(values, dtype=float))
        share = 1.0 - np.arange(len(ordered)) / max(len(ordered), 1)
        ax.step(ordered, share, where="post", c=colour, lw=2, label=label)
    ax.axvline(0, c="grey", ls=":")
    ax.set(xlabel="log10 LR", ylabel="share of comparisons with log10 LR >= x",
           title=f"Tippett {title}".strip(), ylim=(0, 1.02))  # fmt: skip
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def ece_figure(log10_same, log10_different, pav_same, pav_different, *, title="") -> plt.Figure:
    """ECE plot: the calibrated LRs, the best monotone ones (PAV, Cllr_min) and LR = 1 for
    every comparison (neutral), over prior log10 odds."""
    from workbench.verification.calibration import empirical_cross_entropy

    prior = np.linspace(-2.5, 2.5, 101)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    zeros_same, zeros_different = np.zeros(len(log10_same)), np.zeros(len(log10_different))
    for same, different, label, style in (
        (log10_same, log10_different, "calibrated LRs", "-"),
        (pav_same, pav_different, "after PAV (discrimination only)", "--"),
        (zeros_same, zeros_different, "neutral (LR = 1)", ":"),
    ):
        ax.plot(prior, empirical_cross_entropy(same, different, prior), ls=style, lw=2,
                label=label)  # fmt: skip
    ax.axvline(0, c="grey", lw=0.5)
    ax.set(xlabel="prior log10 odds", ylabel="empirical cross-entropy (bits)",
           title=f"ECE {title}".strip())  # fmt: skip
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def lr_validity_figures(
    log10_same, log10_different, scores_same, scores_different, *, title: str = ""
) -> dict[str, plt.Figure]:
    """``{"tippett": ..., "ece": ...}`` of calibrated LRs, the ECE plot with the PAV curve of
    the raw scores they came from; both released from pyplot."""
    from workbench.verification.calibration import pav_log10_lr

    figures = {
        "tippett": tippett_figure(log10_same, log10_different, title=title),
        "ece": ece_figure(
            log10_same, log10_different, *pav_log10_lr(scores_same, scores_different),
            title=title,
        ),
    }  # fmt: skip
    for figure in figures.values():
        plt.close(figure)
    return figures
