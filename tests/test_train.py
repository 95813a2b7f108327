"""A tiny end-to-end run on synthetic writers: train, resume, export, evaluate, bench."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from workbench.checkpoint import load_verifier
from workbench.cli import bench, evaluate, train
from workbench.data.synthetic import generate_corpus

EPOCHS = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate_corpus(root, writers=20, genuine=6, forgeries=6, seed=11)
    return root


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    common = [
        "--data",
        str(corpus),
        "--protocol",
        "14/6/4",
        "--input-size",
        "64",
        "--loss",
        "ce",
        "--seed",
        "3",
        "--out",
        str(out),
        "--quiet",
    ]
    assert train.main(common + ["--epochs", str(EPOCHS - 1)]) == 0
    assert train.main(common + ["--epochs", str(EPOCHS), "--resume"]) == 0
    return out


def test_training_lowers_the_loss_and_resumes(run):
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == list(range(1, EPOCHS + 1))
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert log[-1]["pairs_seen"] == sum(r["pairs"] for r in log)


def test_export_holds_config_split_and_validation_threshold(run):
    model, card, pre = load_verifier(run / "tiny")
    assert card.model["input_height"] == pre.height == 64
    split = card.data[0]["writer_split"]
    assert len(split["train"]) == 10 and len(split["val"]) == 4 and len(split["test"]) == 6
    assert not set(split["test"]) & (set(split["train"]) | set(split["val"]))
    assert 0.0 < card.validation.threshold < 1.0
    assert card.training["seed"] == 3 and card.training["epochs_run"] == EPOCHS
    assert len(card.weights_sha256) == 64


def test_evaluation_on_held_out_writers_beats_chance(run, corpus, tmp_path, capsys):
    out = tmp_path / "eval"
    assert (
        evaluate.main(
            [
                "--weights",
                str(run / "tiny.safetensors"),
                "--data",
                str(corpus),
                "--out",
                str(out),
                "--quiet",
                "--table",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    result = json.loads(lines[0])
    # 6 held-out writers: 6 x C(6, 2) genuine pairs and 6 x 36 skilled-forgery pairs.
    assert (result["n_pairs"], result["n_genuine"], result["n_forged"]) == (306, 90, 216)
    assert result["auc"] > 0.6, result
    assert result["pairs_per_s"] > 0 and result["seconds_scoring"] >= 0  # the speed, printed
    assert lines[1].startswith("| model |") and lines[2].startswith("| tiny |")
    with (out / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 306 and all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    for name in ("roc.png", "det.png", "histogram.png"):
        assert (out / name).stat().st_size > 5000


def test_bench_prints_the_measurements(capsys):
    assert bench.main(["--input-size", "64", "--repeats", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in (
        "preprocess_ms_per_image",
        "inference_ms_per_pair_batch1",
        "inference_ms_per_pair_batch32",
        "training_ms_per_pair_batch64",
        "peak_memory_mb",
        "torch",
        "threads",
    ):
        assert key in result
    assert result["inference_ms_per_pair_batch32"] > 0


def test_max_minutes_stops_after_the_first_epoch(corpus, tmp_path):
    out = tmp_path / "budget"
    args = [
        "--data",
        str(corpus),
        "--protocol",
        "14/6/4",
        "--input-size",
        "48",
        "--epochs",
        "5",
        "--pairs-per-epoch",
        "64",
        "--max-minutes",
        "0.0001",
        "--augment",
        "--hard-mining",
        "0.5",
        "--out",
        str(out),
        "--quiet",
    ]
    assert train.main(args) == 0
    log = (out / "log.jsonl").read_text().splitlines()
    assert len(log) == 1
    training = json.loads((out / "budget.json").read_text())["training"]
    assert training["epochs_run"] == 1 and training["hard_mining"] == 0.5


def test_cosine_schedule_continues_from_saved_weights(run, corpus, tmp_path):
    start = run / "tiny.safetensors"
    common = [
        "--data",
        str(corpus),
        "--protocol",
        "14/6/4",
        "--input-size",
        "64",
        "--loss",
        "ce",
        "--pairs-per-epoch",
        "64",
        "--init-from",
        str(start),
        "--quiet",
    ]
    out = tmp_path / "cosine"
    assert train.main(common + ["--epochs", "2", "--lr-schedule", "cosine", "--out", str(out)]) == 0
    lrs = [json.loads(line)["lr_end"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([1e-3, 5e-4])  # one step per epoch: cos(0) then cos(pi/2)

    frozen = tmp_path / "frozen"  # learning rate 0: the learned weights are the starting ones
    assert train.main(common + ["--epochs", "1", "--lr", "0", "--out", str(frozen)]) == 0
    before = load_file(str(start))
    after = load_file(str(frozen / "frozen.safetensors"))
    convs = [k for k in before if k.endswith("conv1.weight")]
    assert convs and all(torch.equal(before[k], after[k]) for k in convs)

    wider = ["--config", "paper"]
    assert train.main(common + wider + ["--epochs", "1", "--out", str(tmp_path / "mismatch")]) == 2


def test_bench_app_times_the_apps_actions(run, capsys):
    assert bench.main(["--app", "--weights", str(run / "tiny.safetensors"), "--repeats", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("verdict_ms_1_reference", "verdict_ms_5_references",
                "verdict_ms_5_cached_references", "explanation_ms", "report_ms"):  # fmt: skip
        assert result[key] > 0
    # the tiny weights carry neither a copy rule nor conditions: nothing to time beyond the calls
    assert result["warnings_ms_5_references"] >= 0


def test_ablation_tables_report_each_variant_run(corpus, tmp_path, capsys):
    from workbench.cli import ablate

    args = [
        "--data",
        str(corpus),
        "--protocol",
        "14/6/4",
        "--out",
        str(tmp_path),
        "--input-size",
        "48",
        "--epochs",
        "1",
        "--pairs-per-epoch",
        "64",
        "--only",
        "baseline",
        "--only",
        "ce",
        "--quiet",
    ]
    assert ablate.main(args) == 0
    text = (tmp_path / "ablation.md").read_text()
    assert (
        capsys.readouterr().out.rstrip("\n").endswith(text.rstrip("\n"))
    )  # printed after each run's own lines
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "not run" in rows["+ both (full)"] and "not run" not in rows["baseline"]
    assert "not run" not in rows["cross-entropy"]
    baseline = json.loads((tmp_path / "baseline" / "baseline.json").read_text())
    assert (
        baseline["model"]["attention"] == "none" and baseline["model"]["cross_attention"] is False
    )
    assert json.loads((tmp_path / "ce" / "ce.json").read_text())["training"]["loss"] == "ce"
    assert ablate.main(args) == 0  # finished variants are read back, not retrained
    assert (tmp_path / "ablation.md").read_text() == text


def test_training_from_a_pack_matches_training_from_the_folders(corpus, tmp_path):
    """A pack carries the same images and pairs, so the same seed trains the same model."""
    import shutil

    from workbench.data.pack import write_pack

    copy = tmp_path / "corpus"
    shutil.copytree(corpus, copy)
    pack = tmp_path / "synth.npz"
    write_pack(pack, [str(copy)], ["14/6/4"], input_size=48, splits=("train", "val"),
               progress=False)  # fmt: skip
    common = ["--epochs", "1", "--pairs-per-epoch", "96", "--seed", "4", "--quiet"]
    folders = tmp_path / "folders"
    assert train.main(common + ["--data", str(copy), "--protocol", "14/6/4", "--input-size",
                                "48", "--out", str(folders)]) == 0  # fmt: skip
    shutil.rmtree(copy)  # the pack is all the second run has
    packed = tmp_path / "packed"
    assert train.main(common + ["--pack", str(pack), "--out", str(packed)]) == 0
    first = json.loads((folders / "log.jsonl").read_text().splitlines()[0])
    second = json.loads((packed / "log.jsonl").read_text().splitlines()[0])
    assert second["train_loss"] == first["train_loss"]
    assert second["val_eer"] == first["val_eer"] and second["pairs"] == 96
    card = json.loads((packed / "packed.json").read_text())
    assert card["data"][0]["pack"] == str(pack) and card["model"]["input_height"] == 48
    # The split it was trained on is recorded as evaluate reads it (protocol and seed).
    assert card["training"]["protocol"] == ["14/6/4"] and card["training"]["split_seed"] == 0
    f1, f2 = (
        load_file(str(folders / "folders.safetensors")),
        load_file(str(packed / "packed.safetensors")),
    )
    assert all(torch.equal(f1[k], f2[k]) for k in f1)
    missing = ["--pack", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "x")]
    assert train.main(common + missing) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_a_short_training_run_on_cuda_exports_weights_the_cpu_reads(corpus, tmp_path):
    out = tmp_path / "cuda"
    args = ["--data", str(corpus), "--protocol", "14/6/4", "--input-size", "48", "--epochs"]
    args += ["1", "--pairs-per-epoch", "128", "--device", "cuda", "--augment", "--quiet"]
    args += ["--out", str(out)]
    assert train.main(args) == 0
    card = json.loads((out / "cuda.json").read_text())
    assert card["training"]["device"] == "cuda" and 0.0 <= card["validation"]["threshold"] <= 1.0
    model, _, _ = load_verifier(out / "cuda")
    assert next(model.parameters()).device.type == "cpu"


def test_a_bad_input_size_is_refused_with_a_message(corpus, tmp_path, capsys):
    args = ["--data", str(corpus), "--protocol", "14/6/4", "--out", str(tmp_path / "x")]
    assert train.main(args + ["--input-size", "64xabc", "--quiet"]) == 2
    assert "give S or HxW" in capsys.readouterr().err


def test_a_student_distils_from_a_saved_teacher_and_records_it(run, corpus, tmp_path, capsys):
    out = tmp_path / "student"
    args = ["--data", str(corpus), "--protocol", "14/6/4", "--input-size", "64", "--epochs", "1"]
    args += ["--pairs-per-epoch", "128", "--augment", "--growth-rate", "4", "--stem-channels"]
    args += ["8", "--teacher", str(run / "tiny"), "--distill-weight", "0.7", "--quiet"]
    assert train.main(args + ["--out", str(out)]) == 0
    training = json.loads((out / "student.json").read_text())["training"]
    assert training["teacher"] == str(run / "tiny") and training["distill_weight"] == 0.7
    teacher_card = json.loads((run / "tiny.json").read_text())
    assert training["teacher_card"]["validation"] == teacher_card["validation"]
    assert training["teacher_card"]["model"]["input_height"] == 64
    # A teacher trained on other images (64 x 64) cannot teach on 48 x 48 ones.
    args[args.index("64")] = "48"
    assert train.main(args + ["--out", str(tmp_path / "other")]) == 2
    assert "train the teacher on the same pack" in capsys.readouterr().err
    assert not (tmp_path / "other" / "other.safetensors").exists()


def test_a_bad_hard_mining_share_is_refused_with_a_message(corpus, tmp_path, capsys):
    args = ["--data", str(corpus), "--protocol", "14/6/4", "--out", str(tmp_path / "x")]
    assert train.main(args + ["--hard-mining", "0", "--quiet"]) == 2
    assert "share of pairs kept must be in (0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "x" / "x.safetensors").exists()


def test_calibration_fits_on_validation_writers_and_measures_on_test_writers(
    run, corpus, tmp_path, capsys
):
    import shutil

    from workbench.cli import calibrate
    from workbench.verification.calibration import Calibration

    for suffix in (".safetensors", ".json"):
        shutil.copy(run / f"tiny{suffix}", tmp_path / f"tiny{suffix}")
    weights = str(tmp_path / "tiny.safetensors")
    common = ["--weights", weights, "--data", str(corpus), "--references", "2", "--quiet"]
    assert calibrate.main([*common, "--split", "test"]) == 2  # nothing fitted yet
    assert "fit one first" in capsys.readouterr().err
    assert calibrate.main([*common, "--random-per-writer", "5", "--write-card"]) == 0
    fitted = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # 4 validation writers, 2 references each: 4 x 4 genuine, 4 x 6 skilled, 4 x 5 random.
    names = ["k=1 skilled", "k=1 random", f"{corpus.name} k=2 writer normalization",
             "k=2 skilled", "k=2 random", "conditions",
             f"{corpus.name} outside validated conditions", "copy_check"]  # fmt: skip
    assert [f["name"] for f in fitted] == names
    conditions = fitted[5]  # 4 validation writers: 16 + 24 + 20 comparisons
    assert conditions["n_val_comparisons"] == 60 and conditions["quantile"] == 0.95
    fitted = [f for f in fitted if f["name"].startswith("k=")]
    assert all((f["n_same"], f["n_different"]) == (16, 24 if "skilled" in f["name"] else 20)
               for f in fitted)  # fmt: skip
    card = json.loads((tmp_path / "tiny.json").read_text())
    stored = [Calibration.from_dict(c) for c in card["calibration"]]
    assert [(c.alternative, c.references) for c in stored] == [
        ("skilled", 1), ("random", 1), ("skilled", 2), ("random", 2)
    ]  # fmt: skip
    assert all("validation writers" in c.data and c.cllr_min <= c.cllr + 1e-9 for c in stored)
    # the conditions: the statistics' Gaussians and the backbone features' (the tower), each
    # with its threshold
    tower = card["conditions"]["tower"]
    assert tower["corpora"] == [corpus.name] and len(tower["centre"]) == len(tower["choleskys"][0])
    assert 0 < card["conditions"]["tower_threshold"] < float("inf")
    # per writer 2 references x 4 genuine questioned signatures, and the 2 references' pair
    copies = card["copy_check"]
    assert copies["n_pairs"] == 4 * 9 and copies["percentile_99"] <= copies["threshold"] < 1.0
    assert calibrate.main([*common, "--split", "test", "--out", str(tmp_path / "m")]) == 0
    measured = {(r := json.loads(line))["name"]: r for line in capsys.readouterr().out.splitlines()}
    name = f"{corpus.name} k=2 skilled"
    assert name in measured and measured[name]["n_same"] == 6 * 4
    low, high = measured[name]["log10_lr_range"]
    bounds = stored[2].bounds
    assert bounds[0] - 1e-9 <= low <= high <= bounds[1] + 1e-9
    written = json.loads((tmp_path / "m" / "calibration.json").read_text())
    assert set(written) == set(measured)  # every printed result, the conditions' shares too
    plots = sorted(p.name for p in (tmp_path / "m").glob("*.png"))
    assert plots == [
        f"ece_{corpus.name}_k2_random.png", f"ece_{corpus.name}_k2_skilled.png",
        f"tippett_{corpus.name}_k2_random.png", f"tippett_{corpus.name}_k2_skilled.png",
    ]  # fmt: skip
    assert "outside validated conditions" in " ".join(measured)
    normalization = measured[f"{corpus.name} k=2 writer normalization"]
    assert set(normalization) - {"name"} == {
        "eer_mean_skilled", "eer_normalized_skilled", "eer_mean_random", "eer_normalized_random"
    }  # fmt: skip
    assert all(0 <= v <= 1 for key, v in normalization.items() if key != "name")


def test_calibrate_fits_each_corpus_its_own_population_beside_the_pooled_one(
    run, corpus, tmp_path, capsys
):
    import shutil

    from workbench.cli import calibrate
    from workbench.verification.calibration import Calibration, populations

    second = tmp_path / "second"
    generate_corpus(second, writers=20, genuine=6, forgeries=6, seed=12)
    for suffix in (".safetensors", ".json"):
        shutil.copy(run / f"tiny{suffix}", tmp_path / f"tiny{suffix}")
    common = ["--weights", str(tmp_path / "tiny.safetensors"), "--data", str(corpus), "--data",
              str(second), "--protocol", "14/6/4", "--protocol", "14/6/4", "--references", "2",
              "--random-per-writer", "5", "--quiet"]  # fmt: skip
    assert calibrate.main([*common, "--write-card"]) == 0
    capsys.readouterr()
    card = json.loads((tmp_path / "tiny.json").read_text())
    stored = [Calibration.from_dict(c) for c in card["calibration"]]
    assert populations(stored) == ["", *sorted([corpus.name, "second"])]
    for name in (corpus.name, "second"):
        own = [c for c in stored if c.population == name]
        assert sorted((c.alternative, c.references) for c in own) == [
            ("random", 1), ("random", 2), ("skilled", 1), ("skilled", 2)
        ]  # fmt: skip
        # 4 validation writers of this corpus alone: 4 x 4 genuine, 4 x 6 skilled comparisons
        assert all(f"{name} only" in c.data and c.n_same == 16 for c in own)
    pooled = [c for c in stored if c.population == ""]
    assert all(c.n_same == 32 for c in pooled)  # both corpora's validation writers
    assert calibrate.main([*common, "--split", "test"]) == 0
    measured = {(r := json.loads(line))["name"]: r for line in capsys.readouterr().out.splitlines()}
    for name in (corpus.name, "second"):
        mine, theirs = (
            measured[f"{name} k=2 skilled own calibration"],
            measured[f"{name} k=2 skilled"],
        )
        assert (
            mine["n_same"] == theirs["n_same"] == 6 * 4 and mine["cllr_min"] == theirs["cllr_min"]
        )


def test_calibrate_measures_the_warning_on_a_corpus_left_out_of_the_conditions(
    run, corpus, tmp_path, capsys
):
    import cv2
    import numpy as np

    from workbench.cli import calibrate

    # The held-out corpus: the same writers' images with strokes swollen far beyond any
    # training image's width, so every comparison lies outside the fitted conditions.
    swollen = tmp_path / "swollen"
    for path in sorted(corpus.rglob("*.png"))[:60]:
        image = cv2.erode(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), np.ones((9, 9), np.uint8))
        target = swollen / path.relative_to(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), image)
    args = ["--weights", str(run / "tiny.safetensors"), "--data", str(corpus), "--references",
            "2", "--random-per-writer", "3", "--quiet", "--held-out", str(swollen)]  # fmt: skip
    assert calibrate.main(args) == 0
    found = {(r := json.loads(line))["name"]: r for line in capsys.readouterr().out.splitlines()}
    held = found[f"held out: {swollen.name} outside validated conditions"]
    assert held["comparisons"] > 0 and held["share"] == 1.0
    assert found[f"{corpus.name} outside validated conditions"]["share"] < 0.5
    assert "calibration" not in json.loads((run / "tiny.json").read_text())  # no --write-card


def test_writer_space_is_fitted_on_training_writers_and_measured_by_calibrate(
    run, corpus, tmp_path, capsys
):
    import shutil

    from workbench.checkpoint import read_card
    from workbench.cli import calibrate, writer_space
    from workbench.verification.calibration import Calibration
    from workbench.verification.writer_space import stored_writer_space

    for suffix in (".safetensors", ".json"):
        shutil.copy(run / f"tiny{suffix}", tmp_path / f"tiny{suffix}")
    weights = str(tmp_path / "tiny.safetensors")
    assert writer_space.main(["--weights", weights, "--data", str(corpus), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # 10 training writers (protocol 14/6/4, 4 of the 14 carved off for validation), 6 genuine
    # signatures each; not stored without --write-card
    assert (summary["writers"], summary["images"], summary["written"]) == (10, 60, False)
    assert stored_writer_space(read_card(tmp_path / "tiny")) is None
    args = ["--weights", weights, "--data", str(corpus), "--quiet", "--write-card"]
    assert writer_space.main(args) == 0
    capsys.readouterr()
    space = stored_writer_space(read_card(tmp_path / "tiny"))
    assert space is not None and space.writers == 10 and space.data == (corpus.name,)
    common = ["--weights", weights, "--data", str(corpus), "--references", "2", "--quiet",
              "--random-per-writer", "5"]  # fmt: skip
    assert calibrate.main([*common, "--write-card"]) == 0
    capsys.readouterr()
    # with a writer space, the calibrations are fitted on both scores (a score the fit would
    # weigh negatively is dropped: then the calibration uses the other alone)
    stored = [Calibration.from_dict(c) for c in read_card(tmp_path / "tiny").extra["calibration"]]
    assert len(stored) == 4 and all(c.slope >= 0 and c.writer_space_slope >= 0 for c in stored)
    assert all(c.slope > 0 or c.writer_space_slope > 0 for c in stored)
    assert calibrate.main([*common, "--split", "test", "--out", str(tmp_path / "m")]) == 0
    measured = {(r := json.loads(line))["name"]: r for line in capsys.readouterr().out.splitlines()}
    fused = measured[f"{corpus.name} k=2 skilled"]
    assert 0 <= fused["eer_fused"] <= 1 and 0 <= fused["cllr_min"] <= fused["cllr"] + 1e-9
    assert (tmp_path / "m" / f"tippett_{corpus.name}_k2_skilled.png").exists()
    for k in (1, 2):
        found = measured[f"{corpus.name} k={k} writer space"]
        assert set(found) - {"name"} == {
            "eer_mean_skilled", "eer_writer_space_skilled", "eer_mean_random",
            "eer_writer_space_random",
        }  # fmt: skip
        assert all(0 <= v <= 1 for key, v in found.items() if key != "name")
    # a protocol count that does not match the corpora is refused with a message
    bad = ["--weights", weights, "--data", str(corpus), "--data", str(corpus), "--quiet"]
    assert writer_space.main([*bad, "--protocol", "14/6/4"]) == 2
    assert "one --protocol per --data" in capsys.readouterr().err
