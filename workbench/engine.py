"""One engine for every model: ``train_one_epoch``, ``evaluate`` and ``predict``.

After torchvision's ``references/classification/train.py``: a loader yields ``(inputs, target)``
batches, where ``inputs`` is a tuple of tensors the model takes as ``model(*inputs)`` (one image
batch for the writer classifier, two for the pairwise verifier, two or three for the embedding
Siamese) and ``target`` what the criterion compares the outputs with (``None`` where there is
none). Data are moved to the device in one place (``to_device``), in channels_last; on CUDA the
forward pass runs under bf16 autocast and the loss in float32. The same seeds give the same
batches on every device.

Several processes: launched by ``torchrun``, ``init_distributed`` starts ``torch.distributed``
(NCCL on GPUs, gloo on CPUs) and ``wrap_model`` wraps the model in DistributedDataParallel; each
rank trains on its shard of every global batch (``Distributed.shard``) and predicts on its shard
of the items, gathered back in order by ``gather_shards``. Rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor | None]


def default_device() -> str:
    """``cuda`` when a GPU is present, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes logs, checkpoints and weights."""
        return self.rank == 0

    def shard(self, items: Sequence) -> Sequence:
        """This rank's items: every ``world_size``-th from ``rank`` (all with one process)."""
        return items[self.rank :: self.world_size] if self.enabled else items


def init_distributed(device: str | None = None) -> tuple[Distributed, torch.device]:
    """Start ``torch.distributed`` under torchrun (``WORLD_SIZE`` > 1); pick the device.

    Args:
        device: ``cpu``, ``cuda`` or ``cuda:N``; None = ``default_device()``. Under torchrun with
            CUDA each process takes GPU ``LOCAL_RANK``.

    Returns:
        (this process's ``Distributed``, its ``torch.device``).

    Raises:
        ValueError: CUDA asked for where there is none.
    """
    name = device or default_device()
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this machine has no CUDA GPU (use --device cpu).")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(), torch.device(name)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if name.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return Distributed(rank=rank, world_size=world_size, local_rank=local_rank), chosen


def close_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (nothing with one process)."""
    if dist.is_initialized():
        dist.barrier()


def broadcast_object(value: object) -> object:
    """Rank 0's ``value`` on every rank (``value`` itself with one process)."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_objects(value: object) -> list:
    """Every rank's ``value``, in rank order (``[value]`` with one process)."""
    if not dist.is_initialized():
        return [value]
    values: list = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def gather_shards(part: np.ndarray, total: int) -> np.ndarray:
    """Reassemble per-rank results of ``Distributed.shard(items)`` into the items' order."""
    parts = all_gather_objects(part)
    if len(parts) == 1:
        return parts[0]
    whole = np.empty((total, *part.shape[1:]), dtype=part.dtype)
    for rank, values in enumerate(parts):
        whole[rank :: len(parts)] = values
    return whole


def sync_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DistributedDataParallel keeps parameters equal across ranks; each rank's last forward pass
    updates its running statistics from its own shard, so they are re-aligned before a
    validation or a checkpoint.
    """
    if dist.is_initialized():
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer, src=0)


def state_digest(model: nn.Module) -> str:
    """SHA-256 of the state dict (names, dtypes, shapes, values): equal weights, equal digest."""
    digest = hashlib.sha256()
    for name, tensor in sorted(unwrap(model).state_dict().items()):
        value = tensor.detach().cpu()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        # Flattened to a fresh 1-D copy: channels_last and 0-d tensors have no byte view.
        digest.update(value.reshape(-1).clone().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """The model on ``device``, channels_last; DistributedDataParallel under torchrun."""
    model = model.to(device=device, memory_format=torch.channels_last)
    if not dist.is_initialized():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; nothing on the CPU (float32, as the shipped weights were made)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Inputs (4-D image batches in channels_last) and target on ``device``."""
    inputs, target = batch
    moved = tuple(
        x.to(device, non_blocking=True, memory_format=torch.channels_last)
        if x.dim() == 4
        else x.to(device, non_blocking=True)
        for x in inputs
    )
    return moved, None if target is None else target.to(device, non_blocking=True)


def _as_float(outputs):
    if isinstance(outputs, torch.Tensor):
        return outputs.float()
    return tuple(o.float() for o in outputs)


def _global_sums(values: list[float]) -> list[float]:
    if not dist.is_initialized():
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def cosine_schedule(lr: float, total_steps: int) -> Callable[[int], float]:
    """Learning rate at global step ``s``: ``lr * (1 + cos(pi * s / total_steps)) / 2``."""
    return lambda step: lr * 0.5 * (1 + math.cos(math.pi * step / max(total_steps, 1)))


def train_one_epoch(
    model: nn.Module,
    criterion: Callable[..., torch.Tensor],
    optimizer: torch.optim.Optimizer,
    loader: Iterable[Batch],
    device: torch.device,
    *,
    desc: str = "training",
    first_step: int = 0,
    lr_at: Callable[[int], float] | None = None,
    augment: Callable[..., tuple[torch.Tensor, ...]] | None = None,
    teacher: nn.Module | None = None,
    progress: bool = True,
) -> dict:
    """One pass over ``loader``: ``loss = criterion(model(*inputs), target)``, backward, step.

    Args:
        criterion: ``(outputs, target) -> scalar loss`` (outputs in float32); with a
            ``teacher``, ``(outputs, target, teacher_outputs) -> scalar loss``.
        first_step: global index of this epoch's first step (for ``lr_at``).
        lr_at: sets every parameter group's learning rate to ``lr_at(step)`` before each step.
        augment: ``augment(*inputs) -> inputs``, applied on the device (a GPU augments its own
            batches; the random parameters come from torch's CPU generator, so the same seeds
            give the same augmentation on any device).
        teacher: a frozen model run in eval mode, without gradients, on the same (augmented)
            inputs (knowledge distillation).
        progress: a tqdm bar with the running loss and samples per second.

    Returns:
        ``{"loss": mean loss per sample, "samples": samples seen, "seconds": wall time}``; with
        several processes, loss and samples are summed over all ranks.
    """
    model.train()
    started, total, seen = time.perf_counter(), 0.0, 0
    bar = tqdm(loader, desc=desc, unit="batch", disable=not progress)
    for step, batch in enumerate(bar, start=first_step):
        if lr_at is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
        inputs, target = to_device(batch, device)
        if augment is not None:
            inputs = augment(*inputs)
        with autocast(device):
            outputs = model(*inputs)
        if teacher is None:
            loss = criterion(_as_float(outputs), target)
        else:
            with torch.no_grad(), autocast(device):
                taught = teacher.eval()(*inputs)
            loss = criterion(_as_float(outputs), target, _as_float(taught))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        count = inputs[0].shape[0]
        total += loss.item() * count
        seen += count
        rate = seen / (time.perf_counter() - started)
        bar.set_postfix(loss=f"{total / seen:.4f}", samples_s=f"{rate:.1f}")
    total, seen = _global_sums([total, float(seen)])
    return {
        "loss": total / max(seen, 1),
        "samples": int(seen),
        "seconds": time.perf_counter() - started,
    }


def same_writer_probability(logits: torch.Tensor) -> torch.Tensor:
    """The verifier's score p1 = softmax(logits)[:, 0] in 0..1 (DESIGN.md, Head)."""
    return torch.softmax(logits.float(), dim=1)[:, 0]


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over classes, (B, n_classes)."""
    return torch.softmax(logits.float(), dim=1)


@torch.inference_mode()
def predict(
    model: nn.Module,
    loader: Iterable[Batch],
    device: torch.device | None = None,
    *,
    output: Callable[[torch.Tensor], torch.Tensor] = same_writer_probability,
    dtype: np.dtype = np.float64,
    progress: bool = False,
    desc: str = "scoring",
) -> np.ndarray:
    """Batched inference in eval mode, no gradients: ``output(model(*inputs))`` of every batch,
    concatenated along the first axis as a numpy array of ``dtype``.

    ``device`` defaults to the model's own; the model's train/eval mode is restored afterwards.
    An empty loader gives an empty array.
    """
    module = unwrap(model)
    device = device or next(module.parameters()).device
    was_training = module.training
    module.eval()
    parts = []
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress):
        inputs, _ = to_device(batch, device)
        with autocast(device):
            result = output(module(*inputs))
        parts.append(result.float().cpu().numpy().astype(dtype))
    module.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0,), dtype=dtype)


def evaluate(
    model: nn.Module,
    loader: Iterable[Batch],
    labels: np.ndarray,
    device: torch.device | None = None,
    *,
    total: int | None = None,
    progress: bool = False,
    desc: str = "validation",
) -> tuple[dict, np.ndarray]:
    """Verification metrics of the pairs ``loader`` yields (this rank's shard of them under
    torchrun; ``total`` = the number of pairs over all ranks, gathered back in order).

    Returns:
        (``{"eer", "threshold", "acc_at_0.5", "auc"}``, the same-writer scores of all pairs).
    """
    from workbench import metrics
    from workbench.config import FALLBACK_THRESHOLD

    scores = predict(model, loader, device, progress=progress, desc=desc)
    scores = gather_shards(scores, len(labels) if total is None else total)
    rate, threshold = metrics.eer(labels, scores)
    result = {
        "eer": rate,
        "threshold": threshold,
        "acc_at_0.5": metrics.far_frr(labels, scores, FALLBACK_THRESHOLD)["acc"],
        "auc": metrics.auc(labels, scores),
    }
    return result, scores
