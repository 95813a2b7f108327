"""Scoring of verification pairs with a verifier (through ``workbench.engine``), and the
per-pair scores CSV."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch

from workbench import engine
from workbench.data.batches import PairBatches
from workbench.data.image_bank import ImageBank
from workbench.data.pairs import Pair


def score_pairs(
    model: torch.nn.Module,
    bank: ImageBank,
    pairs: list[Pair],
    *,
    batch_size: int = 64,
    progress: bool = False,
    desc: str = "scoring",
) -> np.ndarray:
    """Same-writer probabilities p1 (float64, shape (len(pairs),)) in eval mode, no gradients,
    on the model's device (``engine.predict``)."""
    batches = PairBatches(pairs, bank, batch_size=batch_size)
    return engine.predict(model, batches, progress=progress, desc=desc)


def write_scores_csv(pairs: list[Pair], scores: np.ndarray, path: str | os.PathLike) -> Path:
    """One row per pair: reference, questioned, label, writer, kind, score (6 decimals)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["reference", "questioned", "label", "writer", "kind", "score"])
        writer.writerows(
            [p.reference, p.questioned, p.label, p.writer, p.kind, f"{s:.6f}"]
            for p, s in zip(pairs, scores)
        )
    return path
