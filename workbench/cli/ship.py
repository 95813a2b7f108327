"""Ship a trained model:
``python -m workbench.cli.ship --model runs/NAME/NAME.safetensors [--eval DIR ...]``.

Copies the weights and their JSON into ``weights/`` and adds to the JSON what the regression
test checks: the scores of fixed pairs of the synthetic ``examples/`` (same writer and skilled
forgery), the test metrics of the ``evaluate`` runs given with ``--eval``, and, from an
``evaluate --split val`` run given with ``--val-eval``, the validation writers' FAR and FRR at
every threshold (the app shows them next to its threshold control).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from workbench.checkpoint import Validation, file_sha256, read_card, write_card
from workbench.config import EXAMPLES_DIR, PROJECT_ROOT
from workbench.verification.workbench import Workbench

ROOT = PROJECT_ROOT
EXAMPLES = EXAMPLES_DIR


def example_pairs() -> list[tuple[str, str, int]]:
    """(reference, questioned, label) over the examples: each writer's genuine pairs and its
    genuine signatures against its skilled forgery; file names relative to ``examples/``."""
    pairs = []
    for writer in sorted({p.name.split("_")[0] for p in EXAMPLES.glob("writer*_*.png")}):
        genuine = sorted(p.name for p in EXAMPLES.glob(f"{writer}_genuine_*.png"))
        forged = sorted(p.name for p in EXAMPLES.glob(f"{writer}_forgery_*.png"))
        pairs += [(genuine[0], g, 1) for g in genuine[1:]]
        pairs += [(g, f, 0) for g in genuine for f in forged]
    return pairs


def example_scores(weights: str | Path) -> list[dict]:
    bench = Workbench(weights)
    out = []
    for reference, questioned, label in example_pairs():
        verdict = bench.verify([EXAMPLES / reference], EXAMPLES / questioned)
        out.append(
            {
                "reference": reference,
                "questioned": questioned,
                "label": label,
                "score": verdict.score,
                "network_score": verdict.network_scores[0],
                "shape": verdict.shapes[0] if verdict.fused else None,
                "local_shape": verdict.local_shapes[0] if verdict.local_shapes else None,
            }
        )
    return out


def validation_curve(folder: str | Path, *, steps: int = 200) -> dict:
    """FAR and FRR of the validation pairs scored in ``folder/scores.csv`` at thresholds
    0, 1/steps, ..., 1 (``metrics.rate_curve``)."""
    from workbench import metrics

    with (Path(folder) / "scores.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    labels = [int(r["label"]) for r in rows]
    scores = [float(r["score"]) for r in rows]
    return metrics.rate_curve(labels, scores, steps=steps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.cli.ship", description=__doc__)
    parser.add_argument("--model", required=True, help="the exported NAME.safetensors of a run")
    parser.add_argument("--name", default="verifier", help="name under weights/")
    parser.add_argument(
        "--eval", action="append", default=[], help="an evaluate --out folder (metrics.json)"
    )
    parser.add_argument("--val-eval", help="an evaluate --split val --out folder (scores.csv)")
    parser.add_argument(
        "--earlier-stage",
        action="append",
        default=[],
        help="JSON of a run this one started from (--init-from): "
        "its training budget is recorded too",
    )
    parser.add_argument(
        "--keep-extra",
        action="store_true",
        help="keep what the shipped JSON already carries beyond the run's own card (writer "
        "space, score fusion, calibrations, conditions): re-ship new evaluations of the same "
        "weights without refitting them",
    )
    parser.add_argument("--dest", default=str(ROOT / "weights"))
    args = parser.parse_args(argv)
    source = Path(args.model).with_suffix(".safetensors")
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    weights = dest / f"{args.name}.safetensors"
    kept = {}
    if args.keep_extra and (dest / f"{args.name}.json").exists():
        if file_sha256(weights) != file_sha256(source):
            print(f"error: {weights} holds other weights than {source}", file=sys.stderr)
            return 2
        kept = read_card(dest / args.name).extra
    shutil.copyfile(source, weights)
    card = replace(read_card(source), name=args.name, weights_sha256=file_sha256(weights))
    card = replace(card, extra={**card.extra, **kept})
    stages = [
        read_card(Path(stage).with_suffix(".json")).training or {} for stage in args.earlier_stage
    ]
    if stages:
        training = {**(card.training or {}), "earlier_stages": stages}
        every = stages + [training]
        training["total_pairs_seen"] = sum(t.get("pairs_seen", 0) for t in every)
        training["total_wall_seconds"] = round(sum(t.get("wall_seconds", 0) for t in every), 1)
        card = replace(card, training=training)
    evaluations = []
    for folder in args.eval:
        metrics = json.loads((Path(folder) / "metrics.json").read_text())
        evaluations.append({k: v for k, v in metrics.items() if k != "weights"})
    if evaluations:
        card = replace(card, test=tuple(evaluations))
    if args.val_eval:
        curve = validation_curve(args.val_eval)
        card = replace(card, validation=replace(card.validation or Validation(), curve=curve))
    write_card(dest / args.name, card)
    card = replace(card, examples=tuple(example_scores(weights)))
    write_card(dest / args.name, card)
    print(json.dumps({"weights": str(weights), "examples": list(card.examples)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
