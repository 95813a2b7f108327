"""Inference-only speed-up: fold BatchNorm layers into the convolution before them."""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from workbench.models.verifier import SiameseVerifier


def fuse_for_inference(model: SiameseVerifier) -> SiameseVerifier:
    """An eval-mode copy with the stem's norm0 and each dense layer's norm2 folded into the
    preceding convolution (same outputs up to float rounding, ~15% faster on CPU).

    DenseNet's other norms follow a concatenation, not a convolution, and stay. The copy cannot
    be trained or saved as a checkpoint of the original architecture.
    """
    fused = copy.deepcopy(model).eval()
    stem = fused.backbone.stem
    stem[0] = fuse_conv_bn_eval(stem[0], stem[1])
    stem[1] = nn.Identity()
    for block in fused.backbone.blocks:
        for layer in block.values():
            layer.conv1 = fuse_conv_bn_eval(layer.conv1, layer.norm2)
            layer.norm2 = nn.Identity()
    return fused
