"""Train the verifier: ``python -m workbench.cli.train --data PATH --protocol P --out runs/NAME``.

Adam 1e-3, 64 pairs a batch, seeded. Each image is preprocessed once and cached (or read from a
data pack, ``--pack``); every epoch scores the validation writers, keeps the best checkpoint
(lowest validation EER) and its validation threshold, and the run ends by exporting
``NAME.safetensors`` + ``NAME.json``. The loops are ``workbench.engine``'s.

Several processes (``torchrun --nproc_per_node N -m workbench.cli.train ...``): each rank trains
on its shard of every batch of ``--batch-size`` pairs through DistributedDataParallel (gloo on
CPUs, NCCL on GPUs); rank 0 alone writes the log, the checkpoints and the exported weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from workbench import engine
from workbench.augment import AUGMENTATIONS, pair_augmenter
from workbench.checkpoint import load_module, read_card, save_model
from workbench.cli import parse_input_size
from workbench.config import ATTENTIONS, INPUT_SIZE, ModelConfig, PreprocessConfig
from workbench.data.batches import PairBatches
from workbench.data.image_bank import ImageBank
from workbench.data.sources import split_pairs
from workbench.losses import LOSSES, distilled, hardest_pairs
from workbench.models import build_model
from workbench.training_state import load_training_state, save_training_state


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench.cli.train", description=__doc__)
    p.add_argument("--data", action="append", default=[], help="corpus folder (repeat for several)")
    p.add_argument(
        "--protocol", action="append", default=[], help="one for all corpora or one per --data"
    )
    p.add_argument(
        "--pack",
        help="a data pack (python -m workbench.data pack) instead of --data/--protocol: its "
        "images, writer splits and preprocessing",
    )
    p.add_argument(
        "--device",
        default=engine.default_device(),
        help="cpu, cuda or cuda:N (default: cuda when present); torchrun gives each rank its GPU",
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
        "--hard-mining",
        type=float,
        default=1.0,
        help="in-batch hard-pair mining: the share of each batch's genuine and of its forgery "
        "pairs, the hardest by loss, that the loss is averaged over (1 = all, no mining)",
    )
    p.add_argument(
        "--teacher",
        help="distil from this saved verifier (NAME.safetensors + NAME.json; e.g. a wider one "
        "trained on a GPU), run frozen on the same augmented pairs; its preprocessing must be "
        "the training data's",
    )
    p.add_argument(
        "--distill-weight",
        type=float,
        default=0.5,
        help="with --teacher: the soft (teacher) term's share of the loss, 0..1",
    )
    p.add_argument(
        "--distill-temperature",
        type=float,
        default=2.0,
        help="with --teacher: the softmax temperature of the soft term",
    )
    p.add_argument(
        "--input-size",
        default=str(INPUT_SIZE),
        help="network input: S (square) or HxW, e.g. 112x336 (with --pack: the pack's)",
    )
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument(
        "--pairs-per-epoch", type=int, default=0, help="sampled training pairs per epoch (0 = all)"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument(
        "--augment",
        nargs="?",
        const="light",
        choices=list(AUGMENTATIONS),
        help="random pair order and augmentation: light (affine; the default kind) or real "
        "(affine, elastic warps, stroke width, blur)",
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
    p.add_argument(
        "--init-backbone",
        help="start the backbone from a writer-classification pre-training "
        "(python -m workbench.cli.pretrain; same width), the rest fresh",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument(
        "--out", required=True, help="run folder; the exported model is <out>/<name>.safetensors"
    )
    p.add_argument("--name", help="exported model name (default: the run folder's name)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.* if present")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _data(args: argparse.Namespace, pack, pre: PreprocessConfig, out: Path, show: bool):
    """(train pairs, validation pairs, sources, bank) from the corpora or the pack."""
    if pack is not None:
        sources = [{"pack": str(args.pack), "pack_seed": pack.seed}, *pack.sources]
        return pack.pairs("train"), pack.pairs("val"), sources, pack.bank
    if not args.data or not args.protocol:
        raise ValueError("give --data and --protocol (or a --pack)")
    kwargs = {"seed": args.split_seed, "val_writers": args.val_writers}
    train, sources = split_pairs(args.data, args.protocol, "train", **kwargs)
    val, _ = split_pairs(args.data, args.protocol, "val", **kwargs)
    paths = [q for p in train + val for q in (p.reference, p.questioned)]
    bank = ImageBank(paths, config=pre, cache_dir=out.parent / "cache", progress=show)
    return train, val, sources, bank


def _load_backbone(model: torch.nn.Module, stem: str) -> None:
    """Copy the backbone of a ``writer_pretrainer`` checkpoint into the verifier's backbone."""
    pretrainer, _, _ = load_module(stem, architecture="writer_pretrainer")
    try:
        model.backbone.load_state_dict(pretrainer.backbone.state_dict())
    except RuntimeError:
        raise ValueError(f"{stem}'s backbone has another width than this verifier's.") from None


def _load_teacher(
    stem: str, pre: PreprocessConfig, device: torch.device
) -> tuple[torch.nn.Module, dict]:
    """A saved verifier, frozen, on ``device``, and what the exported card records of it (its
    width and validation figures). Its preprocessing must be the training data's (``pre``),
    since it scores the same image tensors."""
    teacher, card, teacher_pre = load_module(stem, architecture="siamese_densenet36")
    if teacher_pre != pre:
        raise ValueError(
            f"The teacher {stem} was trained on {teacher_pre.height}x{teacher_pre.width} images "
            f"preprocessed as {teacher_pre.to_dict()}, not as this training data "
            f"({pre.to_dict()}): train the teacher on the same pack."
        )
    teacher.requires_grad_(False)
    validation = None if card.validation is None else card.validation.to_dict()
    summary = {"name": card.name, "model": card.model, "validation": validation}
    return teacher.to(device=device, memory_format=torch.channels_last).eval(), summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        ctx, device = engine.init_distributed(args.device)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        return _train(args, ctx, device)
    finally:
        engine.close_distributed()


def _train(args: argparse.Namespace, ctx: engine.Distributed, device: torch.device) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or out.name
    show = ctx.is_main and not args.quiet
    try:
        height, width = parse_input_size(args.input_size)
        loss_fn = hardest_pairs(LOSSES[args.loss], args.hard_mining)
        if args.teacher:
            loss_fn = distilled(loss_fn, args.distill_weight, args.distill_temperature)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pack = None
    if args.pack:
        from workbench.data.pack import DataPack

        try:
            pack = DataPack.load(args.pack)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        height, width = pack.config.height, pack.config.width
    config = ModelConfig(
        width=args.config,
        growth_rate=args.growth_rate,
        stem_channels=args.stem_channels,
        attention=args.attention,
        cross_attention=args.cross_attention == "on",
        input_height=height,
        input_width=width,
    )
    pre = PreprocessConfig(height=config.input_height, width=config.input_width)
    # Rank 0 preprocesses and caches the images first; the other ranks then read its cache.
    if not ctx.is_main:
        engine.barrier()
    try:
        train, val, sources, bank = _data(args, pack, pre, out, show)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        train = val = None
    if ctx.is_main:
        engine.barrier()
    if train is None:
        return 2
    pre = bank.config
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
        start_config = ModelConfig.from_dict(read_card(args.init_from).model)
        if start_config != config:
            print(f"error: {args.init_from} has a different model configuration", file=sys.stderr)
            return 2
        weights = Path(args.init_from).with_suffix(".safetensors")
        model.load_state_dict(load_file(str(weights)))
    if args.init_backbone:
        try:
            _load_backbone(model, args.init_backbone)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    teacher, teacher_card = None, None
    if args.teacher:
        try:
            teacher, teacher_card = _load_teacher(args.teacher, pre, device)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    model = engine.wrap_model(model, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    augment = pair_augmenter(args.seed, args.augment) if args.augment else None
    state = {"epoch": 0, "pairs_seen": 0, "seconds": 0.0, "best": None}
    if args.resume and (out / "last.json").exists():
        state = load_training_state(out, engine.unwrap(model), optimizer)
        if ctx.is_main:
            print(
                f"resumed after epoch {state['epoch']} ({state['pairs_seen']} pairs seen)",
                file=sys.stderr,
            )
    per_epoch = args.pairs_per_epoch or len(train)
    steps_per_epoch = -(-per_epoch // args.batch_size)
    lr_at = None
    if args.lr_schedule == "cosine":
        lr_at = engine.cosine_schedule(args.lr, steps_per_epoch * args.epochs)
    log_file = (out / "log.jsonl").open("a", encoding="utf-8") if ctx.is_main else None
    val_batches = PairBatches(ctx.shard(val), bank, batch_size=args.batch_size)

    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        rng = np.random.default_rng([args.seed, epoch])
        torch.manual_seed(args.seed * 100_003 + epoch)
        order = rng.permutation(len(train))
        if per_epoch > len(train):
            order = rng.choice(len(train), per_epoch, replace=True)
        order = order[:per_epoch]
        batches = PairBatches(train, bank, batch_size=args.batch_size, order=order, shard=ctx)
        started = time.perf_counter()
        trained = engine.train_one_epoch(
            model,
            loss_fn,
            optimizer,
            batches,
            device,
            desc=f"epoch {epoch}/{args.epochs}",
            first_step=(epoch - 1) * steps_per_epoch,
            lr_at=lr_at,
            augment=augment,
            teacher=teacher,
            progress=show,
        )
        engine.sync_buffers(model)
        scores, _ = engine.evaluate(
            engine.unwrap(model), val_batches, val_labels, device, total=len(val), progress=show
        )
        seen = trained["samples"]
        state["pairs_seen"] += seen
        # Rank 0's clock decides, so that every rank stops after the same epoch.
        state["seconds"] = engine.broadcast_object(state["seconds"] + time.perf_counter() - started)
        record = {
            "epoch": epoch,
            "train_loss": trained["loss"],
            "pairs": seen,
            "pairs_seen": state["pairs_seen"],
            "train_seconds": round(trained["seconds"], 1),
            "pairs_per_s": round(seen / trained["seconds"], 2),
            "val_eer": scores["eer"],
            "val_threshold": scores["threshold"],
            "val_acc_at_0.5": scores["acc_at_0.5"],
            "val_auc": scores["auc"],
            "lr_end": optimizer.param_groups[0]["lr"],
            "wall_seconds": round(state["seconds"], 1),
        }
        if state["best"] is None or record["val_eer"] < state["best"]["val_eer"]:
            state["best"] = record
            if ctx.is_main:
                save_model(engine.unwrap(model), out / "best", {"model": config.to_dict()})
        state["epoch"] = epoch
        if ctx.is_main:
            print(json.dumps(record), file=log_file, flush=True)
            if not args.quiet:
                print(json.dumps(record), file=sys.stderr)
            save_training_state(out, engine.unwrap(model), optimizer, state)
        if args.max_minutes and state["seconds"] >= 60 * args.max_minutes:
            if ctx.is_main:
                print(
                    f"stopping: {state['seconds'] / 60:.1f} minutes reached the --max-minutes "
                    "budget",
                    file=sys.stderr,
                )
            break
    # Every rank's final weights by digest (ranks.json): DDP must have kept them equal.
    digests = engine.all_gather_objects(engine.state_digest(model))
    if not ctx.is_main:
        return 0
    ranks = {"world_size": ctx.world_size, "device": str(device), "state_sha256": digests}
    (out / "ranks.json").write_text(json.dumps(ranks, indent=1) + "\n", encoding="utf-8")
    log_file.close()
    if state["best"] is None:
        print("error: no epoch was run (nothing to export)", file=sys.stderr)
        return 2

    best = state["best"]
    model = build_model(config=config)
    model.load_state_dict(load_file(str(out / "best.safetensors")))
    arguments = {k: v for k, v in vars(args).items() if k not in ("quiet", "resume")}
    if pack is not None:  # the split the pack was made with, so that evaluate can re-derive it
        arguments |= {
            "data": [source["path"] for source in pack.sources],
            "protocol": [source["protocol"] for source in pack.sources],
            "split_seed": pack.seed,
            "val_writers": pack.val_writers,
        }
    meta = {
        "name": name,
        "architecture": "siamese_densenet36",
        "model": config.to_dict(),
        "preprocess": pre.to_dict(),
        "training": {
            **arguments,
            "optimizer": "Adam",
            "batch_size": args.batch_size,
            "epochs_run": state["epoch"],
            "pairs_seen": state["pairs_seen"],
            "wall_seconds": round(state["seconds"], 1),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "world_size": ctx.world_size,
            "train_pairs": len(train),
            "val_pairs_scored": len(val),
            **({"teacher_card": teacher_card} if teacher_card else {}),
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
    weights, card = save_model(model.eval(), out / name, meta)
    summary = {"weights": str(weights), "card": str(card), "validation": meta["validation"]}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
