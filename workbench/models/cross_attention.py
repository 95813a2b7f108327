"""Cross-writer attention between the two signatures' token sequences (eq. 7-10)."""

from __future__ import annotations

import math

import torch
from torch import nn


class CrossAttention(nn.Module):
    """Shared query L, key M and value N maps; each signature is re-expressed through the other.

    ``Q1 = L(T2), K1 = M(T1), V1 = N(T1)``; ``Q2 = L(T1), K2 = M(T2), V2 = N(T2)``;
    ``A_i = softmax(Q_i K_i^T / sqrt(d))`` (the 1/sqrt(d) scaling is ours, not the paper's);
    ``F1 = A2 V2``, ``F2 = A1 V1``.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, hidden)
        self.key = nn.Linear(dim, hidden)
        self.value = nn.Linear(dim, hidden)
        self.scale = 1.0 / math.sqrt(hidden)

    def forward(self, t1: torch.Tensor, t2: torch.Tensor):
        """(B, N, dim) x 2 -> (F1, F2, A1, A2): F_i (B, N, hidden); A_i (B, N, N), rows sum to 1."""
        a1 = torch.softmax(self.query(t2) @ self.key(t1).transpose(1, 2) * self.scale, dim=-1)
        a2 = torch.softmax(self.query(t1) @ self.key(t2).transpose(1, 2) * self.scale, dim=-1)
        f1 = a2 @ self.value(t2)
        f2 = a1 @ self.value(t1)
        return f1, f2, a1, a2
