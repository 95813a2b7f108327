"""Evaluate a verifier:
``python -m workbench.cli.evaluate --weights W --data PATH --protocol P --split test --out DIR``.

Prints one JSON line (pairs, FAR/FRR/accuracy at the 0.5 argmax and at the validation threshold
stored with the weights, EER, AUC) and writes per-pair scores (CSV) and ROC, DET and score
histogram plots (PNG) into ``--out``. Where the weights carry a score fusion (``cli.fuse``) the
scores are the verdict's fused ones, decided at the fusion's threshold, and the CSV adds each
pair's network score and shape correlations; ``--network-only`` scores the network alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from workbench import metrics
from workbench.checkpoint import load_verifier
from workbench.config import FALLBACK_THRESHOLD
from workbench.data.image_bank import ImageBank
from workbench.data.sources import card_split_pairs
from workbench.engine import default_device
from workbench.plots import save_curves
from workbench.verification.fusion import stored_fusion, verdict_scores
from workbench.verification.scoring import write_scores_csv


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench.cli.evaluate", description=__doc__)
    p.add_argument("--weights", required=True, help="NAME.safetensors (NAME.json beside it)")
    p.add_argument(
        "--data", action="append", required=True, help="corpus folder (repeat for several)"
    )
    p.add_argument("--protocol", action="append", help="one for all corpora or one per --data")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "trainval"])
    p.add_argument("--writers", choices=["all"], help="every writer of the corpus (no split)")
    p.add_argument(
        "--seed", type=int, help="split seed (default: the seed the weights were trained with)"
    )
    p.add_argument(
        "--val-writers", type=float, help="as in training (default: the weights' setting)"
    )
    p.add_argument(
        "--random-forgeries", type=int, default=0, help="per writer, negatives from other writers"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--table", action="store_true", help="also print a Table-1 style row")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument(
        "--device", default=default_device(), help="cpu or cuda (default: cuda when present)"
    )
    p.add_argument(
        "--whole-pairs",
        action="store_true",
        help="run every pair whole instead of reusing each image's first dense block "
        "(slower, the same scores; for comparison)",
    )
    p.add_argument(
        "--network-only",
        action="store_true",
        help="score with the network alone, at its own validation threshold, even where the "
        "weights carry a score fusion (for cli.fuse, and for comparison)",
    )
    p.add_argument("--quiet", action="store_true")
    return p


def table_row(name: str, result: dict) -> str:
    """A row in the shape of the paper's Table 1 (percentages)."""
    pct = lambda v: f"{100 * v:.2f}"  # noqa: E731
    return (
        f"| {name} | {pct(result['frr'])} | {pct(result['far'])} | {pct(result['acc'])} "
        f"| {pct(result['val_threshold_frr'])} | {pct(result['val_threshold_far'])} "
        f"| {pct(result['val_threshold_acc'])} "
        f"| {pct(result['eer'])} | {result['auc']:.4f} |"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model, card, pre = load_verifier(args.weights, device=args.device, fuse=True)
        pairs, sources, split, seed = card_split_pairs(
            card,
            args.data,
            "all" if args.writers == "all" else args.split,
            protocols=args.protocol,
            seed=args.seed,
            val_writers=args.val_writers,
            random_forgeries=args.random_forgeries,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    bank = ImageBank(
        [q for p in pairs for q in (p.reference, p.questioned)], config=pre, progress=not args.quiet
    )
    preprocessed = time.perf_counter()
    pairs = [p for p in pairs if p.reference in bank and p.questioned in bank]
    labels = np.array([p.label for p in pairs])
    if len(set(labels.tolist())) < 2:
        print("error: the split needs both genuine and forgery pairs", file=sys.stderr)
        return 2
    fusion = None if args.network_only else stored_fusion(card)
    scored_pairs = verdict_scores(
        model, bank, pairs, fusion, progress=not args.quiet, reuse_images=not args.whole_pairs
    )
    scores = scored_pairs.scores
    scored = time.perf_counter()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_scores_csv(pairs, scores, out / "scores.csv", scored_pairs.columns())
    title = Path(args.weights).stem if card.name is None else card.name
    save_curves(labels, scores, out, title=title)

    val_threshold = card.threshold if fusion is None else fusion.threshold
    at_half = metrics.far_frr(labels, scores, FALLBACK_THRESHOLD)
    at_val = metrics.far_frr(labels, scores, val_threshold)
    rate, eer_threshold = metrics.eer(labels, scores)
    result = {
        "n_pairs": len(pairs),
        "n_genuine": int(labels.sum()),
        "n_forged": int((labels == 0).sum()),
        "acc": at_half["acc"],
        "far": at_half["far"],
        "frr": at_half["frr"],
        "val_threshold": val_threshold,
        "val_threshold_acc": at_val["acc"],
        "val_threshold_far": at_val["far"],
        "val_threshold_frr": at_val["frr"],
        "eer": rate,
        "eer_threshold_on_test": eer_threshold,
        "auc": metrics.auc(labels, scores),
        "score": "fused" if scored_pairs.fused else "network",
        **(
            {
                "network_eer": metrics.eer(labels, scored_pairs.network)[0],
                "network_auc": metrics.auc(labels, scored_pairs.network),
            }
            if scored_pairs.fused
            else {}
        ),
        "split": split,
        "seed": seed,
        "images_left_out": len(bank.failed),
        "seconds_preprocessing": round(preprocessed - started, 2),
        "seconds_scoring": round(scored - preprocessed, 2),
        "pairs_per_s": round(len(pairs) / max(scored - started, 1e-9), 1),
        "threads": torch.get_num_threads(),
    }
    (out / "metrics.json").write_text(
        json.dumps({**result, "data": sources, "weights": args.weights}, indent=1) + "\n"
    )
    print(json.dumps(result))
    if args.table:
        print("| model | FRR | FAR | Acc | FRR@val | FAR@val | Acc@val | EER (test) | AUC |")
        print(table_row("model" if card.name is None else card.name, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
