"""Verification pairs of a set of writers (DESIGN.md: pairs and protocol).

Per writer: every genuine-genuine pair (C(n, 2), label 1) and every genuine x skilled-forgery
pair (n x m, label 0). For corpora without forgeries, random forgeries (a genuine signature of
another writer of the same split) can be added as negatives.
"""

from __future__ import annotations

import csv
import itertools
import os
from dataclasses import astuple, dataclass, fields

import numpy as np

from workbench.data.corpus import FORGED, GENUINE, Corpus


@dataclass(frozen=True)
class Pair:
    """A reference and a questioned signature.

    Attributes:
        reference, questioned: record paths relative to the corpus root.
        label: 1 when both are genuine signatures of ``writer``, 0 otherwise.
        writer: the writer whose genuine signature is the reference.
        kind: ``genuine``, ``skilled`` (questioned is a skilled forgery) or ``random``
            (questioned is another writer's genuine signature).
    """

    reference: str
    questioned: str
    label: int
    writer: str
    kind: str


def make_pairs(corpus: Corpus, writers, *, random_forgeries: int = 0, seed: int = 0) -> list[Pair]:
    """All pairs of the given writers.

    Args:
        writers: writer ids (e.g. one side of a ``WriterSplit``).
        random_forgeries: per writer, this many extra negatives pairing one of its genuine
            signatures with a genuine signature of another writer in ``writers``.
        seed: seeds the choice of random forgeries.
    """
    chosen = list(writers)
    genuine = {w: [r.path for r in corpus.of_writer(w, GENUINE)] for w in chosen}
    forged = {w: [r.path for r in corpus.of_writer(w, FORGED)] for w in chosen}
    pairs: list[Pair] = []
    for w in chosen:
        pairs += [Pair(a, b, 1, w, "genuine") for a, b in itertools.combinations(genuine[w], 2)]
        pairs += [Pair(a, f, 0, w, "skilled") for a in genuine[w] for f in forged[w]]
    if random_forgeries > 0:
        rng = np.random.default_rng(seed)
        for w in chosen:
            others = [p for o in chosen if o != w for p in genuine[o]]
            if not genuine[w] or not others:
                continue
            for _ in range(random_forgeries):
                reference = genuine[w][rng.integers(len(genuine[w]))]
                pairs.append(Pair(reference, others[rng.integers(len(others))], 0, w, "random"))
    return pairs


PAIR_COLUMNS = tuple(f.name for f in fields(Pair))


def write_pairs_csv(pairs: list[Pair], path: str | os.PathLike) -> None:
    """One row per pair with the columns of ``Pair``."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(PAIR_COLUMNS)
        writer.writerows(astuple(p) for p in pairs)


def read_pairs_csv(path: str | os.PathLike) -> list[Pair]:
    """Pairs written by ``write_pairs_csv`` (or any CSV with those columns)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = [c for c in ("reference", "questioned", "label") if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}.")
    return [
        Pair(
            r["reference"], r["questioned"], int(r["label"]), r.get("writer", ""), r.get("kind", "")
        )
        for r in rows
    ]
