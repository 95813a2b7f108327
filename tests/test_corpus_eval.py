"""Evaluating an uploaded corpus (workbench/corpus_eval.py, workbench/data/archive.py)."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.data.archive import safe_extract
from workbench.errors import SignatureInputError
from workbench.verification.corpus_eval import evaluate_archive

WRITERS, GENUINE, FORGED = 2, 3, 2
# Per writer: C(3, 2) = 3 genuine pairs and 3 x 2 = 6 forgery pairs.
N_GENUINE, N_FORGED = WRITERS * 3, WRITERS * 6


def make_corpus(
    folder: Path, *, writers: int = WRITERS, genuine: int = GENUINE, forgeries: int = FORGED
) -> Path:
    """A small synthetic corpus (writer-folders layout, small canvases) under ``folder``."""
    from workbench.data.synthetic import SynthConfig, generate_corpus

    small = SynthConfig(height_range=(80, 120), width_range=(240, 420), supersample=1)
    generate_corpus(
        folder, writers=writers, genuine=genuine, forgeries=forgeries, seed=5, config=small
    )
    return folder


def zip_folder(folder: Path, archive: Path, *, prefix: str = "") -> Path:
    """Zip every file under ``folder``, member names prefixed with ``prefix`` (e.g. ``corpus/``)."""
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                handle.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


@pytest.fixture(scope="module")
def workbench(tiny_verifier, tmp_path_factory):
    """The session's tiny untrained 96 x 96 verifier with validation threshold 0.45."""
    from workbench.verification.workbench import Workbench

    weights = tiny_verifier.save(
        tmp_path_factory.mktemp("weights") / "tiny", validation={"threshold": 0.45}
    )
    return Workbench(weights)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus") / "synthetic")


@pytest.fixture(scope="module")
def corpus_zip(corpus, tmp_path_factory) -> Path:
    # Inside one top-level folder, as zipping a folder usually gives.
    return zip_folder(corpus, tmp_path_factory.mktemp("zip") / "corpus.zip", prefix="synthetic/")


def test_zipped_corpus_gives_metrics_figures_and_one_csv_row_per_pair(
    workbench, corpus_zip, tmp_path
):
    calls = []
    result = evaluate_archive(
        workbench, corpus_zip, out_dir=tmp_path, progress=lambda f, m: calls.append((f, m))
    )
    m = result.metrics
    assert (m.n_pairs, m.n_genuine, m.n_forged, m.writers) == (
        N_GENUINE + N_FORGED,
        N_GENUINE,
        N_FORGED,
        WRITERS,
    )
    assert (
        m.source == "layout writer-folders" and m.images_left_out == 0 and m.val_threshold == 0.45
    )
    assert 0 <= m.eer <= 1 and 0 <= m.auc <= 1 and 0 <= m.far <= 1 and 0 <= m.val_frr <= 1
    assert {p.writer for p in result.pairs} == {
        "synth_0001",
        "synth_0002",
    }  # the top folder was stepped into
    rows = dict(m.rows())
    assert rows["pairs"] == "18" and rows["genuine pairs (label 1)"] == "6" and "AUC" in rows
    assert result.scores.shape == (18,) and np.all((result.scores >= 0) & (result.scores <= 1))
    with result.scores_csv.open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == m.n_pairs and sum(int(r["label"]) for r in table) == N_GENUINE
    assert table[0]["reference"].startswith("synth_0001/genuine/")
    assert all(f is not None for f in (result.roc, result.det, result.histogram))
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(calls) >= 4


def test_with_a_calibration_the_evaluation_measures_the_lrs_validity(
    workbench, tiny_verifier, corpus_zip, tmp_path
):
    from workbench.verification.calibration import (
        Calibration,
        cllr,
        cllr_min,
        fit_calibration,
    )
    from workbench.verification.workbench import Workbench

    plain = evaluate_archive(workbench, corpus_zip, out_dir=tmp_path / "a")
    assert plain.validity is None and plain.tippett is None and plain.ece is None
    rng = np.random.default_rng(0)
    fitted = fit_calibration(rng.beta(5, 3, 50), rng.beta(3, 5, 50), alternative="skilled")
    weights = tiny_verifier.save(tmp_path / "calibrated", extra={"calibration": [fitted.to_dict()]})
    result = evaluate_archive(Workbench(weights), corpus_zip, out_dir=tmp_path / "b")
    validity = result.validity
    labels = np.array([p.label for p in result.pairs])
    same, different = result.scores[labels == 1], result.scores[labels == 0]
    calibration = Calibration.from_dict(fitted.to_dict())
    assert validity.cllr == pytest.approx(
        cllr(calibration.log10_lr(same), calibration.log10_lr(different))
    )
    assert validity.cllr_min == pytest.approx(cllr_min(same, different))
    assert (validity.n_same, validity.n_different) == (N_GENUINE, N_FORGED)
    assert validity.alternative == "skilled" and len(validity.rows()) == 2
    assert result.tippett is not None and result.ece is not None


def test_a_fused_calibration_is_measured_with_each_pairs_writer_space_similarity(
    tiny_verifier, corpus, corpus_zip, tmp_path
):
    from workbench.data.image_bank import ImageBank
    from workbench.verification.calibration import cllr, fit_calibration
    from workbench.verification.workbench import Workbench
    from workbench.verification.writer_space import (
        embed_images,
        fit_writer_space,
        pair_similarities,
    )

    model = tiny_verifier.load()
    paths = sorted(str(p) for p in corpus.rglob("*.png"))[:24]
    bank = ImageBank(paths, config=Workbench(tiny_verifier.weights).preprocess_config,
                     progress=False)  # fmt: skip
    space = fit_writer_space(
        embed_images(model, bank.get(paths)), [Path(p).parent.name for p in paths]
    )
    rng = np.random.default_rng(1)
    fused = fit_calibration(
        rng.beta(5, 3, 60), rng.beta(3, 5, 60), alternative="skilled",
        similarities_same=rng.uniform(0, 1, 60), similarities_different=rng.uniform(-1, 0.5, 60),
    )  # fmt: skip
    assert fused.uses_writer_space
    extra = {"writer_space": space.to_dict(), "calibration": [fused.to_dict()]}
    bench = Workbench(tiny_verifier.save(tmp_path / "fused", extra=extra))
    result = evaluate_archive(bench, corpus_zip, out_dir=tmp_path / "out")
    assert result.validity is not None and result.tippett is not None
    # by hand: each pair's similarity from the same images, the LRs from both scores
    root = tmp_path / "unpacked"
    safe_extract(corpus_zip, root)
    files = {p.relative_to(root).as_posix(): str(p) for p in root.rglob("*.png")}

    def key(name):
        return next(v for k, v in files.items() if k.endswith(name))

    images = sorted({key(q) for p in result.pairs for q in (p.reference, p.questioned)})
    own_bank = ImageBank(images, config=bench.preprocess_config, progress=False)
    features = dict(zip(images, embed_images(bench.model, own_bank.get(images))))
    from dataclasses import replace

    located = [replace(p, reference=key(p.reference), questioned=key(p.questioned))
               for p in result.pairs]  # fmt: skip
    sims = pair_similarities(bench.writer_space, features, located)
    labels = np.array([p.label for p in result.pairs])
    stored = bench.calibrations[0]
    lr = stored.log10_lr(result.scores, sims)
    assert result.validity.cllr == pytest.approx(cllr(lr[labels == 1], lr[labels == 0]), abs=1e-6)


def test_pairs_csv_chooses_the_pairs(workbench, corpus_zip, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "reference,questioned,label\n"
        "synthetic/synth_0001/genuine/genuine_01.png,synthetic/synth_0001/genuine/genuine_02.png,1\n"
        # relative to the top folder
        "synth_0002/genuine/genuine_01.png,synth_0002/genuine/genuine_03.png,1\n"
        "synthetic/synth_0001/genuine/genuine_01.png,synthetic/synth_0001/forged/forged_01.png,0\n"
    )
    result = evaluate_archive(workbench, corpus_zip, pairs, out_dir=tmp_path)
    assert (result.metrics.n_pairs, result.metrics.n_genuine, result.metrics.n_forged) == (3, 2, 1)
    assert result.metrics.source == "pairs CSV"
    assert len(result.scores_csv.read_text().strip().splitlines()) == 1 + 3


def test_unreadable_image_is_left_out_and_counted(workbench, corpus, tmp_path):
    blank = tmp_path / "blank"
    make_corpus(blank)
    Image.new("L", (300, 100), 250).save(blank / "synth_0001" / "genuine" / "genuine_09.png")
    result = evaluate_archive(workbench, zip_folder(blank, tmp_path / "c.zip"), out_dir=tmp_path)
    assert result.metrics.images_left_out == 1 and list(result.left_out) == [
        "synth_0001/genuine/genuine_09.png"
    ]
    assert result.metrics.n_pairs == N_GENUINE + N_FORGED


def test_not_a_zip(workbench, tmp_path):
    fake = tmp_path / "corpus.zip"
    fake.write_text("hello")
    with pytest.raises(SignatureInputError, match="not a zip archive"):
        evaluate_archive(workbench, fake)


def test_empty_zip(workbench, tmp_path):
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(SignatureInputError, match="empty"):
        evaluate_archive(workbench, empty)


@pytest.mark.parametrize(
    "name", ["../evil.png", "a/../../evil.png", "/tmp/evil.png", "C:\\evil.png"]
)
def test_zip_slip_members_are_refused(tmp_path, name):
    archive = tmp_path / "slip.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("ok/genuine/1.png", b"x")
        handle.writestr(zipfile.ZipInfo(name), b"x")
    with pytest.raises(SignatureInputError, match="absolute path|leaves its folder"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.png").exists()


@pytest.mark.parametrize("names", [("a", "a/b/c.png"), ("a/b.png", "a")])
def test_a_file_and_a_folder_of_one_name_are_refused(tmp_path, names):
    archive = tmp_path / "clash.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for name in names:
            handle.writestr(name, b"x")
    with pytest.raises(SignatureInputError, match="clash.zip holds a file and a folder of"):
        safe_extract(archive, tmp_path / "out")


def test_too_many_members_or_bytes_are_refused(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        for i in range(5):
            handle.writestr(f"w/{i}.png", b"\0" * 1000)
    with pytest.raises(SignatureInputError, match="more than the 4 allowed"):
        safe_extract(archive, tmp_path / "a", max_members=4)
    with pytest.raises(SignatureInputError, match="expands to more than"):
        safe_extract(archive, tmp_path / "b", max_bytes=2000)


def test_csv_errors(workbench, corpus_zip, tmp_path):
    missing = tmp_path / "missing.csv"
    missing.write_text("reference,questioned\na.png,b.png\n")
    with pytest.raises(SignatureInputError, match="lacks the column.*label"):
        evaluate_archive(workbench, corpus_zip, missing)
    absent = tmp_path / "absent.csv"
    absent.write_text(
        "reference,questioned,label\nsynth_0001/genuine/genuine_01.png,nowhere/x.png,0\n"
    )
    with pytest.raises(SignatureInputError, match="not in the zip: nowhere/x.png"):
        evaluate_archive(workbench, corpus_zip, absent)
    bad_label = tmp_path / "label.csv"
    bad_label.write_text(
        "reference,questioned,label\nsynth_0001/genuine/genuine_01.png,synth_0001/genuine/genuine_02.png,yes\n"
    )
    with pytest.raises(SignatureInputError, match="line 2.*must be 1"):
        evaluate_archive(workbench, corpus_zip, bad_label)


def test_unknown_layout_and_one_kind_of_pairs(workbench, tmp_path):
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as handle:
        handle.writestr("notes.txt", "no images here")
    with pytest.raises(SignatureInputError, match="No image files found"):
        evaluate_archive(workbench, flat)
    genuine_only = tmp_path / "genuine_only"
    make_corpus(genuine_only, writers=1, forgeries=0)
    with pytest.raises(SignatureInputError, match="Need both genuine and forgery"):
        evaluate_archive(workbench, zip_folder(genuine_only, tmp_path / "g.zip"))


def test_no_weights_loaded(corpus_zip):
    from workbench.verification.workbench import Workbench

    with pytest.raises(ValueError, match="No verifier weights"):
        evaluate_archive(Workbench(None), corpus_zip)


def test_model_card_summary_and_absent_card(workbench):
    from workbench.ui.model_card_tab import card_markdown, summary_rows

    rows = dict(summary_rows(workbench.card))
    assert (
        rows["name"] == "tiny"
        and rows["input size (H x W)"] == "96 x 96"
        and rows["validation threshold"] == "0.4500"
    )
    assert len(rows["weights SHA-256"]) == 64
    text = card_markdown(workbench)  # the shipped card describes other weights: it says so
    assert "No model card found" in text or "not the weights this card describes" in text


def test_with_a_score_fusion_the_corpus_is_scored_as_the_verdict_scores_it(
    tiny_verifier, corpus_zip, tmp_path
):
    from workbench.verification.fusion import ScoreFusion
    from workbench.verification.workbench import Workbench

    fusion = ScoreFusion(0.3, 2.0, 5.0, 0.6)
    bench = Workbench(tiny_verifier.save(tmp_path / "w", extra={"score_fusion": fusion.to_dict()}))
    result = evaluate_archive(bench, corpus_zip, out_dir=tmp_path / "out")
    assert result.metrics.val_threshold == 0.6
    with result.scores_csv.open(newline="") as handle:
        table = list(csv.DictReader(handle))
    network = np.array([float(r["network_score"]) for r in table])
    shape = np.array([float(r["shape"]) for r in table])
    assert result.scores == pytest.approx(fusion.fuse(network, shape), abs=2e-6)
    # the first pair as the verdict scores it: the same fused score
    pair = result.pairs[0]
    with zipfile.ZipFile(corpus_zip) as archive:
        archive.extractall(tmp_path / "x")
    root = tmp_path / "x" / "synthetic"
    verdict = bench.verify([root / pair.reference], root / pair.questioned)
    assert verdict.score == pytest.approx(result.scores[0], abs=1e-5)
