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
    batch_hard_triplet_loss,
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
    mining: str = "none",
) -> Path:
    """Train on the known writers' training images of ``split`` (from ``identify.image_split``).

    Contrastive batches are half same-writer pairs, half pairs of two writers; triplet batches
    take an anchor and a positive of one writer and a negative of another. ``mining``
    ``batch-hard`` (triplet only): each anchor is held against the hardest same-writer and
    other-writer embeddings of the whole batch. Returns the weights path.
    """
    if mining not in ("none", "batch-hard") or (mining != "none" and loss != "triplet"):
        raise ValueError(f"Mining {mining!r} is not available with the {loss} loss.")
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
    if loss == "triplet" and mining == "batch-hard":
        criterion = lambda embedded, writers: batch_hard_triplet_loss(  # noqa: E731
            *embedded, writers, margin=margin
        )
    elif loss == "triplet":
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
    model = engine.unwrap(model).eval()
    out.mkdir(parents=True, exist_ok=True)
    validation = open_set_validation(model, split, pre, k=3, max_false_rejection=0.05)
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
            "mining": mining,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "writers": writers,
            "corpus": split.get("corpus"),
            "device": str(device),
        },
        **({"validation": validation} if validation else {}),
    }
    weights, _ = save_model(model, out / name, meta)
    return weights


def open_set_validation(
    model: EmbeddingSiamese, split: dict, pre: PreprocessConfig, *, k: int, max_false_rejection
) -> dict | None:
    """The open-set threshold of ``model``, chosen on the split's validation images.

    Every known writer is enrolled with its first ``k`` training images; each validation image
    is ranked against all of them. The threshold is the one that rejects
    ``max_false_rejection`` of these genuine queries (``comparison.rejection_threshold``), the
    threshold the app uses. None when the split has no validation images.
    """
    from workbench.identification.comparison import rejection_threshold
    from workbench.identification.gallery import Gallery

    val = split.get("val") or []
    if not val:
        return None
    references = _by_writer(split["train"])
    bank = ImageBank(
        [p for ps in references.values() for p in ps[:k]] + [p for p, _, _ in val],
        config=pre,
        progress=False,
    )
    gallery = Gallery()
    for writer, paths in references.items():
        kept = [p for p in paths[:k] if p in bank]
        if kept:
            gallery.enroll(writer, bank.get(kept))
    scorer = embedding_scorer(model)
    queries = [(w, p) for p, w, _ in val if p in bank and w in gallery.writers]
    ranked = [(w, gallery.rank(bank.get([p])[0], scorer)) for w, p in queries]
    best = np.array([m[0].score for _, m in ranked])
    threshold = rejection_threshold(best, max_false_rejection)
    return {
        "threshold": threshold,
        "top1": float(np.mean([m[0].writer == w for w, m in ranked])),
        "rule": (
            f"rejects {100 * max_false_rejection:g}% of {len(ranked)} validation signatures "
            f"of {len(gallery)} known writers enrolled with k = {k} training references "
            "(writer score: similarity to the centroid of their embeddings)"
        ),
        "queries": len(ranked),
    }


def embedding_name(model: EmbeddingSiamese, card: WeightsCard) -> str:
    """What tables and the app call an embedding Siamese: its loss, and its mining if any."""
    mining = (card.training or {}).get("mining", "none")
    suffix = f", {mining} mining" if mining not in (None, "none") else ""
    return f"embedding Siamese, {model.config.loss} loss{suffix}"


def load_embedding(weights: str | Path) -> tuple[EmbeddingSiamese, WeightsCard, PreprocessConfig]:
    """The embedding Siamese saved at ``weights``: (model in eval mode, its card, preprocessing).

    Raises:
        ValueError: files missing, not an embedding Siamese, or weights that do not fit.
    """
    return load_module(weights, architecture="embedding_siamese")


def _unit(embeddings: torch.Tensor) -> torch.Tensor:
    return embeddings  # the model's embeddings are already unit vectors


class EmbeddingScorer:
    """A ``Gallery`` scorer for the embedding Siamese: similarity ``1 - d / 2`` of the
    embeddings (``EmbeddingSiamese.similarity``), in 0..1.

    Each signature is embedded on its own, so a ``Gallery`` embeds its references once
    (``embed``) and a query once; called as ``scorer(references, questioned)`` it embeds both
    (cached by content hash).
    """

    def __init__(self, model: EmbeddingSiamese, batch_size: int = 64) -> None:
        self.model, self.batch_size = model, batch_size
        self._cache: dict[tuple, np.ndarray] = {}

    def embed(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W) normalized uint8 images -> (N, dim) float32 unit embeddings."""
        key = (
            hashlib.blake2b(np.ascontiguousarray(images).tobytes(), digest_size=16).digest(),
            images.shape,
        )
        if key not in self._cache:
            if len(self._cache) > 4096:
                self._cache.clear()
            batches = array_batches(images, batch_size=self.batch_size)
            self._cache[key] = engine.predict(self.model, batches, output=_unit, dtype=np.float32)
        return self._cache[key]

    @staticmethod
    def similarity(references: np.ndarray, questioned: np.ndarray) -> np.ndarray:
        """(N, dim) and (1, dim) embeddings -> (N,) float64 scores in 0..1."""
        return (
            EmbeddingSiamese.similarity(torch.from_numpy(references), torch.from_numpy(questioned))
            .double()
            .numpy()
        )

    def __call__(self, references: np.ndarray, questioned: np.ndarray) -> np.ndarray:
        return self.similarity(self.embed(references), self.embed(questioned[None]))


def embedding_scorer(model: EmbeddingSiamese) -> EmbeddingScorer:
    """The ``Gallery`` scorer of an embedding Siamese (``EmbeddingScorer``)."""
    return EmbeddingScorer(model)
