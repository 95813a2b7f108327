"""Writer identification on synthetic writers: the classifier, its split and its report."""

from __future__ import annotations

import json

import pytest
import torch

from workbench import identify
from workbench.data.synthetic import generate_corpus
from workbench.models.writer_id import WriterClassifier, WriterClassifierConfig, sparse_categorical_cross_entropy


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("writers")
    generate_corpus(root, writers=10, genuine=12, forgeries=0, seed=5)
    return root


def test_classifier_shapes_and_loss():
    model = WriterClassifier(WriterClassifierConfig(n_writers=7, input_height=64, input_width=64))
    logits = model(torch.rand(3, 1, 64, 64))
    assert logits.shape == (3, 7)
    loss = sparse_categorical_cross_entropy(logits, torch.tensor([0, 3, 6]))
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3, 6])))


def test_split_is_per_writer_seeded_and_keeps_holdout_writers_out(corpus):
    split = identify.image_split(str(corpus), test_fraction=0.25, holdout_writers=2, seed=1)
    assert len(split["writers"]) == 8 and len(split["holdout"]) == 2
    assert not set(split["writers"]) & set(split["holdout"])
    assert len(split["test"]) == 8 * 3 and len(split["train"]) == 8 * 9 and len(split["holdout_images"]) == 24
    assert {w for _, w, _ in split["train"]} == set(split["writers"])
    assert not {p for p, _, _ in split["train"]} & {p for p, _, _ in split["test"]}
    assert split == identify.image_split(str(corpus), test_fraction=0.25, holdout_writers=2, seed=1)


def test_classifier_trains_and_beats_chance(corpus, tmp_path, capsys):
    out = tmp_path / "wid"
    args = ["train", "--data", str(corpus), "--out", str(out), "--epochs", "8", "--batch-size", "8",
            "--input-size", "64", "--holdout-writers", "2", "--seed", "0", "--quiet"]
    assert identify.main(args) == 0
    capsys.readouterr()
    assert identify.main(["eval", "--weights", str(out / "writer_classifier.safetensors"), "--per-writer", "--quiet"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["writers"] == 8 and result["images"] == 24
    assert result["top1"] > 0.5  # chance is 1/8
    assert result["top5"] >= result["top1"]
    lines = captured.err.strip().splitlines()
    assert len(lines) == 8 and lines[0].startswith("3 images of writer synth_") and lines[0].endswith("%")


def test_slides_line_and_media():
    assert identify.slides_line({"writer": "58", "images": 24, "correct": 23}) == "24 images of writer 58: 23 correct, 95.83%"
    assert [identify.crossmedia_medium(i) for i in (1, 10, 11, 25, 31, 40)] == [
        "paper", "paper", "iPad", "phone in hand", "phone on table", "phone on table"]
