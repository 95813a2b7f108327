"""Models: attention layers, SPP, cross-attention, the DenseNet-36 backbone and the verifier."""

from workbench.models.registry import BUILDERS, VARIANTS, build_model
from workbench.models.verifier import Explanation, SiameseVerifier, images_to_tensor

__all__ = [
    "BUILDERS",
    "VARIANTS",
    "Explanation",
    "SiameseVerifier",
    "build_model",
    "images_to_tensor",
]
