"""A training run's resumable state: ``last.safetensors`` (model), ``last_optimizer.safetensors``
(optimizer tensors) and ``last.json`` (epoch, budget spent, best epoch, optimizer settings and
scalars). Nothing pickled; ``train --resume`` reads it back.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn


def save_training_state(
    out: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> None:
    """Write the model, the optimizer and ``state`` (JSON-serializable) into the run folder."""
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "last.safetensors")
    )
    tensors, scalars = {}, {}
    for index, values in optimizer.state_dict()["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    save_file(tensors, str(out / "last_optimizer.safetensors"))
    state = {
        **state,
        "optimizer_param_groups": optimizer.state_dict()["param_groups"],
        "optimizer_scalars": scalars,
    }
    (out / "last.json").write_text(json.dumps(state, indent=1) + "\n")


def load_training_state(out: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Load what ``save_training_state`` wrote into model and optimizer; returns ``state``."""
    state = json.loads((out / "last.json").read_text())
    model.load_state_dict(load_file(str(out / "last.safetensors")))
    per_param: dict[int, dict] = {}
    for key, value in load_file(str(out / "last_optimizer.safetensors")).items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    for key, value in state["optimizer_scalars"].items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["optimizer_param_groups"]})
    return state
