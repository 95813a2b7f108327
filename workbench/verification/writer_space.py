"""The writer space: the verifier's backbone, run on one image at a time, pooled, and projected
by a linear discriminant analysis fitted on the training writers' genuine signatures, so that
signatures by one writer lie close together and those of different writers apart (issue 11:
holding on corpora never trained on; issue 13: several references used together).

A questioned signature is compared with k references by the cosine between its projection and
the mean of the references' (unit-length) projections: a writer-dependent comparison with the
whole reference set, after Hafemann et al.'s writer-dependent use of learned signature features
and the LDA + cosine scoring of speaker verification. The projection is a linear map of
aggregate statistics (scikit-learn's shrunk LDA), stored in the weights' JSON beside the
calibration; it is fitted on training writers only (``cli.writer_space``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

KEY = "writer_space"


def pooled(maps: torch.Tensor) -> torch.Tensor:
    """Backbone maps (N, C, h, w) -> (N, 2C): the mean and the maximum of every channel."""
    return torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1)


def embed(module: torch.nn.Module, first_block: torch.Tensor) -> np.ndarray:
    """Pooled backbone features (N, 2C) float64 of images given by their ``image_features``
    (the stem and first dense block, which the verdict computes and caches anyway). The
    backbone runs alone: no attention couples it to another image."""
    with torch.inference_mode():
        maps = module.backbone(first_block, from_first_block=True)
        return pooled(maps.float()).cpu().numpy().astype(np.float64)


def embed_images(module: torch.nn.Module, images, *, batch_size: int = 64, progress=None):
    """Pooled backbone features (N, 2C) of normalized ``uint8`` images (N, H, W); ``progress``
    (an iterable wrapper such as tqdm) sees the batches."""
    from workbench.models.verifier import images_to_tensor

    device = next(module.parameters()).device
    starts = range(0, len(images), batch_size)
    out = []
    with torch.inference_mode():
        for start in progress(starts) if progress else starts:
            x = images_to_tensor(images[start : start + batch_size]).to(device)
            out.append(embed(module, module.image_features(x)))
    return np.concatenate(out) if out else np.zeros((0, 2 * module.backbone.out_channels))


@dataclass(frozen=True)
class WriterSpace:
    """A fitted projection: ``project(x) = ((x - mean) / scale) @ projection``.

    Attributes:
        mean, scale: per-feature standardization from the training images (D,).
        projection: the LDA's discriminant directions (D, m).
        writers: training writers it was fitted on; images: their genuine images.
        data: the corpora (names).
    """

    mean: np.ndarray
    scale: np.ndarray
    projection: np.ndarray
    writers: int
    images: int
    data: tuple[str, ...] = ()

    def project(self, features: np.ndarray) -> np.ndarray:
        """(N, D) pooled features -> (N, m) unit-length writer-space vectors."""
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if features.shape[1] != len(self.mean):
            raise ValueError(
                f"The writer space was fitted on {len(self.mean)} features, not "
                f"{features.shape[1]}: it belongs to other weights."
            )
        z = ((features - self.mean) / self.scale) @ self.projection
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)

    def to_dict(self) -> dict:
        def rounded(a):
            return np.round(np.asarray(a, dtype=np.float64), 7).tolist()

        return {
            "method": "scikit-learn LinearDiscriminantAnalysis (eigen, Ledoit-Wolf shrinkage) "
            "on the backbone's pooled features (channel means and maxima); score = cosine to "
            "the references' mean direction",
            "mean": rounded(self.mean),
            "scale": rounded(self.scale),
            "projection": rounded(self.projection),
            "writers": self.writers,
            "images": self.images,
            "data": list(self.data),
        }

    @classmethod
    def from_dict(cls, values: dict) -> WriterSpace:
        try:
            mean = np.asarray(values["mean"], dtype=np.float64)
            scale = np.asarray(values["scale"], dtype=np.float64)
            projection = np.asarray(values["projection"], dtype=np.float64)
            space = cls(
                mean, scale, projection, int(values["writers"]), int(values["images"]),
                tuple(values.get("data", ())),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"Not a writer-space record: {error}") from None
        if mean.ndim != 1 or scale.shape != mean.shape or projection.shape[:1] != mean.shape:
            raise ValueError("Not a writer-space record: its arrays do not fit together.")
        if not (np.isfinite(projection).all() and (scale > 0).all()):
            raise ValueError("Not a writer-space record: non-finite projection or scale.")
        return space


def fit_writer_space(
    features: np.ndarray, writers: list[str], data: tuple[str, ...] = ()
) -> WriterSpace:
    """Fit the projection on pooled features (N, D) of training writers' genuine images.

    Raises:
        ValueError: fewer than 2 writers, or a writer with a single image only.
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    features = np.asarray(features, dtype=np.float64)
    names, counts = np.unique(np.asarray(writers), return_counts=True)
    if len(names) < 2:
        raise ValueError("The writer space needs the images of at least 2 training writers.")
    if len(features) != len(writers):
        raise ValueError(f"{len(features)} feature rows for {len(writers)} writer labels.")
    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-6
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto")
    lda.fit((features - mean) / scale, writers)
    m = min(len(names) - 1, features.shape[1])
    return WriterSpace(mean, scale, lda.scalings_[:, :m].copy(), len(names), len(features), data)


def _direction(projected: np.ndarray) -> np.ndarray:
    """The unit-length mean of the references' unit-length projections (k, m) -> (m,)."""
    centre = np.mean(projected, axis=0)
    return centre / max(float(np.linalg.norm(centre)), 1e-12)


def similarity(space: WriterSpace, references: np.ndarray, questioned: np.ndarray) -> float:
    """Cosine (-1..1) between the questioned signature's writer-space direction and the mean
    direction of the k references (pooled features (k, D) and (D,) or (1, D))."""
    return float(space.project(questioned)[0] @ _direction(space.project(references)))


def stored_writer_space(card) -> WriterSpace | None:
    """The writer space a weights card stores (``cli.writer_space``), or None."""
    record = (card.extra or {}).get(KEY)
    try:
        return WriterSpace.from_dict(record) if isinstance(record, dict) else None
    except ValueError:
        return None


def _projected(space: WriterSpace, features: dict) -> dict:
    """Pooled features by image path -> their unit-length writer-space vectors by path."""
    return dict(zip(features, space.project(np.stack(list(features.values())))))


def comparison_similarities(space: WriterSpace, features: dict, comparisons, k: int) -> np.ndarray:
    """``similarity`` of each comparison's questioned signature to its first ``k`` references,
    from pooled ``features`` by image path (float64, shape (len(comparisons),))."""
    projected = _projected(space, features)
    return np.array(
        [
            float(projected[c.questioned] @ _direction([projected[r] for r in c.references[:k]]))
            for c in comparisons
        ],
        dtype=float,
    )


def pair_similarities(space: WriterSpace, features: dict, pairs) -> np.ndarray:
    """The similarity of each pair's two images (one reference each), from pooled
    ``features`` by image path (float64, shape (len(pairs),))."""
    projected = _projected(space, features)
    return np.array(
        [float(projected[p.reference] @ projected[p.questioned]) for p in pairs], dtype=float
    )
