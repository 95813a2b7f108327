"""Name -> builder registry: every model variant from one configuration dataclass."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from workbench.config import ATTENTIONS, ModelConfig
from workbench.models.verifier import SiameseVerifier

BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def wrap(fn):
        BUILDERS[name] = fn
        return fn

    return wrap


@register("siamese_densenet36")
def build_siamese_densenet36(*, config: ModelConfig) -> SiameseVerifier:
    """The paper's verifier (or an ablation of it) in channels_last memory format."""
    return SiameseVerifier(config).to(memory_format=torch.channels_last)


# The ablations of Tables 2 and 3 as named configurations.
VARIANTS: dict[str, dict] = {
    "baseline": {"attention": "none", "cross_attention": False},
    "diff_simam_only": {"attention": "diff_simam", "cross_attention": False},
    "cross_attention_only": {"attention": "none", "cross_attention": True},
    "full": {"attention": "diff_simam", "cross_attention": True},
    **{f"attention_{a}": {"attention": a, "cross_attention": True} for a in ATTENTIONS},
}


def build_model(
    name: str = "siamese_densenet36",
    *,
    config: ModelConfig | None = None,
    variant: str | None = None,
) -> nn.Module:
    """Build a registered model; ``variant`` applies one of ``VARIANTS`` on top of ``config``."""
    if name not in BUILDERS:
        raise ValueError(f"Unknown model {name!r}: choose one of {', '.join(BUILDERS)}.")
    config = config or ModelConfig()
    if variant is not None:
        if variant not in VARIANTS:
            raise ValueError(f"Unknown variant {variant!r}: choose one of {', '.join(VARIANTS)}.")
        config = replace(config, **VARIANTS[variant])
    return BUILDERS[name](config=config)
