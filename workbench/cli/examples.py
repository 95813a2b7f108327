"""The app's one-click examples: ``python -m workbench.cli.examples --weights W --out examples``.

Examples are synthetic writers from the project's generator (no real person's signature). A
demo should show a correct decision of each kind, so the command walks through generator writers
in seed order (seed, writer 0, 1, 2...) and keeps the first two whose example rows the given
weights decide correctly at their validation threshold: two genuine signatures of the writer as
references against a third genuine one (accept) and against the generator's skilled forgery
(reject). It records how many writers it examined, so the model card can say how selective the
choice was, and writes ``examples.json``: the rows, the expected verdicts, the seed and writer
indices, and the scores. The regression test checks the shipped weights against that file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

from workbench.data.synthetic import sample_writer
from workbench.verification.examples import load_rows
from workbench.verification.workbench import Workbench

__all__ = ["ROWS", "load_rows", "main"]  # load_rows: re-exported, it reads what main writes

ROWS = (  # (writer slot, references, questioned, expected verdict)
    (1, ("genuine_1", "genuine_2"), "genuine_3", True),
    (1, ("genuine_1", "genuine_2"), "forgery_1", False),
    (2, ("genuine_1", "genuine_2"), "genuine_3", True),
    (2, ("genuine_1",), "forgery_1", False),
)


def _decides_writer(
    bench: Workbench, images: dict[str, object], slot: int
) -> tuple[bool, list[float]]:
    scores, right = [], True
    for row_slot, refs, questioned, expected in ROWS:
        if row_slot != slot:
            continue
        verdict = bench.verify([images[r] for r in refs], images[questioned])
        scores.append(verdict.score)
        right &= verdict.genuine == expected
    return right, scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.cli.examples", description=__doc__)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument(
        "--max-writers", type=int, default=200, help="give up after examining this many"
    )
    args = parser.parse_args(argv)
    bench = Workbench(args.weights)
    chosen: list[tuple[int, dict, list[float]]] = []
    examined = 0
    for writer in range(args.max_writers):
        examined += 1
        genuine, forged = sample_writer(args.seed, writer=writer, genuine=3, forgeries=1)
        images = {f"genuine_{i + 1}": g for i, g in enumerate(genuine)} | {"forgery_1": forged[0]}
        right, scores = _decides_writer(bench, images, slot=len(chosen) + 1)
        if right:
            chosen.append((writer, images, scores))
            if len(chosen) == 2:
                break
    if len(chosen) < 2:
        print(
            f"error: fewer than two of {examined} synthetic writers are decided correctly",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("writer*_*.png"):
        old.unlink()
    for slot, (_, images, _) in enumerate(chosen, start=1):
        for key, image in images.items():
            Image.fromarray(image).save(out / f"writer{slot}_{key}.png")
    rows, scores = [], [s for _, _, writer_scores in chosen for s in writer_scores]
    for (slot, refs, questioned, expected), score in zip(ROWS, scores):
        rows.append(
            {
                "references": [f"writer{slot}_{r}.png" for r in refs],
                "questioned": f"writer{slot}_{questioned}.png",
                "expected_genuine": expected,
                "score": round(score, 6),
            }
        )
    record = {
        "seed": args.seed,
        "writers": [w for w, _, _ in chosen],
        "examined": examined,
        "weights_sha256": bench.card.weights_sha256,
        "threshold": bench.threshold,
        "rows": rows,
    }
    (out / "examples.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "rows"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
