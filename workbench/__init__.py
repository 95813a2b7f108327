"""Signature Workbench: offline handwritten signature verification, measured and explained."""

from workbench.errors import SignatureInputError

__all__ = ["SignatureInputError"]
__version__ = "0.1.0"
