"""GPU on a Hugging Face Space: ``spaces.GPU`` when that package is importable, else a no-op.

On a ZeroGPU Space a GPU is attached only while a function decorated with ``spaces.GPU`` runs;
everywhere else (a local run, a CPU Space) the decorator returns the function unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

try:  # pragma: no cover - only on Hugging Face Spaces
    import spaces

    def on_gpu(fn: F) -> F:
        return spaces.GPU(fn)

except ImportError:

    def on_gpu(fn: F) -> F:
        return fn
