"""Knowing when the model is out of its depth (issue 13): how far signatures lie from the
images the verifier was trained on, and a plain warning when a comparison lies farther than
the validation writers' comparisons did.

Each normalized image is described by the verifier's own shared tower (the backbone before the
pairwise attention, global-average pooled: ``out_channels`` numbers). A Gaussian with a
Ledoit-Wolf shrunk covariance (scikit-learn) is fitted to a sample of the *training* writers'
images; an image's distance is its Mahalanobis distance to that Gaussian, and a comparison's
distance the mean over its images (references and questioned). The threshold is the
``quantile`` (95%) of the *validation* writers' comparison distances, so about 5% of
comparisons from validation writers of trained corpora are flagged by construction, and the
rate on corpora never trained on is measured (``cli.calibrate``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from workbench import engine
from workbench.data.batches import array_batches


class TowerFeatures(nn.Module):
    """The verifier's shared tower on one image, average-pooled: (N, 1, H, W) -> (N, C)."""

    def __init__(self, verifier: nn.Module) -> None:
        super().__init__()
        self.backbone = verifier.backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x).mean(dim=(2, 3))


def tower_features(verifier: nn.Module, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(N, H, W) normalized ``uint8`` images -> (N, C) float64 tower features."""
    if len(images) == 0:
        return np.zeros((0, verifier.backbone.out_channels))
    return engine.predict(
        TowerFeatures(verifier), array_batches(np.asarray(images), batch_size=batch_size),
        output=lambda x: x,
    )  # fmt: skip


@dataclass(frozen=True)
class Conditions:
    """The validated conditions: a Gaussian of training images' tower features and the
    distance beyond which a comparison is outside them.

    Attributes:
        mean: (C,) feature mean; precision: (C, C) inverse shrunk covariance.
        threshold: comparison distances above it are outside validated conditions.
        quantile: the share of validation comparisons the threshold keeps inside.
        n_train_images, n_val_comparisons: what it was fitted and set on.
        data: where those come from, in words.
    """

    mean: tuple[float, ...]
    precision: tuple[tuple[float, ...], ...]
    threshold: float
    quantile: float
    n_train_images: int
    n_val_comparisons: int
    data: str = ""

    def distances(self, features: np.ndarray) -> np.ndarray:
        """(N, C) features -> (N,) Mahalanobis distances."""
        centred = np.asarray(features, dtype=float) - np.asarray(self.mean)
        squared = np.einsum("nc,cd,nd->n", centred, np.asarray(self.precision), centred)
        return np.sqrt(np.maximum(squared, 0.0))

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["mean"] = [round(v, 6) for v in self.mean]
        out["precision"] = [[round(v, 6) for v in row] for row in self.precision]
        return out

    @classmethod
    def from_dict(cls, values: dict) -> Conditions:
        try:
            return cls(
                **{
                    **values,
                    "mean": tuple(values["mean"]),
                    "precision": tuple(tuple(r) for r in values["precision"]),
                }
            )
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
    train_features: np.ndarray,
    val_comparison_features: list[np.ndarray],
    *,
    quantile: float = 0.95,
    data: str = "",
) -> Conditions:
    """Fit the Gaussian on training images, then set the threshold at ``quantile`` of the
    validation comparisons' mean distances (each item: the (k + 1, C) features of one
    comparison's images).

    Raises:
        ValueError: too few training images, no validation comparisons, or a quantile outside
            (0, 1).
    """
    if not 0 < quantile < 1:
        raise ValueError(f"The quantile must lie in (0, 1), not {quantile}.")
    if not val_comparison_features:
        raise ValueError("No validation comparisons to set the conditions' threshold on.")
    mean, precision = fit_gaussian(train_features)
    draft = Conditions(tuple(mean), tuple(map(tuple, precision)), np.inf, quantile, 0, 0)
    values = [float(draft.distances(f).mean()) for f in val_comparison_features]
    return Conditions(
        mean=tuple(float(v) for v in mean),
        precision=tuple(tuple(float(v) for v in row) for row in precision),
        threshold=float(np.quantile(values, quantile)),
        quantile=quantile,
        n_train_images=len(train_features),
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


def check_conditions(
    conditions: Conditions, verifier: nn.Module, images: np.ndarray
) -> ConditionsCheck:
    """The conditions check of one comparison's normalized images (references and
    questioned, (k + 1, H, W) ``uint8``)."""
    distance = float(conditions.distances(tower_features(verifier, images)).mean())
    return ConditionsCheck(distance, conditions.threshold, conditions.quantile)


def stored_conditions(card) -> Conditions | None:
    """The conditions a weights card stores (``cli.calibrate``), or None."""
    record = (card.extra or {}).get("conditions")
    try:
        return Conditions.from_dict(record) if isinstance(record, dict) else None
    except ValueError:
        return None
