"""Command line: ``python -m workbench.data describe|pairs|synth|pack``."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from workbench.cli import parse_input_size, run_subcommand
from workbench.config import INPUT_SIZE
from workbench.data.corpus import FORGED, GENUINE, Corpus
from workbench.data.dedupe import dedupe
from workbench.data.pairs import make_pairs, write_pairs_csv
from workbench.data.readers import READERS, read_corpus
from workbench.data.splits import get_protocol, split_writers


def describe(corpus: Corpus) -> dict:
    """Counts of a corpus as read (before deduplication) and the duplicates found."""
    deduped = dedupe(corpus)
    per_writer = Counter((r.writer, r.kind) for r in corpus.records)

    def spread(kind: str) -> list[int]:
        counts = [per_writer[(w, kind)] for w in corpus.writers]
        return [min(counts), max(counts)] if counts else [0, 0]

    removed = Counter(r.kind for r in deduped.duplicates)
    return {
        "path": str(corpus.root),
        "layout": corpus.layout,
        **corpus.counts(),
        "genuine_per_writer": spread(GENUINE),
        "forged_per_writer": spread(FORGED),
        "duplicates": len(deduped.duplicates),
        "duplicates_genuine": removed[GENUINE],
        "duplicates_forged": removed[FORGED],
        "after_dedupe": deduped.counts(),
        "unmatched_files": len(corpus.unmatched),
    }


def _cmd_describe(args: argparse.Namespace) -> int:
    print(json.dumps(describe(read_corpus(args.path, layout=args.layout))))
    return 0


def _cmd_pairs(args: argparse.Namespace) -> int:
    corpus = read_corpus(args.path, layout=args.layout)
    if not args.no_dedupe:
        corpus = dedupe(corpus)
    split = split_writers(
        corpus.writers, get_protocol(args.protocol, val=args.val_writers), seed=args.seed
    )
    writers = split.writers(args.split)
    pairs = make_pairs(corpus, writers, random_forgeries=args.random_forgeries, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_pairs_csv(pairs, out)
    kinds = Counter(p.kind for p in pairs)
    summary = {
        "corpus": str(corpus.root),
        "layout": corpus.layout,
        "deduplicated": not args.no_dedupe,
        "duplicates_removed": len(corpus.duplicates),
        "split": args.split,
        "writers": list(writers),
        "n_pairs": len(pairs),
        "n_genuine": kinds["genuine"],
        "n_forged": kinds["skilled"] + kinds["random"],
        "n_random": kinds["random"],
        "pairs_csv": str(out),
        "writer_split": split.to_dict(),
    }
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("writers", "writer_split")}))
    if not pairs:
        print("warning: no pairs (no writers or signatures in this split)", file=sys.stderr)
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from workbench.data.synthetic import generate_corpus

    summary = generate_corpus(
        args.out,
        writers=args.writers,
        genuine=args.genuine,
        forgeries=args.forgeries,
        seed=args.seed,
        progress=not args.quiet,
    )
    print(json.dumps(summary, default=str))
    return 0


def _cmd_pages(args: argparse.Namespace) -> int:
    from workbench.data.pages import generate_pages

    summary = generate_pages(
        args.out,
        pages=args.pages,
        seed=args.seed,
        dpi=args.dpi,
        writers=args.writers,
        progress=not args.quiet,
    )
    print(json.dumps(summary))
    return 0


def _cmd_pack(args: argparse.Namespace) -> int:
    from workbench.data.pack import write_pack

    try:
        summary = write_pack(
            args.out,
            args.data,
            args.protocol,
            input_size=parse_input_size(args.input_size),
            seed=args.seed,
            val_writers=args.val_writers,
            splits=args.splits.split(","),
            random_forgeries=args.random_forgeries or 0,
            progress=not args.quiet,
        )
    except OSError as error:
        raise ValueError(f"cannot write the pack {args.out}: {error}") from None
    print(json.dumps(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workbench.data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    layouts = list(READERS)

    p = commands.add_parser(
        "describe", help="print layout, writers, genuine, forged and duplicates as JSON"
    )
    p.add_argument("path")
    p.add_argument("--layout", choices=layouts, help="skip auto-detection")
    p.set_defaults(run=_cmd_describe)

    p = commands.add_parser(
        "pairs", help="write the verification pairs of one split as CSV (+ JSON)"
    )
    p.add_argument("path")
    p.add_argument("--protocol", required=True, help="bhsig-b, bhsig-h, cedar or TRAIN/TEST[/VAL]")
    p.add_argument("--split", required=True, choices=["train", "val", "test", "trainval"])
    p.add_argument(
        "--out", required=True, help="CSV file; the split and seed go to the same name .json"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-writers", type=float, help="validation writers (count or fraction)")
    p.add_argument(
        "--random-forgeries", type=int, default=0, help="per writer, negatives from other writers"
    )
    p.add_argument("--no-dedupe", action="store_true", help="keep duplicated images")
    p.add_argument("--layout", choices=layouts)
    p.set_defaults(run=_cmd_pairs)

    p = commands.add_parser("synth", help="write a synthetic corpus in the writer-folders layout")
    p.add_argument("--writers", type=int, required=True)
    p.add_argument("--genuine", type=int, required=True)
    p.add_argument("--forgeries", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_synth)

    p = commands.add_parser(
        "pages",
        help="write synthetic documents (a generator signature on a printed page, scanned or "
        "photographed) and truth.json with each signature's box",
    )
    p.add_argument("--out", required=True)
    p.add_argument("--pages", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dpi", type=int, default=300, help="page resolution (A4)")
    p.add_argument("--writers", type=int, default=50, help="generator writers signing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_pages)

    p = commands.add_parser(
        "pack", help="preprocess corpora into one data pack file (images + pairs of each split)"
    )
    p.add_argument("--data", action="append", required=True, help="corpus folder (repeatable)")
    p.add_argument(
        "--protocol",
        action="append",
        required=True,
        help="one for all corpora or one per --data: bhsig-b, bhsig-h, cedar or TRAIN/TEST[/VAL]",
    )
    p.add_argument("--out", required=True, help="the pack file to write (.npz)")
    p.add_argument("--input-size", default=str(INPUT_SIZE), help="S (square) or HxW, e.g. 112x336")
    p.add_argument("--seed", type=int, default=0, help="seed of the writer splits")
    p.add_argument("--val-writers", type=float, help="validation writers (count or fraction)")
    p.add_argument(
        "--splits", default="train,val,test", help="comma-separated: train, val, test, trainval"
    )
    p.add_argument(
        "--random-forgeries",
        type=int,
        action="append",
        help="per writer, negatives from other writers of its split; one for all corpora or one "
        "per --data (a genuine-only corpus has no other negatives)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_pack)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_subcommand(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
