"""Training with torch.distributed: two CPU processes (gloo) under torchrun on synthetic writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from workbench import engine
from workbench.config import ModelConfig
from workbench.data.synthetic import generate_corpus
from workbench.models import build_model

ROOT = Path(__file__).resolve().parents[1]
EPOCHS, PAIRS, SIZE = 2, 96, 48


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    generate_corpus(root / "synth", writers=12, genuine=4, forgeries=4, seed=5, progress=False)
    out = root / "runs" / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "workbench.cli.train", "--data", str(root / "synth"), "--protocol", "8/4/3",
        "--input-size", str(SIZE), "--epochs", str(EPOCHS), "--pairs-per-epoch", str(PAIRS),
        "--batch-size", "16", "--seed", "2", "--device", "cpu", "--threads", "1", "--quiet",
        "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_every_rank_ends_with_the_same_weights(two_rank_run):
    ranks = json.loads((two_rank_run / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and ranks["device"] == "cpu"
    first, second = ranks["state_sha256"]
    assert first == second
    # The digest is of real weights: the last checkpoint rank 0 wrote has it too.
    config = ModelConfig(input_height=SIZE, input_width=SIZE)
    model = build_model(config=config)
    model.load_state_dict(load_file(str(two_rank_run / "last.safetensors")))
    assert engine.state_digest(model) == first


def test_training_proceeds_on_shards_and_rank_0_alone_writes(two_rank_run):
    log = [json.loads(line) for line in (two_rank_run / "log.jsonl").read_text().splitlines()]
    # One line per epoch (rank 0 alone logs); both ranks' shards add up to the epoch's pairs.
    assert [r["epoch"] for r in log] == list(range(1, EPOCHS + 1))
    assert all(r["pairs"] == PAIRS for r in log)
    assert all(0.0 < r["train_loss"] < 10.0 for r in log)
    torch.manual_seed(2)
    initial = build_model(config=ModelConfig(input_height=SIZE, input_width=SIZE))
    ranks = json.loads((two_rank_run / "ranks.json").read_text())
    assert engine.state_digest(initial) != ranks["state_sha256"][0]
    card = json.loads((two_rank_run / "ddp.json").read_text())
    assert card["training"]["world_size"] == 2
    assert 0.0 <= card["validation"]["threshold"] <= 1.0
    exported = sorted(p.name for p in two_rank_run.iterdir())
    assert exported == [
        "best.json", "best.safetensors", "ddp.json", "ddp.safetensors", "last.json",
        "last.safetensors", "last_optimizer.safetensors", "log.jsonl", "ranks.json",
    ]  # fmt: skip


def test_a_shard_takes_every_nth_item_and_gathering_restores_the_order():
    ranks = [engine.Distributed(rank=r, world_size=3) for r in range(3)]
    items = list(range(10))
    shards = [d.shard(items) for d in ranks]
    assert shards == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert engine.Distributed().shard(items) is items
    assert ranks[0].is_main and not ranks[1].is_main and ranks[1].enabled
