"""The Siamese verifier: DenseNet-36 branches coupled by attention, SPP, cross-attention, and
a linear head on |F1 - F2|."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from workbench.config import ModelConfig
from workbench.models.attention import create_attn
from workbench.models.backbone import DenseNetBackbone
from workbench.models.cross_attention import CrossAttention
from workbench.models.pooling import SpatialPyramidPooling


@dataclass
class Explanation:
    """What the verifier looked at for one batch.

    Attributes:
        block_maps: per dense block, (B, 2, H_i, W_i) attention maps for the reference and the
            questioned branch (the same difference heatmap twice for ``diff_simam``), or None
            when the module has no spatial map (``none``, ``se``).
        cross_attention: (A1, A2), each (B, 21, 21), rows summing to 1; None when off.
    """

    block_maps: list[torch.Tensor | None]
    cross_attention: tuple[torch.Tensor, torch.Tensor] | None


def images_to_tensor(images) -> torch.Tensor:
    """Normalized uint8 images (N, H, W) or (H, W) -> float (N, 1, H, W), ink bright in 0..1.

    Inverting puts the paper at 0, so zero padding and max pooling treat it as empty.
    """
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    tensor = torch.from_numpy((255.0 - array) / 255.0)[:, None]
    return tensor.contiguous(memory_format=torch.channels_last)


class SiameseVerifier(nn.Module):
    """Two weight-sharing DenseNet-36 branches, coupled by attention after every dense block.

    ``forward(x1, x2)`` returns logits (B, 2); ``softmax(logits)[:, 0]`` is the probability that
    both signatures come from the same writer (the score).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = DenseNetBackbone(config)
        self.attention = nn.ModuleList(
            create_attn(config.attention, c, simam_lambda=config.simam_lambda)
            for c in self.backbone.block_channels
        )
        self.spp = SpatialPyramidPooling(config.spp_levels)
        channels = self.backbone.out_channels
        hidden = config.cross_hidden or channels
        self.cross = CrossAttention(channels, hidden) if config.cross_attention else None
        feature_dim = self.spp.num_tokens * (hidden if self.cross is not None else channels)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(feature_dim, 2)

    def forward_features(self, x1: torch.Tensor, x2: torch.Tensor, *, from_first_block=False):
        """(B, 1, H, W) x 2 -> token sequences (B, 21, C) x 2 and the per-block attention maps.

        Both branches run as one batch of 2B through the shared backbone; after each dense
        block the attention module couples the two halves. With ``from_first_block`` the inputs
        are ``image_features`` of the two images (B, block_channels[0], H / 4, W / 4).
        """
        b = x1.shape[0]
        maps: list[torch.Tensor | None] = []

        def couple(i: int, x: torch.Tensor) -> torch.Tensor:
            y1, y2, block_map = self.attention[i](x[:b], x[b:])
            maps.append(block_map)
            return torch.cat([y1, y2], dim=0)

        both = torch.cat([x1, x2], dim=0)
        maps_out = self.backbone(both, after_block=couple, from_first_block=from_first_block)
        tokens = self.spp(maps_out)
        return tokens[:b], tokens[b:], maps

    def forward_head(self, t1: torch.Tensor, t2: torch.Tensor):
        """Token sequences -> (logits (B, 2), cross-attention (A1, A2) or None)."""
        if self.cross is not None:
            f1, f2, a1, a2 = self.cross(t1, t2)
            attention = (a1, a2)
        else:
            f1, f2, attention = t1, t2, None
        features = (f1 - f2).abs().flatten(1)
        return self.classifier(self.dropout(features)), attention

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, explain: bool = False):
        """Logits (B, 2); with ``explain=True`` also an ``Explanation``."""
        t1, t2, maps = self.forward_features(x1, x2)
        logits, attention = self.forward_head(t1, t2)
        if explain:
            return logits, Explanation(block_maps=maps, cross_attention=attention)
        return logits

    def image_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) -> what one image contributes to every pair it is in: the backbone's
        stem and dense block 0 (about half of a pair's computation at 224 x 224)."""
        return self.backbone.first_block(x)

    def forward_from_features(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        """Logits (B, 2) of pairs given by their ``image_features``: the same as ``forward``
        on the images."""
        t1, t2, _ = self.forward_features(f1, f2, from_first_block=True)
        return self.forward_head(t1, t2)[0]

    @torch.inference_mode()
    def score(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Same-writer probability p1 in 0..1, shape (B,)."""
        return torch.softmax(self(x1, x2), dim=1)[:, 0]
