"""Measures of likelihood-ratio calibrations on an examiner's comparisons, as
``cli.calibrate`` reports them: fits on validation comparisons, Cllr / Cllr_min / EER of a
stored calibration, EERs of two scores side by side, Tippett and ECE plots.

Scores travel as ``(mean pair scores, writer-space similarities or None)``: with
similarities, a calibration fuses both (``verification.calibration``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workbench import metrics
from workbench.verification.calibration import (
    ALTERNATIVES,
    Calibration,
    cllr,
    cllr_min,
    fit_calibration,
)


def save_validity_plots(calibration: Calibration, same, different, out: Path, title: str) -> None:
    """Tippett and ECE plots of one corpus's calibrated LRs, as PNG files in ``out``
    (``same``, ``different``: (scores, similarities or None))."""
    from workbench.plots import lr_validity_figures

    out.mkdir(parents=True, exist_ok=True)
    stem = title.replace(", ", "_").replace(" = ", "").replace(" ", "_")
    lr_same, lr_different = calibration.log10_lr(*same), calibration.log10_lr(*different)
    ranked = calibration.ranked(*same), calibration.ranked(*different)
    figures = lr_validity_figures(lr_same, lr_different, *ranked, title=title)
    for name, figure in figures.items():
        figure.savefig(out / f"{name}_{stem}.png")


def compare_eers(
    kinds: np.ndarray, mean: np.ndarray, other: np.ndarray, name: str = "normalized"
) -> dict:
    """EER of the mean score and of another score (the writer-normalized one, the writer
    space's similarity), per alternative."""
    out = {}
    for alternative in ALTERNATIVES:
        keep = (kinds == "genuine") | (kinds == alternative)
        labels = (kinds[keep] == "genuine").astype(int)
        if labels.min() == labels.max():
            continue
        out[f"eer_mean_{alternative}"] = metrics.eer(labels, mean[keep])[0]
        out[f"eer_{name}_{alternative}"] = metrics.eer(labels, other[keep])[0]
    return out


def fit_on_validation(
    same, different, alternative: str, k: int, population: str, corpora=()
) -> Calibration:
    """A calibration fitted on validation comparisons: ``population``'s own ("" = pooled over
    ``corpora``). ``same``, ``different``: (mean pair scores, writer-space similarities or
    None); with similarities the calibration fuses both."""
    where = f"{population} only" if population else ", ".join(corpora)
    return fit_calibration(
        same[0],
        different[0],
        alternative=alternative,
        references=k,
        data=f"validation writers of {where} (split val), {len(same[0])} same-writer and "
        f"{len(different[0])} {alternative} comparisons",
        population=population,
        similarities_same=same[1],
        similarities_different=different[1],
    )


def measure(calibration: Calibration, same, different) -> dict:
    """Cllr, Cllr_min and EER of ``calibration`` on (scores, similarities or None) pairs; the
    EER of the mean pair score alone, and of the fused score when the calibration fuses."""
    labels = np.concatenate([np.ones(len(same[0])), np.zeros(len(different[0]))])
    scores = np.concatenate([same[0], different[0]])
    lr_same, lr_different = calibration.log10_lr(*same), calibration.log10_lr(*different)
    ranked_same, ranked_different = calibration.ranked(*same), calibration.ranked(*different)
    extra = {"cllr_min": cllr_min(ranked_same, ranked_different)}
    if calibration.uses_writer_space:
        extra["eer_fused"] = metrics.eer(labels, np.concatenate([ranked_same, ranked_different]))[0]
    return {
        "cllr": cllr(lr_same, lr_different),
        **extra,
        "eer": metrics.eer(labels, scores)[0],
        "n_same": len(same[0]),
        "n_different": len(different[0]),
        "log10_lr_range": [float(min(lr_same.min(), lr_different.min())),
                           float(max(lr_same.max(), lr_different.max()))],
    }  # fmt: skip


def joined(parts: list[tuple]) -> tuple:
    """(scores, similarities or None) of several corpora joined into one."""
    scores = np.concatenate([p[0] for p in parts])
    if any(p[1] is None for p in parts):
        return scores, None
    return scores, np.concatenate([p[1] for p in parts])
