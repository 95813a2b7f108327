"""Comparisons as an examiner makes them: k known signatures of a writer against one questioned
signature (issue 13), built from a split's pairs so that writer splits are the training's.

For each writer, its first k genuine signatures (natural order) are the references; every other
genuine signature of the writer is a same-writer questioned one (H1), each skilled forgery of
the writer's signature a ``skilled`` one, and a seeded choice of other writers' genuine
signatures (same corpus and split) ``random`` ones (H2). The pairwise scores of
(reference, questioned) are computed once (``unique_pairs``) and aggregated per comparison.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.data.corpus import natural_key
from workbench.data.pairs import Pair


@dataclass(frozen=True)
class Comparison:
    """k references of ``writer`` and one questioned signature; ``kind`` is ``genuine``
    (label 1), ``skilled`` or ``random`` (label 0)."""

    writer: str
    references: tuple[str, ...]
    questioned: str
    kind: str

    @property
    def label(self) -> int:
        return int(self.kind == "genuine")


def writer_images(pairs: list[Pair]) -> dict[str, dict[str, list[str]]]:
    """Per writer of ``pairs``: its ``genuine`` images and the ``skilled`` forgeries of its
    signature, each sorted naturally and without repeats."""
    found: dict[str, dict[str, set]] = defaultdict(lambda: {"genuine": set(), "skilled": set()})
    for pair in pairs:
        found[pair.writer]["genuine"].add(pair.reference)
        if pair.kind == "genuine":
            found[pair.writer]["genuine"].add(pair.questioned)
        elif pair.kind == "skilled":
            found[pair.writer]["skilled"].add(pair.questioned)
    return {
        w: {kind: sorted(paths, key=natural_key) for kind, paths in images.items()}
        for w, images in sorted(found.items(), key=lambda item: natural_key(item[0]))
    }


def reference_comparisons(
    images: dict[str, dict[str, list[str]]], *, k: int, random_per_writer: int, seed: int
) -> list[Comparison]:
    """The comparisons of every writer with at least ``k + 1`` genuine images.

    Random forgeries are drawn (seeded) from the other writers' genuine images that are not
    their references.

    Raises:
        ValueError: ``k`` below 1, or no writer with ``k + 1`` genuine images.
    """
    if k < 1:
        raise ValueError(f"Give at least one reference, not {k}.")
    usable = {w: v for w, v in images.items() if len(v["genuine"]) > k}
    if not usable:
        raise ValueError(f"No writer has the {k + 1} genuine signatures that k = {k} needs.")
    rng = np.random.default_rng(seed)
    comparisons = []
    for writer, own in usable.items():
        references = tuple(own["genuine"][:k])
        for path in own["genuine"][k:]:
            comparisons.append(Comparison(writer, references, path, "genuine"))
        for path in own["skilled"]:
            comparisons.append(Comparison(writer, references, path, "skilled"))
        strangers = [p for w, v in usable.items() if w != writer for p in v["genuine"][k:]]
        if strangers and random_per_writer:
            chosen = rng.choice(len(strangers), min(random_per_writer, len(strangers)), False)
            for i in sorted(chosen):
                comparisons.append(Comparison(writer, references, strangers[i], "random"))
    return comparisons


def comparisons_by_corpus(
    pairs: list[Pair], sources: list[dict], k: int, per_writer: int, seed: int
) -> dict[str, list[Comparison]]:
    """``reference_comparisons`` per corpus of ``split_pairs``'s ``sources`` (random forgeries
    come from the same corpus): a writer belongs to the corpus folder its images lie in."""
    images = writer_images(pairs)
    out = {}
    for i, source in enumerate(sources):
        root = Path(source["path"]).resolve()
        mine = {
            w: v for w, v in images.items() if Path(v["genuine"][0]).resolve().is_relative_to(root)
        }
        if mine:
            out[root.name] = reference_comparisons(
                mine, k=k, random_per_writer=per_writer, seed=seed + i
            )
    return out


def unique_pairs(comparisons: list[Comparison]) -> list[Pair]:
    """Every (reference, questioned) pair the comparisons need, and every pair of two
    references of one writer (their mutual scores), once each."""
    seen: dict[tuple[str, str], Pair] = {}
    for c in comparisons:
        for reference in c.references:
            key = (reference, c.questioned)
            if key not in seen:
                seen[key] = Pair(reference, c.questioned, c.label, c.writer, c.kind)
        for i, first in enumerate(c.references):
            for second in c.references[i + 1 :]:
                if (first, second) not in seen:
                    seen[(first, second)] = Pair(first, second, 1, c.writer, "genuine")
    return list(seen.values())


def aggregate(
    comparisons: list[Comparison], pairs: list[Pair], scores: np.ndarray, *, k: int | None = None
) -> np.ndarray:
    """The mean pairwise score of each comparison over its first ``k`` references (all when
    None), from ``scores`` of ``pairs`` (float64, shape (len(comparisons),))."""
    lookup = {(p.reference, p.questioned): float(s) for p, s in zip(pairs, scores, strict=True)}
    return np.array(
        [
            np.mean([lookup[(r, c.questioned)] for r in c.references[: k or None]])
            for c in comparisons
        ],
        dtype=float,
    )


# Below this spread of a writer's mutual scores, the normalization divides by this instead.
MIN_SPREAD = 0.05


def writer_normalized(
    comparisons: list[Comparison], pairs: list[Pair], scores: np.ndarray, *, k: int
) -> np.ndarray:
    """Writer-dependent normalization: the mean score of each comparison's questioned
    signature against its first ``k`` references, minus the mean of those references' mutual
    scores, divided by their spread (at least ``MIN_SPREAD``): how far the questioned signature
    lies from the writer's own variation. Needs ``k`` >= 2.

    Raises:
        ValueError: ``k`` below 2 (one reference has no mutual score).
    """
    if k < 2:
        raise ValueError("Writer-dependent normalization needs at least 2 references.")
    lookup = {(p.reference, p.questioned): float(s) for p, s in zip(pairs, scores, strict=True)}
    mean = aggregate(comparisons, pairs, scores, k=k)
    out = np.empty(len(comparisons))
    for n, c in enumerate(comparisons):
        refs = c.references[:k]
        mutual = [lookup[(a, b)] for i, a in enumerate(refs) for b in refs[i + 1 :]]
        out[n] = (mean[n] - np.mean(mutual)) / max(float(np.std(mutual)), MIN_SPREAD)
    return out
