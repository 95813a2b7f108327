"""DenseNet-36 feature extractor on torchvision's DenseNet: 1 input channel, GELU, 4 blocks."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models import DenseNet

from workbench.config import ModelConfig


def _gelu_everywhere(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, nn.GELU())
        else:
            _gelu_everywhere(child)


class DenseNetBackbone(nn.Module):
    """Stem (7x7/2 conv, 3x3/2 max-pool), 4 dense blocks with transitions, final norm + GELU.

    With blocks (3, 4, 6, 3): 1 stem conv + 2 x 16 bottleneck convs + 3 transition convs = 36
    convolutions. Spatial size 224 -> 56 -> 28 -> 14 -> 7. ``forward`` takes an optional hook
    called after each dense block, so that an attention module can sit after each.

    Attributes:
        block_channels: channels after each dense block (what the hook sees).
        out_channels: channels of the final feature map.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        net = DenseNet(
            growth_rate=config.growth_rate,
            block_config=config.block_config,
            num_init_features=config.stem_channels,
            bn_size=config.bn_size,
        )
        features = net.features
        features.conv0 = nn.Conv2d(
            1, config.stem_channels, kernel_size=7, stride=2, padding=3, bias=False
        )
        nn.init.kaiming_normal_(features.conv0.weight)
        _gelu_everywhere(features)
        self.stem = nn.Sequential(features.conv0, features.norm0, features.relu0, features.pool0)
        self.blocks = nn.ModuleList(getattr(features, f"denseblock{i}") for i in range(1, 5))
        self.transitions = nn.ModuleList(getattr(features, f"transition{i}") for i in range(1, 4))
        self.final = nn.Sequential(features.norm5, nn.GELU())
        channels, self.block_channels = config.stem_channels, []
        for i, layers in enumerate(config.block_config):
            channels += layers * config.growth_rate
            self.block_channels.append(channels)
            if i < 3:
                channels //= 2
        self.out_channels = channels

    def first_block(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) -> (N, block_channels[0], H / 4, W / 4): the stem and dense block 0,
        which see one image at a time (nothing couples the branches before block 0 ends), so
        an image's result can serve every pair it is in."""
        return self.blocks[0](self.stem(x))

    def forward(
        self,
        x: torch.Tensor,
        after_block: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
        *,
        from_first_block: bool = False,
    ) -> torch.Tensor:
        """(N, 1, H, W) ink-bright images -> (N, out_channels, H / 32, W / 32) features.

        ``after_block(i, x)`` (i = 0..3, x of shape (N, block_channels[i], h, w)) runs after
        dense block i, before its transition, and returns the map that goes on (same shape).
        With ``from_first_block``, ``x`` is already ``first_block``'s output.
        """
        if not from_first_block:
            x = self.first_block(x)
        for i, block in enumerate(self.blocks):
            if i:
                x = block(x)
            if after_block is not None:
                x = after_block(i, x)
            if i < len(self.transitions):
                x = self.transitions[i](x)
        return self.final(x)
