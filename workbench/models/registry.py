"""Name -> model registry: every model built from its configuration dataclass (or a plain dict,
the ``model`` entry of a weights JSON), in channels_last memory format.

``tests/test_models.py`` walks ``MODELS``: a model registered here is smoke-tested (forward and
backward on ``example_inputs``) without anyone editing the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from workbench.config import ATTENTIONS, ModelConfig
from workbench.models.embedding import EmbeddingConfig, EmbeddingSiamese
from workbench.models.pretrainer import PretrainerConfig, WriterPretrainer
from workbench.models.verifier import SiameseVerifier
from workbench.models.writer_id import WriterClassifier, WriterClassifierConfig


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: the registry key (also the ``architecture`` a weights JSON records).
        build: configuration dataclass -> module (not yet channels_last).
        config_class: the configuration dataclass; it has ``from_dict`` and ``to_dict``.
        n_inputs: how many (B, 1, H, W) image batches ``model(*inputs)`` takes in a training
            step (the embedding Siamese takes any number; a pair is its usual step).
        tiny_config: a configuration small enough for a CPU smoke test, as a dict.
    """

    name: str
    build: Callable[[Any], nn.Module]
    config_class: type
    n_inputs: int
    tiny_config: dict

    def input_size(self, config: Any) -> tuple[int, int]:
        """(H, W) of the images a model of ``config`` takes."""
        sized = getattr(config, "backbone", config)
        return sized.input_height, sized.input_width


MODELS: dict[str, ModelEntry] = {}


def register(
    name: str, *, config_class: type, n_inputs: int, tiny_config: dict
) -> Callable[[Callable[[Any], nn.Module]], Callable[[Any], nn.Module]]:
    """Decorator: register ``fn(config) -> nn.Module`` under ``name``."""

    def wrap(fn: Callable[[Any], nn.Module]) -> Callable[[Any], nn.Module]:
        MODELS[name] = ModelEntry(name, fn, config_class, n_inputs, tiny_config)
        return fn

    return wrap


_TINY_DENSENET = {"input_height": 64, "input_width": 64}


@register("siamese_densenet36", config_class=ModelConfig, n_inputs=2, tiny_config=_TINY_DENSENET)
def build_siamese_densenet36(config: ModelConfig) -> SiameseVerifier:
    """The paper's verifier (or an ablation of it): (B, 1, H, W) x 2 -> logits (B, 2)."""
    return SiameseVerifier(config)


@register(
    "writer_classifier",
    config_class=WriterClassifierConfig,
    n_inputs=1,
    tiny_config={
        "n_writers": 5,
        "channels": (4, 8),
        "dense": 16,
        "input_height": 64,
        "input_width": 64,
    },
)
def build_writer_classifier(config: WriterClassifierConfig) -> WriterClassifier:
    """The slides' writer classifier: (B, 1, H, W) -> logits (B, n_writers)."""
    return WriterClassifier(config)


@register(
    "embedding_siamese",
    config_class=EmbeddingConfig,
    n_inputs=2,
    tiny_config={
        "backbone": {"attention": "none", "cross_attention": False, **_TINY_DENSENET},
        "dim": 16,
    },
)
def build_embedding_siamese(config: EmbeddingConfig) -> EmbeddingSiamese:
    """The slides' embedding Siamese: (B, 1, H, W) x k -> k unit embeddings (B, dim)."""
    return EmbeddingSiamese(config)


@register(
    "writer_pretrainer",
    config_class=PretrainerConfig,
    n_inputs=1,
    tiny_config={"n_writers": 5, "backbone": _TINY_DENSENET},
)
def build_writer_pretrainer(config: PretrainerConfig) -> WriterPretrainer:
    """The backbone's writer-classification pre-training (SigNet-F): (B, 1, H, W) ->
    (writer logits (B, n_writers), forgery logit (B,))."""
    return WriterPretrainer(config)


# Kept for callers of the first registry: name -> builder.
BUILDERS: dict[str, Callable[[Any], nn.Module]] = {n: e.build for n, e in MODELS.items()}

# The ablations of Tables 2 and 3 as named configurations of the verifier.
VARIANTS: dict[str, dict] = {
    "baseline": {"attention": "none", "cross_attention": False},
    "diff_simam_only": {"attention": "diff_simam", "cross_attention": False},
    "cross_attention_only": {"attention": "none", "cross_attention": True},
    "full": {"attention": "diff_simam", "cross_attention": True},
    **{f"attention_{a}": {"attention": a, "cross_attention": True} for a in ATTENTIONS},
}


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; ValueError naming the registered models otherwise."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}: choose one of {', '.join(MODELS)}.")
    return MODELS[name]


def model_config(name: str, config: Any = None) -> Any:
    """``config`` as the configuration dataclass of model ``name``.

    ``config`` is that dataclass, a plain dict (e.g. the ``model`` entry of a weights JSON) or
    None for the defaults. Raises ValueError when it is of another kind or the defaults do not
    make a model (the writer classifier needs ``n_writers``).
    """
    entry = model_entry(name)
    if config is None:
        try:
            return entry.config_class()
        except TypeError as error:
            raise ValueError(f"Model {name!r} needs a configuration: {error}") from None
    if isinstance(config, dict):
        try:
            return entry.config_class.from_dict(config)
        except TypeError as error:  # unknown or missing fields
            raise ValueError(
                f"Not a configuration of model {name!r} ({entry.config_class.__name__}): {error}"
            ) from None
    if not isinstance(config, entry.config_class):
        raise ValueError(
            f"Model {name!r} is configured by {entry.config_class.__name__} (or a dict), "
            f"not {type(config).__name__}."
        )
    return config


def build_model(
    name: str = "siamese_densenet36",
    *,
    config: Any = None,
    variant: str | None = None,
) -> nn.Module:
    """Build registered model ``name`` from ``config`` (its dataclass, a dict or None for the
    defaults), in channels_last memory format.

    ``variant`` (the verifier only) applies one of ``VARIANTS`` on top of ``config``.
    """
    config = model_config(name, config)
    if variant is not None:
        if name != "siamese_densenet36":
            raise ValueError(f"Variants are ablations of the verifier, not of {name!r}.")
        if variant not in VARIANTS:
            raise ValueError(f"Unknown variant {variant!r}: choose one of {', '.join(VARIANTS)}.")
        config = replace(config, **VARIANTS[variant])
    return MODELS[name].build(config).to(memory_format=torch.channels_last)


def example_inputs(
    name: str, config: Any = None, *, batch: int = 2, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Random ink-bright images for ``model(*inputs)``: ``n_inputs`` float tensors
    (batch, 1, H, W) in 0..1, channels_last, H x W the configuration's input size."""
    entry = model_entry(name)
    height, width = entry.input_size(model_config(name, config))
    generator = torch.Generator().manual_seed(seed)
    return tuple(
        torch.rand(batch, 1, height, width, generator=generator).contiguous(
            memory_format=torch.channels_last
        )
        for _ in range(entry.n_inputs)
    )
