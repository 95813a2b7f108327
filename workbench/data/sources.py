"""Pairs of one split over one or more corpora, with absolute paths and the writer lists used."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from workbench.data.dedupe import dedupe
from workbench.data.pairs import Pair, make_pairs
from workbench.data.readers import read_corpus
from workbench.data.splits import get_protocol, split_writers


def split_pairs(
    data: list[str],
    protocols: list[str],
    split: str,
    *,
    seed: int = 0,
    val_writers: float | None = None,
    random_forgeries: int = 0,
    deduplicate: bool = True,
) -> tuple[list[Pair], list[dict]]:
    """The pairs of ``split`` (``train``, ``val``, ``test``, ``trainval`` or ``all``) of each
    corpus.

    Args:
        data: corpus folders.
        protocols: one protocol per corpus, or a single one for all (ignored for ``all``).

    Returns:
        (pairs, sources): pairs with absolute paths; per corpus a dict with its path, layout,
        protocol, seed, duplicates removed and the writer split (writer lists).
    """
    if len(protocols) not in (1, len(data)):
        raise ValueError(f"Give one --protocol for all corpora or one per --data ({len(data)}).")
    pairs: list[Pair] = []
    sources: list[dict] = []
    for i, path in enumerate(data):
        protocol = protocols[0] if len(protocols) == 1 else protocols[i]
        corpus = read_corpus(path)
        if deduplicate:
            corpus = dedupe(corpus)
        if split == "all":
            writers, writer_split = corpus.writers, None
        else:
            chosen = split_writers(
                corpus.writers, get_protocol(protocol, val=val_writers), seed=seed
            )
            writers, writer_split = chosen.writers(split), chosen.to_dict()
        root = Path(path).resolve()
        for pair in make_pairs(corpus, writers, random_forgeries=random_forgeries, seed=seed):
            pairs.append(
                replace(
                    pair,
                    reference=str(root / pair.reference),
                    questioned=str(root / pair.questioned),
                    writer=f"{root.name}/{pair.writer}" if len(data) > 1 else pair.writer,
                )
            )
        sources.append(
            {
                "path": str(path),
                "layout": corpus.layout,
                "protocol": None if split == "all" else protocol,
                "seed": seed,
                "deduplicated": deduplicate,
                "duplicates_removed": len(corpus.duplicates),
                "writer_split": writer_split,
            }
        )
    return pairs, sources
