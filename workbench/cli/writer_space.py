"""Fit the writer space of a verifier on its training writers' genuine signatures:
``python -m workbench.cli.writer_space --weights W --data D [--data D2 ...] --write-card``.

The backbone runs on each genuine image of every training writer of each corpus (the split the
weights were trained with), its pooled features are standardized and a linear discriminant
analysis (scikit-learn, shrunk) finds the directions that keep each writer's signatures
together (``workbench.verification.writer_space``). Validation and test writers are never
used. With ``--write-card`` the projection is stored in the weights' JSON; ``cli.calibrate``
then measures and calibrates its scores beside the pair score's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from workbench.checkpoint import load_verifier, read_card, write_card
from workbench.data.image_bank import ImageBank
from workbench.data.sources import card_split_pairs
from workbench.verification.reference_sets import writer_images
from workbench.verification.writer_space import KEY, embed_images, fit_writer_space


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench.cli.writer_space", description=__doc__)
    p.add_argument("--weights", required=True, help="the verifier: NAME.safetensors + NAME.json")
    p.add_argument("--data", action="append", required=True, help="corpus folder (repeatable)")
    p.add_argument(
        "--protocol", action="append", help="one per --data (default: the card's protocols)"
    )
    p.add_argument("--write-card", action="store_true", help="store the projection in NAME.json")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    try:
        model, card, pre = load_verifier(args.weights, fuse=True)
        protocols = args.protocol or (card.training or {}).get("protocol") or []
        if len(protocols) != len(args.data):
            raise ValueError(
                f"Give one --protocol per --data ({len(args.data)}): the card records "
                f"{len(protocols)}."
            )
        paths, writers = [], []
        for folder, protocol in zip(args.data, protocols):
            pairs, _, _, _ = card_split_pairs(card, [folder], "train", protocols=[protocol])
            corpus = Path(folder).resolve().name
            for writer, images in writer_images(pairs).items():
                paths += images["genuine"]
                writers += [f"{corpus}/{writer}"] * len(images["genuine"])
        if not paths:
            raise ValueError("The training split of these corpora holds no genuine signature.")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    bank = ImageBank(paths, config=pre, progress=not args.quiet)
    kept = [(p, w) for p, w in zip(paths, writers) if p in bank]
    progress = None if args.quiet else (lambda it: tqdm(it, desc="writer space", unit="batch"))
    features = embed_images(model, bank.get([p for p, _ in kept]), progress=progress)
    try:
        space = fit_writer_space(
            features,
            [w for _, w in kept],
            tuple(Path(folder).resolve().name for folder in args.data),
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.write_card:
        stem = Path(args.weights).with_suffix("")
        current = read_card(stem)
        extra = {**current.extra, KEY: space.to_dict()}
        write_card(stem, dataclasses.replace(current, extra=extra))
    summary = {
        "writers": space.writers,
        "images": space.images,
        "features": int(space.projection.shape[0]),
        "dimensions": int(space.projection.shape[1]),
        "data": list(space.data),
        "images_left_out": len(bank.failed),
        "seconds": round(time.perf_counter() - started, 1),
        "written": bool(args.write_card),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
