"""Identification through verification: enroll writers with reference signatures, then rank them.

Enrolling a writer stores normalized reference images; no weights change. A questioned signature
is scored against every enrolled writer's references and writers are ranked by a writer score:
with the pairwise verifier the mean of the per-reference scores (the rule the Verify tab uses
for one writer); with an embedding Siamese the similarity to the writer's *centroid*, the mean of
its references' embeddings (the prototype of the writer), which on validation writers rejects
more never-enrolled writers at the same false rejection than the mean of the per-reference
similarities (weights/MODEL_CARD.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from workbench import engine
from workbench.data.batches import array_batches
from workbench.data.corpus import natural_key

# (references (N, H, W) uint8, questioned (H, W) uint8) -> same-writer scores (N,) in 0..1
Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Match:
    """One enrolled writer's result for a questioned signature."""

    writer: str
    score: float
    scores: tuple[float, ...]


class Gallery:
    """Enrolled writers and their normalized reference images.

    With a scorer that embeds each signature on its own (it has an ``embed`` method, as
    ``embedding_scorer``'s does), ranking embeds every writer's references once and keeps them
    (per scorer) until the writer is enrolled again or removed: a query then costs one
    embedding and one distance per reference, however many writers are enrolled. A writer's
    score is then the similarity to its centroid (the re-normalized mean of its references'
    embeddings); ``Match.scores`` keep the per-reference similarities.
    """

    def __init__(self) -> None:
        self._references: dict[str, np.ndarray] = {}
        self._embedded: dict[int, tuple[object, list[str], np.ndarray, np.ndarray]] = {}

    @property
    def writers(self) -> list[str]:
        return sorted(self._references, key=natural_key)

    def __len__(self) -> int:
        return len(self._references)

    def enroll(self, writer: str, images: np.ndarray) -> None:
        """Add (or replace) a writer with ``images`` (k, H, W) uint8 normalized references."""
        images = np.asarray(images)
        if images.ndim != 3 or len(images) == 0:
            raise ValueError(
                "Enroll a writer with at least one normalized reference image (k, H, W)."
            )
        self._references[str(writer)] = images.copy()
        self._embedded.clear()

    def remove(self, writer: str) -> None:
        self._references.pop(str(writer), None)
        self._embedded.clear()

    def references(self, writer: str) -> np.ndarray:
        return self._references[str(writer)]

    def rank(self, questioned: np.ndarray, scorer: Scorer) -> list[Match]:
        """Enrolled writers sorted by writer score, best first: the mean score against their
        references, or for an embedding scorer the similarity to their centroid."""
        if not self._references:
            raise ValueError("No writers are enrolled.")
        if hasattr(scorer, "embed"):
            return self._rank_embedded(questioned, scorer)
        matches = []
        for writer in self.writers:
            scores = np.asarray(scorer(self._references[writer], questioned), dtype=float)
            matches.append(Match(writer, float(scores.mean()), tuple(float(s) for s in scores)))
        return sorted(matches, key=lambda m: -m.score)

    def _rank_embedded(self, questioned: np.ndarray, scorer) -> list[Match]:
        cached = self._embedded.get(id(scorer))
        if cached is None or cached[0] is not scorer:
            writers = self.writers
            references = scorer.embed(np.concatenate([self._references[w] for w in writers]))
            owner = np.concatenate(
                [np.full(len(self._references[w]), i) for i, w in enumerate(writers)]
            )
            centroids = np.stack([references[owner == i].mean(0) for i in range(len(writers))])
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
            cached = (scorer, writers, references, owner, centroids.astype(references.dtype))
            self._embedded[id(scorer)] = cached
        _, writers, references, owner, centroids = cached
        query = scorer.embed(questioned[None])
        scores = scorer.similarity(references, query)
        writer_scores = scorer.similarity(centroids, query)
        matches = [
            Match(w, float(writer_scores[i]), tuple(float(s) for s in scores[owner == i]))
            for i, w in enumerate(writers)
        ]
        return sorted(matches, key=lambda m: -m.score)


def verifier_scorer(model: torch.nn.Module, batch_size: int = 64) -> Scorer:
    """Scores with the pairwise verifier: p1 of (reference, questioned) for each reference, on
    the model's device (``engine.predict``)."""

    def score(references: np.ndarray, questioned: np.ndarray) -> np.ndarray:
        query = np.repeat(questioned[None], len(references), axis=0)
        return engine.predict(model, array_batches(references, query, batch_size=batch_size))

    return score
