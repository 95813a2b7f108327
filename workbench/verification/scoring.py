"""Batched scoring of pairs with a verifier, and the per-pair scores CSV."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from workbench.data.image_bank import ImageBank
from workbench.data.pairs import Pair
from workbench.models.verifier import images_to_tensor


def score_pairs(
    model: torch.nn.Module,
    bank: ImageBank,
    pairs: list[Pair],
    *,
    batch_size: int = 64,
    progress: bool = False,
    desc: str = "scoring",
) -> np.ndarray:
    """Same-writer probabilities p1 (float64, shape (len(pairs),)) in eval mode, no gradients."""
    was_training = model.training
    model.eval()
    scores = np.empty(len(pairs), dtype=np.float64)
    with torch.inference_mode():
        for start in tqdm(
            range(0, len(pairs), batch_size), desc=desc, unit="batch", disable=not progress
        ):
            chunk = pairs[start : start + batch_size]
            x1 = images_to_tensor(bank.get([p.reference for p in chunk]))
            x2 = images_to_tensor(bank.get([p.questioned for p in chunk]))
            scores[start : start + len(chunk)] = (
                torch.softmax(model(x1, x2), dim=1)[:, 0].double().numpy()
            )
    model.train(was_training)
    return scores


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
