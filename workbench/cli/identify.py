"""Writer identification: ``python -m workbench.cli.identify train|eval``.

``train --data PATH --out DIR`` fits the Conv-Pool-Dense writer classifier on a seeded per-writer
split of each writer's genuine images (``--holdout-writers K`` keeps K writers out entirely, for
the new-writer experiment). ``eval --weights W --data PATH`` reports top-1 / top-5 accuracy on
the held-out images, a line per writer in the slides' form and, for CrossMedia-zh, accuracy per
writing medium.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from workbench import engine
from workbench.augment import image_augmenter
from workbench.checkpoint import save_model
from workbench.cli import run_subcommand
from workbench.config import FALLBACK_THRESHOLD, INPUT_SIZE, PreprocessConfig
from workbench.data.batches import ImageBatches
from workbench.data.image_bank import ImageBank
from workbench.identification.classifier import (
    classes_and_split,
    evaluate_classifier,
    image_split,
    load_classifier,
    score_classifier,
    slides_line,
)
from workbench.models.writer_id import (
    WriterClassifier,
    WriterClassifierConfig,
    sparse_categorical_cross_entropy,
)


def _train(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    try:
        split = image_split(
            args.data,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction,
            holdout_writers=args.holdout_writers,
            seed=args.seed,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pre = PreprocessConfig(height=args.input_size, width=args.input_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    every = split["train"] + split["val"] + split["test"] + split["holdout_images"]
    bank = ImageBank(
        [p for p, _, _ in every],
        config=pre,
        cache_dir=out.parent / "cache",
        progress=not args.quiet,
    )
    index = {w: i for i, w in enumerate(split["writers"])}
    train = [(p, index[w]) for p, w, _ in split["train"] if p in bank]
    val = [(p, index[w]) for p, w, _ in split["val"] if p in bank]
    config = WriterClassifierConfig(
        n_writers=len(split["writers"]), input_height=pre.height, input_width=pre.width
    )
    device = torch.device(args.device)
    model = engine.wrap_model(WriterClassifier(config), device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    augment = image_augmenter("light") if args.augment else None
    started, best, kept = time.perf_counter(), None, {}
    log_file = (out / f"{args.name}.log.jsonl").open("w", encoding="utf-8")
    for epoch in range(1, args.epochs + 1):
        order = np.random.default_rng([args.seed, epoch]).permutation(len(train))
        batches = ImageBatches(
            train, bank, batch_size=args.batch_size, order=order, augment=augment
        )
        trained = engine.train_one_epoch(
            model,
            sparse_categorical_cross_entropy,
            optimizer,
            batches,
            device,
            desc=f"epoch {epoch}/{args.epochs}",
            progress=not args.quiet,
        )
        record = {
            "epoch": epoch,
            "train_loss": trained["loss"],
            "seconds": round(time.perf_counter() - started, 1),
        }
        if val:
            scored = score_classifier(engine.unwrap(model), split["writers"], split["val"], bank)
            record["val_top1"] = scored["top1"]
        # The kept weights: the best validation top-1 (the last epoch without validation images).
        if best is None or not val or record["val_top1"] > best["val_top1"]:
            best = record
            state = engine.unwrap(model).state_dict()
            kept = {k: v.detach().cpu().clone() for k, v in state.items()}
        print(json.dumps(record), file=log_file, flush=True)
        print(json.dumps(record), file=sys.stderr)
    log_file.close()
    model = WriterClassifier(config)
    model.load_state_dict(kept)
    model.eval()
    # The test images of known writers, scored once here so that the card (and the app) carry
    # the slides' per-writer lines.
    test = score_classifier(
        model, split["writers"], split["test"], bank, media=args.media == "crossmedia"
    )
    meta = {
        "architecture": "writer_classifier",
        "model": config.to_dict(),
        "preprocess": pre.to_dict(),
        "classes": split["writers"],
        "split": {
            **split,
            "seed": args.seed,
            "val_fraction": args.val_fraction,
            "test_fraction": args.test_fraction,
        },
        "training": {
            "epochs": args.epochs,
            "best_epoch": best["epoch"],
            "val_top1": best.get("val_top1"),
            "lr": args.lr,
            "batch_size": args.batch_size,
            "augment": args.augment,
            "seed": args.seed,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "images": len(train),
            "val_images": len(val),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": str(device),
        },
        "identification_test": test,
    }
    save_model(model, out / args.name, meta)
    print(
        json.dumps(
            {
                "weights": str(out / f"{args.name}.safetensors"),
                "writers": len(split["writers"]),
                "images": len(train),
                "best_epoch": best["epoch"],
                "val_top1": best.get("val_top1"),
                "test_top1": test["top1"],
                "test_top5": test["top5"],
            }
        )
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    result = evaluate_classifier(
        args.weights, media=args.media == "crossmedia", progress=not args.quiet
    )
    if args.per_writer:
        for entry in result["per_writer"]:
            print(slides_line(entry), file=sys.stderr)
    if args.write_card:
        import dataclasses

        from workbench.checkpoint import read_card, write_card

        card = read_card(args.weights)
        extra = {**card.extra, "identification_test": result}
        write_card(args.weights, dataclasses.replace(card, extra=extra))
    print(json.dumps({k: v for k, v in result.items() if k != "per_writer"}))
    return 0


def _siamese_train(args: argparse.Namespace) -> int:
    from workbench.identification.embedding import train_embedding

    if args.threads:
        torch.set_num_threads(args.threads)
    _, card, _ = load_classifier(args.classifier)
    try:
        weights = train_embedding(
            card.split,
            Path(args.out),
            loss=args.loss,
            epochs=args.epochs,
            steps_per_epoch=args.steps,
            batch_size=args.batch_size,
            input_size=args.input_size,
            seed=args.seed,
            name=args.name or f"siamese_{args.loss}",
            device=args.device,
            progress=not args.quiet,
            mining=args.mining,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"weights": str(weights)}))
    return 0


def _siamese_validate(args: argparse.Namespace) -> int:
    """Re-choose an embedding Siamese's open-set threshold on validation and store it in its card
    (what ``siamese-train`` does at the end; for weights whose scoring rule has changed)."""
    import dataclasses

    from workbench.checkpoint import Validation, read_card, write_card
    from workbench.identification.embedding import load_embedding, open_set_validation

    if args.threads:
        torch.set_num_threads(args.threads)
    _, classifier_card, _ = load_classifier(args.classifier)
    model, card, pre = load_embedding(args.weights)
    validation = open_set_validation(
        model, classifier_card.split, pre, k=3, max_false_rejection=args.max_false_rejection
    )
    if validation is None:
        print("error: the classifier's split has no validation images", file=sys.stderr)
        return 2
    previous = card.validation.to_dict() if card.validation else None
    if args.write_card:
        stem = Path(args.weights).with_suffix("")
        write_card(
            stem,
            dataclasses.replace(read_card(stem), validation=Validation.from_dict(validation)),
        )
    print(json.dumps({"validation": validation, "previous": previous}))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from workbench.checkpoint import load_verifier
    from workbench.identification.comparison import (
        k_table,
        measure_classifier,
        measure_verification,
        medium_table,
        plan,
        slides_table,
    )
    from workbench.identification.embedding import (
        embedding_name,
        embedding_scorer,
        load_embedding,
    )

    _, card, _ = load_classifier(args.classifier)
    split = classes_and_split(card)[1]
    scorers = {}
    if args.verifier:
        from workbench.identification.gallery import verifier_scorer
        from workbench.identification.ranking import PAIRWISE

        model, vcard, pre = load_verifier(args.verifier, fuse=True)
        scorers[PAIRWISE] = (verifier_scorer(model), pre, model, vcard, vcard.threshold)
    for weights in args.embedding:
        model, ecard, pre = load_embedding(weights)
        name = embedding_name(model, ecard)
        trained_on = _corpus_names((ecard.training or {}).get("corpus"))
        if trained_on and trained_on != _corpus_names(split.get("corpus")):
            name = f"{name}, trained on {trained_on}"  # another corpus: no retraining here
        if name in scorers:  # two models of one kind: tell them apart by file
            name = f"{name} ({Path(weights).stem})"
        scorers[name] = (embedding_scorer(model), pre, model, ecard, FALLBACK_THRESHOLD)
    main_k = 3 if 3 in args.k else args.k[0]
    results: dict[int, dict] = {}
    for k in args.k:
        design = plan(split, k=k, queries=args.queries, media=args.media == "crossmedia")
        results[k] = {
            name: measure_verification(
                scorer,
                pre,
                design,
                threshold=args.threshold,
                fallback_threshold=fallback,
                max_false_rejection=args.max_false_rejection,
                parameters=sum(p.numel() for p in model.parameters()),
                training_seconds=wcard.training_seconds,
            )
            for name, (scorer, pre, model, wcard, fallback) in scorers.items()
        }
    design = plan(split, k=main_k, queries=args.queries, media=args.media == "crossmedia")
    classifier = measure_classifier(args.classifier, design)
    tables = slides_table(design, classifier, results[main_k], k=main_k)
    if scorers:
        tables += "\n\n" + k_table(results)
    if media := medium_table(design, classifier, results[main_k], k=main_k):
        tables += "\n\n" + media
    print(tables)
    if args.markdown:
        Path(args.markdown).write_text(
            _comparison_header(split, design, args, main_k) + tables + "\n", encoding="utf-8"
        )
    summary = {
        "k": args.k,
        "queries_per_writer": args.queries,
        "max_false_rejection": args.max_false_rejection,
        "classifier": classifier,
        "verification": results[main_k],
        "verification_by_k": {str(k): v for k, v in results.items()},
    }
    print(json.dumps(summary))
    return 0


def _corpus_names(corpus) -> str:
    """``split["corpus"]`` (one path or a list) as its folders' names, comma-separated."""
    if not corpus:
        return ""
    return ", ".join(Path(c).name for c in (corpus if isinstance(corpus, list) else [corpus]))


def _comparison_header(split: dict, design: dict, args: argparse.Namespace, k: int) -> str:
    """What the tables measure and the command that made them (``compare --markdown``)."""
    corpora = _corpus_names(split.get("corpus"))
    counts = {key: sum(len(v) for v in design[key].values()) for key in design if key != "media"}
    command = " ".join(["python -m workbench.cli.identify", *sys.argv[1:]]) if sys.argv else ""
    return (
        f"Measured on {corpora} with the classifier's split: {len(split['writers'])} known "
        f"writers and {len(split['holdout'])} held-out writers, of which "
        f"{len(design['new_refs'])} are enrolled as new writers, {len(design['never_val'])} "
        f"never-enrolled ones choose the threshold with {counts['known_val']} validation "
        f"signatures of known writers, and {len(design['never_queries'])} never-enrolled ones "
        f"measure it ({counts['never_queries']} signatures). Queries: "
        f"{counts['known_queries']} test signatures of known writers, {counts['new_queries']} "
        f"of new writers. The slides' table is at k = {k} references a writer.\n\n"
        f"Command: `{command}`\n\n"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workbench.cli.identify", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("train", help="train the writer classifier")
    p.add_argument(
        "--data",
        action="append",
        required=True,
        help="corpus folder (repeat for several; their writers are named <folder>/<writer>)",
    )
    p.add_argument("--out", required=True)
    p.add_argument("--name", default="writer_classifier")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="share of each writer's images that chooses the kept epoch (best top-1)",
    )
    p.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of each writer's images held out"
    )
    p.add_argument(
        "--holdout-writers", type=int, default=0, help="writers kept out of training entirely"
    )
    p.add_argument("--input-size", type=int, default=INPUT_SIZE)
    p.add_argument("--augment", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--device", default=engine.default_device(), help="cpu or cuda (default: cuda when present)"
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument(
        "--media",
        choices=["none", "crossmedia"],
        default="none",
        help="also report test top-1 per CrossMedia-zh medium",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=_train)
    p = commands.add_parser("eval", help="top-1 / top-5 on the held-out images")
    p.add_argument("--weights", required=True)
    p.add_argument(
        "--media", choices=["none", "crossmedia"], default="none", help="report accuracy per medium"
    )
    p.add_argument("--per-writer", action="store_true", help="print the slides' per-writer lines")
    p.add_argument(
        "--write-card",
        action="store_true",
        help="store the result in the weights' JSON (what train does; for older weights)",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=_eval)
    p = commands.add_parser(
        "siamese-train", help="train the embedding Siamese on the classifier's split"
    )
    p.add_argument(
        "--classifier", required=True, help="writer classifier weights (their split is reused)"
    )
    p.add_argument("--loss", choices=["contrastive", "triplet"], default="contrastive")
    p.add_argument(
        "--mining",
        choices=["none", "batch-hard"],
        default="none",
        help="triplet only: batch-hard mining (each anchor against the batch's hardest pairs)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--out", required=True)
    p.add_argument("--name")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps", type=int, default=50, help="batches per epoch")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input-size", type=int, default=INPUT_SIZE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--device", default=engine.default_device(), help="cpu or cuda (default: cuda when present)"
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=_siamese_train)
    p = commands.add_parser(
        "siamese-validate",
        help="re-choose an embedding Siamese's open-set threshold on the classifier's "
        "validation images (and store it with --write-card)",
    )
    p.add_argument("--weights", required=True, help="embedding Siamese weights")
    p.add_argument(
        "--classifier", required=True, help="the writer classifier whose split trained them"
    )
    p.add_argument("--max-false-rejection", type=float, default=0.05)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--write-card", action="store_true", help="store the result in the JSON")
    p.set_defaults(run=_siamese_validate)
    p = commands.add_parser("compare", help="the slides' comparison table with measured numbers")
    p.add_argument(
        "--classifier", required=True, help="writer classifier trained with --holdout-writers"
    )
    p.add_argument("--verifier", help="the pairwise verifier's weights")
    p.add_argument(
        "--embedding", action="append", default=[], help="embedding Siamese weights (repeatable)"
    )
    p.add_argument(
        "--k",
        type=int,
        nargs="+",
        default=[1, 3, 5],
        help="references enrolled per writer (several: one measurement each; the slides' "
        "table at k = 3)",
    )
    p.add_argument("--queries", type=int, default=3, help="questioned images per writer")
    p.add_argument(
        "--threshold",
        type=float,
        help="rejection threshold (default: the one that rejects --max-false-rejection of the "
        "known writers' validation signatures; without validation images, the verifier's "
        f"threshold or {FALLBACK_THRESHOLD} for embeddings)",
    )
    p.add_argument(
        "--max-false-rejection",
        type=float,
        default=0.05,
        help="share of known writers' validation signatures the chosen threshold rejects",
    )
    p.add_argument(
        "--media",
        choices=["none", "crossmedia"],
        default="none",
        help="also report the known writers' top-1 per CrossMedia-zh medium",
    )
    p.add_argument(
        "--markdown",
        help="also write the tables, what they measure and this command to this file "
        "(the app shows weights/identification.md)",
    )
    p.set_defaults(run=_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_subcommand(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
