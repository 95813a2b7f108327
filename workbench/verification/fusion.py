"""The verdict's score: the network's same-writer probability fused with the registered shape
correlations of the two normalized images (our addition to the paper).

The Siamese network pools its maps (SPP, cross-attention over 21 tokens, |F1 - F2|), so it
compares what the strokes look like more than where they lie; on a script or scanner it never
trained on that is close to chance. Eq. 2-5 have already registered both images (centroid,
scale), so the highest correlation of their ink over small shifts (``copies.copy_similarity``,
the copy check's measure, -1..1) compares the signatures' shapes directly, with nothing learned
that could fail to transfer. One global correlation forgives no local variation, though: a
genuine signing whose second half drifts a few pixels correlates as badly as a forgery. The
*local* shape correlation (``local_similarity``) cuts the questioned image into square patches
and lets each find its own best place in the reference, a few pixels around where the global
shift puts it (and the reverse), then averages the patches' correlations weighted by their ink:
a writer's own variation moves strokes, a forger's hand changes their shape. The measures are
fused by a logistic regression fitted on the validation writers' pairs (genuine against
forgery pairs, both classes weighted equally; scikit-learn):

    fused = sigmoid(intercept + w_network * log(p1 / (1 - p1)) + w_shape * correlation
                    + w_local * local correlation)

in 0..1, higher = more likely the same writer, decided at its own validation threshold: where
the fused scores decide the most validation pairs right (``threshold_rule`` "accuracy", the
paper's measure; skilled forgeries outnumber genuine pairs there, so it accepts fewer
forgeries than the EER point) or the EER point ("eer", the rule before the twelfth session).
``cli.fuse`` fits it; the weights' JSON carries it as ``score_fusion``; the verdict,
``evaluate``, the Evaluate tab and ``calibrate`` use it when present, and the network's
probability and the correlations stay visible beside it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from workbench import metrics
from workbench.verification.calibration import score_log_odds
from workbench.verification.copies import MAX_SHIFT, registered_correlation

KEY = "score_fusion"  # where the weights' JSON keeps it
LOCAL_PATCH = 24  # pixels of the normalized image: a square patch
LOCAL_SEARCH = 12  # pixels each patch may move beyond the global shift
THRESHOLD_RULES = ("accuracy", "eer")  # how the validation threshold is set (see fit_fusion)


def _ink(image: np.ndarray) -> np.ndarray:
    return 255.0 - image.astype(np.float32)


def _one_way(reference, questioned, dx, dy, patch, search) -> tuple[float, float]:
    """Sum over ``questioned``'s patches (a grid, ``patch`` apart) of ink x best correlation
    within ``reference`` around the patch's place shifted by (dx, dy), and the ink summed."""
    height, width = questioned.shape
    pad = search + MAX_SHIFT
    padded = cv2.copyMakeBorder(reference, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)
    weighted = total = 0.0
    floor = 0.02 * float(questioned.sum())  # patches with less of the ink are left out
    for y in range(0, height - patch + 1, patch):
        for x in range(0, width - patch + 1, patch):
            piece = questioned[y : y + patch, x : x + patch]
            ink = float(piece.sum())
            if ink <= floor or piece.std() < 1e-3:
                continue
            top, left = y + dy + pad - search, x + dx + pad - search
            region = padded[top : top + patch + 2 * search, left : left + patch + 2 * search]
            best = 0.0
            if region.std() >= 1e-3:
                best = float(np.nanmax(cv2.matchTemplate(region, piece, cv2.TM_CCOEFF_NORMED)))
            weighted += ink * min(max(best, -1.0), 1.0)
            total += ink
    return weighted, total


def local_similarity(
    reference: np.ndarray,
    questioned: np.ndarray,
    *,
    patch: int = LOCAL_PATCH,
    search: int = LOCAL_SEARCH,
    shift: tuple[int, int] | None = None,
) -> float:
    """The local shape correlation (-1..1) of two normalized ``uint8`` (H, W) images of one
    size: after the best global shift (up to ``copies.MAX_SHIFT`` px; ``shift``, when the
    caller has it from ``copies.registered_correlation``), each ``patch`` x ``patch`` square
    of one image's ink finds its highest correlation within ``search`` px of its place in the
    other; the ink-weighted mean over both images' patches. 0 when either image has no ink
    variation.

    Raises:
        ValueError: images of different shapes.
    """
    if shift is None:
        shift = registered_correlation(reference, questioned)[1]  # checks the shapes
    elif reference.shape != questioned.shape:
        raise ValueError(
            f"Compare normalized images of one size, not {reference.shape} and {questioned.shape}."
        )
    ink_r, ink_q = _ink(reference), _ink(questioned)
    if ink_r.std() < 1e-3 or ink_q.std() < 1e-3:
        return 0.0
    dx, dy = shift  # the questioned image's place in the reference
    forward = _one_way(ink_r, ink_q, dx, dy, patch, search)
    backward = _one_way(ink_q, ink_r, -dx, -dy, patch, search)
    total = forward[1] + backward[1]
    return (forward[0] + backward[0]) / total if total > 0 else 0.0


def shape_measures(
    reference: np.ndarray, questioned: np.ndarray, *, local: bool
) -> tuple[float, float | None]:
    """The shape correlation (``copies.copy_similarity``) of two normalized images and, when
    ``local``, their local shape correlation, registered by one global correlation."""
    shape, shift = registered_correlation(reference, questioned)
    return shape, (local_similarity(reference, questioned, shift=shift) if local else None)


@dataclass(frozen=True)
class ScoreFusion:
    """The fused score's parameters, its threshold and the data they come from.

    Attributes:
        intercept, network_weight, shape_weight, local_weight: the logistic regression's (on
            the network score's log-odds, the shape correlation and the local shape
            correlation; ``local_weight`` 0 for a fusion of the first two alone, as stored
            before the local measure existed).
        threshold: the fused score's validation threshold (``threshold_rule``: "eer", the EER
            point of the validation pairs, or "accuracy", their highest accuracy).
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
    local_weight: float = 0.0
    threshold_rule: str = "eer"

    @property
    def uses_local(self) -> bool:
        """Whether the local shape correlation enters the fused score."""
        return self.local_weight != 0.0

    def fuse(self, network, shape, local=None) -> np.ndarray:
        """Fused scores (float64, 0..1) of network probabilities, shape correlations and,
        when the fusion uses it, local shape correlations of the same pairs (equal lengths).

        Raises:
            ValueError: lengths that differ, or no local correlations for a fusion using them.
        """
        network, shape = np.asarray(network, dtype=float), np.asarray(shape, dtype=float)
        if network.shape != shape.shape:
            raise ValueError(f"{network.size} network scores but {shape.size} correlations.")
        z = self.intercept + self.network_weight * score_log_odds(network)
        z = z + self.shape_weight * shape
        if self.uses_local:
            if local is None:
                raise ValueError("This fusion needs the local shape correlations too.")
            local = np.asarray(local, dtype=float)
            if local.shape != network.shape:
                raise ValueError(
                    f"{network.size} network scores but {local.size} local correlations."
                )
            z = z + self.local_weight * local
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ScoreFusion:
        try:
            fusion = cls(**values)
            numbers = (
                fusion.intercept,
                fusion.network_weight,
                fusion.shape_weight,
                fusion.local_weight,
            )
            if not all(np.isfinite(float(v)) for v in numbers):
                raise ValueError("not finite")
            if not 0.0 <= float(fusion.threshold) <= 1.0:
                raise ValueError("threshold outside 0..1")
            if fusion.threshold_rule not in THRESHOLD_RULES:
                raise ValueError(f"threshold rule {fusion.threshold_rule!r}")
        except (TypeError, ValueError) as error:
            raise ValueError(f"The stored score fusion is unreadable ({error}).") from error
        return fusion


def fit_fusion(
    labels, network, shape, local=None, *, data: str = "", threshold_rule: str = "accuracy"
) -> ScoreFusion:
    """The fusion of validation pairs' ``network`` probabilities, ``shape`` correlations and
    (when given) ``local`` shape correlations, ``labels`` 1 (genuine) / 0 (forgery); its
    threshold by ``threshold_rule`` (one of ``THRESHOLD_RULES``).

    Raises:
        ValueError: one class missing, lengths that differ, or an unknown rule.
    """
    if threshold_rule not in THRESHOLD_RULES:
        raise ValueError(f"The threshold rule is one of {', '.join(THRESHOLD_RULES)}.")
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels, dtype=int)
    network, shape = np.asarray(network, dtype=float), np.asarray(shape, dtype=float)
    columns = [score_log_odds(network), shape]
    if local is not None:
        columns.append(np.asarray(local, dtype=float))
    if any(len(c) != len(y) for c in columns):
        raise ValueError(
            f"{len(y)} labels but {', '.join(str(len(c)) for c in columns)} scores and "
            "correlations."
        )
    if y.min(initial=1) == 1 or y.max(initial=0) == 0:
        raise ValueError("The fusion needs genuine and forgery pairs of validation writers.")
    model = LogisticRegression(class_weight="balanced", max_iter=1000)
    model.fit(np.column_stack(columns), y)
    weights = [float(w) for w in model.coef_[0]] + [0.0]
    draft = ScoreFusion(
        float(model.intercept_[0]), weights[0], weights[1], 0.5, local_weight=weights[2]
    )
    fused = draft.fuse(network, shape, local)
    fused_eer, threshold = metrics.eer(y, fused)
    if threshold_rule == "accuracy":
        threshold = metrics.best_accuracy(y, fused)[1]
    return dataclasses.replace(
        draft,
        threshold=float(np.clip(threshold, 0.0, 1.0)),
        threshold_rule=threshold_rule,
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


def shape_correlations(
    bank, pairs, *, local: bool, progress: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """``shape_measures`` of each pair's normalized images, from ``bank`` (an ``ImageBank``
    holding both images of every pair): the shape correlations and, when ``local``, the local
    ones (else None); float64, -1..1."""
    shape = np.empty(len(pairs), dtype=float)
    near = np.empty(len(pairs), dtype=float) if local else None
    for i, pair in enumerate(tqdm(pairs, desc="shape", unit="pair", disable=not progress)):
        reference, questioned = bank.get([pair.reference, pair.questioned])
        shape[i], value = shape_measures(reference, questioned, local=local)
        if near is not None:
            near[i] = value
    return shape, near


@dataclass(frozen=True)
class PairScores:
    """Scores of a list of pairs.

    Attributes:
        scores: what decides (float64, 0..1): the fused score with a fusion, else the network's.
        network: the network's same-writer probabilities.
        shape: the shape correlations (-1..1), or None without a fusion.
        fused: whether ``scores`` are fused.
        local: the local shape correlations (-1..1), or None where the fusion does not use them.
    """

    scores: np.ndarray
    network: np.ndarray
    shape: np.ndarray | None
    fused: bool
    local: np.ndarray | None = None

    def columns(self) -> dict[str, np.ndarray]:
        """The extra columns of a scores CSV: the network score and the shape correlations,
        when fused."""
        if not self.fused:
            return {}
        columns = {"network_score": self.network, "shape": self.shape}
        if self.local is not None:
            columns["local_shape"] = self.local
        return columns


def verdict_scores(
    model, bank, pairs, fusion: ScoreFusion | None, *, progress: bool = False, **scoring
) -> PairScores:
    """The scores that decide each pair: the network's (``scoring.score_pairs``, with its
    keyword ``scoring`` options), fused with the shape correlations when ``fusion`` is given."""
    from workbench.verification.scoring import score_pairs

    network = score_pairs(model, bank, pairs, progress=progress, **scoring)
    if fusion is None:
        return PairScores(network, network, None, False)
    shape, local = shape_correlations(bank, pairs, local=fusion.uses_local, progress=progress)
    return PairScores(fusion.fuse(network, shape, local), network, shape, True, local)
