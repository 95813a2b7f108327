"""SE and CBAM, the conventional attention modules of the paper's Table 3, applied per branch."""

from __future__ import annotations

import torch
from torch import nn


def _hidden(channels: int, reduction: int) -> int:
    return max(channels // reduction, 4)


class SqueezeExcitation(nn.Module):
    """Squeeze-and-Excitation (Hu et al.): channel gates from global average pooling."""

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        hidden = _hidden(channels, reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.GELU(),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x1: torch.Tensor, x2: torch.Tensor):
        """(B, C, H, W) x 2 -> (y1, y2, None): channel attention has no spatial map."""
        return x1 * self.gate(x1), x2 * self.gate(x2), None


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al.): channel then 7x7 spatial attention."""

    def __init__(self, channels: int, *, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        hidden = _hidden(channels, reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.GELU(), nn.Conv2d(hidden, channels, 1)
        )
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def _one(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        channel = torch.sigmoid(
            self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
        )
        x = x * channel
        spatial = torch.sigmoid(
            self.spatial(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1))
        )
        return x * spatial, spatial[:, 0]

    def forward(self, x1: torch.Tensor, x2: torch.Tensor):
        """(B, C, H, W) x 2 -> (y1, y2, maps) with maps (B, 2, H, W) the spatial gates."""
        y1, s1 = self._one(x1)
        y2, s2 = self._one(x2)
        return y1, y2, torch.stack([s1, s2], dim=1)


class NoAttention(nn.Module):
    """Identity, for the ablation without attention."""

    def __init__(self, channels: int = 0) -> None:
        super().__init__()

    def forward(self, x1: torch.Tensor, x2: torch.Tensor):
        return x1, x2, None
