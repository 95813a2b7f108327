"""Writer identification on synthetic writers: the classifier, its split and its report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from workbench.cli import identify
from workbench.data.synthetic import generate_corpus
from workbench.identification import classifier
from workbench.models.writer_id import (
    WriterClassifier,
    WriterClassifierConfig,
    sparse_categorical_cross_entropy,
)


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
    torch.testing.assert_close(
        loss, torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3, 6]))
    )


def test_split_is_per_writer_seeded_and_keeps_holdout_writers_out(corpus):
    split = classifier.image_split(str(corpus), test_fraction=0.25, holdout_writers=2, seed=1)
    assert len(split["writers"]) == 8 and len(split["holdout"]) == 2
    assert not set(split["writers"]) & set(split["holdout"])
    assert (
        len(split["test"]) == 8 * 3
        and len(split["train"]) == 8 * 9
        and len(split["holdout_images"]) == 24
    )
    assert {w for _, w, _ in split["train"]} == set(split["writers"])
    assert not {p for p, _, _ in split["train"]} & {p for p, _, _ in split["test"]}
    assert split == classifier.image_split(
        str(corpus), test_fraction=0.25, holdout_writers=2, seed=1
    )


def test_classifier_trains_and_beats_chance(corpus, tmp_path, capsys):
    out = tmp_path / "wid"
    args = [
        "train",
        "--data",
        str(corpus),
        "--out",
        str(out),
        "--epochs",
        "8",
        "--batch-size",
        "8",
        "--input-size",
        "64",
        "--holdout-writers",
        "2",
        "--seed",
        "0",
        "--quiet",
    ]
    assert identify.main(args) == 0
    capsys.readouterr()
    assert (
        identify.main(
            [
                "eval",
                "--weights",
                str(out / "writer_classifier.safetensors"),
                "--per-writer",
                "--quiet",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["writers"] == 8 and result["images"] == 8 * 2  # 20% of 12 images a writer
    assert result["top1"] > 0.5  # chance is 1/8
    assert result["top5"] >= result["top1"]
    lines = captured.err.strip().splitlines()
    assert (
        len(lines) == 8
        and lines[0].startswith("2 images of writer synth_")
        and lines[0].endswith("%")
    )
    # The kept epoch is the best on the validation images (20%), and the log says so.
    card = json.loads((out / "writer_classifier.json").read_text())
    log = [json.loads(line) for line in (out / "writer_classifier.log.jsonl").open()]
    assert len(log) == 8 and card["training"]["val_images"] == 8 * 2
    best = max(log, key=lambda r: r["val_top1"])
    assert card["training"]["best_epoch"] == best["epoch"]
    assert card["training"]["val_top1"] == best["val_top1"]
    assert len(card["split"]["val"]) == 16 and card["split"]["val_fraction"] == 0.2


def test_several_corpora_name_writers_by_corpus_and_split_60_20_20(corpus, tmp_path):
    other = tmp_path / "other"
    generate_corpus(other, writers=4, genuine=10, forgeries=2, seed=6)
    split = classifier.image_split(
        [str(corpus), str(other)], val_fraction=0.2, test_fraction=0.2, holdout_writers=3, seed=2
    )
    names = split["writers"] + split["holdout"]
    assert len(names) == 14 and len(set(names)) == 14  # the synthetic names repeat
    assert {n.split("/")[0] for n in names} == {corpus.name, "other"}
    per_writer = {}
    for part in ("train", "val", "test"):
        for _, writer, _ in split[part]:
            per_writer.setdefault(writer, []).append(part)
    ten = [w for w in split["writers"] if w.startswith("other/")]
    assert all(sorted(per_writer[w]) == ["test"] * 2 + ["train"] * 6 + ["val"] * 2 for w in ten)
    # Forgeries never enter identification.
    assert all("forg" not in p for part in ("train", "val", "test") for p, _, _ in split[part])
    for bad in ({"val_fraction": 0.5, "test_fraction": 0.5}, {"holdout_writers": 14}):
        kwargs = {"val_fraction": 0.2, "test_fraction": 0.2, "holdout_writers": 0} | bad
        with pytest.raises(ValueError):
            classifier.image_split([str(corpus), str(other)], seed=2, **kwargs)


def test_slides_line_and_media():
    assert (
        classifier.slides_line({"writer": "58", "images": 24, "correct": 23})
        == "24 images of writer 58: 23 correct, 95.83%"
    )
    assert [classifier.crossmedia_medium(i) for i in (1, 10, 11, 25, 31, 40)] == [
        "paper",
        "paper",
        "iPad",
        "phone in hand",
        "phone on table",
        "phone on table",
    ]


def test_enrolling_a_new_writer_changes_identification_without_touching_weights(corpus):
    from workbench.config import ModelConfig
    from workbench.data.image_bank import ImageBank
    from workbench.identification.embedding import embedding_scorer
    from workbench.identification.gallery import Gallery
    from workbench.models.embedding import EmbeddingConfig, EmbeddingSiamese

    torch.manual_seed(0)
    model = EmbeddingSiamese(
        EmbeddingConfig(
            backbone=ModelConfig(
                attention="none", cross_attention=False, input_height=64, input_width=64
            )
        )
    ).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    split = classifier.image_split(str(corpus), test_fraction=0.25, holdout_writers=2, seed=1)
    from workbench.config import PreprocessConfig

    bank = ImageBank(
        [p for p, _, _ in split["train"] + split["holdout_images"]],
        config=PreprocessConfig(height=64, width=64),
        progress=False,
    )
    gallery = Gallery()
    for writer in split["writers"]:
        gallery.enroll(writer, bank.get([p for p, w, _ in split["train"] if w == writer][:3]))
    new = split["holdout"][0]
    new_images = [p for p, w, _ in split["holdout_images"] if w == new]
    query = bank.get([new_images[-1]])[0]
    scorer = embedding_scorer(model)
    assert new not in [m.writer for m in gallery.rank(query, scorer)]
    gallery.enroll(new, bank.get([new_images[-1]]))  # enrolling the questioned image itself
    ranked = gallery.rank(query, scorer)
    assert ranked[0].writer == new and ranked[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(ranked) == len(split["writers"]) + 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # The cached ranking gives each writer the scores of scoring its references one by one, and
    # as the writer's score the similarity to the centroid of its references' embeddings.
    embedded_query = scorer.embed(query[None])[0]
    for match in ranked:
        direct = scorer(gallery.references(match.writer), query)
        np.testing.assert_allclose(match.scores, direct, atol=1e-6)
        centroid = scorer.embed(gallery.references(match.writer)).mean(0)
        centroid /= np.linalg.norm(centroid)
        by_hand = 1 - np.linalg.norm(centroid - embedded_query) / 2
        assert match.score == pytest.approx(float(by_hand), abs=1e-5)
    several = [m for m in ranked if len(m.scores) > 1]
    assert several and any(abs(m.score - np.mean(m.scores)) > 1e-4 for m in several)
    gallery.remove(new)
    assert new not in [m.writer for m in gallery.rank(query, scorer)]


def test_embedding_losses_by_hand():
    from workbench.models.embedding import contrastive_loss, triplet_loss

    e1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    e2 = torch.tensor([[0.0, 1.0], [0.0, 1.0]])  # distance sqrt(2)
    d = 2**0.5
    same = contrastive_loss(e1[:1], e2[:1], torch.tensor([1]), margin=1.0)
    assert same.item() == pytest.approx(d**2)
    far = contrastive_loss(e1[:1], e2[:1], torch.tensor([0]), margin=2.0)
    assert far.item() == pytest.approx((2.0 - d) ** 2)
    assert contrastive_loss(e1[:1], e2[:1], torch.tensor([0]), margin=1.0).item() == 0.0
    anchor, positive, negative = e1[:1], e1[:1], e2[:1]
    assert triplet_loss(anchor, positive, negative, margin=0.2).item() == pytest.approx(
        0.0, abs=1e-6
    )
    assert triplet_loss(anchor, negative, positive, margin=0.2).item() == pytest.approx(
        d + 0.2, rel=1e-4
    )


def test_compare_runs_end_to_end(corpus, tmp_path, capsys):
    out = tmp_path / "cmp"
    common = ["--input-size", "64", "--seed", "0", "--quiet"]
    assert (
        identify.main(
            [
                "train",
                "--data",
                str(corpus),
                "--out",
                str(out),
                "--epochs",
                "3",
                "--batch-size",
                "8",
                "--holdout-writers",
                "4",
                *common,
            ]
        )
        == 0
    )
    weights = str(out / "writer_classifier.safetensors")
    assert (
        identify.main(
            [
                "siamese-train",
                "--classifier",
                weights,
                "--loss",
                "triplet",
                "--mining",
                "batch-hard",
                "--out",
                str(out),
                "--epochs",
                "1",
                "--steps",
                "3",
                "--batch-size",
                "8",
                *common,
            ]
        )
        == 0
    )
    capsys.readouterr()
    # The embedding's open-set threshold was chosen on the validation images (6 known writers,
    # 2 validation images each) and rejects at most 5% of them.
    validation = json.loads((out / "siamese_triplet.json").read_text())["validation"]
    assert validation["queries"] == 12 and 0.0 <= validation["threshold"] <= 1.0
    assert validation["rule"].startswith("rejects 5% of 12 validation signatures of 6 known")
    training = json.loads((out / "siamese_triplet.json").read_text())["training"]
    assert training["mining"] == "batch-hard"
    assert (
        identify.main(
            [
                "compare",
                "--classifier",
                weights,
                "--embedding",
                str(out / "siamese_triplet.safetensors"),
                "--embedding",
                str(out / "siamese_triplet.safetensors"),
                "--k",
                "1",
                "2",
                "--queries",
                "2",
                "--markdown",
                str(out / "identification.md"),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(
        "| Feature | Identification (classifier) | Verification (embedding Siamese, triplet loss, "
        "batch-hard mining) |"
    )
    assert [line.split("|")[1].strip() for line in lines[2:6]] == [
        "Goal",
        "Scalability",
        "Use case",
        "Complexity",
    ]
    name = "embedding Siamese, triplet loss, batch-hard mining"
    k_rows = [line for line in lines if line.startswith(f"| {name} |")]
    markdown = (out / "identification.md").read_text()
    assert "6 known writers and 4 held-out writers, of which 2 are enrolled" in markdown
    assert "\n".join(lines[:-1]) in markdown  # the printed tables
    assert [row.split("|")[2].strip() for row in k_rows] == ["1", "2"]
    result = json.loads(lines[-1])
    embedding = result["verification"][name]
    # 4 held-out writers: 2 new (enrolled), 1 never-enrolled for the threshold, 1 for the test.
    assert (
        embedding["enrolled"] == 6 + 2
        and embedding["new_queries"] == 2 * 2
        and embedding["never_queries"] == 1 * 2
        and "never_val_rejected" in embedding
    )
    assert embedding["threshold_source"].startswith("rejects 5% of 12 validation signatures")
    assert 0.0 <= embedding["known_rejected"] <= 1.0
    assert set(result["verification_by_k"]) == {"1", "2"}
    # Two models of one kind are told apart by their file's name.
    assert set(result["verification"]) == {name, f"{name} (siamese_triplet)"}
    assert (
        result["classifier"]["new_writer_top1"] == 0.0
        and result["classifier"]["unknown_queries"] == 8
    )


def test_the_rejection_threshold_rejects_at_most_the_share_asked():
    from workbench.identification.comparison import rejection_threshold

    scores = np.array([0.9, 0.2, 0.5, 0.7, 0.3, 0.8, 0.6, 0.4, 0.95, 0.1])
    assert rejection_threshold(scores, 0.0) == 0.1  # rejects none
    assert rejection_threshold(scores, 0.05) == 0.1  # floor(0.5) = 0: still none
    assert rejection_threshold(scores, 0.2) == 0.3  # rejects 0.1 and 0.2: 20%
    assert (scores < rejection_threshold(scores, 0.25)).mean() <= 0.25
    with pytest.raises(ValueError, match="No validation signatures"):
        rejection_threshold(np.array([]), 0.05)
    with pytest.raises(ValueError, match="false-rejection share"):
        rejection_threshold(scores, 1.0)


def test_per_medium_top1_of_crossmedia_queries():
    from workbench.identification.comparison import per_medium, plan

    split = {
        "writers": ["a", "b"],
        "holdout": [],
        "train": [["a1", "a", 1], ["b1", "b", 2]],
        "test": [["a12", "a", 12], ["a25", "a", 25], ["b3", "b", 3], ["b33", "b", 33]],
        "holdout_images": [],
    }
    design = plan(split, k=1, queries=2, media=True)
    assert design["media"] == {
        "a12": "iPad", "a25": "phone in hand", "b3": "paper", "b33": "phone on table"
    }  # fmt: skip
    queries = [("a", "a12"), ("a", "a25"), ("b", "b3"), ("b", "b33")]
    assert per_medium(design, queries, [True, False, True, True]) == {
        "paper": 1.0, "iPad": 1.0, "phone in hand": 0.0, "phone on table": 1.0
    }  # fmt: skip
    assert per_medium(plan(split, k=1, queries=2), queries, [True] * 4) is None


def test_medium_table_reports_each_model_per_medium_and_held_out_images_have_media():
    from workbench.identification.comparison import medium_table, plan

    split = {
        "writers": ["a"],
        "holdout": ["c"],
        "train": [["a1", "a", 1]],
        "test": [["a12", "a", 12]],
        "holdout_images": [["c1", "c", 1], ["c35", "c", 35]],
    }
    design = plan(split, k=1, queries=2, media=True)
    assert design["media"]["c1"] == "paper" and design["media"]["c35"] == "phone on table"
    classifier = {"per_medium": {"paper": 0.5, "iPad": 0.25}}
    verifiers = {
        "triplet": {
            "per_medium": {"paper": 1.0},
            "new_per_medium": {"phone on table": 0.75},
            "never_rejected_per_medium": {"iPad": 0.125},
        }
    }
    table = medium_table(design, classifier, verifiers, k=3).splitlines()
    assert table[0] == "| Model | measure | paper | iPad | phone in hand | phone on table |"
    assert table[2] == "| classifier | known writers, top-1 | 50.0% | 25.0% | n/a | n/a |"
    assert table[3] == "| triplet | known writers, top-1 | 100.0% | n/a | n/a | n/a |"
    assert table[4] == "| triplet | new writers (k = 3), top-1 | n/a | n/a | n/a | 75.0% |"
    assert table[5] == "| triplet | never-enrolled, rejected | n/a | 12.5% | n/a | n/a |"
    assert medium_table(plan(split, k=1, queries=2), classifier, verifiers, k=3) == ""


def test_bench_times_identification_over_an_enrolled_gallery(capsys):
    from workbench.cli import bench

    assert bench.main(["--identify", "3", "--repeats", "1", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["identify_writers"] == 3 and result["identify_references"] == 9
    assert result["identify_ms"] > 0 and result["identify_gallery_embedding_ms"] > 0


def test_batch_hard_triplet_loss_by_hand():
    from workbench.models.embedding import batch_hard_triplet_loss

    # Writers 0 and 1 on a line: anchor 0 at 0 (positive at 0.5), anchor 1 at 3 (positive at 2);
    # the negatives: writer 1 at 0.8 and writer 0 at 2.9.
    anchor = torch.tensor([[0.0], [3.0]])
    positive = torch.tensor([[0.5], [2.0]])
    negative = torch.tensor([[0.8], [2.9]])
    writers = torch.tensor([[0, 1], [1, 0]])
    # anchor 0: its farthest writer-0 embedding is 2.9 (distance 2.9), its nearest writer-1 one
    # 0.8: 2.9 - 0.8 + 0.2. anchor 1: farthest writer 1 is 0.8 (2.2), nearest writer 0 is 2.9
    # (0.1): 2.2 - 0.1 + 0.2.
    expected = ((2.9 - 0.8 + 0.2) + (2.2 - 0.1 + 0.2)) / 2
    loss = batch_hard_triplet_loss(anchor, positive, negative, writers, margin=0.2)
    assert loss.item() == pytest.approx(expected)
    # Writers far apart owe nothing.
    easy = batch_hard_triplet_loss(
        anchor * 0, positive * 0, negative * 0 + 10, torch.tensor([[0, 0], [1, 1]]), margin=0.2
    )
    assert easy.item() == 0.0


def test_batch_hard_mining_is_refused_for_the_contrastive_loss(tmp_path):
    from workbench.identification.embedding import train_embedding

    with pytest.raises(ValueError, match="not available with the contrastive loss"):
        train_embedding(
            {"train": []}, tmp_path, loss="contrastive", epochs=1, steps_per_epoch=1,
            batch_size=2, input_size=64, seed=0, mining="batch-hard",
        )  # fmt: skip


@pytest.mark.parametrize("name", ["identify", "bench", "evaluate"])
def test_the_short_module_names_run_the_command_lines(name):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", f"workbench.{name}", "--help"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m workbench.cli.") or (
        done.stdout.startswith("usage:") and "--" in done.stdout
    )
