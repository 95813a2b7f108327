"""Pairs of one split over one or more corpora, with absolute paths and the writer lists used."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from workbench.data.dedupe import dedupe
from workbench.data.pairs import Pair, make_pairs
from workbench.data.readers import read_corpus
from workbench.data.splits import get_protocol, split_writers


def corpus_names(roots: list[Path]) -> list[str]:
    """Portable names of corpus folders: the folder's name, or as many trailing parts as it
    takes to tell two folders of the same name apart (``experiment/rect``, ``control/rect``)."""
    if len(set(roots)) != len(roots):
        raise ValueError("The same corpus folder is given twice: give each --data once.")
    for depth in range(1, max(len(r.parts) for r in roots) + 1):
        names = ["/".join(r.parts[-depth:]).lstrip("/") for r in roots]
        if len(set(names)) == len(names):
            return names
    raise AssertionError("distinct folders always have distinct full paths")


def split_pairs(
    data: list[str],
    protocols: list[str],
    split: str,
    *,
    seed: int = 0,
    val_writers: float | None = None,
    random_forgeries: int | list[int] = 0,
    deduplicate: bool = True,
) -> tuple[list[Pair], list[dict]]:
    """The pairs of ``split`` (``train``, ``val``, ``test``, ``trainval`` or ``all``) of each
    corpus.

    Args:
        data: corpus folders.
        protocols: one protocol per corpus, or a single one for all (ignored for ``all``).
        random_forgeries: per writer, this many negatives pairing a genuine signature with another
            writer's of the same split (``make_pairs``); one count for all corpora or one each.

    Returns:
        (pairs, sources): pairs with absolute paths; per corpus a dict with its path, layout,
        protocol, seed, duplicates removed and the writer split (writer lists).
    """
    if len(protocols) not in (1, len(data)):
        raise ValueError(f"Give one --protocol for all corpora or one per --data ({len(data)}).")
    randoms = [random_forgeries] if isinstance(random_forgeries, int) else list(random_forgeries)
    if len(randoms) not in (1, len(data)):
        raise ValueError(
            f"Give one --random-forgeries for all corpora or one per --data ({len(data)})."
        )
    if any(r < 0 for r in randoms):
        raise ValueError("--random-forgeries must be 0 or more.")
    pairs: list[Pair] = []
    sources: list[dict] = []
    # Writer ids carry the corpus's name, long enough to tell two folders named alike apart
    # (CrossMedia-zh's experiment/rect and control/rect).
    names = corpus_names([Path(p).resolve() for p in data])
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
        extra = randoms[0] if len(randoms) == 1 else randoms[i]
        for pair in make_pairs(corpus, writers, random_forgeries=extra, seed=seed):
            pairs.append(
                replace(
                    pair,
                    reference=str(root / pair.reference),
                    questioned=str(root / pair.questioned),
                    writer=f"{names[i]}/{pair.writer}" if len(data) > 1 else pair.writer,
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
                "random_forgeries": extra,
                "writer_split": writer_split,
            }
        )
    return pairs, sources


def card_split_pairs(
    card,
    data: list[str],
    split: str,
    *,
    protocols: list[str] | None = None,
    seed: int | None = None,
    val_writers: float | None = None,
    random_forgeries: int | list[int] = 0,
) -> tuple[list[Pair], list[dict], str, int]:
    """``split_pairs`` with the writer split a verifier was trained with: its card's protocols,
    split seed and validation share unless given. ``split`` ``all`` takes every writer.

    Returns:
        (pairs, sources, split, seed).

    Raises:
        ValueError: no protocol given or recorded (except for ``all``), or what
            ``split_pairs`` refuses.
    """
    training = card.training or {}
    seed = seed if seed is not None else training.get("split_seed", training.get("seed", 0))
    if val_writers is None:
        val_writers = training.get("val_writers")
    # Every writer is evaluated with split "all": the training protocol does not apply.
    protocols = protocols or ([] if split == "all" else training.get("protocol") or [])
    if split != "all" and not protocols:
        raise ValueError("Give --protocol (or --writers all).")
    pairs, sources = split_pairs(
        data,
        protocols or ["all"],
        split,
        seed=seed,
        val_writers=val_writers,
        random_forgeries=random_forgeries,
    )
    return pairs, sources, split, seed
