"""Wiring a tab's widgets to its module-level event handlers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def bind(handler: Callable[..., Any], *leading: object) -> functools.partial:
    """``handler`` with its leading parameter(s) (the Workbench, the desk, ...) bound.

    Gradio and the gradio_client read the remaining parameters (names, order, defaults,
    ``gr.Progress``) through ``inspect.signature``, which drops the bound ones. A partial's
    docstring is ``functools.partial``'s own, which Gradio would publish as the endpoint's
    description; the bound handler carries none, so the API is what the handler's remaining
    parameters and the event's components make it.
    """
    bound = functools.partial(handler, *leading)
    bound.__doc__ = None
    return bound
