"""Batches for ``workbench.engine``: ``(inputs, target)`` tuples of CPU tensors.

Images come from an ``ImageBank`` (normalized ``uint8`` (H, W) images keyed by path) and become
float (N, 1, H, W) ink-bright tensors (``images_to_tensor``). Orders are given by the caller
(a seeded permutation), so the same seed gives the same batches on any device. With several
training processes each rank takes its shard of every global batch (``Distributed.shard``), so
one optimizer step still sees ``batch_size`` items in all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from workbench.data.image_bank import ImageBank
from workbench.data.pairs import Pair
from workbench.models.verifier import images_to_tensor

# (x1, x2) -> (x1', x2'): augmentation of a pair batch.
PairAugment = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# x -> x': augmentation of an image batch.
ImageAugment = Callable[[torch.Tensor], torch.Tensor]


def _global_batches(order: Sequence[int], batch_size: int, shard) -> list[Sequence[int]]:
    """Index chunks of ``order``; with a shard, this rank's part of each global batch.

    A last global batch too small to give every rank at least one item is dropped, so all
    ranks take the same number of steps.
    """
    chunks = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if shard is None or not shard.enabled:
        return chunks
    return [shard.shard(chunk) for chunk in chunks if len(chunk) >= shard.world_size]


class PairBatches:
    """``((x1, x2), labels)`` batches of verification pairs: reference, questioned, label.

    Args:
        pairs: the pairs; their paths must be in ``bank``.
        order: indices into ``pairs`` (default: their order).
        augment: applied to each batch (training only).
        shard: a ``workbench.engine.Distributed``; None = every batch whole.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        bank: ImageBank,
        *,
        batch_size: int = 64,
        order: Sequence[int] | None = None,
        augment: PairAugment | None = None,
        shard=None,
    ) -> None:
        self.pairs, self.bank, self.augment = pairs, bank, augment
        self.chunks = _global_batches(
            range(len(pairs)) if order is None else order, batch_size, shard
        )

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self) -> Iterator:
        for chunk in self.chunks:
            pairs = [self.pairs[i] for i in chunk]
            x1 = images_to_tensor(self.bank.get([p.reference for p in pairs]))
            x2 = images_to_tensor(self.bank.get([p.questioned for p in pairs]))
            if self.augment is not None:
                x1, x2 = self.augment(x1, x2)
            yield (x1, x2), torch.tensor([p.label for p in pairs])


class ImageBatches:
    """``((x,), class_ids)`` batches of labelled images (the writer classifier).

    Args:
        items: (path in ``bank``, class index) pairs.
        order, augment, shard: as for ``PairBatches``.
    """

    def __init__(
        self,
        items: Sequence[tuple[str, int]],
        bank: ImageBank,
        *,
        batch_size: int = 64,
        order: Sequence[int] | None = None,
        augment: ImageAugment | None = None,
        shard=None,
    ) -> None:
        self.items, self.bank, self.augment = items, bank, augment
        self.chunks = _global_batches(
            range(len(items)) if order is None else order, batch_size, shard
        )

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self) -> Iterator:
        for chunk in self.chunks:
            items = [self.items[i] for i in chunk]
            x = images_to_tensor(self.bank.get([p for p, _ in items]))
            if self.augment is not None:
                x = self.augment(x)
            yield (x,), torch.tensor([c for _, c in items])


def array_batches(
    *arrays: np.ndarray, batch_size: int = 64
) -> Iterator[tuple[tuple[torch.Tensor, ...], None]]:
    """``(inputs, None)`` batches of aligned normalized image arrays (N, H, W), for inference."""
    count = len(arrays[0])
    for start in range(0, count, batch_size):
        yield tuple(images_to_tensor(a[start : start + batch_size]) for a in arrays), None


class WriterSampledBatches:
    """Seeded batches of signatures grouped by writer, for the embedding Siamese.

    Each batch draws ``batch_size`` anchor writers and, per anchor, a second image of the same
    writer (positive) and an image of another writer (negative). ``triplet``: ``((anchors,
    positives, negatives), writers)`` with ``writers`` (2, B): the anchors' (and positives')
    and the negatives' writer indices (for batch-hard mining); ``contrastive``: ``((anchors,
    others), same)`` where each other is the positive or, with probability 1/2, the negative
    (``same`` bool).

    Args:
        groups: writer -> paths in ``bank`` (at least two per writer, two writers or more).
        steps: batches per pass; ``seed``: the generator's seed (``np.random.default_rng(seed)``).
    """

    def __init__(
        self,
        groups: dict[str, list[str]],
        bank: ImageBank,
        *,
        kind: str,
        steps: int,
        batch_size: int,
        seed,
    ) -> None:
        if kind not in ("triplet", "contrastive"):
            raise ValueError(f"Unknown sampling {kind!r}: choose triplet or contrastive.")
        self.groups, self.bank, self.kind = groups, bank, kind
        self.writers = sorted(groups)
        self.steps, self.batch_size, self.seed = steps, batch_size, seed

    def __len__(self) -> int:
        return self.steps

    def _images(self, paths: list[str]) -> torch.Tensor:
        return images_to_tensor(self.bank.get(paths))

    def __iter__(self) -> Iterator:
        rng, writers, groups, size = (
            np.random.default_rng(self.seed),
            self.writers,
            self.groups,
            self.batch_size,
        )
        for _ in range(self.steps):
            a_w = rng.choice(len(writers), size)
            n_w = (a_w + rng.integers(1, len(writers), size)) % len(writers)
            anchors, positives, negatives = [], [], []
            for a, n in zip(a_w, n_w):
                i, j = rng.choice(len(groups[writers[a]]), 2, replace=False)
                anchors.append(groups[writers[a]][i])
                positives.append(groups[writers[a]][j])
                negatives.append(groups[writers[n]][rng.integers(len(groups[writers[n]]))])
            if self.kind == "triplet":
                images = (self._images(anchors), self._images(positives), self._images(negatives))
                yield images, torch.from_numpy(np.stack([a_w, n_w]))
                continue
            same = torch.from_numpy(rng.random(size) < 0.5)
            others = [p if s else q for p, q, s in zip(positives, negatives, same.tolist())]
            yield (self._images(anchors), self._images(others)), same
