"""Light augmentation of normalized, ink-bright image tensors (torchvision.transforms.v2)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2


def light_affine() -> v2.RandomAffine:
    """Small rotation (5 deg), translation (4%), scale (0.9-1.1) and shear (5 deg); empty paper
    (0) fills.
    """
    return v2.RandomAffine(degrees=5, translate=(0.04, 0.04), scale=(0.9, 1.1), shear=5, fill=0.0)


def augment_batch(x: torch.Tensor, affine: v2.RandomAffine) -> torch.Tensor:
    """Each (1, H, W) image of an (N, 1, H, W) batch gets its own random transform; channels_last
    out.
    """
    return torch.stack([affine(v) for v in x]).contiguous(memory_format=torch.channels_last)


def pair_augmenter(
    seed: int,
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Training augmentation of pair batches: ``light_affine`` on each image, then each pair's
    order swapped with probability 1/2 (seeded generator), so that neither branch is always the
    reference."""
    affine = light_affine()
    generator = torch.Generator().manual_seed(seed)

    def augment(x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1, x2 = augment_batch(x1, affine), augment_batch(x2, affine)
        swap = torch.rand(x1.shape[0], generator=generator) < 0.5
        a = torch.where(swap[:, None, None, None], x2, x1)
        b = torch.where(swap[:, None, None, None], x1, x2)
        return a, b

    return augment
