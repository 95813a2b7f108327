"""Pre-train the verifier's backbone on writer classification (SigNet-F style), from a data pack:
``python -m workbench.cli.pretrain --pack FILE --out runs/pretrain``.

The images are the pack's training writers' (never its validation or test writers): genuine
signatures teach the writer head, and genuine and skilled forgeries the forgery head. A seeded
tenth of each writer's images is held out to report writer accuracy (genuine) and the forgery
head's AUC after every epoch. The exported ``NAME.safetensors`` starts a verifier with
``python -m workbench.cli.train --init-backbone NAME.safetensors ...`` (same width).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from workbench import engine, metrics
from workbench.augment import AUGMENTATIONS, image_augmenter
from workbench.checkpoint import save_model
from workbench.config import ModelConfig
from workbench.data.batches import ImageBatches
from workbench.data.pack import DataPack
from workbench.data.pairs import Pair
from workbench.models import build_model
from workbench.models.pretrainer import PretrainerConfig, pretrain_loss


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench.cli.pretrain", description=__doc__)
    p.add_argument("--pack", required=True, help="data pack (python -m workbench.data pack)")
    p.add_argument("--out", required=True, help="run folder; exports <out>/<name>.safetensors")
    p.add_argument("--name", help="exported model name (default: the run folder's name)")
    p.add_argument("--config", choices=["compact", "paper"], default="compact")
    p.add_argument("--growth-rate", type=int, default=0)
    p.add_argument("--stem-channels", type=int, default=0)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lam", type=float, default=0.95, help="weight of the forgery loss")
    p.add_argument(
        "--augment",
        nargs="?",
        const="light",
        choices=list(AUGMENTATIONS),
        help="light (affine; the default kind) or real (affine, elastic, stroke width, blur)",
    )
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--max-minutes", type=float, default=0, help="stop after the epoch reaching it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=engine.default_device())
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p


def writer_images(pairs: list[Pair]) -> dict[str, tuple[str, int]]:
    """Image key -> (writer, 1 for a skilled forgery else 0), from training pairs: references
    are genuine; the questioned image of a ``genuine`` pair is genuine, of a ``skilled`` pair
    a forgery of the same writer; other writers' signatures (``random``) are skipped."""
    images: dict[str, tuple[str, int]] = {}
    for pair in pairs:
        images.setdefault(pair.reference, (pair.writer, 0))
        if pair.kind in ("genuine", "skilled"):
            images.setdefault(pair.questioned, (pair.writer, int(pair.kind == "skilled")))
    return images


def _held_out(items: list[tuple[str, tuple[int, int]]], fraction: float, seed: int):
    """Seeded per-writer split of the items into (train, validation)."""
    by_writer: dict[int, list[int]] = {}
    for i, (_, (writer, _)) in enumerate(items):
        by_writer.setdefault(writer, []).append(i)
    val: set[int] = set()
    for writer, indices in by_writer.items():
        order = np.random.default_rng([seed, writer]).permutation(indices)
        val.update(order[: int(round(len(order) * fraction))].tolist())
    return [x for i, x in enumerate(items) if i not in val], [items[i] for i in sorted(val)]


def _heads(outputs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    writer_logits, forgery_logit = outputs
    return torch.cat([torch.softmax(writer_logits.float(), 1), forgery_logit.float()[:, None]], 1)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Its batches are not sharded: under torchrun every rank would train on all the images
        # and write the same files.
        print("error: pretrain runs in one process; torchrun is for train", file=sys.stderr)
        return 2
    try:
        pack = DataPack.load(args.pack)
        _, device = engine.init_distributed(args.device)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or out.name
    images = {k: v for k, v in writer_images(pack.pairs("train")).items() if k in pack.bank}
    writers = sorted({w for w, _ in images.values()})
    classes = {w: i for i, w in enumerate(writers)}
    items = [(key, (classes[w], forged)) for key, (w, forged) in images.items()]
    train, val = _held_out(items, args.val_fraction, args.seed)
    backbone = ModelConfig(
        width=args.config, growth_rate=args.growth_rate, stem_channels=args.stem_channels,
        input_height=pack.config.height, input_width=pack.config.width,
    )  # fmt: skip
    config = PretrainerConfig(n_writers=len(writers), backbone=backbone)
    torch.manual_seed(args.seed)
    model = engine.wrap_model(build_model("writer_pretrainer", config=config), device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    augment = image_augmenter(args.augment) if args.augment else None
    criterion = lambda outputs, target: pretrain_loss(outputs, target, lam=args.lam)  # noqa: E731
    val_truth = np.array([t for _, t in val])
    log = (out / "log.jsonl").open("a", encoding="utf-8")
    started, record = time.perf_counter(), {}
    for epoch in range(1, args.epochs + 1):
        order = np.random.default_rng([args.seed, epoch]).permutation(len(train))
        batches = ImageBatches(train, pack.bank, batch_size=args.batch_size, order=order,
                               augment=augment)  # fmt: skip
        trained = engine.train_one_epoch(
            model, criterion, optimizer, batches, device,
            desc=f"epoch {epoch}/{args.epochs}", progress=not args.quiet,
        )  # fmt: skip
        heads = engine.predict(model, ImageBatches(val, pack.bank), device, output=_heads)
        genuine = val_truth[:, 1] == 0
        top1 = (heads[genuine, :-1].argmax(1) == val_truth[genuine, 0]).mean()
        record = {
            "epoch": epoch, "train_loss": trained["loss"], "images": trained["samples"],
            "val_writer_top1": float(top1), "val_forgery_auc": metrics.auc(
                val_truth[:, 1], heads[:, -1]) if len(set(val_truth[:, 1])) == 2 else None,
            "wall_seconds": round(time.perf_counter() - started, 1),
        }  # fmt: skip
        print(json.dumps(record), file=log, flush=True)
        if not args.quiet:
            print(json.dumps(record), file=sys.stderr)
        if args.max_minutes and time.perf_counter() - started >= 60 * args.max_minutes:
            break
    log.close()
    card = {
        "name": name,
        "architecture": "writer_pretrainer",
        "model": config.to_dict(),
        "preprocess": pack.config.to_dict(),
        "classes": writers,
        "training": {
            **{k: v for k, v in vars(args).items() if k != "quiet"},
            "epochs_run": record.get("epoch", 0),
            "images": len(train),
            "val_images": len(val),
            "wall_seconds": record.get("wall_seconds"),
            "device": str(device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },  # fmt: skip
        "data": [{"pack": str(args.pack), "pack_seed": pack.seed}, *pack.sources],
        "pretraining": record,
    }
    weights, path = save_model(engine.unwrap(model).eval(), out / name, card)
    print(json.dumps({"weights": str(weights), "card": str(path), "last_epoch": record}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
