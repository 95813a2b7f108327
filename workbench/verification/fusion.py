"""The verdict's score: the network's same-writer probability fused with the registered shape
correlation of the two normalized images (our addition to the paper).

The Siamese network pools its maps (SPP, cross-attention over 21 tokens, |F1 - F2|), so it
compares what the strokes look like more than where they lie; on a script or scanner it never
trained on that is close to chance. Eq. 2-5 have already registered both images (centroid,
scale), so the highest correlation of their ink over small shifts (``copies.copy_similarity``,
the copy check's measure, -1..1) compares the signatures' shapes directly, with nothing learned
that could fail to transfer. The two are fused by a logistic regression fitted on the
validation writers' pairs (genuine against forgery pairs, both classes weighted equally;
scikit-learn):

    fused = sigmoid(intercept + w_network * log(p1 / (1 - p1)) + w_shape * correlation)

in 0..1, higher = more likely the same writer, decided at its own validation threshold (the
fused scores' EER point on the same pairs). ``cli.fuse`` fits it; the weights' JSON carries it
as ``score_fusion``; the verdict, ``evaluate``, the Evaluate tab and ``calibrate`` use it when
present, and the network's probability and the correlation stay visible beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from workbench import metrics
from workbench.verification.calibration import score_log_odds
from workbench.verification.copies import copy_similarity

KEY = "score_fusion"  # where the weights' JSON keeps it


@dataclass(frozen=True)
class ScoreFusion:
    """The fused score's parameters, its threshold and the data they come from.

    Attributes:
        intercept, network_weight, shape_weight: the logistic regression's (on the network
            score's log-odds and the shape correlation).
        threshold: the fused score's validation threshold (EER point of the validation pairs).
        n_genuine, n_forged: validation pairs fitted on.
        data: where those pairs come from, in words.
        curve: FAR / FRR of the validation pairs at thresholds 0, 0.005, ..., 1
            (``metrics.rate_curve``), for the threshold slider.
        network_eer, fused_eer: the validation pairs' EER with the network alone and fused.
    """

    intercept: float
    network_weight: float
    shape_weight: float
    threshold: float
    n_genuine: int = 0
    n_forged: int = 0
    data: str = ""
    curve: dict = field(default_factory=dict)
    network_eer: float | None = None
    fused_eer: float | None = None

    def fuse(self, network, shape) -> np.ndarray:
        """Fused scores (float64, 0..1) of network probabilities and shape correlations of
        the same pairs (equal lengths)."""
        network, shape = np.asarray(network, dtype=float), np.asarray(shape, dtype=float)
        if network.shape != shape.shape:
            raise ValueError(f"{network.size} network scores but {shape.size} correlations.")
        z = self.intercept + self.network_weight * score_log_odds(network)
        return 1.0 / (1.0 + np.exp(-(z + self.shape_weight * shape)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ScoreFusion:
        try:
            fusion = cls(**values)
            numbers = (fusion.intercept, fusion.network_weight, fusion.shape_weight)
            if not all(np.isfinite(float(v)) for v in numbers):
                raise ValueError("not finite")
            if not 0.0 <= float(fusion.threshold) <= 1.0:
                raise ValueError("threshold outside 0..1")
        except (TypeError, ValueError) as error:
            raise ValueError(f"The stored score fusion is unreadable ({error}).") from error
        return fusion


def fit_fusion(labels, network, shape, *, data: str = "") -> ScoreFusion:
    """The fusion of validation pairs' ``network`` probabilities and ``shape`` correlations,
    ``labels`` 1 (genuine) / 0 (forgery).

    Raises:
        ValueError: one class missing, or lengths that differ.
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels, dtype=int)
    network, shape = np.asarray(network, dtype=float), np.asarray(shape, dtype=float)
    if not (len(y) == len(network) == len(shape)):
        raise ValueError(f"{len(y)} labels, {len(network)} scores, {len(shape)} correlations.")
    if y.min(initial=1) == 1 or y.max(initial=0) == 0:
        raise ValueError("The fusion needs genuine and forgery pairs of validation writers.")
    columns = np.column_stack([score_log_odds(network), shape])
    model = LogisticRegression(class_weight="balanced").fit(columns, y)
    draft = ScoreFusion(float(model.intercept_[0]), *map(float, model.coef_[0]), threshold=0.5)
    fused = draft.fuse(network, shape)
    fused_eer, threshold = metrics.eer(y, fused)
    return ScoreFusion(
        intercept=draft.intercept,
        network_weight=draft.network_weight,
        shape_weight=draft.shape_weight,
        threshold=float(np.clip(threshold, 0.0, 1.0)),
        n_genuine=int(y.sum()),
        n_forged=int((y == 0).sum()),
        data=data,
        curve=metrics.rate_curve(y, fused),
        network_eer=metrics.eer(y, network)[0],
        fused_eer=fused_eer,
    )


def stored_fusion(card) -> ScoreFusion | None:
    """The fusion stored with the weights (``card.extra["score_fusion"]``), or None; a damaged
    record counts as none (the network's score and threshold are used)."""
    record = card.extra.get(KEY) if card is not None else None
    if not isinstance(record, dict):
        return None
    try:
        return ScoreFusion.from_dict(record)
    except ValueError:
        return None


def shape_similarities(bank, pairs, *, progress: bool = False) -> np.ndarray:
    """``copy_similarity`` of each pair's normalized images (float64, -1..1), from ``bank``
    (an ``ImageBank`` holding both images of every pair)."""
    out = np.empty(len(pairs), dtype=float)
    for i, pair in enumerate(tqdm(pairs, desc="shape", unit="pair", disable=not progress)):
        reference, questioned = bank.get([pair.reference, pair.questioned])
        out[i] = copy_similarity(reference, questioned)
    return out


@dataclass(frozen=True)
class PairScores:
    """Scores of a list of pairs.

    Attributes:
        scores: what decides (float64, 0..1): the fused score with a fusion, else the network's.
        network: the network's same-writer probabilities.
        shape: the shape correlations (-1..1), or None without a fusion.
        fused: whether ``scores`` are fused.
    """

    scores: np.ndarray
    network: np.ndarray
    shape: np.ndarray | None
    fused: bool

    def columns(self) -> dict[str, np.ndarray]:
        """The extra columns of a scores CSV: the network score and shape, when fused."""
        return {"network_score": self.network, "shape": self.shape} if self.fused else {}


def verdict_scores(
    model, bank, pairs, fusion: ScoreFusion | None, *, progress: bool = False, **scoring
) -> PairScores:
    """The scores that decide each pair: the network's (``scoring.score_pairs``, with its
    keyword ``scoring`` options), fused with the shape correlation when ``fusion`` is given."""
    from workbench.verification.scoring import score_pairs

    network = score_pairs(model, bank, pairs, progress=progress, **scoring)
    if fusion is None:
        return PairScores(network, network, None, False)
    shape = shape_similarities(bank, pairs, progress=progress)
    return PairScores(fusion.fuse(network, shape), network, shape, True)
