"""Training of the embedding Siamese (contrastive or triplet loss) on the identification split."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from workbench import engine
from workbench.checkpoint import WeightsCard, load_module, save_model
from workbench.config import ModelConfig, PreprocessConfig
from workbench.data.batches import WriterSampledBatches, array_batches
from workbench.data.image_bank import ImageBank
from workbench.models.embedding import (
    EmbeddingConfig,
    EmbeddingSiamese,
    contrastive_loss,
    triplet_loss,
)


def _by_writer(items: list[list]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for path, writer, _ in items:
        groups.setdefault(writer, []).append(path)
    return groups


def train_embedding(
    split: dict,
    out: Path,
    *,
    loss: str,
    epochs: int,
    steps_per_epoch: int,
    batch_size: int,
    input_size: int,
    seed: int,
    lr: float = 1e-3,
    name: str = "embedding_siamese",
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Train on the known writers' training images of ``split`` (from ``identify.image_split``).

    Contrastive batches are half same-writer pairs, half pairs of two writers; triplet batches
    take an anchor and a positive of one writer and a negative of another. Returns the weights path.
    """
    margin = 1.0 if loss == "contrastive" else 0.2
    config = EmbeddingConfig(
        backbone=ModelConfig(
            attention="none", cross_attention=False, input_height=input_size, input_width=input_size
        ),
        loss=loss,
        margin=margin,
    )
    pre = PreprocessConfig(height=input_size, width=input_size)
    groups = {w: p for w, p in _by_writer(split["train"]).items() if len(p) >= 2}
    writers = sorted(groups)
    if len(writers) < 2:
        raise ValueError(
            "The embedding Siamese needs at least two writers with two training images each."
        )
    bank = ImageBank(
        [p for ps in groups.values() for p in ps],
        config=pre,
        cache_dir=out.parent / "cache",
        progress=progress,
    )
    torch.manual_seed(seed)
    device = torch.device(device)
    model = engine.wrap_model(EmbeddingSiamese(config), device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if loss == "triplet":
        criterion = lambda embedded, _: triplet_loss(*embedded, margin=margin)  # noqa: E731
    else:
        criterion = lambda embedded, same: contrastive_loss(*embedded, same, margin=margin)  # noqa: E731
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        batches = WriterSampledBatches(
            groups,
            bank,
            kind=loss,
            steps=steps_per_epoch,
            batch_size=batch_size,
            seed=[seed, epoch],
        )
        trained = engine.train_one_epoch(
            model,
            criterion,
            optimizer,
            batches,
            device,
            desc=f"{loss} epoch {epoch}/{epochs}",
            progress=progress,
        )
        record = {"epoch": epoch, "loss": loss, "train_loss": trained["loss"]}
        print(json.dumps(record), file=sys.stderr)
    model = engine.unwrap(model)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "architecture": "embedding_siamese",
        "model": config.to_dict(),
        "preprocess": pre.to_dict(),
        "training": {
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "writers": writers,
            "corpus": split.get("corpus"),
            "device": str(device),
        },
    }
    weights, _ = save_model(model, out / name, meta)
    return weights


def load_embedding(weights: str | Path) -> tuple[EmbeddingSiamese, WeightsCard, PreprocessConfig]:
    """The embedding Siamese saved at ``weights``: (model in eval mode, its card, preprocessing).

    Raises:
        ValueError: files missing, not an embedding Siamese, or weights that do not fit.
    """
    return load_module(weights, architecture="embedding_siamese")


def _unit(embeddings: torch.Tensor) -> torch.Tensor:
    return embeddings  # the model's embeddings are already unit vectors


def embedding_scorer(model: EmbeddingSiamese):
    """A ``Gallery`` scorer: similarity ``1 - d / 2`` of the embeddings.

    Each signature is embedded on its own, so a gallery's references are embedded once and the
    questioned signature once per ranking (cached by content hash).
    """
    cache: dict[tuple, torch.Tensor] = {}

    def embedded(images: np.ndarray) -> torch.Tensor:
        key = (
            hashlib.blake2b(np.ascontiguousarray(images).tobytes(), digest_size=16).digest(),
            images.shape,
        )
        if key not in cache:
            if len(cache) > 4096:
                cache.clear()
            batches = array_batches(images)
            cache[key] = torch.from_numpy(
                engine.predict(model, batches, output=_unit, dtype=np.float32)
            )
        return cache[key]

    def score(references: np.ndarray, questioned: np.ndarray) -> np.ndarray:
        return (
            EmbeddingSiamese.similarity(embedded(references), embedded(questioned)).double().numpy()
        )

    return score
