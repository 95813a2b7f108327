"""The intake bench (issue 14): how well signatures are found on synthetic pages
(``python -m workbench.data pages``) and how much the verifier's score moves between a
signature and its photographed or scanned page. Run by ``python -m workbench.bench --pages``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from workbench.errors import SignatureInputError
from workbench.intake.documents import load_pages
from workbench.intake.finder import find_signatures

REFERENCES = 5


def box_iou(a, b) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes (ends exclusive)."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _summary(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "p95": float(np.percentile(values, 95)),
            "max": float(np.max(values))}  # fmt: skip


def measure_pages(
    folder: str | Path, *, workbench=None, iou: float = 0.8, progress: bool = True
) -> dict:
    """Finding and verification figures over the pages ``truth.json`` lists in ``folder``.

    Args:
        workbench: a ``Workbench`` with weights to also measure the score differences (the
            page's top candidate against the generator's clean signature, each scored as the
            mean against ``REFERENCES`` other genuine signatures of the writer); None to skip.
        iou: the box overlap a found signature must reach to count.

    Returns:
        A JSON-ready dict: pages, top-candidate hit rate (IoU >= ``iou``), hit rate among all
        candidates, mean IoU of the top candidate, finding seconds (decoded page) and
        decode-and-find seconds (mean, p95, max), the same per scan / photo, and the score
        differences when ``workbench`` is given.
    """
    from workbench.data.synthetic import sample_writer

    folder = Path(folder)
    try:
        truth = json.loads((folder / "truth.json").read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{folder} holds no readable truth.json ({error}).") from None
    rows = []
    for item in tqdm(truth, desc="pages", disable=not progress):
        path = folder / item["file"]
        start = time.perf_counter()
        page = load_pages(path)[0]
        decoded = time.perf_counter()
        candidates = find_signatures(page.gray)
        found = time.perf_counter()
        overlaps = [box_iou(c.box, item["box"]) for c in candidates]
        row = {
            "photo": bool(item["photo"]),
            "top_iou": overlaps[0] if overlaps else 0.0,
            "any_hit": any(o >= iou for o in overlaps),
            "find_s": found - decoded,
            "decode_find_s": found - start,
        }
        if workbench is not None:
            genuine, _ = sample_writer(
                item["seed"], writer=item["writer"], genuine=4 + REFERENCES, forgeries=0
            )
            references = genuine[4:]
            clean = workbench.verify(references, genuine[item["sample"]])
            row["score_clean"], row["accepted_clean"] = clean.score, clean.genuine
            try:  # the page file itself, as the app takes it (auto: searched as a page)
                verdict = workbench.verify(references, path)
                row["score_page"], row["accepted_page"] = verdict.score, verdict.genuine
            except SignatureInputError as error:
                row["error"] = str(error)
        rows.append(row)
    return _report(rows, iou, folder)


def _report(rows: list[dict], iou: float, folder: Path) -> dict:
    def part(selected: list[dict]) -> dict:
        if not selected:
            return {}
        out = {
            "pages": len(selected),
            "top_hit_rate": float(np.mean([r["top_iou"] >= iou for r in selected])),
            "any_hit_rate": float(np.mean([r["any_hit"] for r in selected])),
            "top_iou_mean": float(np.mean([r["top_iou"] for r in selected])),
            "find_seconds": _summary([r["find_s"] for r in selected]),
            "decode_and_find_seconds": _summary([r["decode_find_s"] for r in selected]),
        }
        failed = [r for r in selected if "error" in r]
        if failed:
            out["verification_errors"] = len(failed)
        if "score_clean" in selected[0]:
            # A page the app cannot verify counts as the largest possible difference.
            diffs = [abs(r["score_page"] - r["score_clean"]) if "error" not in r else 1.0
                     for r in selected]  # fmt: skip
            out["score_difference"] = _summary(diffs)
            out["score_difference"]["median"] = float(statistics.median(diffs))
            # every page holds a genuine signature: the share the verdict accepts, from the clean
            # signature and from the page (a page the app cannot verify counts as rejected)
            out["genuine_accepted"] = {
                "clean": float(np.mean([r["accepted_clean"] for r in selected])),
                "page": float(np.mean([r.get("accepted_page", False) for r in selected])),
            }
        return out

    return {
        "pages": str(folder),
        "iou": iou,
        "all": part(rows),
        "scans": part([r for r in rows if not r["photo"]]),
        "photos": part([r for r in rows if r["photo"]]),
    }
