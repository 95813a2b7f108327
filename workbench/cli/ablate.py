"""The paper's ablations (Tables 2-4) at one reduced budget:
``python -m workbench.cli.ablate --data PATH --out DIR``.

Every variant is trained with the same recipe and the same number of training pairs, on the same
writer split, then evaluated on the test writers; a second seed of the full model measures
run-to-run noise. Finished variants are skipped, so an interrupted run continues where it stopped.
Prints (and writes ``DIR/ablation.md``) the three tables with accuracy at the validation
threshold, accuracy at 0.5, EER and AUC on the test writers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workbench.checkpoint import WeightsCard, read_card
from workbench.cli import evaluate, train
from workbench.engine import default_device

# name -> (attention, cross-attention, loss, seed); "full" is the paper's model.
VARIANTS: dict[str, tuple[str, str, str, int]] = {
    "full": ("diff_simam", "on", "focal", 0),
    "baseline": ("none", "off", "focal", 0),
    "diff_simam": ("diff_simam", "off", "focal", 0),
    "cross": ("none", "on", "focal", 0),
    "full_seed1": ("diff_simam", "on", "focal", 1),
    "ce": ("diff_simam", "on", "ce", 0),
    "simam": ("simam", "on", "focal", 0),
    "se": ("se", "on", "focal", 0),
    "cbam": ("cbam", "on", "focal", 0),
}
TABLES = {
    "Table 2: modules": [
        ("baseline", "baseline"),
        ("+ difference SimAM", "diff_simam"),
        ("+ cross-attention", "cross"),
        ("+ both (full)", "full"),
    ],
    "Table 3: attention after each dense block, cross-attention on": [
        ("none", "cross"),
        ("SE", "se"),
        ("CBAM", "cbam"),
        ("SimAM", "simam"),
        ("difference SimAM", "full"),
    ],
    "Table 4: loss": [("cross-entropy", "ce"), ("focal contrast", "full")],
    "Run-to-run noise: the full model, two seeds": [("seed 0", "full"), ("seed 1", "full_seed1")],
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench.cli.ablate", description=__doc__)
    p.add_argument("--data", required=True, help="the BHSig-B folder (or any corpus of --protocol)")
    p.add_argument("--protocol", default="bhsig-b")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--input-size", default="128", help="reduced budget: a smaller input (default 128x128)"
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--pairs-per-epoch", type=int, default=8000)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument(
        "--device", default=default_device(), help="cpu or cuda (default: cuda when present)"
    )
    p.add_argument(
        "--only", action="append", choices=sorted(VARIANTS), help="run these variants only"
    )
    p.add_argument("--quiet", action="store_true")
    return p


def run_variant(name: str, args: argparse.Namespace) -> dict:
    """Train and evaluate one variant (or read its finished result)."""
    folder = Path(args.out) / name
    result_file = folder / "test" / "metrics.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    attention, cross, loss, seed = VARIANTS[name]
    common = ["--threads", str(args.threads), "--device", args.device]
    common += ["--quiet"] if args.quiet else []
    code = train.main(
        [
            "--data",
            args.data,
            "--protocol",
            args.protocol,
            "--attention",
            attention,
            "--cross-attention",
            cross,
            "--loss",
            loss,
            "--seed",
            str(seed),
            "--input-size",
            args.input_size,
            "--epochs",
            str(args.epochs),
            "--pairs-per-epoch",
            str(args.pairs_per_epoch),
            "--augment",
            "--out",
            str(folder),
            "--name",
            name,
            "--resume",
        ]
        + common
    )
    if code:
        raise RuntimeError(f"training {name} failed ({code})")
    code = evaluate.main(
        [
            "--weights",
            str(folder / f"{name}.safetensors"),
            "--data",
            args.data,
            "--out",
            str(folder / "test"),
        ]
        + common
    )
    if code:
        raise RuntimeError(f"evaluating {name} failed ({code})")
    return json.loads(result_file.read_text())


def tables(results: dict[str, dict], cards: dict[str, WeightsCard]) -> str:
    """Markdown tables in the shape of the paper's Tables 2-4 (test writers, percentages)."""
    lines = []
    for title, rows in TABLES.items():
        lines += [
            f"**{title}**",
            "",
            "| variant | Acc@val thr | Acc@0.5 | EER (test) | AUC | val EER | pairs seen "
            "| train min |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label, name in rows:
            if name not in results:
                lines.append(f"| {label} | not run | | | | | | |")
                continue
            r, t = results[name], cards[name]
            lines.append(
                f"| {label} | {100 * r['val_threshold_acc']:.2f} | {100 * r['acc']:.2f} "
                f"| {100 * r['eer']:.2f} "
                f"| {r['auc']:.4f} | {100 * t.validation.eer:.2f} | {t.training['pairs_seen']} "
                f"| {t.training_seconds / 60:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results, cards = {}, {}
    for name in args.only or VARIANTS:
        try:
            results[name] = run_variant(name, args)
        except (RuntimeError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        cards[name] = read_card(Path(args.out) / name / f"{name}.json")
        print(
            json.dumps(
                {
                    "variant": name,
                    "acc_val": results[name]["val_threshold_acc"],
                    "eer": results[name]["eer"],
                }
            ),
            file=sys.stderr,
            flush=True,
        )
    text = tables(results, cards)
    (Path(args.out) / "ablation.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
