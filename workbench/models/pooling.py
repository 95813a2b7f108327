"""Spatial pyramid pooling: a feature map becomes a sequence of cell tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SpatialPyramidPooling(nn.Module):
    """Max-pooling pyramid (levels 1, 2, 4 give 1 + 4 + 16 = 21 cells), one C-channel token per
    cell.

    Tokens are ordered level by level, each level's cells row by row.
    """

    def __init__(self, levels: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.levels = tuple(levels)

    @property
    def num_tokens(self) -> int:
        return sum(level * level for level in self.levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, num_tokens, C)."""
        cells = [F.adaptive_max_pool2d(x, level).flatten(2) for level in self.levels]
        return torch.cat(cells, dim=2).transpose(1, 2)
