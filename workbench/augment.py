"""Light augmentation of normalized, ink-bright image tensors (torchvision.transforms.v2)."""

from __future__ import annotations

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
