"""One factory for the attention module after each dense block (the ablation of Table 3).

Every module takes both branches' maps, ``(B, C, H, W) x 2``, and returns ``(y1, y2, maps)``:
the re-weighted maps (same shapes) and ``(B, 2, H, W)`` spatial maps, or None for modules
without one (``none``, ``se``). The modules themselves live in ``simam.py`` and
``channel_attention.py``.
"""

from __future__ import annotations

from torch import nn

from workbench.config import ATTENTIONS
from workbench.models.channel_attention import CBAM, NoAttention, SqueezeExcitation
from workbench.models.simam import DifferenceSimAM, SimAM


def create_attn(kind: str, channels: int, *, simam_lambda: float = 1e-4) -> nn.Module:
    """The attention module ``kind`` (one of ``workbench.config.ATTENTIONS``) for ``channels``.

    ``simam_lambda`` is SimAM's lambda (eq. 6), used by ``simam`` and ``diff_simam`` only.
    Raises ValueError for an unknown kind.
    """
    if kind == "none":
        return NoAttention(channels)
    if kind == "se":
        return SqueezeExcitation(channels)
    if kind == "cbam":
        return CBAM(channels)
    if kind == "simam":
        return SimAM(channels, lam=simam_lambda)
    if kind == "diff_simam":
        return DifferenceSimAM(channels, lam=simam_lambda)
    raise ValueError(f"Unknown attention {kind!r}: choose one of {', '.join(ATTENTIONS)}.")
