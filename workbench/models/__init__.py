"""Models: attention layers, SPP, cross-attention, the DenseNet-36 backbone, the verifier, the
writer classifier and the embedding Siamese; one registry builds them all."""

from workbench.models.attention import create_attn
from workbench.models.registry import (
    BUILDERS,
    MODELS,
    VARIANTS,
    ModelEntry,
    build_model,
    example_inputs,
    model_config,
)
from workbench.models.verifier import Explanation, SiameseVerifier, images_to_tensor

__all__ = [
    "BUILDERS",
    "MODELS",
    "VARIANTS",
    "Explanation",
    "ModelEntry",
    "SiameseVerifier",
    "build_model",
    "create_attn",
    "example_inputs",
    "images_to_tensor",
    "model_config",
]
