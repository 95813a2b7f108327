"""Knowing when the model is out of its depth (issue 13): how far signatures lie from the
images the verifier was trained on, and a plain warning when a comparison lies farther than
the validation writers' comparisons did.

Each normalized image is described by seven statistics of its ink and paper
(``image_statistics``: ink amount, stroke width, grey-level spread inside the ink, edge density,
connected pieces, ink sharpness, paper noise). One Gaussian with a Ledoit-Wolf shrunk covariance
(scikit-learn) is fitted per training corpus to a sample of its training writers' images; an
image's distance is its Mahalanobis distance to the nearest of them, and a comparison's
distance the mean over its images (references and questioned). The threshold is the
``quantile`` (95%) of the *validation* writers' comparison distances, so about 5% of
comparisons from validation writers of trained corpora are flagged by construction; the rate on
corpora never trained on is measured (``cli.calibrate``).

Measured against the alternative of the verifier's own tower features (its backbone, pooled,
one Gaussian; commit 3e2402a): those flagged 20% of synthetic comparisons, these statistics
flag 85% (weights/MODEL_CARD.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

STATISTICS = (
    "log ink pixels",
    "mean stroke half-width (px)",
    "grey-level spread inside the ink",
    "edge pixels per ink pixel",
    "log connected pieces",
    "mean |Laplacian| on the ink",
    "grey-level spread of the paper",
)
INK_LEVEL = 128  # grey levels below it are ink in a normalized image (ink 30, paper 255)


def image_statistics(image: np.ndarray) -> np.ndarray:
    """``STATISTICS`` of one normalized ``uint8`` (H, W) image, float64 (7,)."""
    image = np.asarray(image, dtype=np.uint8)
    ink = image < INK_LEVEL
    count = int(ink.sum())
    if count < 2:
        return np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, float(image.std())])
    half_width = cv2.distanceTransform(ink.astype(np.uint8), cv2.DIST_L2, 3)[ink].mean()
    edges = (cv2.Canny(image, 50, 150) > 0).sum() / count
    pieces = cv2.connectedComponents(ink.astype(np.uint8))[0] - 1
    laplacian = np.abs(cv2.Laplacian(image.astype(np.float32), cv2.CV_32F))[ink].mean()
    paper = image[~ink].std() if (~ink).any() else 0.0
    return np.array(
        [np.log(count), half_width, image[ink].std(), edges, np.log1p(pieces), laplacian, paper],
        dtype=float,
    )


def statistics_of(images) -> np.ndarray:
    """(N, H, W) normalized images -> (N, 7) statistics."""
    return np.array([image_statistics(i) for i in images], dtype=float).reshape(-1, len(STATISTICS))


@dataclass(frozen=True)
class Conditions:
    """The validated conditions: a Gaussian of training images' statistics per training corpus
    and the distance beyond which a comparison is outside them.

    Attributes:
        gaussians: per corpus (name, mean (7,), precision (7, 7)).
        threshold: comparison distances above it are outside validated conditions.
        quantile: the share of validation comparisons the threshold keeps inside.
        n_train_images, n_val_comparisons: what it was fitted and set on.
        data: where those come from, in words.
    """

    gaussians: tuple
    threshold: float
    quantile: float
    n_train_images: int
    n_val_comparisons: int
    data: str = ""

    def distances(self, features: np.ndarray) -> np.ndarray:
        """(N, 7) statistics -> (N,) Mahalanobis distances to the nearest corpus's Gaussian."""
        features = np.asarray(features, dtype=float)
        found = []
        for _, mean, precision in self.gaussians:
            centred = features - np.asarray(mean)
            squared = np.einsum("nc,cd,nd->n", centred, np.asarray(precision), centred)
            found.append(np.sqrt(np.maximum(squared, 0.0)))
        return np.min(found, axis=0)

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["gaussians"] = [
            {"corpus": name, "mean": list(mean), "precision": [list(r) for r in precision]}
            for name, mean, precision in self.gaussians
        ]
        return out

    @classmethod
    def from_dict(cls, values: dict) -> Conditions:
        try:
            gaussians = tuple(
                (g["corpus"], tuple(g["mean"]), tuple(tuple(r) for r in g["precision"]))
                for g in values["gaussians"]
            )
            return cls(**{**values, "gaussians": gaussians})
        except (KeyError, TypeError) as error:
            raise ValueError(f"Not a conditions record: {error}") from None


def fit_gaussian(train_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, precision) of a Ledoit-Wolf shrunk Gaussian of (N, C) features.

    Raises:
        ValueError: fewer than 2 images.
    """
    from sklearn.covariance import LedoitWolf

    features = np.asarray(train_features, dtype=float)
    if len(features) < 2:
        raise ValueError("The conditions need at least 2 training images.")
    fitted = LedoitWolf().fit(features)
    return fitted.location_, fitted.precision_


def fit_conditions(
    train_features: dict[str, np.ndarray],
    val_comparison_features: list[np.ndarray],
    *,
    quantile: float = 0.95,
    data: str = "",
) -> Conditions:
    """Fit one Gaussian per training corpus (``train_features``: name -> (N, 7) statistics),
    then set the threshold at ``quantile`` of the validation comparisons' mean distances (each
    item: the (k + 1, 7) statistics of one comparison's images).

    Raises:
        ValueError: a corpus with too few training images, no validation comparisons, or a
            quantile outside (0, 1).
    """
    if not 0 < quantile < 1:
        raise ValueError(f"The quantile must lie in (0, 1), not {quantile}.")
    if not val_comparison_features:
        raise ValueError("No validation comparisons to set the conditions' threshold on.")
    if not train_features:
        raise ValueError("The conditions need training images of at least one corpus.")
    gaussians = []
    for name, features in train_features.items():
        mean, precision = fit_gaussian(features)
        gaussians.append(
            (
                name,
                tuple(float(v) for v in mean),
                tuple(tuple(float(v) for v in r) for r in precision),
            )
        )
    draft = Conditions(tuple(gaussians), np.inf, quantile, 0, 0)
    values = [float(draft.distances(f).mean()) for f in val_comparison_features]
    return Conditions(
        gaussians=tuple(gaussians),
        threshold=float(np.quantile(values, quantile)),
        quantile=quantile,
        n_train_images=int(sum(len(f) for f in train_features.values())),
        n_val_comparisons=len(values),
        data=data,
    )


@dataclass(frozen=True)
class ConditionsCheck:
    """How far one comparison lies from the validated conditions."""

    distance: float
    threshold: float
    quantile: float = 0.95

    @property
    def outside(self) -> bool:
        return self.distance > self.threshold

    def message(self) -> str:
        if not self.outside:
            return ""
        return (
            "OUTSIDE VALIDATED CONDITIONS: these signatures lie farther from the signatures the "
            f"model was trained on (distance {self.distance:.1f}) than "
            f"{100 * self.quantile:g}% of the validation writers' comparisons did "
            f"({self.threshold:.1f}). The score, the verdict and the likelihood ratios were "
            "never validated on material like this: do not rely on them."
        )


def check_conditions(conditions: Conditions, images) -> ConditionsCheck:
    """The conditions check of one comparison's normalized images (references and
    questioned, (k + 1, H, W) ``uint8``)."""
    distance = float(conditions.distances(statistics_of(images)).mean())
    return ConditionsCheck(distance, conditions.threshold, conditions.quantile)


def stored_conditions(card) -> Conditions | None:
    """The conditions a weights card stores (``cli.calibrate``), or None."""
    record = (card.extra or {}).get("conditions")
    try:
        return Conditions.from_dict(record) if isinstance(record, dict) else None
    except ValueError:
        return None
