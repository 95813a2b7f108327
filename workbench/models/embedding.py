"""The slides' Siamese network: one shared CNN tower maps each signature to an embedding, and
verification is a distance, with no interaction between the two branches.

Learning mechanisms: contrastive loss with a margin (pairs) and triplet loss (anchor, positive,
negative). Because each signature is embedded on its own, a gallery of references is embedded
once, unlike the paper's pairwise model whose attention couples both inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from workbench.config import ModelConfig, NestsBackbone
from workbench.models.backbone import DenseNetBackbone


@dataclass(frozen=True)
class EmbeddingConfig(NestsBackbone):
    """Attributes:
    backbone: the DenseNet-36 tower's configuration (its attention/cross-attention are unused).
    dim: embedding size; embeddings are L2-normalized, so distances lie in 0..2.
    loss: ``contrastive`` or ``triplet``.
    margin: the loss's margin.
    """

    backbone: ModelConfig = ModelConfig(attention="none", cross_attention=False)
    dim: int = 128
    loss: str = "contrastive"
    margin: float = 1.0

    @classmethod
    def from_dict(cls, values: dict) -> EmbeddingConfig:
        """The inverse of ``to_dict``; missing entries take their defaults."""
        return replace(cls(), **cls._parsed(values))


class EmbeddingSiamese(nn.Module):
    """(B, 1, H, W) -> (B, dim) unit-length embeddings from a shared DenseNet-36 tower."""

    def __init__(self, config: EmbeddingConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = DenseNetBackbone(config.backbone)
        self.project = nn.Linear(self.backbone.out_channels, config.dim)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) ink-bright images -> (B, dim) L2-normalized embeddings."""
        pooled = self.backbone(x).mean(dim=(2, 3))
        return F.normalize(self.project(pooled), dim=1)

    def forward(self, *images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """One (B, 1, H, W) batch -> its (B, dim) embeddings; several batches (a pair, a
        triplet) -> a tuple of their embeddings.

        Each batch goes through the backbone on its own, so BatchNorm's training statistics are
        those of calling the model once per batch.
        """
        if not images:
            raise ValueError("EmbeddingSiamese needs at least one batch of images.")
        if len(images) == 1:
            return self.embed(images[0])
        return tuple(self.embed(x) for x in images)

    @staticmethod
    def similarity(e1: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        """Score in 0..1 from the embedding distance: ``1 - ||e1 - e2|| / 2``."""
        return 1.0 - (e1 - e2).norm(dim=-1) / 2.0


def contrastive_loss(
    e1: torch.Tensor, e2: torch.Tensor, same: torch.Tensor, *, margin: float = 1.0
) -> torch.Tensor:
    """Hadsell et al.: ``y d^2 + (1 - y) max(0, margin - d)^2`` averaged, d the Euclidean distance,
    y = 1 for a pair of the same writer."""
    d = (e1 - e2).norm(dim=1)
    y = same.to(d.dtype)
    return (y * d.pow(2) + (1 - y) * F.relu(margin - d).pow(2)).mean()


def triplet_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, *, margin: float = 0.2
) -> torch.Tensor:
    """``max(0, d(a, p) - d(a, n) + margin)`` averaged: pull the same writer closer than another."""
    return F.triplet_margin_loss(anchor, positive, negative, margin=margin)


def batch_hard_triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    writers: torch.Tensor,
    *,
    margin: float = 0.2,
) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans, Beyer and Leibe, 2017): for each anchor, its farthest
    same-writer embedding and its nearest other-writer embedding among all ``3B`` embeddings of
    the batch, ``max(0, d(a, p_hardest) - d(a, n_hardest) + margin)`` averaged.

    Args:
        anchor, positive, negative: (B, dim) embeddings; anchor i and positive i share a writer.
        writers: (2, B) writer indices of the anchors (and positives) and of the negatives.
    """
    embeddings = torch.cat([anchor, positive, negative])
    labels = torch.cat([writers[0], writers[0], writers[1]]).to(embeddings.device)
    distances = torch.cdist(anchor, embeddings)  # (B, 3B)
    same = labels[None, :] == labels[: len(anchor), None]
    self_pair = torch.zeros_like(same)
    self_pair[torch.arange(len(anchor)), torch.arange(len(anchor))] = True
    hardest_positive = distances.masked_fill(~same | self_pair, float("-inf")).amax(dim=1)
    hardest_negative = distances.masked_fill(same, float("inf")).amin(dim=1)
    return F.relu(hardest_positive - hardest_negative + margin).mean()
