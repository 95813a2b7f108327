"""The identification desk: a writer classifier against identification through verification.

The verifier is tiny and untrained (96 px). Its head is set so that the score falls as the
two branches' features differ (``monotone_head``): an untrained head scores identical inputs
with its bias alone, which is not necessarily the best score (measured in
``test_identical_inputs_score_the_head_bias``), so "a writer enrolled with the questioned image
ranks first" would otherwise hold by chance only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.data.synthetic import sample_writer
from workbench.errors import SignatureInputError
from workbench.identification.desk import IdentificationDesk, drawn_signature
from workbench.verification.workbench import Workbench

NEW_WRITER_SEED = 99  # not the desk's seed: a writer neither the desk nor the classifier knows


def save_tiny_verifier(tiny_verifier, stem: Path, *, monotone_head: bool = True) -> Path:
    """The session's 96 px untrained verifier (``tiny_verifier``, threshold 0.5) saved at
    ``stem`` as safetensors + JSON.

    With ``monotone_head`` the head's two logit rows are -c and +c times the |F1 - F2| features
    (bias 0): identical inputs score exactly 0.5 and any difference scores less.
    """

    def make_monotone(model) -> None:
        model.classifier.weight[0].fill_(-1.0)
        model.classifier.weight[1].fill_(1.0)
        model.classifier.bias.zero_()

    return tiny_verifier.save(stem, edit=make_monotone if monotone_head else None)


def new_writer_files(folder: Path, count: int = 3, *, writer: int = 0) -> list[Path]:
    """Genuine signatures of a writer unknown to the desk and the classifier, as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    genuine, _ = sample_writer(NEW_WRITER_SEED, writer=writer, genuine=count, forgeries=0)
    paths = []
    for i, image in enumerate(genuine, start=1):
        paths.append(folder / f"new_writer{writer}_{i}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def workbench(tiny_verifier, tmp_path_factory) -> Workbench:
    return Workbench(
        save_tiny_verifier(tiny_verifier, tmp_path_factory.mktemp("verifier") / "tiny")
    )


@pytest.fixture(scope="module")
def classifier_weights(tmp_path_factory) -> Path:
    """A 64 px writer classifier trained for two epochs on 4 synthetic writers."""
    from workbench.cli import identify
    from workbench.data.synthetic import generate_corpus

    root = tmp_path_factory.mktemp("classifier")
    generate_corpus(root / "corpus", writers=4, genuine=4, forgeries=0, seed=5)
    args = [
        "train",
        "--data",
        str(root / "corpus"),
        "--out",
        str(root / "wid"),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--input-size",
        "64",
        "--seed",
        "0",
        "--quiet",
    ]
    assert identify.main(args) == 0
    return root / "wid" / "writer_classifier.safetensors"


@pytest.fixture()
def desk(workbench, classifier_weights) -> IdentificationDesk:
    return IdentificationDesk(workbench, classifier_weights, synthetic_writers=3, references=2)


def test_desk_starts_with_the_same_synthetic_writers_every_time(workbench):
    first = IdentificationDesk(workbench, None)
    second = IdentificationDesk(workbench, None)
    assert first.writers() == [f"synthetic writer {i}" for i in range(1, 6)]
    for writer in first.writers():
        assert first.gallery.references(writer).shape == (3, 96, 96)
        assert np.array_equal(first.gallery.references(writer), second.gallery.references(writer))


def test_identical_inputs_score_the_head_bias(tiny_verifier, tmp_path):
    """Measured, not assumed: with equal inputs |F1 - F2| = 0, so an untrained verifier gives
    the bias-only score, which other pairs can beat."""
    from workbench.identification.gallery import verifier_scorer

    plain = Workbench(save_tiny_verifier(tiny_verifier, tmp_path / "plain", monotone_head=False))
    images = np.stack(
        [plain.normalize(g).image for g in sample_writer(3, genuine=3, forgeries=0)[0]]
    )
    scores = verifier_scorer(plain.model)(images, images[0])
    bias_only = torch.softmax(plain.model.classifier.bias.detach().double(), 0)[0].item()
    assert scores[0] == pytest.approx(bias_only, abs=1e-6)


def test_enrolling_a_new_writer_ranks_them_first_without_changing_any_weights(desk, tmp_path):
    verifier_before = {k: v.clone() for k, v in desk.workbench.model.state_dict().items()}
    classifier_before = {k: v.clone() for k, v in desk.classifier.state_dict().items()}
    files = new_writer_files(tmp_path)
    before = desk.identify(files[0])
    assert "Ada" not in [m.writer for m in before.matches]

    name = desk.enroll("  Ada  ", [str(files[0]), np.asarray(Image.open(files[1]))])
    assert name == "Ada" and desk.gallery.references("Ada").shape == (2, 96, 96)
    after = desk.identify(files[0])
    assert after.matches[0].writer == "Ada" and len(after.matches) == 4
    assert after.matches[0].scores[0] == pytest.approx(0.5)  # the questioned image is a reference
    assert not after.accepted  # the mean over both references stays under 0.5 ...
    lower = desk.identify(files[0], threshold=0.49)  # ... and reaches a lower threshold
    assert lower.accepted and lower.decision.startswith("Ada (writer score")
    # The classifier can only answer one of its training writers.
    assert len(after.guesses) == 4 and all(g.writer in desk.classes for g in after.guesses)
    assert not desk.classifier_knows("Ada")
    assert sum(g.probability for g in after.guesses) == pytest.approx(1.0, abs=1e-5)
    assert all(
        torch.equal(verifier_before[k], v) for k, v in desk.workbench.model.state_dict().items()
    )
    assert all(
        torch.equal(classifier_before[k], v) for k, v in desk.classifier.state_dict().items()
    )

    desk.remove("Ada")
    assert "Ada" not in [m.writer for m in desk.identify(files[0]).matches]
    with pytest.raises(SignatureInputError, match="No enrolled writer is called 'Ada'"):
        desk.remove("Ada")


def test_a_writer_nobody_enrolled_is_rejected_by_the_verifier_only(desk, tmp_path):
    stranger = new_writer_files(tmp_path, 1, writer=1)[0]
    result = desk.identify(stranger, top=2)
    assert not result.accepted and result.decision.startswith("no enrolled writer matches")
    assert len(result.guesses) == 2 and result.guesses[0].writer in desk.classes  # named anyway
    assert result.guesses[0].probability >= result.guesses[1].probability
    assert "can only answer one of the 4 writers" in result.classifier_note


def test_bad_enrollments_say_what_to_do(desk, tmp_path):
    writers = desk.writers()
    signature = new_writer_files(tmp_path, 1)[0]
    with pytest.raises(SignatureInputError, match="Give the writer a name"):
        desk.enroll("   ", [signature])
    with pytest.raises(SignatureInputError, match="Add at least one signature of Bob"):
        desk.enroll("Bob", [])
    with pytest.raises(SignatureInputError, match="Add at least one signature"):
        desk.enroll("Bob", None)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(SignatureInputError, match=r"notes\.txt cannot be enrolled: .*image"):
        desk.enroll("Bob", [signature, text])
    blank = tmp_path / "blank.png"
    Image.new("L", (600, 200), 250).save(blank)
    with pytest.raises(
        SignatureInputError, match=r"blank\.png cannot be enrolled: No signature found"
    ):
        desk.enroll("Bob", [blank])
    with pytest.raises(SignatureInputError, match="at most 80"):
        desk.enroll("x" * 81, [signature])
    assert desk.writers() == writers


def test_without_classifier_weights_identify_still_ranks_and_explains(workbench, tmp_path):
    missing = tmp_path / "writer_classifier.safetensors"
    desk = IdentificationDesk(workbench, missing, synthetic_writers=2, references=1)
    assert not desk.has_classifier
    result = desk.identify(new_writer_files(tmp_path, 1)[0])
    assert result.guesses == () and len(result.matches) == 2
    assert (
        "No writer classifier weights" in result.classifier_note
        and str(missing) in result.classifier_note
    )


def test_session_galleries_do_not_leak(desk, tmp_path):
    files = new_writer_files(tmp_path, 2)
    mine = desk.session_gallery()
    desk.enroll("Ada", files, gallery=mine)
    assert "Ada" in mine.writers and "Ada" not in desk.writers()
    assert "Ada" not in desk.session_gallery().writers
    assert desk.identify(files[0], gallery=mine).matches[0].writer == "Ada"
    empty = desk.session_gallery()
    for writer in list(empty.writers):
        desk.remove(writer, gallery=empty)
    assert len(desk.writers()) == 3  # an emptied session gallery is still that session's
    with pytest.raises(SignatureInputError, match="No writers are enrolled"):
        desk.identify(files[0], gallery=empty)


def test_drawn_signature_takes_the_composite_and_flattens_alpha_onto_white(desk):
    canvas = np.zeros((300, 800, 4), np.uint8)  # transparent black, as a sketchpad starts
    canvas[140:160, 100:700] = (0, 0, 0, 255)
    grey = drawn_signature({"background": None, "layers": [canvas], "composite": canvas})
    assert grey.shape == (300, 800) and grey.dtype == np.uint8
    assert grey[0, 0] == 255 and grey[150, 400] == 0
    white = np.full((300, 800, 3), 255, np.uint8)
    assert drawn_signature(white) is None and drawn_signature({"composite": None}) is None
    assert drawn_signature(None) is None
    scribble = np.zeros((300, 800, 4), np.uint8)
    rng = np.random.default_rng(0)
    points = np.cumsum(rng.normal(0, 6, (400, 2)), 0) + (150, 400)
    for y, x in points.astype(int):
        scribble[max(y - 2, 0) : y + 2, max(x - 2, 0) : x + 2] = (0, 0, 0, 255)
    assert desk.enroll("drawn", [drawn_signature({"composite": scribble})]) == "drawn"


def test_comparison_markdown_reads_the_table_or_says_how_to_make_it(tmp_path):
    from workbench.ui.identify_tab import _comparison_markdown

    path = tmp_path / "identification.md"
    assert "python -m workbench.cli.identify compare" in _comparison_markdown(path)
    path.write_text("| Feature | Identification (classifier) |\n|---|---|\n")
    assert "| Feature |" in _comparison_markdown(path)


def test_crossmedia_panel_states_the_lesson_beside_the_table_or_how_to_measure_it(tmp_path):
    from workbench.ui.identify_tab import _crossmedia_markdown

    path = tmp_path / "identification_crossmedia.md"
    missing = _crossmedia_markdown(path)
    assert "same name" in missing and "--media crossmedia" in missing
    path.write_text("| Model | measure | paper | iPad | phone in hand | phone on table |\n")
    shown = _crossmedia_markdown(path)
    assert "style" in shown and shown.endswith("phone on table |\n")


@pytest.fixture(scope="module")
def embedding_weights(classifier_weights, tmp_path_factory) -> dict[int, Path]:
    """Tiny triplet embeddings (one step) at the verifier's 96 px and at another size."""
    from workbench.cli import identify

    out = tmp_path_factory.mktemp("embedding")
    made = {}
    for size in (96, 64):
        args = ["siamese-train", "--classifier", str(classifier_weights), "--loss", "triplet"]
        args += ["--out", str(out), "--name", f"triplet{size}", "--epochs", "1", "--steps", "1"]
        args += ["--batch-size", "4", "--input-size", str(size), "--quiet"]
        assert identify.main(args) == 0
        made[size] = out / f"triplet{size}.safetensors"
    return made


def test_an_embedding_siamese_ranks_with_its_validation_threshold(
    workbench, classifier_weights, embedding_weights, tmp_path
):
    desk = IdentificationDesk(
        workbench,
        classifier_weights,
        synthetic_writers=2,
        references=1,
        embedding_weights=[embedding_weights[96], embedding_weights[64], tmp_path / "none"],
    )
    name = "embedding Siamese, triplet loss"
    assert list(desk.verifiers) == ["pairwise Siamese, the paper's", name]
    assert desk.default_verifier == name
    card = json.loads(embedding_weights[96].with_suffix(".json").read_text())
    assert desk.threshold == card["validation"]["threshold"]
    assert "other preprocessing" in desk.embedding_notes[1]
    assert "No embedding Siamese" in desk.embedding_notes[2]
    files = new_writer_files(tmp_path)
    desk.enroll("Ada", files[:1])
    result = desk.identify(files[0])
    assert result.verifier == name and result.best.writer == "Ada"
    assert result.best.score == pytest.approx(1.0, abs=1e-5)  # the same image: distance 0
    assert result.threshold == card["validation"]["threshold"]
    pairwise = desk.identify(files[0], verifier="pairwise Siamese, the paper's")
    assert pairwise.verifier.startswith("pairwise") and pairwise.threshold == workbench.threshold
    with pytest.raises(ValueError, match="No verifier called 'nope'; choose one of"):
        desk.identify(files[0], verifier="nope")


def test_a_known_writer_shows_its_line_and_a_test_image_when_the_corpus_is_here(desk):
    import dataclasses

    from workbench.identification.known_writers import known_writer

    writer = desk.classes[0]
    view = known_writer(desk, writer)
    entry = next(
        e for e in desk.classifier_card.extra["identification_test"]["per_writer"]
        if e["writer"] == writer
    )  # fmt: skip
    assert view.line == (
        f"{entry['images']} images of writer {writer}: {entry['correct']} correct, "
        f"{100 * entry['correct'] / entry['images']:.2f}%"
    )
    assert view.image is not None and Path(view.image).exists()
    assert [g.writer for g in view.guesses] == [g.writer for g in desk.classify(view.image)]
    assert len(view.guesses) == 4  # the classifier knows 4 writers
    # Elsewhere (a Space, a clean clone) the real corpora are absent: the line still shows.
    split = dict(desk.classifier_card.split)
    split["test"] = [["/nowhere/" + Path(p).name, w, i] for p, w, i in split["test"]]
    desk.classifier_card = dataclasses.replace(desk.classifier_card, split=split)
    away = known_writer(desk, writer)
    assert away.line == view.line and away.image is None and away.guesses == ()
    assert "not on this machine" in away.note
    with pytest.raises(ValueError, match="not one of the classifier's 4 writers"):
        known_writer(desk, "nobody")


def test_compare_ranks_with_the_pairwise_verifier_too(
    tiny_verifier, classifier_weights, tmp_path, capsys
):
    from workbench.cli import identify

    verifier = str(save_tiny_verifier(tiny_verifier, tmp_path / "tiny"))
    args = ["compare", "--classifier", str(classifier_weights), "--verifier", verifier]
    assert identify.main(args + ["--k", "1", "--queries", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    pairwise = result["verification"]["pairwise Siamese, the paper's"]
    # 4 known writers, each enrolled with 1 reference and queried with 1 test image.
    assert pairwise["enrolled"] == 4 and pairwise["known_queries"] == 4
    assert 0.0 <= pairwise["known_top1"] <= 1.0


def test_siamese_validate_rechooses_the_open_set_threshold_and_stores_it(
    classifier_weights, embedding_weights, tmp_path, capsys
):
    import shutil

    from workbench.cli import identify
    from workbench.identification.classifier import load_classifier
    from workbench.identification.embedding import load_embedding, open_set_validation

    for suffix in (".safetensors", ".json"):
        shutil.copy(embedding_weights[96].with_suffix(suffix), tmp_path / f"e{suffix}")
    weights = tmp_path / "e.safetensors"
    card = json.loads((tmp_path / "e.json").read_text())
    card["validation"] = {"threshold": 0.123, "rule": "an older rule"}
    (tmp_path / "e.json").write_text(json.dumps(card))
    args = ["siamese-validate", "--weights", str(weights), "--classifier", str(classifier_weights)]
    assert identify.main(args) == 0  # without --write-card the card stays as it is
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["previous"]["threshold"] == 0.123
    assert json.loads((tmp_path / "e.json").read_text())["validation"]["threshold"] == 0.123
    assert identify.main([*args, "--max-false-rejection", "0.2", "--write-card"]) == 0
    stored = json.loads((tmp_path / "e.json").read_text())["validation"]
    model, _, pre = load_embedding(weights)
    split = load_classifier(classifier_weights)[1].split
    expected = open_set_validation(model, split, pre, k=3, max_false_rejection=0.2)
    assert stored["threshold"] == pytest.approx(expected["threshold"])
    assert stored["rule"].startswith("rejects 20% of") and "centroid" in stored["rule"]
    assert load_embedding(weights)[1].weights_sha256 == card["weights_sha256"]
