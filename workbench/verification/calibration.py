"""From a verification score to a likelihood ratio an examiner can report (issue 13).

The likelihood ratio (LR) answers: how much more probable is the observed comparison if the
questioned signature is genuine (H1: written by the reference writer) than if it is not (H2:
a skilled forgery, or another writer's genuine signature, a "random forgery")? Its validity is
measured by the log-likelihood-ratio cost (Cllr, Brümmer and du Preez 2006), the score of the
NFI's signature competitions (SigComp2011, SigWIcomp2015).

- **Calibration:** logistic regression (scikit-learn) of the label on the score's log-odds,
  fitted on validation writers only, with both hypotheses weighted equally so that the fitted
  log-odds are a log LR and not a posterior that depends on how many pairs of each kind the
  validation set happened to have.
- **Discrimination alone:** Cllr_min, the Cllr of the best monotone transform of the scores,
  from the pool-adjacent-violators fit (scikit-learn's isotonic regression).
- **Bounds:** no LR beyond what the validation data support. The rule, after Vergeer et al.
  (Science & Justice 56, 2016, "empirical lower and upper bounds"): an LR above 1 is reported
  at most as ``t``, the largest value such that for every ``u`` in (1, t] the comparisons the
  system scores above ``u`` are at least ``u`` times more frequent among H1 than among H2
  pairs, counting one extra misleading comparison on each side; the lower bound mirrors it.

No torch and no gradio here: numbers in, numbers out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# The alternatives an examiner can choose (issue 13): the calibration differs with each.
ALTERNATIVES = {
    "skilled": "the questioned signature is a simulation (skilled forgery) of the reference "
    "writer's signature by another person",
    "random": "the questioned signature was written by another person in their own way (a "
    "random forgery: another writer's genuine signature)",
}
SAME_SOURCE = "the questioned signature was written by the writer of the reference signatures"

# ENFSI guideline for evaluative reporting (2015): verbal equivalents of LR ranges, by the lower
# end of each range as log10 LR.
VERBAL_SCALE = (
    (6.0, "extremely strong support"),
    (4.0, "very strong support"),
    (3.0, "strong support"),
    (2.0, "moderately strong support"),
    (1.0, "moderate support"),
    (0.0, "weak support"),
)
_EPS = 1e-6


def score_log_odds(scores) -> np.ndarray:
    """Scores in 0..1 -> natural log-odds, clipped at 1e-6 from 0 and 1 (float64)."""
    p = np.clip(np.asarray(scores, dtype=float), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def similarity_log_odds(similarities) -> np.ndarray:
    """Cosine similarities in -1..1 (the writer space's) -> log((1 + c) / (1 - c)), the
    log-odds of (1 + c) / 2 (float64)."""
    c = np.asarray(similarities, dtype=float)
    return score_log_odds((c + 1.0) / 2.0)


def cllr(log10_lr_same, log10_lr_different) -> float:
    """Log-likelihood-ratio cost in bits: 0 for a perfect system, 1 for one that always says
    LR = 1, above 1 for a misleading one. Both hypotheses weigh equally."""
    same = np.asarray(log10_lr_same, dtype=float) * np.log(10)
    different = np.asarray(log10_lr_different, dtype=float) * np.log(10)
    if len(same) == 0 or len(different) == 0:
        raise ValueError("Cllr needs comparisons under both hypotheses.")
    # log2(1 + 1/LR) and log2(1 + LR), stable for large |log LR|
    cost_same = np.logaddexp(0.0, -same).mean() / np.log(2)
    cost_different = np.logaddexp(0.0, different).mean() / np.log(2)
    return float(0.5 * (cost_same + cost_different))


def pav_log10_lr(scores_same, scores_different) -> tuple[np.ndarray, np.ndarray]:
    """The log10 LRs of the best monotone (non-decreasing) transform of the scores, by
    pool-adjacent-violators with both hypotheses weighted equally; +-inf where a pooled group
    holds comparisons of one hypothesis only."""
    from sklearn.isotonic import IsotonicRegression

    same = np.asarray(scores_same, dtype=float)
    different = np.asarray(scores_different, dtype=float)
    x = np.concatenate([same, different])
    y = np.concatenate([np.ones(len(same)), np.zeros(len(different))])
    weights = np.concatenate(
        [np.full(len(same), 0.5 / len(same)), np.full(len(different), 0.5 / len(different))]
    )
    posterior = IsotonicRegression(y_min=0.0, y_max=1.0).fit(x, y, sample_weight=weights)
    p = posterior.predict(x)
    with np.errstate(divide="ignore"):
        log10_lr = np.log10(p) - np.log10(1 - p)
    return log10_lr[: len(same)], log10_lr[len(same) :]


def cllr_min(scores_same, scores_different) -> float:
    """Cllr after the best monotone calibration (PAV): what discrimination alone allows."""
    return cllr(*pav_log10_lr(scores_same, scores_different))


def _upper_bound(log10_same: np.ndarray, log10_different: np.ndarray) -> float:
    """The largest log10 LR above 0 that the comparisons support (module docstring)."""
    candidates = np.unique(np.concatenate([log10_same, log10_different]))
    candidates = candidates[candidates > 0]
    bound = 0.0
    n_same, n_different = len(log10_same) + 1, len(log10_different) + 1
    # Between two candidates the counts above u are constant, so the support is too: the bound
    # stops inside the first interval whose support falls short of its right end.
    for u in candidates:
        above_same = np.sum(log10_same >= u) / n_same  # the extra H1 comparison lies below
        above_different = (np.sum(log10_different >= u) + 1) / n_different  # and this above
        support = np.log10(above_same) - np.log10(above_different) if above_same else -np.inf
        if support < u:
            return float(max(bound, support))
        bound = float(u)
    return bound


def elub_bounds(log10_lr_same, log10_lr_different) -> tuple[float, float]:
    """(lower, upper) log10 LR bounds the comparisons support (module docstring)."""
    same = np.asarray(log10_lr_same, dtype=float)
    different = np.asarray(log10_lr_different, dtype=float)
    upper = _upper_bound(same, different)
    lower = -_upper_bound(-different, -same)
    return lower, upper


def verbal_equivalent(log10_lr: float, alternative: str = "skilled") -> str:
    """The ENFSI verbal equivalent of an LR, naming the proposition it supports."""
    if alternative not in ALTERNATIVES:
        raise ValueError(
            f"Choose the alternative from {sorted(ALTERNATIVES)}, not {alternative!r}."
        )
    size = abs(float(log10_lr))
    if size < 1e-9:
        return "no support for either proposition (LR = 1)"
    supported = (
        "the reference writer wrote it"
        if log10_lr > 0
        else {
            "skilled": "a skilled forgery",
            "random": "another writer wrote it",
        }[alternative]
    )
    words = next(text for start, text in VERBAL_SCALE if size >= start)
    return f"{words} for: {supported}"


@dataclass(frozen=True)
class Calibration:
    """A score-to-LR map fitted on validation comparisons, with its validity.

    ``log10 LR = (slope * logodds(score) + writer_space_slope * logodds((1 + similarity) / 2)
    + intercept) / ln 10``, clipped to ``bounds``: the mean pair score fused with the writer
    space's similarity of the questioned signature to the references
    (``verification.writer_space``) when ``writer_space_slope`` is not 0, the mean pair score
    alone otherwise.

    Attributes:
        alternative: ``skilled`` or ``random`` (``ALTERNATIVES``), the H2 it was fitted for.
        references: the number of references whose aggregated score it calibrates.
        n_same, n_different: validation comparisons under H1 and H2.
        cllr, cllr_min: validity of the calibrated LRs on the fitting data, and what a perfect
            monotone calibration would reach (bits).
        bounds: (lower, upper) log10 LR.
        data: where the comparisons come from, in words.
        population: the corpus whose validation writers alone it was fitted on, for cases
            whose conditions match that corpus (script, scanner, medium: ENFSI asks for
            calibration data representative of the case); "" = pooled over every validated
            corpus, the default.
    """

    alternative: str
    references: int
    slope: float
    intercept: float
    bounds: tuple[float, float]
    n_same: int
    n_different: int
    cllr: float
    cllr_min: float
    data: str = ""
    population: str = ""
    writer_space_slope: float = 0.0

    @property
    def uses_writer_space(self) -> bool:
        """True when the LR needs the writer space's similarity beside the pair score."""
        return self.writer_space_slope != 0.0

    @property
    def score_used(self) -> str:
        """What the LR is computed from, in words."""
        if not self.uses_writer_space:
            return "the mean pair score"
        if self.slope == 0.0:
            return "the writer space's similarity"
        return "the mean pair score fused with the writer space's similarity"

    def raw_log10_lr(self, scores, similarities=None) -> np.ndarray:
        """Scores in 0..1 (and, for a fused calibration, the writer space's similarities in
        -1..1) -> log10 LRs before the bounds (float64).

        Raises:
            ValueError: a fused calibration without similarities.
        """
        nats = self.slope * score_log_odds(scores) + self.intercept
        if self.uses_writer_space:
            if similarities is None:
                raise ValueError(
                    "This calibration fuses the pair score with the writer space's similarity: "
                    "give both."
                )
            nats = nats + self.writer_space_slope * similarity_log_odds(similarities)
        return nats / np.log(10)

    def log10_lr(self, scores, similarities=None) -> np.ndarray:
        """``raw_log10_lr`` clipped to the bounds (float64)."""
        raw = self.raw_log10_lr(scores, similarities)
        return np.clip(raw, self.bounds[0], self.bounds[1])

    def ranked(self, scores, similarities=None) -> np.ndarray:
        """What the calibration orders comparisons by, for PAV (Cllr_min) and the fused EER:
        the pair scores themselves, or for a fused calibration its raw log10 LRs."""
        if self.uses_writer_space:
            return self.raw_log10_lr(scores, similarities)
        return np.asarray(scores, dtype=float)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["bounds"] = list(self.bounds)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> Calibration:
        try:
            return cls(**{**values, "bounds": tuple(values["bounds"])})
        except (KeyError, TypeError) as error:
            raise ValueError(f"Not a calibration record: {error}") from None


def fit_calibration(
    scores_same,
    scores_different,
    *,
    alternative: str,
    references: int = 1,
    data: str = "",
    population: str = "",
    similarities_same=None,
    similarities_different=None,
) -> Calibration:
    """Fit the score-to-LR map on validation comparisons (H1: same writer; H2: ``alternative``).
    With the writer space's similarities of the same comparisons, the map fuses both (one
    logistic regression on the two log-odds).

    Raises:
        ValueError: fewer than 2 comparisons under a hypothesis, an unknown alternative,
            scores outside 0..1, or similarities outside -1..1 or not one per comparison.
    """
    from sklearn.linear_model import LogisticRegression

    if alternative not in ALTERNATIVES:
        raise ValueError(
            f"Choose the alternative from {sorted(ALTERNATIVES)}, not {alternative!r}."
        )
    same = np.asarray(scores_same, dtype=float).ravel()
    different = np.asarray(scores_different, dtype=float).ravel()
    if len(same) < 2 or len(different) < 2:
        raise ValueError(
            "A calibration needs at least 2 validation comparisons under each hypothesis; got "
            f"{len(same)} same-writer and {len(different)} {alternative} ones."
        )
    every = np.concatenate([same, different])
    if not np.all(np.isfinite(every)) or every.min() < 0 or every.max() > 1:
        raise ValueError("Scores to calibrate must be finite and lie in 0..1.")
    x = score_log_odds(every)[:, None]
    fused = similarities_same is not None or similarities_different is not None
    if fused:
        sim_same = np.asarray(similarities_same, dtype=float).ravel()
        sim_different = np.asarray(similarities_different, dtype=float).ravel()
        sims = np.concatenate([sim_same, sim_different])
        if (len(sim_same), len(sim_different)) != (len(same), len(different)):
            raise ValueError("Give one writer-space similarity per comparison.")
        if not np.all(np.isfinite(sims)) or sims.min() < -1 or sims.max() > 1:
            raise ValueError("Writer-space similarities must be finite and lie in -1..1.")
        x = np.column_stack([x[:, 0], similarity_log_odds(sims)])
    y = np.concatenate([np.ones(len(same)), np.zeros(len(different))])

    def regression(columns):
        model = LogisticRegression(C=1e6, class_weight="balanced", max_iter=1000)
        model.fit(x[:, columns], y)
        return [float(c) for c in model.coef_[0]], float(model.intercept_[0])

    if not fused:
        (slope,), intercept = regression([0])
        space_slope = 0.0
    else:
        (slope, space_slope), intercept = regression([0, 1])
        # An LR that falls as either score rises says nothing sound about the hand: where the
        # two scores overlap that much, the fit keeps the one that carries the evidence.
        if space_slope <= 0:
            (slope,), intercept = regression([0])
            space_slope, fused = 0.0, False
        elif slope <= 0:
            (space_slope,), intercept = regression([1])
            slope = 0.0
    unbounded = Calibration(
        alternative,
        references,
        slope,
        intercept,
        (-np.inf, np.inf),
        len(same),
        len(different),
        0,
        0,
        writer_space_slope=space_slope,
    )
    raw_same = unbounded.log10_lr(same, sim_same if fused else None)
    raw_different = unbounded.log10_lr(different, sim_different if fused else None)
    bounds = elub_bounds(raw_same, raw_different)
    fitted = Calibration(
        alternative,
        references,
        slope,
        intercept,
        bounds,
        len(same),
        len(different),
        cllr(np.clip(raw_same, *bounds), np.clip(raw_different, *bounds)),
        # what discrimination alone allows: of the pair score, or of the fused score
        cllr_min(
            unbounded.ranked(same, sim_same if fused else None),
            unbounded.ranked(different, sim_different if fused else None),
        ),  # fmt: skip
        data,
        population,
        space_slope,
    )
    return fitted


def choose_calibration(
    stored: list[Calibration], alternative: str, references: int, population: str = ""
) -> Calibration | None:
    """The calibration of ``population`` ("" = pooled) for ``alternative`` fitted for the most
    references not above ``references`` (an LR for 7 references uses the one for 5), or
    None."""
    fits = [
        c
        for c in stored
        if c.alternative == alternative
        and c.references <= references
        and c.population == population
    ]
    return max(fits, key=lambda c: c.references) if fits else None


def populations(stored: list[Calibration]) -> list[str]:
    """The calibration populations ``stored`` holds, the pooled one ("") first when present."""
    return sorted({c.population for c in stored}, key=lambda name: (name != "", name))


def empirical_cross_entropy(log10_lr_same, log10_lr_different, prior_log10_odds) -> np.ndarray:
    """ECE in bits at each prior log10 odds (Ramos and Gonzalez-Rodriguez): the cost of the LRs
    for a decision-maker with that prior; at prior odds 1 it is Cllr."""
    same = np.asarray(log10_lr_same, dtype=float)[:, None] * np.log(10)
    different = np.asarray(log10_lr_different, dtype=float)[:, None] * np.log(10)
    theta = np.asarray(prior_log10_odds, dtype=float)[None, :] * np.log(10)
    p1 = 1.0 / (1.0 + np.exp(-theta[0]))
    cost_same = np.logaddexp(0.0, -(same + theta)).mean(0) / np.log(2)
    cost_different = np.logaddexp(0.0, different + theta).mean(0) / np.log(2)
    return p1 * cost_same + (1 - p1) * cost_different
