"""Many users, one model (issue 15): a shared / exclusive lock on the verifier.

Scoring only reads the model, so any number of requests may score at once. Captum's
attributions do not: they switch the parameters' gradients off and (Grad-CAM) hook a layer of
the shared model, and a hook would fire on, or fail, another request's forward pass. They
take the model alone (``exclusive``) and wait for the scoring in flight to end; scoring that
arrives meanwhile waits for them.
"""

from __future__ import annotations

import contextlib
import threading


class SharedLock:
    """Any number of ``shared`` holders at once, or one ``exclusive`` holder alone. A waiting
    exclusive holder is served before shared holders that arrive after it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0  # exclusive holders waiting

    @contextlib.contextmanager
    def shared(self):
        with self._condition:
            self._condition.wait_for(lambda: not self._exclusive and not self._waiting)
            self._shared += 1
        try:
            yield
        finally:
            with self._condition:
                self._shared -= 1
                self._condition.notify_all()

    @contextlib.contextmanager
    def exclusive(self):
        with self._condition:
            self._waiting += 1
            self._condition.wait_for(lambda: not self._exclusive and not self._shared)
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()
