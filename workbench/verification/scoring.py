"""Scoring of verification pairs with a verifier (through ``workbench.engine``), and the
per-pair scores CSV."""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from workbench import engine
from workbench.data.batches import PairBatches
from workbench.data.image_bank import ImageBank
from workbench.data.pairs import Pair
from workbench.models.verifier import images_to_tensor
from workbench.verification.intake_cache import IntakeCache

WINDOW_IMAGES = 1024  # images whose first-block maps are held at once (~0.5 GB at compact)


def score_pairs(
    model: torch.nn.Module,
    bank: ImageBank,
    pairs: list[Pair],
    *,
    batch_size: int = 64,
    progress: bool = False,
    desc: str = "scoring",
    reuse_images: bool = True,
) -> np.ndarray:
    """Same-writer probabilities p1 (float64, shape (len(pairs),)) in eval mode, no gradients,
    on the model's device.

    With ``reuse_images`` (and a model with ``image_features``), each image's stem and first
    dense block run once for all the pairs it is in, about half of a pair's work; otherwise
    every pair runs whole (``engine.predict``). Both give the same scores up to float
    rounding.
    """
    module = engine.unwrap(model)
    if not reuse_images or not hasattr(module, "image_features") or not pairs:
        batches = PairBatches(pairs, bank, batch_size=batch_size)
        return engine.predict(model, batches, progress=progress, desc=desc)
    device = next(module.parameters()).device
    was_training = module.training
    module.eval()
    scores = np.zeros(len(pairs), dtype=np.float64)
    with tqdm(total=len(pairs), desc=desc, unit="pair", disable=not progress) as bar:
        for first, window in _windows(pairs, WINDOW_IMAGES):
            names = sorted({p.reference for p in window} | {p.questioned for p in window})
            index = {name: i for i, name in enumerate(names)}
            with torch.inference_mode(), engine.autocast(device):
                features = torch.cat([
                    module.image_features(_on(device, bank.get(names[i : i + batch_size])))
                    for i in range(0, len(names), batch_size)
                ])  # fmt: skip
                for i in range(0, len(window), batch_size):
                    part = window[i : i + batch_size]
                    f1 = features[[index[p.reference] for p in part]]
                    f2 = features[[index[p.questioned] for p in part]]
                    p1 = engine.same_writer_probability(module.forward_from_features(f1, f2))
                    scores[first + i : first + i + len(part)] = p1.cpu().numpy()
                    bar.update(len(part))
    module.train(was_training)
    return scores


def score_against(
    model: torch.nn.Module,
    references: np.ndarray,
    questioned: np.ndarray,
    *,
    cache: IntakeCache | None = None,
) -> np.ndarray:
    """p1 of (reference i, questioned) for each of the normalized ``references`` (k, H, W).

    Each image's stem and first dense block run once (``image_features``), not once per pair,
    and ``cache`` keeps them between calls, keyed by the image's bytes: the references an
    examiner verifies against cost only their pairs' remaining layers (issue 15). Each image
    runs alone, so a cached and a fresh computation agree exactly.
    """
    module = engine.unwrap(model)
    device = next(module.parameters()).device
    with torch.inference_mode(), engine.autocast(device):
        f2 = _image_features(module, device, questioned, cache)
        scores = []
        for start in range(0, len(references), 64):
            f1 = torch.cat([
                _image_features(module, device, image, cache)
                for image in references[start : start + 64]
            ])  # fmt: skip
            p1 = engine.same_writer_probability(module.forward_from_features(f1, f2.expand_as(f1)))
            scores.append(p1.cpu().numpy())
        return np.concatenate(scores)


def pooled_features(
    model: torch.nn.Module, images, *, cache: IntakeCache | None = None
) -> np.ndarray:
    """The pooled backbone features (N, C) of normalized images (``writer_space.embed``), each
    kept in ``cache`` beside its first-block features, so that a verdict's writer space and
    conditions check pay for them once per image."""
    from workbench.verification.writer_space import embed

    module = engine.unwrap(model)
    device = next(module.parameters()).device
    keys = [("writer space", *_key(image)) for image in images]
    found = [cache.get(key) if cache is not None else None for key in keys]
    missing = [i for i, row in enumerate(found) if row is None]
    if missing:  # the rest of the backbone for every image not seen before, in one batch
        with torch.inference_mode(), engine.autocast(device):
            first = torch.cat([_image_features(module, device, images[i], cache) for i in missing])
            rows = embed(module, first)
        for i, row in zip(missing, rows):
            found[i] = row
            if cache is not None:
                cache.put(keys[i], row)
    return np.stack(found)


def writer_space_similarity(
    model: torch.nn.Module,
    space,
    references: np.ndarray,
    questioned: np.ndarray,
    *,
    cache: IntakeCache | None = None,
) -> float:
    """The writer space's similarity (``verification.writer_space``) of ``questioned`` to the
    normalized ``references`` (k, H, W), from their ``pooled_features``."""
    from workbench.verification.writer_space import similarity

    found = pooled_features(model, [*references, questioned], cache=cache)
    return similarity(space, found[:-1], found[-1])


def _key(image: np.ndarray) -> tuple:
    image = np.ascontiguousarray(image)  # hashed as given: images_to_tensor converts it once
    digest = hashlib.blake2b(image.tobytes(), digest_size=20).digest()
    return (image.dtype.str, image.shape, digest)


def _image_features(module, device, image: np.ndarray, cache: IntakeCache | None):
    key = ("features", *_key(image))
    found = cache.get(key) if cache is not None else None
    if found is None:
        found = module.image_features(_on(device, image[None]))
        if cache is not None:
            cache.put(key, found)
    return found


def _on(device: torch.device, images: np.ndarray) -> torch.Tensor:
    return images_to_tensor(images).to(device, memory_format=torch.channels_last)


def _windows(pairs: list[Pair], most: int):
    """``(index of the first pair, pairs)`` runs of consecutive pairs that hold at most
    ``most`` distinct images (pairs come writer by writer, so each image serves many)."""
    first, seen = 0, set()
    for i, pair in enumerate(pairs):
        new = {pair.reference, pair.questioned} - seen
        if seen and len(seen) + len(new) > most:
            yield first, pairs[first:i]
            first, seen = i, set()
            new = {pair.reference, pair.questioned}
        seen |= new
    yield first, pairs[first:]


def write_scores_csv(
    pairs: list[Pair],
    scores: np.ndarray,
    path: str | os.PathLike,
    columns: dict[str, np.ndarray] | None = None,
) -> Path:
    """One row per pair: reference, questioned, label, writer, kind, score (6 decimals), then
    each of ``columns`` (name: one value per pair), e.g. the network score beside a fused one."""
    path = Path(path)
    columns = columns or {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["reference", "questioned", "label", "writer", "kind", "score", *columns])
        writer.writerows(
            [p.reference, p.questioned, p.label, p.writer, p.kind, f"{s:.6f}"]
            + [f"{float(values[i]):.6f}" for values in columns.values()]
            for i, (p, s) in enumerate(zip(pairs, scores))
        )
    return path
