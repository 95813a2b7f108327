"""The app's one-click examples: ``python -m workbench.cli.examples --weights W --out examples``.

Examples are synthetic writers from the project's generator (no real person's signature), which
no verifier of this project trains on. The command draws ``--writers`` (40) generator writers **at
random** (seeded) and decides each one's two rows at the weights' validation threshold: two
genuine signatures as references against a third genuine one (accept) and against the
generator's skilled forgery (reject). The first two drawn writers become the examples, whatever
the weights decide on them; the share of the drawn writers decided right is recorded beside them
(``examples.json``: the rows with the truth, the weights' verdict and score, the draw and the
share), so the examples are a fair sample of the model, not a showcase. The regression test
checks the shipped weights against that file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.data.synthetic import sample_writer
from workbench.verification.examples import load_rows
from workbench.verification.workbench import Workbench

__all__ = ["ROWS", "draw_writers", "load_rows", "main", "score_writer"]

ROWS = (  # (references, questioned, truth: genuine?)
    (("genuine_1", "genuine_2"), "genuine_3", True),
    (("genuine_1", "genuine_2"), "forgery_1", False),
)
EXAMPLE_WRITERS = 2
GENERATOR_WRITERS = 1_000_000  # the draw's range of generator writer indices


def draw_writers(seed: int, count: int) -> list[int]:
    """``count`` distinct generator writer indices drawn at random with ``seed``, in draw order."""
    rng = np.random.default_rng(seed)
    return [int(w) for w in rng.choice(GENERATOR_WRITERS, count, replace=False)]


def writer_images(seed: int, writer: int) -> dict[str, np.ndarray]:
    """The images the rows name, of generator writer ``writer``."""
    genuine, forged = sample_writer(seed, writer=writer, genuine=3, forgeries=1)
    return {f"genuine_{i + 1}": g for i, g in enumerate(genuine)} | {"forgery_1": forged[0]}


def score_writer(bench: Workbench, images: dict[str, np.ndarray]) -> list[dict]:
    """Each row's truth, the weights' verdict and score, for one writer."""
    out = []
    for refs, questioned, truth in ROWS:
        verdict = bench.verify([images[r] for r in refs], images[questioned])
        out.append(
            {
                "references": list(refs),
                "questioned": questioned,
                "expected_genuine": truth,
                "verdict_genuine": bool(verdict.genuine),
                "score": round(float(verdict.score), 6),
                # the fused score's parts (empty shapes: the weights do not fuse; empty
                # local shapes: the fusion does not use them)
                "network_scores": [round(float(s), 6) for s in verdict.network_scores],
                "shapes": [round(float(c), 6) for c in verdict.shapes],
                "local_shapes": [round(float(c), 6) for c in verdict.local_shapes],
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.cli.examples", description=__doc__)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=20261123, help="generator and draw seed")
    parser.add_argument("--writers", type=int, default=40, help="writers drawn and decided")
    args = parser.parse_args(argv)
    if args.writers < EXAMPLE_WRITERS:
        print(f"error: --writers must be at least {EXAMPLE_WRITERS}", file=sys.stderr)
        return 2
    bench = Workbench(args.weights)
    drawn = draw_writers(args.seed, args.writers)  # the examples: the first two drawn
    decided, examples = [], []
    for k, writer in enumerate(drawn):
        images = writer_images(args.seed, writer)
        rows = score_writer(bench, images)
        decided.append(rows)
        if k < EXAMPLE_WRITERS:
            examples.append((images, rows))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("writer*_*.png"):
        old.unlink()
    rows = []
    for slot, (images, writer_rows) in enumerate(examples, start=1):
        for key, image in images.items():
            Image.fromarray(image).save(out / f"writer{slot}_{key}.png")
        for row in writer_rows:
            rows.append(
                {
                    **row,
                    "references": [f"writer{slot}_{r}.png" for r in row["references"]],
                    "questioned": f"writer{slot}_{row['questioned']}.png",
                }
            )
    write_page_example(out)
    right = [all(r["verdict_genuine"] == r["expected_genuine"] for r in w) for w in decided]
    accepted = [w[0]["verdict_genuine"] for w in decided]
    rejected = [not w[1]["verdict_genuine"] for w in decided]
    record = {
        "seed": args.seed,
        "writers": drawn[:EXAMPLE_WRITERS],
        "drawn": drawn,
        "share": {
            "writers": len(drawn),
            "both_rows_right": int(sum(right)),
            "genuine_accepted": int(sum(accepted)),
            "forgery_rejected": int(sum(rejected)),
        },
        "weights_sha256": bench.card.weights_sha256,
        "threshold": bench.threshold,
        "rows": rows,
    }
    (out / "examples.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k not in ("rows", "drawn")}))
    return 0


PAGE_EXAMPLE = "page_writer1_genuine_3.jpg"


def write_page_example(out: Path) -> Path:
    """``writer1_genuine_3`` signed on a synthetic document and photographed (issue 14), for
    the Preprocess and Verify tabs' page examples."""
    import cv2

    from workbench.data.pages import document_with

    signature = np.asarray(Image.open(out / "writer1_genuine_3.png").convert("L"))
    image, _ = document_with(signature, seed=0, dpi=150, photo=True)
    path = out / PAGE_EXAMPLE
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return path


if __name__ == "__main__":
    sys.exit(main())
