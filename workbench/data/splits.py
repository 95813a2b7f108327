"""Writer-independent splits: train, validation and test writers never overlap.

A protocol fixes how many writers go to each side. The presets follow the paper (BHSig-B 80/20,
BHSig-H 100/60, CEDAR 50/5); validation writers are carved out of the training writers so that
models and thresholds are chosen without looking at test writers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from workbench.data.corpus import natural_key


@dataclass(frozen=True)
class Protocol:
    """How to split a corpus's writers.

    Counts >= 1 are numbers of writers; values in (0, 1) are fractions of all writers.
    ``test=None`` gives the test side every writer not on the training side.
    """

    name: str
    train: float
    test: float | None
    val: float


PROTOCOLS: dict[str, Protocol] = {
    "bhsig-b": Protocol("bhsig-b", train=80, test=20, val=10),
    "bhsig-h": Protocol("bhsig-h", train=100, test=60, val=12),
    "cedar": Protocol("cedar", train=50, test=5, val=5),
    # SigComp2011-Dutch's 64 writers: 44 training, 10 validation, 10 test.
    "sigcomp-dutch": Protocol("sigcomp-dutch", train=54, test=10, val=10),
}
_CUSTOM = re.compile(r"^(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)(?:/(\d+(?:\.\d+)?))?$")


def get_protocol(name: str, *, val: float | None = None) -> Protocol:
    """A preset by name, or ``TRAIN/TEST[/VAL]`` in writers or fractions (``70/30/10``).

    Args:
        val: overrides the number (or fraction) of validation writers.
    """
    key = name.strip().lower()
    if key in PROTOCOLS:
        protocol = PROTOCOLS[key]
    else:
        found = _CUSTOM.match(key)
        if not found:
            raise ValueError(
                f"Unknown protocol {name!r}: use {', '.join(PROTOCOLS)} or TRAIN/TEST[/VAL] "
                "(numbers of writers, or fractions such as 0.8/0.2/0.1)."
            )
        train, test, v = found.groups()
        protocol = Protocol(key, train=float(train), test=float(test), val=float(v) if v else 0.1)
    if val is not None:
        protocol = Protocol(protocol.name, protocol.train, protocol.test, float(val))
    return protocol


@dataclass(frozen=True)
class WriterSplit:
    """Disjoint writer lists, with the protocol and seed that made them."""

    protocol: str
    seed: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def writers(self, split: str) -> tuple[str, ...]:
        """Writers of ``train``, ``val``, ``test`` or ``trainval`` (train and val together)."""
        if split == "trainval":
            return tuple(sorted(self.train + self.val, key=natural_key))
        if split in ("train", "val", "test"):
            return getattr(self, split)
        raise ValueError(f"Unknown split {split!r}: use train, val, test or trainval.")

    def to_dict(self) -> dict:
        return asdict(self)


def _count(value: float, total: int) -> int:
    return int(round(value * total)) if 0 < value < 1 else int(value)


def split_writers(writers: list[str], protocol: Protocol, *, seed: int = 0) -> WriterSplit:
    """Shuffle writers with ``seed`` and cut them into train / val / test.

    When the corpus has fewer writers than the protocol names (BHSig-H circulates with 159 of
    160), the training side keeps its size and the test side gets the rest.

    Raises:
        ValueError: too few writers for the training side plus one test writer.
    """
    ordered = sorted(set(writers), key=natural_key)
    total = len(ordered)
    n_train = _count(protocol.train, total)
    n_test = (
        total - n_train
        if protocol.test is None
        else min(_count(protocol.test, total), total - n_train)
    )
    n_val = _count(protocol.val, total)
    if n_train < 1 or n_test < 1 or not 0 <= n_val < n_train:
        raise ValueError(
            f"Protocol {protocol.name} needs {n_train} training writers ({n_val} of them for "
            f"validation) and at least one test writer, but the corpus has {total} writers."
        )
    order = np.random.default_rng(seed).permutation(total)
    shuffled = [ordered[i] for i in order]
    train_side, test = shuffled[:n_train], shuffled[n_train : n_train + n_test]
    val, train = train_side[:n_val], train_side[n_val:]

    def tidy(items: list[str]) -> tuple[str, ...]:
        return tuple(sorted(items, key=natural_key))

    return WriterSplit(
        protocol=protocol.name, seed=seed, train=tidy(train), val=tidy(val), test=tidy(test)
    )
