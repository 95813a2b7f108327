"""Fit the verdict's score fusion on validation writers:
``python -m workbench.cli.fuse --weights W --val-eval DIR --write-card``.

``DIR`` is an ``evaluate --split val --network-only`` output (its ``scores.csv`` holds the
network's score of every validation pair, its ``metrics.json`` the split, which must be
``val``: a fusion fitted on test writers would be a choice made on them). Each pair's shape
correlation is computed from the images (the weights' preprocessing), then the logistic
regression and its threshold are fitted (``workbench.verification.fusion``). With
``--write-card`` the fusion is stored in the weights' JSON as ``score_fusion``; from then on
the verdict, ``evaluate``, the Evaluate tab and ``calibrate`` use the fused score (refit the
likelihood-ratio calibrations afterwards: ``calibrate --split val --write-card``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path

from workbench.checkpoint import read_card, write_card
from workbench.data.image_bank import ImageBank
from workbench.data.pairs import Pair
from workbench.verification.fusion import (
    KEY,
    THRESHOLD_RULES,
    fit_fusion,
    shape_correlations,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench.cli.fuse", description=__doc__)
    p.add_argument("--weights", required=True, help="the verifier: NAME.safetensors + NAME.json")
    p.add_argument(
        "--val-eval", required=True, help="an `evaluate --split val --network-only` --out folder"
    )
    p.add_argument("--write-card", action="store_true", help="store the fusion in NAME.json")
    p.add_argument(
        "--threshold-rule",
        choices=THRESHOLD_RULES,
        default="accuracy",
        help="the validation threshold: where the fused scores decide the most validation "
        "pairs right (default), or their EER point (the rule before the twelfth session)",
    )
    p.add_argument(
        "--without-local",
        action="store_true",
        help="fuse the network score and the shape correlation alone",
    )
    p.add_argument("--quiet", action="store_true")
    return p


def read_validation_scores(folder: str | Path) -> tuple[list[Pair], list[float]]:
    """The pairs and network scores of an ``evaluate --split val`` folder.

    Raises:
        ValueError: a missing file, another split, or scores that are already fused.
    """
    folder = Path(folder)
    try:
        measured = json.loads((folder / "metrics.json").read_text())
        with (folder / "scores.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError as error:
        raise ValueError(f"{folder} is not an evaluate --out folder ({error.filename}).") from None
    if measured.get("split") != "val":
        raise ValueError(
            f"{folder} scores the {measured.get('split')!r} split: fit the fusion on validation "
            "writers only (evaluate --split val --network-only)."
        )
    if measured.get("score") == "fused":
        raise ValueError(f"{folder} holds fused scores: evaluate again with --network-only.")
    pairs = [
        Pair(r["reference"], r["questioned"], int(r["label"]), r["writer"], r["kind"]) for r in rows
    ]
    return pairs, [float(r["score"]) for r in rows]


def shape_by_group(pairs: list[Pair], shape) -> dict[str, dict]:
    """Mean shape correlation and pair count per corpus (the first folder under the pairs'
    common root) and kind: what the fit weighs, for the record."""
    import os

    files = [Path(p.reference) for p in pairs]
    root = Path(os.path.commonpath([str(f.parent) for f in files]))
    groups: dict[str, list[float]] = {}
    for pair, value, path in zip(pairs, shape, files, strict=True):
        relative = path.relative_to(root).parts
        corpus = relative[0] if len(relative) > 2 else root.name
        groups.setdefault(f"{corpus} {pair.kind}", []).append(float(value))
    return {
        name: {"mean": round(sum(v) / len(v), 4), "pairs": len(v)}
        for name, v in sorted(groups.items())
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stem = Path(args.weights).with_suffix("")
    try:
        card = read_card(stem)
        pairs, network = read_validation_scores(args.val_eval)
        bank = ImageBank(
            sorted({q for p in pairs for q in (p.reference, p.questioned)}),
            config=card.preprocess,
            progress=not args.quiet,
        )
        if bank.failed:
            raise ValueError(f"{len(bank.failed)} validation image(s) could not be read again.")
        shape, local = shape_correlations(
            bank, pairs, local=not args.without_local, progress=not args.quiet
        )
        kinds = sorted({p.kind for p in pairs if p.label == 0})
        fusion = fit_fusion(
            [p.label for p in pairs],
            network,
            shape,
            local,
            threshold_rule=args.threshold_rule,
            data=f"{len(pairs)} pairs of validation writers ({', '.join(kinds)} forgeries) "
            f"scored in {Path(args.val_eval).name}",
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.write_card:
        extra = {**card.extra, KEY: fusion.to_dict()}
        write_card(stem, dataclasses.replace(card, extra=extra))
    summary = {k: v for k, v in fusion.to_dict().items() if k != "curve"}
    summary["shape_by_group"] = shape_by_group(pairs, shape)
    if local is not None:
        summary["local_shape_by_group"] = shape_by_group(pairs, local)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
