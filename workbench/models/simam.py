"""SimAM and the paper's difference SimAM (the "improved SimAM", Fig. 2).

SimAM (Yang et al., 2021) weighs each neuron by its inverse minimal energy (eq. 6), per channel
over H x W, with no parameters:
``d = (X - mean)^2``, ``v = sum(d) / (H*W - 1)``, ``E_inv = d / (4 (v + lambda)) + 0.5``,
``X * sigmoid(E_inv)``. The difference SimAM computes the energy on ``D = X1 - X2`` and applies the
same weights to both branches, so both look where the two signatures differ.
"""

from __future__ import annotations

import torch
from torch import nn


def simam_weights(x: torch.Tensor, lam: float = 1e-4) -> torch.Tensor:
    """SimAM attention weights ``sigmoid(E_inv)`` of a (B, C, H, W) map: same shape, values in
    (0.5, 1)."""
    n = x.shape[2] * x.shape[3] - 1
    d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
    v = d.sum(dim=(2, 3), keepdim=True) / max(n, 1)
    return torch.sigmoid(d / (4.0 * (v + lam)) + 0.5)


class SimAM(nn.Module):
    """Plain SimAM on each branch separately (Table 3's "SimAM")."""

    def __init__(self, channels: int = 0, *, lam: float = 1e-4) -> None:
        super().__init__()
        self.lam = lam

    def forward(self, x1: torch.Tensor, x2: torch.Tensor):
        """(B, C, H, W) x 2 -> (y1, y2, maps) with maps (B, 2, H, W): each branch's weights
        averaged over channels."""
        w1, w2 = simam_weights(x1, self.lam), simam_weights(x2, self.lam)
        maps = torch.stack([w1.mean(1), w2.mean(1)], dim=1)
        return x1 * w1, x2 * w2, maps


class DifferenceSimAM(nn.Module):
    """SimAM energy on ``X1 - X2``, one weight map for both branches (the paper's improved
    SimAM)."""

    def __init__(self, channels: int = 0, *, lam: float = 1e-4) -> None:
        super().__init__()
        self.lam = lam

    def forward(self, x1: torch.Tensor, x2: torch.Tensor):
        """(B, C, H, W) x 2 -> (x1 * W, x2 * W, maps); maps (B, 2, H, W) is W averaged over channels
        (the same difference heatmap twice). Swapping x1 and x2 leaves W unchanged."""
        w = simam_weights(x1 - x2, self.lam)
        heat = w.mean(1)
        return x1 * w, x2 * w, torch.stack([heat, heat], dim=1)
