"""The evidence for one verdict: the calibrated likelihood ratio under each alternative, in
numbers and in the ENFSI's words, with the hypotheses and the calibration's validity (issue 13).

The threshold verdict stays a *decision rule*; the LR is the evidence an examiner reports.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from workbench.verification.calibration import (
    ALTERNATIVES,
    SAME_SOURCE,
    Calibration,
    choose_calibration,
    populations,
    verbal_equivalent,
)


@dataclass(frozen=True)
class Evidence:
    """The LR of a comparison under one alternative hypothesis.

    Attributes:
        alternative: ``skilled`` or ``random``.
        log10_lr: the bounded log10 likelihood ratio.
        verbal: its ENFSI verbal equivalent.
        h1, h2: the two hypotheses in words.
        at_bound: True when the LR was clipped to what the validation data support.
        calibration: the calibration used (its data, references, Cllr, bounds).
    """

    alternative: str
    log10_lr: float
    verbal: str
    h1: str
    h2: str
    at_bound: bool
    calibration: Calibration

    @property
    def lr(self) -> float:
        return float(10.0**self.log10_lr)

    def lr_text(self) -> str:
        """The LR as an examiner writes it: ``LR 35`` or ``LR 1/35``."""
        if self.log10_lr >= 0:
            return f"LR {_round(self.lr)}"
        return f"LR 1/{_round(1.0 / self.lr)}"


def _round(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def evidence(
    stored: list[Calibration],
    score: float,
    references: int,
    population: str = "",
    similarity: float | None = None,
) -> list[Evidence]:
    """The evidence under each alternative the weights carry a calibration for (none when the
    weights carry no calibration): ``population``'s calibration ("" = pooled over every
    validated corpus) for the most references not above ``references`` is used. A calibration
    that fuses the pair score with the writer space's ``similarity`` needs it.

    Raises:
        ValueError: ``population`` is not one the weights carry, or a fused calibration
            without a similarity (weights whose calibration and writer space do not match).
    """
    if stored and population not in populations(stored):
        known = ", ".join(repr(p) for p in populations(stored) if p) or "none"
        raise ValueError(
            f"No calibration was fitted on {population!r}; the weights carry the pooled one "
            f"and these: {known}."
        )
    found = []
    for alternative in ALTERNATIVES:
        calibration = choose_calibration(stored, alternative, references, population)
        if calibration is None:
            continue
        similarities = None if similarity is None else [similarity]
        raw = float(calibration.raw_log10_lr([score], similarities)[0])
        log10_lr = float(calibration.log10_lr([score], similarities)[0])
        found.append(
            Evidence(
                alternative=alternative,
                log10_lr=log10_lr,
                verbal=verbal_equivalent(log10_lr, alternative),
                h1=SAME_SOURCE,
                h2=ALTERNATIVES[alternative],
                at_bound=abs(raw - log10_lr) > 1e-12,
                calibration=calibration,
            )
        )
    return found


def evidence_markdown(found: list[Evidence], references: int) -> str:
    """The evidence as the Verify tab shows it (empty string without calibrations)."""
    if not found:
        return ""
    lines = ["**Evidence (likelihood ratio)**, calibrated on validation writers only:", ""]
    for e in found:
        c = e.calibration
        bound = " (at the bound the validation data support)" if e.at_bound else ""
        lines.append(
            f"- *If the alternative is {e.h2}:* **{e.lr_text()}** (log10 LR "
            f"{e.log10_lr:+.2f}){bound}: {e.verbal}. From {c.score_used}. Calibration: "
            f"{c.data}; fitted for "
            f"{c.references} reference(s) (you gave {references}); Cllr {c.cllr:.3f} "
            f"(Cllr_min {c.cllr_min:.3f}); LRs bounded to 1/{10 ** -c.bounds[0]:,.0f} .. "
            f"{10 ** c.bounds[1]:,.0f}."
        )
    lines += [
        "",
        f"H1: {found[0].h1}. The LR says how much more probable the scores are under H1 than "
        "under H2; it is not the probability that the signature is genuine.",
    ]
    return "\n".join(lines)


def evidence_html(found: list[Evidence], references: int, warnings: list[str]) -> str:
    """The report's evidence section: the warnings that apply, then the LR under each
    alternative with its verbal equivalent, hypotheses and calibration (or a note that the
    weights carry no calibration)."""
    parts = ["<h2>Evidence</h2>"]
    parts += [f'<p class="verdict rejected">{html.escape(w)}</p>' for w in warnings if w]
    if not found:
        parts.append(
            "<p>The weights carry no likelihood-ratio calibration (fit one with "
            "<code>python -m workbench.cli.calibrate --split val --write-card</code>): only the "
            "decision rule below is available.</p>"
        )
        return "\n".join(parts)
    parts.append(f"<p>H1: {html.escape(found[0].h1)}.</p>")
    rows = "".join(
        f"<tr><td>{html.escape(e.h2)}</td><td><b>{html.escape(e.lr_text())}</b> "
        f"(log10 {e.log10_lr:+.2f}{', at the bound' if e.at_bound else ''})</td>"
        f"<td>{html.escape(e.verbal)}</td><td>from {html.escape(e.calibration.score_used)}; "
        f"{html.escape(e.calibration.data)}; fitted for "
        f"{e.calibration.references} reference(s), {references} given; Cllr "
        f"{e.calibration.cllr:.3f}, Cllr_min {e.calibration.cllr_min:.3f}; log10 LR bounded "
        f"to [{e.calibration.bounds[0]:.2f}, {e.calibration.bounds[1]:.2f}]</td></tr>"
        for e in found
    )
    parts.append(
        "<table><tr><th>H2 (alternative)</th><th>likelihood ratio</th><th>ENFSI verbal "
        "equivalent</th><th>calibration</th></tr>" + rows + "</table>"
    )
    parts.append(
        "<p>The LR says how much more probable the observed scores are under H1 than under "
        "H2; it is not the probability that the signature is genuine. The verdict above is a "
        "decision rule, not evidence.</p>"
    )
    return "\n".join(parts)


@dataclass(frozen=True)
class CorpusValidity:
    """How valid the stored single-reference LRs are on a scored corpus (the Evaluate tab).

    Attributes:
        cllr, cllr_min: in bits, of the calibrated LRs and after the best monotone calibration.
        n_same, n_different: pairs under H1 and H2.
        alternative: the calibration used (``skilled``; ``random`` for random-forgery pairs
            when the corpus has only those).
        log10_same, log10_different: the LRs, for the plots.
        ranked_same, ranked_different: what the calibration ranks (the pair scores, or the
            fused score's raw log10 LRs when it fuses the writer space), for Cllr_min's PAV.
    """

    cllr: float
    cllr_min: float
    n_same: int
    n_different: int
    alternative: str
    log10_same: np.ndarray
    log10_different: np.ndarray
    ranked_same: np.ndarray | None = None
    ranked_different: np.ndarray | None = None

    def rows(self) -> list[list[str]]:
        return [
            [f"Cllr (LRs calibrated on validation writers, {self.alternative}, 1 reference)",
             f"{self.cllr:.3f} bits"],
            ["Cllr_min (after the best monotone calibration)", f"{self.cllr_min:.3f} bits"],
        ]  # fmt: skip


def corpus_validity(
    stored: list[Calibration], labels, scores, kinds, similarities=None
) -> CorpusValidity | None:
    """The validity of the single-reference calibration on scored pairs (labels 1 / 0, pair
    kinds ``genuine`` / ``skilled`` / ``random`` / other, and the writer space's similarity of
    each pair when the calibration fuses it); None without a calibration, without pairs under
    both hypotheses, or for a fused calibration without similarities. Random-forgery pairs use
    the ``random`` calibration when the corpus has no other H2 pairs, else the ``skilled`` one
    is used for all."""
    from workbench.verification.calibration import cllr, cllr_min

    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    kinds = np.asarray(kinds)
    different = labels == 0
    alternative = (
        "random" if different.any() and (kinds[different] == "random").all() else "skilled"
    )
    calibration = choose_calibration(stored, alternative, 1)
    if calibration is None or different.all() or not different.any():
        return None
    if calibration.uses_writer_space and similarities is None:
        return None
    sims = None if similarities is None else np.asarray(similarities, dtype=float)
    same = (scores[~different], None if sims is None else sims[~different])
    other = (scores[different], None if sims is None else sims[different])
    log10_same, log10_different = calibration.log10_lr(*same), calibration.log10_lr(*other)
    ranked = calibration.ranked(*same), calibration.ranked(*other)
    return CorpusValidity(
        cllr=cllr(log10_same, log10_different),
        cllr_min=cllr_min(*ranked),
        n_same=len(same[0]),
        n_different=len(other[0]),
        alternative=alternative,
        log10_same=log10_same,
        log10_different=log10_different,
        ranked_same=ranked[0],
        ranked_different=ranked[1],
    )
