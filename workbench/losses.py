"""Losses of the verifier: cross-entropy (eq. 11) and the focal contrast loss (eq. 12).

Logits are (B, 2) with class 0 = "same writer"; ``p1 = softmax(logits)[:, 0]``. Targets are 1
for a genuine-genuine pair and 0 for a forgery pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


def _same_writer_class(targets: torch.Tensor) -> torch.Tensor:
    return (1 - targets.long()).clamp(0, 1)  # label 1 (genuine pair) is logit index 0


def _reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "none":
        return losses
    raise ValueError(f"Unknown reduction {reduction!r}: use mean or none.")


def contrastive_ce_loss(
    logits: torch.Tensor, targets: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """Eq. 11: ``-[y ln p1 + (1 - y) ln p2]``, averaged over the batch (``reduction="none"``:
    one loss per pair)."""
    losses = F.cross_entropy(logits, _same_writer_class(targets), reduction="none")
    return _reduce(losses, reduction)


def focal_contrast_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Eq. 12 in its focal reading (DESIGN.md), averaged over the batch (``reduction="none"``:
    one loss per pair):

    ``L = -alpha (1 - p1)^gamma y log p1 - (1 - alpha) p1^gamma (1 - y) log(1 - p1)``.
    With gamma = 0 it is cross-entropy weighted alpha / (1 - alpha) by class.
    """
    log_p = F.log_softmax(logits, dim=1)
    log_p1, log_p2 = log_p[:, 0], log_p[:, 1]
    p1 = log_p1.exp()
    y = targets.to(log_p.dtype)
    positive = -alpha * (1.0 - p1).pow(gamma) * y * log_p1
    negative = -(1.0 - alpha) * p1.pow(gamma) * (1.0 - y) * log_p2
    return _reduce(positive + negative, reduction)


def hardest_pairs(loss: Callable[..., torch.Tensor], keep: float) -> Callable[..., torch.Tensor]:
    """In-batch hard-pair mining: ``loss`` averaged over the hardest ``keep`` share of each class.

    Within a batch, the genuine pairs and the forgery pairs are each ranked by their own loss and
    only the top ``ceil(keep x count)`` of each class count (at least one per class present), so
    the gradient comes from the pairs the model gets most wrong while both classes keep their
    place in every step. ``keep = 1`` is ``loss`` itself.
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"The share of pairs kept must be in (0, 1], not {keep}.")
    if keep == 1.0:
        return loss

    def mined(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        per_pair = loss(logits, targets, reduction="none")
        kept = []
        for label in targets.unique():
            losses = per_pair[targets == label]
            kept.append(losses.topk(math.ceil(keep * losses.numel())).values)
        return torch.cat(kept).mean()

    return mined


def distilled(
    loss: Callable[..., torch.Tensor], weight: float, temperature: float
) -> Callable[..., torch.Tensor]:
    """Knowledge distillation (Hinton et al., 2015) from a teacher verifier's logits.

    ``(1 - weight) * loss(logits, targets) + weight * T^2 * KL(softmax(t / T) || softmax(s / T))``
    with ``s`` the student's and ``t`` the teacher's (B, 2) logits, the divergence averaged over
    the batch. The ``T^2`` keeps the soft term's gradients on the scale of the hard term's. The
    returned criterion takes ``(logits, targets, teacher_logits)``.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"The distillation weight must be in [0, 1], not {weight}.")
    if temperature <= 0:
        raise ValueError(f"The distillation temperature must be positive, not {temperature}.")

    def criterion(
        logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor
    ) -> torch.Tensor:
        soft = F.kl_div(
            F.log_softmax(logits / temperature, dim=1),
            F.log_softmax(teacher_logits.detach() / temperature, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        return (1.0 - weight) * loss(logits, targets) + weight * temperature**2 * soft

    return criterion


LOSSES = {"focal": focal_contrast_loss, "ce": contrastive_ce_loss}
