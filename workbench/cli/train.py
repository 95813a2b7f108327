"""Train the verifier: ``python -m workbench.cli.train --data PATH --protocol NAME --out runs/NAME``.

Adam 1e-3, 64 pairs a batch, seeded. Each image is preprocessed once and cached; every epoch
scores the validation writers, keeps the best checkpoint (lowest validation EER) and its
validation threshold, and the run ends by exporting ``NAME.safetensors`` + ``NAME.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from workbench import metrics
from workbench.augment import augment_batch, light_affine
from workbench.checkpoint import save_model
from workbench.config import ATTENTIONS, ModelConfig, PreprocessConfig
from workbench.data.image_bank import ImageBank
from workbench.data.sources import split_pairs
from workbench.losses import LOSSES
from workbench.models import build_model, images_to_tensor
from workbench.verification.scoring import score_pairs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench.cli.train", description=__doc__)
    p.add_argument(
        "--data", action="append", required=True, help="corpus folder (repeat for several)"
    )
    p.add_argument(
        "--protocol", action="append", required=True, help="one for all corpora or one per --data"
    )
    p.add_argument(
        "--config", choices=["compact", "paper"], default="compact", help="backbone width"
    )
    p.add_argument(
        "--growth-rate",
        type=int,
        default=0,
        help="override the width's growth rate (0 = the width's)",
    )
    p.add_argument(
        "--stem-channels",
        type=int,
        default=0,
        help="override the width's stem channels (0 = the width's)",
    )
    p.add_argument("--attention", choices=ATTENTIONS, default="diff_simam")
    p.add_argument("--cross-attention", choices=["on", "off"], default="on")
    p.add_argument("--loss", choices=sorted(LOSSES), default="focal")
    p.add_argument(
        "--input-size", default="224", help="network input: S (square) or HxW, e.g. 112x336"
    )
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument(
        "--pairs-per-epoch", type=int, default=0, help="sampled training pairs per epoch (0 = all)"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument(
        "--augment", action="store_true", help="light affine augmentation and random pair order"
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=0,
        help="stop after the epoch that reaches this wall time (0 = no limit)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="initialisation, pair order and augmentation seed"
    )
    p.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="writer split seed (keep it fixed to compare runs)",
    )
    p.add_argument(
        "--lr-schedule",
        choices=["constant", "cosine"],
        default="constant",
        help="cosine: decay the learning rate to 0 over --epochs x --pairs-per-epoch",
    )
    p.add_argument(
        "--init-from",
        help="start from this saved model's weights (NAME.safetensors), fresh optimizer",
    )
    p.add_argument(
        "--val-writers", type=float, help="validation writers (count or fraction) per corpus"
    )
    p.add_argument(
        "--max-val-pairs",
        type=int,
        default=4000,
        help="validation pairs scored per epoch (seeded sample)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument(
        "--out", required=True, help="run folder; the exported model is <out>/<name>.safetensors"
    )
    p.add_argument("--name", help="exported model name (default: the run folder's name)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.* if present")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _augmenter(seed: int):
    affine = light_affine()
    generator = torch.Generator().manual_seed(seed)

    def augment(x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1, x2 = augment_batch(x1, affine), augment_batch(x2, affine)
        swap = torch.rand(x1.shape[0], generator=generator) < 0.5
        a = torch.where(swap[:, None, None, None], x2, x1)
        b = torch.where(swap[:, None, None, None], x1, x2)
        return a, b

    return augment


def _save_state(out: Path, model, optimizer, state: dict) -> None:
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "last.safetensors")
    )
    tensors, scalars = {}, {}
    for index, values in optimizer.state_dict()["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    save_file(tensors, str(out / "last_optimizer.safetensors"))
    state = {
        **state,
        "optimizer_param_groups": optimizer.state_dict()["param_groups"],
        "optimizer_scalars": scalars,
    }
    (out / "last.json").write_text(json.dumps(state, indent=1) + "\n")


def _load_state(out: Path, model, optimizer) -> dict:
    state = json.loads((out / "last.json").read_text())
    model.load_state_dict(load_file(str(out / "last.safetensors")))
    per_param: dict[int, dict] = {}
    for key, value in load_file(str(out / "last_optimizer.safetensors")).items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    for key, value in state["optimizer_scalars"].items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["optimizer_param_groups"]})
    return state


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or out.name
    height, _, width = args.input_size.lower().partition("x")
    config = ModelConfig(
        width=args.config,
        growth_rate=args.growth_rate,
        stem_channels=args.stem_channels,
        attention=args.attention,
        cross_attention=args.cross_attention == "on",
        input_height=int(height),
        input_width=int(width or height),
    )
    pre = PreprocessConfig(height=config.input_height, width=config.input_width)
    try:
        train, sources = split_pairs(
            args.data, args.protocol, "train", seed=args.split_seed, val_writers=args.val_writers
        )
        val, _ = split_pairs(
            args.data, args.protocol, "val", seed=args.split_seed, val_writers=args.val_writers
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    bank = ImageBank(
        [q for p in train + val for q in (p.reference, p.questioned)],
        config=pre,
        cache_dir=out.parent / "cache",
        progress=not args.quiet,
    )
    train = [p for p in train if p.reference in bank and p.questioned in bank]
    val = [p for p in val if p.reference in bank and p.questioned in bank]
    if not train or not val or len({p.label for p in val}) < 2:
        print("error: need training pairs and validation pairs of both kinds", file=sys.stderr)
        return 2
    if len(val) > args.max_val_pairs:
        keep = np.random.default_rng(args.seed).choice(len(val), args.max_val_pairs, replace=False)
        val = [val[i] for i in sorted(keep)]
    val_labels = np.array([p.label for p in val])

    torch.manual_seed(args.seed)
    model = build_model(config=config)
    if args.init_from:
        from workbench.checkpoint import load_meta

        start_config = ModelConfig.from_dict(load_meta(args.init_from)["model"])
        if start_config != config:
            print(f"error: {args.init_from} has a different model configuration", file=sys.stderr)
            return 2
        model.load_state_dict(load_file(str(Path(args.init_from).with_suffix(".safetensors"))))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    loss_fn = LOSSES[args.loss]
    augment = _augmenter(args.seed) if args.augment else None
    state = {"epoch": 0, "pairs_seen": 0, "seconds": 0.0, "best": None}
    if args.resume and (out / "last.json").exists():
        state = _load_state(out, model, optimizer)
        print(
            f"resumed after epoch {state['epoch']} ({state['pairs_seen']} pairs seen)",
            file=sys.stderr,
        )
    per_epoch = args.pairs_per_epoch or len(train)
    steps_per_epoch = -(-per_epoch // args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    log_file = (out / "log.jsonl").open("a", encoding="utf-8")

    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        rng = np.random.default_rng([args.seed, epoch])
        torch.manual_seed(args.seed * 100_003 + epoch)
        order = rng.permutation(len(train))
        if per_epoch > len(train):
            order = rng.choice(len(train), per_epoch, replace=True)
        order = order[:per_epoch]
        model.train()
        started, total_loss, seen = time.perf_counter(), 0.0, 0
        batches = range(0, len(order), args.batch_size)
        bar = tqdm(batches, desc=f"epoch {epoch}/{args.epochs}", unit="batch", disable=args.quiet)
        for step, start in enumerate(bar):
            if args.lr_schedule == "cosine":
                done = (epoch - 1) * steps_per_epoch + step
                for group in optimizer.param_groups:
                    group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * done / total_steps))
            chunk = [train[i] for i in order[start : start + args.batch_size]]
            x1 = images_to_tensor(bank.get([p.reference for p in chunk]))
            x2 = images_to_tensor(bank.get([p.questioned for p in chunk]))
            if augment is not None:
                x1, x2 = augment(x1, x2)
            targets = torch.tensor([p.label for p in chunk])
            loss = loss_fn(model(x1, x2), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(chunk)
            seen += len(chunk)
            bar.set_postfix(
                loss=f"{total_loss / seen:.4f}",
                pairs_s=f"{seen / (time.perf_counter() - started):.1f}",
            )
        train_seconds = time.perf_counter() - started
        scores = score_pairs(model, bank, val, progress=not args.quiet, desc="validation")
        rate, threshold = metrics.eer(val_labels, scores)
        at_half = metrics.far_frr(val_labels, scores, 0.5)
        state["pairs_seen"] += seen
        state["seconds"] += time.perf_counter() - started
        record = {
            "epoch": epoch,
            "train_loss": total_loss / seen,
            "pairs": seen,
            "pairs_seen": state["pairs_seen"],
            "train_seconds": round(train_seconds, 1),
            "pairs_per_s": round(seen / train_seconds, 2),
            "val_eer": rate,
            "val_threshold": threshold,
            "val_acc_at_0.5": at_half["acc"],
            "val_auc": metrics.auc(val_labels, scores),
            "lr_end": optimizer.param_groups[0]["lr"],
            "wall_seconds": round(state["seconds"], 1),
        }
        print(json.dumps(record), file=log_file, flush=True)
        if not args.quiet:
            print(json.dumps(record), file=sys.stderr)
        if state["best"] is None or rate < state["best"]["val_eer"]:
            state["best"] = record
            save_model(model, out / "best", {"model": config.to_dict()})
        state["epoch"] = epoch
        _save_state(out, model, optimizer, state)
        if args.max_minutes and state["seconds"] >= 60 * args.max_minutes:
            print(
                f"stopping: {state['seconds'] / 60:.1f} minutes reached the --max-minutes budget",
                file=sys.stderr,
            )
            break
    log_file.close()
    if state["best"] is None:
        print("error: no epoch was run (nothing to export)", file=sys.stderr)
        return 2

    best = state["best"]
    from workbench.checkpoint import load_verifier

    model, _, _ = load_verifier(out / "best")
    meta = {
        "name": name,
        "architecture": "siamese_densenet36",
        "model": config.to_dict(),
        "preprocess": pre.to_dict(),
        "training": {
            **{k: v for k, v in vars(args).items() if k not in ("quiet", "resume")},
            "optimizer": "Adam",
            "batch_size": args.batch_size,
            "epochs_run": state["epoch"],
            "pairs_seen": state["pairs_seen"],
            "wall_seconds": round(state["seconds"], 1),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "train_pairs": len(train),
            "val_pairs_scored": len(val),
        },
        "data": sources,
        "validation": {
            "epoch": best["epoch"],
            "eer": best["val_eer"],
            "threshold": best["val_threshold"],
            "acc_at_0.5": best["val_acc_at_0.5"],
            "auc": best["val_auc"],
        },
    }
    weights, card = save_model(model, out / name, meta)
    print(
        json.dumps({"weights": str(weights), "card": str(card), "validation": meta["validation"]})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
