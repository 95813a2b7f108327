"""Likelihood ratios for the verifier: ``python -m workbench.cli.calibrate``.

``--split val --write-card`` fits, on the validation writers the verifier never trained on, one
score-to-LR calibration per alternative hypothesis (skilled forgery, random forgery) and per
number of references k = 1 .. ``--references`` (``workbench.verification.calibration``), pooled
over every corpus, and one more per corpus on its validation writers alone (its calibration
population, for cases whose conditions match that corpus), and stores them in the weights'
JSON under ``calibration``. On any other split (``--split test``) it measures the stored
calibrations: Cllr, Cllr_min and EER per corpus and alternative, for the pooled calibration
and for the corpus's own population when the weights carry one.
Comparisons are made as an examiner makes them (``workbench.verification.reference_sets``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from workbench.checkpoint import load_verifier, read_card, write_card
from workbench.data.image_bank import ImageBank
from workbench.data.sources import card_split_pairs
from workbench.verification.calibration import (
    ALTERNATIVES,
    Calibration,
    choose_calibration,
)
from workbench.verification.conditions import (
    Conditions,
    fit_conditions,
    statistics_of,
    stored_conditions,
)
from workbench.verification.copies import CopyCheck, copy_similarity, fit_copy_check
from workbench.verification.fusion import stored_fusion, verdict_scores
from workbench.verification.reference_sets import (
    aggregate,
    comparisons_by_corpus,
    unique_pairs,
    writer_normalized,
)
from workbench.verification.validity import (
    compare_eers,
    fit_on_validation,
    joined,
    measure,
    save_validity_plots,
)
from workbench.verification.writer_space import (
    comparison_similarities,
    embed_images,
    stored_writer_space,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench.cli.calibrate", description=__doc__)
    p.add_argument("--weights", required=True, help="the verifier: NAME.safetensors + NAME.json")
    p.add_argument("--data", action="append", required=True, help="corpus folder (repeatable)")
    p.add_argument("--protocol", action="append", help="default: the card's training protocols")
    p.add_argument("--split", default="val", choices=["val", "test", "all"])
    p.add_argument("--references", type=int, default=5, help="calibrate k = 1 .. this many")
    p.add_argument(
        "--random-per-writer", type=int, default=20, help="random forgeries per writer (seeded)"
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the random forgeries")
    p.add_argument("--write-card", action="store_true", help="(val) store the calibrations")
    p.add_argument(
        "--out", help="also write every result (calibration.json) and, on test, the plots here"
    )
    p.add_argument(
        "--conditions-images",
        type=int,
        default=3000,
        help="(val) training writers' images (seeded sample) the conditions' Gaussians fit on",
    )
    p.add_argument(
        "--held-out",
        action="append",
        default=[],
        help="(val) a corpus folder left out of the conditions' fit (repeatable): the share of its "
        "writers' comparisons the warning flags is measured, as for a model never trained on it",
    )
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p


def _image_features(bank: ImageBank, paths) -> dict[str, np.ndarray]:
    """The conditions' image statistics of ``paths`` (in ``bank``) by path."""
    return dict(zip(paths, statistics_of(bank.get(paths)), strict=True))


def _stacked(features: dict, comparison) -> np.ndarray:
    """The rows of ``features`` (by path) of one comparison's references and questioned
    signature: (k + 1, 7) statistics, or (k + 1, C) pooled features."""
    return np.stack([features[p] for p in (*comparison.references, comparison.questioned)])


def _outside(conditions: Conditions, features: dict, pooled: dict, comparisons) -> np.ndarray:
    """Whether each comparison lies beyond the conditions' thresholds, from its images'
    statistics and pooled backbone features by path."""
    return np.array(
        [conditions.check(_stacked(features, c), _stacked(pooled, c)).outside for c in comparisons],
        dtype=bool,
    )


def _pooled(model, bank: ImageBank, paths, progress: bool) -> dict[str, np.ndarray]:
    """The pooled backbone features of ``paths`` (in ``bank``) by path."""
    wrap = (lambda it: tqdm(it, desc="backbone features", unit="batch")) if progress else None
    return dict(zip(paths, embed_images(model, bank.get(paths), progress=wrap), strict=True))


def _fit_conditions(
    args, model, card, pre, sources, by_corpus: dict, features: dict, pooled: dict
) -> Conditions:
    """The conditions: per training corpus a Gaussian of a seeded sample of its training
    writers' images (their statistics, and their pooled backbone features), the thresholds on
    the validation writers' comparisons."""
    pairs, _, _, _ = card_split_pairs(card, args.data, "train", protocols=args.protocol)
    paths = sorted({q for p in pairs for q in (p.reference, p.questioned)})
    rng = np.random.default_rng(args.seed)
    chosen = [paths[i] for i in sorted(rng.permutation(len(paths))[: args.conditions_images])]
    bank = ImageBank(chosen, config=pre, progress=not args.quiet)
    train: dict[str, list] = {}
    for path in (p for p in chosen if p in bank):
        root = next(
            (Path(s["path"]).resolve() for s in sources
             if Path(path).resolve().is_relative_to(Path(s["path"]).resolve())),
            None,
        )  # fmt: skip
        train.setdefault(root.name if root else "other", []).append(path)
    train = {name: ps for name, ps in train.items() if len(ps) > 1}
    statistics = {name: statistics_of(bank.get(ps)) for name, ps in train.items()}
    tower = {name: embed_images(model, bank.get(ps)) for name, ps in train.items()}
    comparisons = [c for cs in by_corpus.values() for c in cs]
    return fit_conditions(
        statistics,
        [_stacked(features, c) for c in comparisons],
        tower_train=tower,
        tower_val=[_stacked(pooled, c) for c in comparisons],
        val_groups=[corpus for corpus, cs in by_corpus.items() for _ in cs],
        data=f"{sum(map(len, statistics.values()))} images of training writers "
        f"({', '.join(statistics)}) and {len(comparisons)} comparisons of validation writers "
        "(each check's limit: the largest of the corpora's 95th percentiles)",
    )


def _held_out(args, model, card, pre, conditions: Conditions) -> dict:
    """The warning's share on each ``--held-out`` corpus, every writer's comparisons (k =
    ``--references``): the conditions were fitted without it, as a leave-one-corpus-out model's
    would be."""
    found = {}
    for folder in args.held_out:
        pairs, sources, _, _ = card_split_pairs(card, [folder], "all")
        by_corpus = comparisons_by_corpus(
            pairs, sources, args.references, args.random_per_writer, args.seed
        )
        comparisons = [c for cs in by_corpus.values() for c in cs]
        paths = sorted({p for c in comparisons for p in (*c.references, c.questioned)})
        bank = ImageBank(paths, config=pre, progress=not args.quiet)
        features = _image_features(bank, paths)
        pooled = _pooled(model, bank, paths, not args.quiet)
        for corpus, cs in by_corpus.items():
            outside = _outside(conditions, features, pooled, cs)
            found[f"held out: {corpus} outside validated conditions"] = {
                "share": float(outside.mean()),
                "comparisons": len(cs),
            }
    return found


def _copy_check(
    pairs, bank: ImageBank, by_corpus: dict, progress: bool, shapes=None
) -> CopyCheck | None:
    """The copy rule from the genuine (reference, questioned) pairs of the validation writers
    (``verification.copies``); ``shapes``: every pair's ``copy_similarity`` where the fused
    scoring has computed them already."""
    genuine = [i for i, p in enumerate(pairs) if p.label == 1]
    if not genuine:
        return None
    if shapes is not None:
        values = [float(shapes[i]) for i in genuine]
    else:
        values = [
            copy_similarity(*bank.get([pairs[i].reference, pairs[i].questioned]))
            for i in tqdm(genuine, desc="copy check", disable=not progress)
        ]
    corpora = ", ".join(by_corpus)
    return fit_copy_check(
        values, data=f"{len(values)} genuine pairs of validation writers of {corpora}"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.references < 1:
            raise ValueError("--references must be 1 or more.")
        model, card, pre = load_verifier(args.weights, fuse=True)
        pairs, sources, split, _ = card_split_pairs(
            card, args.data, args.split, protocols=args.protocol
        )
        by_corpus = comparisons_by_corpus(
            pairs, sources, args.references, args.random_per_writer, args.seed
        )
        stored = [Calibration.from_dict(c) for c in card.extra.get("calibration", [])]
        if split != "val" and not stored:
            raise ValueError(
                "The weights carry no calibration: fit one first with --split val --write-card."
            )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    comparisons = [c for cs in by_corpus.values() for c in cs]
    needed = unique_pairs(comparisons)
    bank = ImageBank(
        [q for p in needed for q in (p.reference, p.questioned)],
        config=pre,
        progress=not args.quiet,
    )
    # the verdict's scores: fused with the shape correlation where the weights carry a fusion
    fusion = stored_fusion(card)
    scored = verdict_scores(model, bank, needed, fusion, progress=not args.quiet)
    scores = scored.scores
    space = stored_writer_space(card)
    paths = sorted({p for c in comparisons for p in (*c.references, c.questioned)})
    embedded = _pooled(model, bank, paths, not args.quiet)  # for the writer space and conditions
    results: dict = {}
    fitted: list[Calibration] = []
    for k in range(1, args.references + 1):
        pooled: dict[str, list] = {kind: [] for kind in ("genuine", *ALTERNATIVES)}
        for corpus, cs in by_corpus.items():
            mean = aggregate(cs, needed, scores, k=k)
            kinds = np.array([c.kind for c in cs])
            if k >= 2:
                normalized = writer_normalized(cs, needed, scores, k=k)
                results[f"{corpus} k={k} writer normalization"] = compare_eers(
                    kinds, mean, normalized
                )
            similar = None
            if space is not None:
                similar = comparison_similarities(space, embedded, cs, k)
                results[f"{corpus} k={k} writer space"] = compare_eers(
                    kinds, mean, similar, "writer_space"
                )

            def pick(kind, mean=mean, similar=similar, kinds=kinds):
                keep = kinds == kind
                return mean[keep], None if similar is None else similar[keep]

            for kind in pooled:
                pooled[kind].append(pick(kind))
            for alternative in ALTERNATIVES:
                same, different = pick("genuine"), pick(alternative)
                if len(same[0]) < 2 or len(different[0]) < 2:
                    continue
                if split == "val":  # the corpus's own population (with one corpus: the pooled)
                    if len(by_corpus) > 1:
                        fitted.append(fit_on_validation(same, different, alternative, k, corpus))
                        name = f"{corpus} k={k} {alternative} own calibration"
                        results[name] = fitted[-1].to_dict()
                    continue
                calibration = choose_calibration(stored, alternative, k)
                if calibration is not None:
                    results[f"{corpus} k={k} {alternative}"] = measure(calibration, same, different)
                    if args.out and k == args.references:
                        save_validity_plots(calibration, same, different, Path(args.out),
                               f"{corpus}, k = {k}, {alternative}")  # fmt: skip
                own = choose_calibration(stored, alternative, k, population=corpus)
                if own is not None:
                    results[f"{corpus} k={k} {alternative} own calibration"] = measure(
                        own, same, different
                    )
        if split == "val":
            same = joined(pooled["genuine"])
            for alternative in ALTERNATIVES:
                different = joined(pooled[alternative])
                if len(different[0]) < 2:
                    continue
                fitted.append(
                    fit_on_validation(same, different, alternative, k, "", list(by_corpus))
                )
                results[f"k={k} {alternative}"] = fitted[-1].to_dict()
    features = _image_features(bank, paths)
    conditions = stored_conditions(card)
    if split == "val":
        conditions = _fit_conditions(args, model, card, pre, sources, by_corpus, features, embedded)
        results["conditions"] = {
            k: v for k, v in conditions.to_dict().items() if k not in ("gaussians", "tower")
        }
    if conditions is not None and split == "val":
        results.update(_held_out(args, model, card, pre, conditions))
    if conditions is not None:
        for corpus, cs in by_corpus.items():
            outside = _outside(conditions, features, embedded, cs)
            results[f"{corpus} outside validated conditions"] = {
                "share": float(outside.mean()),
                "comparisons": len(cs),
            }
    copies = (
        _copy_check(needed, bank, by_corpus, not args.quiet, scored.shape)
        if split == "val"
        else None
    )
    if copies is not None:
        results["copy_check"] = copies.to_dict()
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "calibration.json").write_text(json.dumps(results, indent=1) + "\n")
    if args.write_card and fitted:
        stem = Path(args.weights).with_suffix("")
        current = read_card(stem)
        extra = {**current.extra, "calibration": [c.to_dict() for c in fitted]}
        if copies is not None:
            extra["copy_check"] = copies.to_dict()
        extra["conditions"] = conditions.to_dict()
        write_card(stem, dataclasses.replace(current, extra=extra))
    for name, result in results.items():
        print(json.dumps({"name": name, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
