"""Losses of the verifier: cross-entropy (eq. 11) and the focal contrast loss (eq. 12).

Logits are (B, 2) with class 0 = "same writer"; ``p1 = softmax(logits)[:, 0]``. Targets are 1
for a genuine-genuine pair and 0 for a forgery pair.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _same_writer_class(targets: torch.Tensor) -> torch.Tensor:
    return (1 - targets.long()).clamp(0, 1)  # label 1 (genuine pair) is logit index 0


def contrastive_ce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Eq. 11: ``-[y ln p1 + (1 - y) ln p2]``, averaged over the batch."""
    return F.cross_entropy(logits, _same_writer_class(targets))


def focal_contrast_loss(
    logits: torch.Tensor, targets: torch.Tensor, *, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Eq. 12 in its focal reading (DESIGN.md), averaged over the batch:

    ``L = -alpha (1 - p1)^gamma y log p1 - (1 - alpha) p1^gamma (1 - y) log(1 - p1)``.
    With gamma = 0 it is cross-entropy weighted alpha / (1 - alpha) by class.
    """
    log_p = F.log_softmax(logits, dim=1)
    log_p1, log_p2 = log_p[:, 0], log_p[:, 1]
    p1 = log_p1.exp()
    y = targets.to(log_p.dtype)
    positive = -alpha * (1.0 - p1).pow(gamma) * y * log_p1
    negative = -(1.0 - alpha) * p1.pow(gamma) * (1.0 - y) * log_p2
    return (positive + negative).mean()


LOSSES = {"focal": focal_contrast_loss, "ce": contrastive_ce_loss}
