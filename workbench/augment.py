"""Augmentation of normalized, ink-bright image tensors (torchvision.transforms.v2).

Two kinds, a training switch (``--augment light|real``):

- ``light``: a small affine transform (``light_affine``).
- ``real``: ``light`` plus the variation of real writing conditions that survives the
  preprocessing (eq. 1 already normalizes ink darkness and paper): elastic warps of the strokes
  (torchvision's ``ElasticTransform``), stroke width (a pen thicker or finer than the training
  writers'), blur (focus, a low-resolution scan or photo) and a slight perspective (a phone
  held not quite parallel to the paper).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2


def light_affine() -> v2.RandomAffine:
    """Small rotation (5 deg), translation (4%), scale (0.9-1.1) and shear (5 deg); empty paper
    (0) fills.
    """
    return v2.RandomAffine(degrees=5, translate=(0.04, 0.04), scale=(0.9, 1.1), shear=5, fill=0.0)


class StrokeWidth(torch.nn.Module):
    """With probability ``p``, thicker strokes (3 x 3 dilation of the bright ink) or, as often,
    finer ones (half-way to a 3 x 3 erosion, so that one-pixel strokes fade but do not vanish).
    Uses torch's global generator, like the other v2 transforms."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return x
        batch = x[None] if x.dim() == 3 else x
        if torch.rand(()) < 0.5:
            out = torch.nn.functional.max_pool2d(batch, 3, 1, 1)
        else:
            out = 0.5 * (batch - torch.nn.functional.max_pool2d(-batch, 3, 1, 1))
        return out[0] if x.dim() == 3 else out


def real_variation() -> v2.Compose:
    """``light_affine``, then a slight perspective (probability 0.3), an elastic warp (0.5),
    stroke width (0.5) and a Gaussian blur (0.3)."""
    return v2.Compose(
        [
            light_affine(),
            v2.RandomPerspective(distortion_scale=0.15, p=0.3, fill=0.0),
            v2.RandomApply([v2.ElasticTransform(alpha=30.0, sigma=6.0, fill=0.0)], p=0.5),
            StrokeWidth(p=0.5),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.3, 1.2))], p=0.3),
        ]
    )


AUGMENTATIONS = {"light": light_affine, "real": real_variation}


def _transform(kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A new per-image transform of ``kind`` (``AUGMENTATIONS``)."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"Unknown augmentation {kind!r}: use {', '.join(AUGMENTATIONS)}.")
    return AUGMENTATIONS[kind]()


def image_augmenter(kind: str = "light") -> Callable[[torch.Tensor], torch.Tensor]:
    """Training augmentation of image batches of ``kind`` (``AUGMENTATIONS``)."""
    transform = _transform(kind)
    return lambda x: augment_batch(x, transform)


def augment_batch(x: torch.Tensor, affine: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Each (1, H, W) image of an (N, 1, H, W) batch gets its own random transform; channels_last
    out.
    """
    return torch.stack([affine(v) for v in x]).contiguous(memory_format=torch.channels_last)


def pair_augmenter(
    seed: int, kind: str = "light"
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Training augmentation of pair batches: ``kind`` (``AUGMENTATIONS``) on each image, then
    each pair's order swapped with probability 1/2 (seeded generator), so that neither branch is
    always the reference."""
    affine = _transform(kind)
    generator = torch.Generator().manual_seed(seed)

    def augment(x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1, x2 = augment_batch(x1, affine), augment_batch(x2, affine)
        swap = (torch.rand(x1.shape[0], generator=generator) < 0.5).to(x1.device)
        a = torch.where(swap[:, None, None, None], x2, x1)
        b = torch.where(swap[:, None, None, None], x1, x2)
        return a, b

    return augment
