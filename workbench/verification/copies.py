"""Too identical is suspicious (issue 13): two signings by one hand are never the same.

A questioned signature that matches a reference almost pixel for pixel after registration (a
pixel copy, a rescan or print of the reference, a tracing over it) is flagged as a possible copy
or tracing, whatever the verifier's score says. The measure: the highest Pearson correlation of
the two normalized images' ink (``255 - image``, after eq. 1-5, so position, scale and grey
levels are already registered) over shifts of up to ``MAX_SHIFT`` pixels. The threshold: the
99.9th percentile of the genuine pairs of the validation writers (``cli.calibrate``), so that
about one genuine pair in a thousand is flagged. Not their maximum: real corpora hold second
scans of one signing (BHSig-H's validation writers have five pairs above the 99.9th
percentile, up to 0.992), and those are exactly what the check is for.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MAX_SHIFT = 8  # pixels of the normalized image; registration leaves at most a few


def copy_similarity(reference: np.ndarray, questioned: np.ndarray, *, max_shift=MAX_SHIFT) -> float:
    """Highest correlation (-1..1) of the ink of two normalized ``uint8`` (H, W) images of one
    size over shifts up to ``max_shift`` pixels; 0 when either has no ink variation.

    Raises:
        ValueError: images of different shapes.
    """
    return registered_correlation(reference, questioned, max_shift=max_shift)[0]


def registered_correlation(
    reference: np.ndarray, questioned: np.ndarray, *, max_shift=MAX_SHIFT
) -> tuple[float, tuple[int, int]]:
    """``copy_similarity`` and the shift (dx, dy) of ``questioned`` within ``reference`` that
    gives it ((0, 0) when either image has no ink variation).

    Raises:
        ValueError: images of different shapes.
    """
    if reference.shape != questioned.shape:
        raise ValueError(
            f"Compare normalized images of one size, not {reference.shape} and {questioned.shape}."
        )
    ink_r = 255.0 - reference.astype(np.float32)
    ink_q = 255.0 - questioned.astype(np.float32)
    if ink_r.std() < 1e-3 or ink_q.std() < 1e-3:
        return 0.0, (0, 0)
    padded = cv2.copyMakeBorder(
        ink_r, max_shift, max_shift, max_shift, max_shift, cv2.BORDER_CONSTANT, value=0.0
    )
    scores = cv2.matchTemplate(padded, ink_q, cv2.TM_CCOEFF_NORMED)
    y, x = np.unravel_index(int(np.nanargmax(scores)), scores.shape)
    return float(np.clip(scores[y, x], -1.0, 1.0)), (int(x) - max_shift, int(y) - max_shift)


@dataclass(frozen=True)
class CopyCheck:
    """The rule that flags copies: ``similarity > threshold``.

    Attributes:
        threshold: the ``quantile`` of the similarities of the validation writers' genuine
            pairs.
        n_pairs: how many genuine pairs it was taken over.
        percentile_99: their 99th percentile, and ``maximum``, for context; ``above``: how many
            of them lie above the threshold.
        data: where the pairs come from, in words.
    """

    threshold: float
    n_pairs: int
    percentile_99: float
    data: str = ""
    quantile: float = 0.999
    maximum: float | None = None
    above: int | None = None
    measure: str = (
        f"highest correlation of the normalized images' ink over shifts of up to {MAX_SHIFT} px"
    )

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, values: dict) -> CopyCheck:
        try:
            return cls(**values)
        except TypeError as error:
            raise ValueError(f"Not a copy-check record: {error}") from None


def fit_copy_check(genuine_similarities, *, quantile: float = 0.999, data: str = "") -> CopyCheck:
    """The copy rule from the similarities of validation writers' genuine pairs: the
    threshold is their ``quantile``.

    Raises:
        ValueError: no similarities, or a quantile outside (0, 1].
    """
    values = np.asarray(genuine_similarities, dtype=float)
    if len(values) == 0:
        raise ValueError("No genuine validation pairs to set the copy threshold on.")
    if not 0 < quantile <= 1:
        raise ValueError(f"The quantile must lie in (0, 1], not {quantile}.")
    threshold = float(np.quantile(values, quantile))
    return CopyCheck(
        threshold=threshold,
        n_pairs=len(values),
        percentile_99=float(np.percentile(values, 99)),
        data=data,
        quantile=quantile,
        maximum=float(values.max()),
        above=int((values > threshold).sum()),
    )


@dataclass(frozen=True)
class CopyFlag:
    """The copy check of one questioned signature against its references."""

    similarity: float
    reference: int  # index of the most similar reference
    threshold: float
    flagged: bool

    def message(self) -> str:
        if not self.flagged:
            return ""
        return (
            f"POSSIBLE COPY OR TRACING: the questioned signature matches reference "
            f"{self.reference + 1} almost exactly after registration (similarity "
            f"{self.similarity:.3f}, above {self.threshold:.3f}, which 99.9% of pairs of genuine "
            "signatures of one validation writer stay below). Two signings by one hand are "
            "hardly ever this alike: examine it for a pixel copy, a rescan or a tracing."
        )


def check_copies(check: CopyCheck, references, questioned: np.ndarray, values=None) -> CopyFlag:
    """The copy flag of ``questioned`` against each normalized reference image; ``values``:
    their ``copy_similarity`` where already computed (one per reference)."""
    if values is None:
        values = [copy_similarity(r, questioned) for r in references]
    index = int(np.argmax(values))
    return CopyFlag(values[index], index, check.threshold, values[index] > check.threshold)
