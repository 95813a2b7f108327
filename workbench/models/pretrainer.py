"""Writer-classification pre-training of the verifier's backbone (SigNet-F style, Hafemann et
al. 2017): the DenseNet-36 tower learns to tell the training writers apart and, with a second
head, genuine signatures from skilled forgeries; the Siamese verifier then starts from the
tower (``train --init-backbone``) instead of from random weights.

Loss (``pretrain_loss``): ``(1 - lam) * CE(writer | genuine only) + lam * BCE(forgery)``;
SigNet-F reports lam = 0.95 as its best when skilled forgeries are available.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from workbench.config import ModelConfig, NestsBackbone
from workbench.models.backbone import DenseNetBackbone


@dataclass(frozen=True)
class PretrainerConfig(NestsBackbone):
    """Attributes:
    backbone: the verifier's configuration (its width and input size; attention and
        cross-attention are not part of the tower and are ignored here).
    n_writers: writer classes.
    dropout: before both heads.
    """

    n_writers: int
    backbone: ModelConfig = field(default_factory=ModelConfig)
    dropout: float = 0.1

    @classmethod
    def from_dict(cls, values: dict) -> PretrainerConfig:
        return cls(**cls._parsed(values))


class WriterPretrainer(nn.Module):
    """(B, 1, H, W) ink-bright images -> (writer logits (B, n_writers), forgery logit (B,)).

    ``backbone`` has the same structure and parameter names as the verifier's, so its state
    dict loads into ``SiameseVerifier.backbone``.
    """

    def __init__(self, config: PretrainerConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = DenseNetBackbone(config.backbone)
        self.dropout = nn.Dropout(config.dropout)
        self.writer_head = nn.Linear(self.backbone.out_channels, config.n_writers)
        self.forgery_head = nn.Linear(self.backbone.out_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.dropout(self.backbone(x).mean(dim=(2, 3)))
        return self.writer_head(pooled), self.forgery_head(pooled)[:, 0]


def pretrain_loss(
    outputs: tuple[torch.Tensor, torch.Tensor], target: torch.Tensor, *, lam: float = 0.95
) -> torch.Tensor:
    """SigNet-F's loss. ``target`` (B, 2) int: column 0 the writer class, column 1 = 1 for a
    skilled forgery (its writer is the imitated one, so it takes no part in the writer loss)."""
    writer_logits, forgery_logit = outputs
    writers, forged = target[:, 0].long(), target[:, 1].float()
    genuine = forged == 0
    writer_loss = (
        F.cross_entropy(writer_logits[genuine], writers[genuine])
        if genuine.any()
        else writer_logits.sum() * 0.0
    )
    forgery_loss = F.binary_cross_entropy_with_logits(forgery_logit, forged)
    return (1.0 - lam) * writer_loss + lam * forgery_loss
