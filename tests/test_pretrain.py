"""Writer-classification pre-training of the backbone, and a verifier started from it."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from workbench.cli import pretrain, train
from workbench.data.pack import DataPack, write_pack
from workbench.data.synthetic import generate_corpus
from workbench.models.pretrainer import pretrain_loss


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    generate_corpus(root / "synth", writers=10, genuine=5, forgeries=4, seed=8, progress=False)
    path = root / "synth.npz"
    write_pack(path, [str(root / "synth")], ["8/2/2"], input_size=48, splits=("train", "val"),
               progress=False)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def pretrained(pack, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pre"
    args = ["--pack", str(pack), "--out", str(out), "--epochs", "6", "--batch-size", "16",
            "--lam", "0.5", "--quiet", "--device", "cpu"]  # fmt: skip
    assert pretrain.main(args) == 0
    return out


def test_images_come_from_the_training_writers_only(pack):
    loaded = DataPack.load(pack)
    images = pretrain.writer_images(loaded.pairs("train"))
    train_writers = {p.writer for p in loaded.pairs("train")}
    assert {w for w, _ in images.values()} == train_writers
    assert not train_writers & {p.writer for p in loaded.pairs("val")}
    # 6 training writers x (5 genuine + 4 forgeries), each image once.
    assert len(images) == 6 * 9 and sum(f for _, f in images.values()) == 6 * 4


def test_pretraining_learns_writers_and_records_its_card(pretrained):
    log = [json.loads(line) for line in (pretrained / "log.jsonl").read_text().splitlines()]
    assert len(log) == 6 and log[-1]["train_loss"] < log[0]["train_loss"]
    card = json.loads((pretrained / "pre.json").read_text())
    assert card["architecture"] == "writer_pretrainer" and len(card["classes"]) == 6
    assert card["model"]["backbone"]["input_height"] == 48
    assert 0.0 <= card["pretraining"]["val_writer_top1"] <= 1.0


def test_a_verifier_starts_from_the_pretrained_backbone(pretrained, pack, tmp_path):
    out = tmp_path / "ft"
    args = ["--pack", str(pack), "--init-backbone", str(pretrained / "pre.safetensors"),
            "--epochs", "1", "--pairs-per-epoch", "32", "--lr", "0", "--quiet", "--out",
            str(out)]  # fmt: skip
    assert train.main(args) == 0
    before, after = (
        load_file(str(pretrained / "pre.safetensors")),
        load_file(str(out / "ft.safetensors")),
    )
    convs = [k for k in after if k.startswith("backbone.") and k.endswith("conv1.weight")]
    assert convs and all(torch.equal(before[k], after[k]) for k in convs)
    wider = args[:-1] + [str(tmp_path / "wide"), "--config", "paper"]
    assert train.main(wider) == 2
    not_a_pretrainer = args[:-1] + [str(tmp_path / "x")]
    not_a_pretrainer[3] = str(out / "ft.safetensors")
    assert train.main(not_a_pretrainer) == 2


def test_the_loss_leaves_forgeries_out_of_the_writer_term():
    writer_logits = torch.tensor([[4.0, 0.0], [0.0, 4.0]])
    forgery = torch.tensor([-4.0, 4.0])
    # Sample 2 is a forgery of writer 0: its writer logits favour writer 1 and must not count.
    target = torch.tensor([[0, 0], [0, 1]])
    only_forgery = pretrain_loss((writer_logits, forgery), target, lam=1.0)
    only_writer = pretrain_loss((writer_logits, forgery), target, lam=0.0)
    assert float(only_writer) == pytest.approx(
        float(torch.log1p(torch.exp(torch.tensor(-4.0)))), rel=1e-5
    )
    assert float(only_forgery) == pytest.approx(
        float(torch.log1p(torch.exp(torch.tensor(-4.0)))), rel=1e-5
    )


def test_pretraining_refuses_several_processes(pack, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert pretrain.main(["--pack", str(pack), "--out", str(tmp_path / "p"), "--quiet"]) == 2
    assert "one process" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
