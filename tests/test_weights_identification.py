"""The shipped writer classifier (weights/writer_classifier.*) against its own card."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import real_data
from workbench.checkpoint import read_card

ROOT = Path(__file__).resolve().parents[1]
CLASSIFIER = ROOT / "weights" / "writer_classifier.safetensors"

pytestmark = pytest.mark.skipif(not CLASSIFIER.exists(), reason="no shipped writer classifier")


def _here(path: str, corpus: str) -> str:
    """A card's absolute image path, rebased onto this machine's copy of ``corpus``."""
    relative = path.split(f"/{corpus}/", 1)[1]
    return str(real_data(corpus) / relative)


def test_the_shipped_classifier_reproduces_its_per_writer_lines():
    """Re-scores the test images of one writer per corpus (real data; skipped without it)."""
    from workbench.data.image_bank import ImageBank
    from workbench.identification.classifier import load_classifier, score_classifier

    model, card, pre = load_classifier(CLASSIFIER)
    recorded = {e["writer"]: e for e in card.extra["identification_test"]["per_writer"]}
    assert len(recorded) == len(card.classes) == model.config.n_writers
    firsts = {}
    for writer in card.classes:
        firsts.setdefault(writer.split("/")[0], writer)
    items = [
        [_here(p, w.split("/")[0]), w, i] for p, w, i in card.split["test"] if w in firsts.values()
    ]
    bank = ImageBank([p for p, _, _ in items], config=pre, progress=False)
    result = score_classifier(model, card.classes, items, bank)
    assert {e["writer"] for e in result["per_writer"]} == set(firsts.values())
    for entry in result["per_writer"]:
        assert entry == recorded[entry["writer"]]


def test_the_shipped_classifier_card_meets_the_lessons_targets():
    """The figures the card reports (the benchmark is `identify eval`): 95% / 99%."""
    tested = read_card(CLASSIFIER).extra["identification_test"]
    per_writer = tested["per_writer"]
    correct = sum(e["correct"] for e in per_writer)
    images = sum(e["images"] for e in per_writer)
    assert images == tested["images"] and correct / images == pytest.approx(tested["top1"])
    assert tested["top1"] >= 0.95 and tested["top5"] >= 0.99


def test_the_shipped_embedding_enrolls_an_example_writer_and_names_them():
    """The app's default ranking (the shipped verifier's preprocessing, the batch-hard triplet
    embedding and its validation threshold) on the synthetic examples."""
    from workbench.config import DEFAULT_VERIFIER
    from workbench.identification.desk import IdentificationDesk
    from workbench.verification.workbench import Workbench

    if not DEFAULT_VERIFIER.exists() or not (ROOT / "weights/siamese_triplet.json").exists():
        pytest.skip("no shipped verifier or embedding")
    desk = IdentificationDesk(Workbench(DEFAULT_VERIFIER))
    name = "embedding Siamese, triplet loss, batch-hard mining"
    assert desk.default_verifier == name
    card = read_card(ROOT / "weights/siamese_triplet.json")
    assert desk.threshold == card.validation.threshold
    assert card.validation.extra["rule"].startswith("rejects 5% of 1178 validation signatures")
    examples = ROOT / "examples"
    references = [examples / f"writer1_genuine_{i}.png" for i in (1, 2)]
    desk.enroll("writer 1", references)
    result = desk.identify(examples / "writer1_genuine_3.png")
    assert result.verifier == name and result.accepted and result.best.writer == "writer 1"
