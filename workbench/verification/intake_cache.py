"""A bounded cache of normalized signatures, keyed by the file's bytes (issue 15): the
references an examiner verifies against are taken in (decoded, cleaned, searched on a page,
normalized) once, not on every questioned signature.

The key is the SHA-256 of the file's bytes with its name (a report names the file), the
intake switches and the preprocessing settings, so a hit is the very result the same call
would compute again. Cached arrays are made read-only: a caller that tried to draw on one
would fail loudly instead of changing later answers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

MAX_ITEMS = 64
MAX_BYTES = 256 * 2**20


def file_key(source, *settings: Hashable) -> tuple | None:
    """The cache key of a file given as a path or as bytes, or None when it cannot be read
    (the caller then takes it in as usual and reports the problem)."""
    try:
        if isinstance(source, (bytes, bytearray)):
            data, name = bytes(source), ""
        else:
            with open(source, "rb") as handle:
                data = handle.read()
            name = os.path.basename(os.fspath(source))
    except (OSError, TypeError, ValueError):
        return None
    return (hashlib.sha256(data).hexdigest(), name, *settings)


def _nbytes(value) -> int:
    """The bytes of ``value``'s arrays, or of ``value`` itself when it is a tensor."""
    if hasattr(value, "element_size") and hasattr(value, "numel"):  # a torch tensor
        return value.element_size() * value.numel()
    return sum(a.nbytes for a in _arrays(value))


def _arrays(value) -> list[np.ndarray]:
    """Every numpy array held by ``value``'s dataclass fields, nested dataclasses and tuples
    included."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (tuple, list)):
        return [a for item in value for a in _arrays(item)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [a for f in dataclasses.fields(value) for a in _arrays(getattr(value, f.name))]
    return []


class IntakeCache:
    """Least-recently-used results, at most ``max_items`` of them and ``max_bytes`` of arrays;
    safe to share between the server's threads."""

    def __init__(self, max_items: int = MAX_ITEMS, max_bytes: int = MAX_BYTES) -> None:
        self.max_items, self.max_bytes = max_items, max_bytes
        self._items: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple | None):
        """The cached value for ``key``, or None."""
        if key is None:
            return None
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: tuple | None, value) -> None:
        """Keep ``value`` (its numpy arrays made read-only; a tensor is counted by its bytes)
        unless it alone exceeds the byte bound."""
        if key is None:
            return
        size = _nbytes(value)
        if size > self.max_bytes:
            return
        for array in _arrays(value):
            array.flags.writeable = False
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > self.max_items or self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def __len__(self) -> int:
        return len(self._items)
