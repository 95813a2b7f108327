"""The typed weights card (workbench/checkpoint.py): shipped files round-trip, old and odd
files load, broken ones are refused with a message."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from workbench.checkpoint import (
    FORMAT_VERSION,
    Validation,
    WeightsCard,
    load_verifier,
    read_card,
    save_model,
    write_card,
)
from workbench.config import FALLBACK_THRESHOLD, ModelConfig, PreprocessConfig
from workbench.models import build_model

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
SHIPPED = [WEIGHTS / "verifier.json", WEIGHTS / "writer_classifier.json"]
SIZE = 64


def tiny_model() -> tuple[torch.nn.Module, ModelConfig]:
    torch.manual_seed(0)
    config = ModelConfig(input_height=SIZE, input_width=SIZE)
    return build_model(config=config).eval(), config


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_cards_round_trip_exactly(path, tmp_path):
    if not path.exists():
        pytest.skip(f"{path.name} is not shipped")
    text = path.read_text(encoding="utf-8")
    card = read_card(path)
    assert card.to_dict() == json.loads(text)
    assert WeightsCard.from_dict(card.to_dict()) == card
    written = write_card(tmp_path / path.stem, card)
    assert json.loads(written.read_text(encoding="utf-8")) == json.loads(text)
    assert written.read_text(encoding="utf-8") == text  # the file's key order and layout too


def test_shipped_cards_typed_fields():
    verifier = read_card(WEIGHTS / "verifier.safetensors")
    if verifier.validation is None:
        pytest.skip("the shipped verifier stores no validation")
    assert verifier.architecture == "siamese_densenet36"
    assert verifier.threshold == verifier.stored_threshold == verifier.validation.threshold
    assert 0.0 < verifier.threshold < 1.0 and verifier.validation.acc_at_argmax is not None
    assert isinstance(verifier.preprocess, PreprocessConfig)
    assert ModelConfig.from_dict(verifier.model).input_height == verifier.preprocess.height
    classifier_path = WEIGHTS / "writer_classifier.json"
    if classifier_path.exists():
        classifier = read_card(classifier_path)
        assert classifier.architecture == "writer_classifier" and classifier.name is None
        assert len(classifier.classes) == classifier.model["n_writers"]
        assert classifier.stored_threshold is None and classifier.threshold == FALLBACK_THRESHOLD
        assert classifier.training_seconds == classifier.training["wall_seconds"]


def test_card_without_validation_falls_back_to_the_argmax(tmp_path):
    model, config = tiny_model()
    save_model(model, tmp_path / "bare", {"model": config.to_dict()})
    stored = json.loads((tmp_path / "bare.json").read_text())
    assert "validation" not in stored and stored["architecture"] == "siamese_densenet36"
    assert stored["format_version"] == FORMAT_VERSION and len(stored["weights_sha256"]) == 64
    _, card, pre = load_verifier(tmp_path / "bare")
    assert card.validation is None and card.stored_threshold is None
    assert card.threshold == FALLBACK_THRESHOLD == 0.5
    assert pre == card.preprocess == PreprocessConfig()
    assert WeightsCard.from_dict({"validation": {"eer": 0.1}}).threshold == FALLBACK_THRESHOLD


def test_unknown_keys_are_kept_and_written_back(tmp_path):
    model, config = tiny_model()
    values = {
        "model": json.loads(json.dumps(config.to_dict())),
        "preprocess": PreprocessConfig(height=SIZE, width=SIZE).to_dict(),
        "validation": {"threshold": 0.3, "acc_at_0.5": 0.8, "calibration": {"a": 1.5}},
        "reviewed_by": ["someone"],
        "notes": {"nested": [1, 2.5, None]},
    }
    save_model(model, tmp_path / "m", values)
    card = read_card(tmp_path / "m.safetensors")
    assert card.extra == {"reviewed_by": ["someone"], "notes": {"nested": [1, 2.5, None]}}
    assert card.validation.extra == {"calibration": {"a": 1.5}}
    assert card.validation.acc_at_argmax == 0.8 and card.threshold == 0.3
    stored = json.loads((tmp_path / "m.json").read_text())
    added = ("format_version", "architecture", "weights_sha256")
    assert {k: v for k, v in stored.items() if k not in added} == values
    # Writing a changed card keeps what it does not know.
    write_card(tmp_path / "m", replace(card, name="renamed"))
    again = json.loads((tmp_path / "m.json").read_text())
    assert again["name"] == "renamed" and again["notes"] == values["notes"]
    assert again["validation"]["calibration"] == {"a": 1.5}


def test_a_card_and_its_dict_save_the_same_json(tmp_path):
    model, config = tiny_model()
    card = WeightsCard(
        name="tiny",
        model=config.to_dict(),
        preprocess=PreprocessConfig(height=SIZE, width=SIZE),
        training={"seed": 3, "out": tmp_path},  # a path is written as its string
        data=({"path": "corpus", "writer_split": {"train": ["1"]}},),
        validation=Validation(epoch=2, eer=0.1, threshold=0.4, acc_at_argmax=0.9, auc=0.95),
    )
    save_model(model, tmp_path / "typed", card)
    save_model(model, tmp_path / "plain", card.to_dict())
    typed = (tmp_path / "typed.json").read_text()
    assert typed == (tmp_path / "plain.json").read_text()
    assert json.loads(typed)["validation"] == {
        "epoch": 2,
        "eer": 0.1,
        "threshold": 0.4,
        "acc_at_0.5": 0.9,
        "auc": 0.95,
    }
    loaded = read_card(tmp_path / "typed")
    assert loaded == replace(card, weights_sha256=loaded.weights_sha256)
    assert loaded.model["block_config"] == [3, 4, 6, 3]  # as the JSON holds it


def test_missing_and_malformed_json_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Model description not found"):
        read_card(tmp_path / "absent.safetensors")
    broken = tmp_path / "broken.json"
    broken.write_text('{"model": {', encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_card(broken)
    broken.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        read_card(broken)
    cases = [
        ({"validation": "0.4"}, "'validation' must be a JSON object"),
        ({"validation": {"threshold": "high"}}, "'threshold' must be a JSON number"),
        ({"classes": "1,2"}, "'classes' must be a JSON array"),
        ({"test": [1]}, "every entry of 'test'"),
        ({"preprocess": {"height": 64, "sharpen": True}}, "'preprocess' has settings"),
        ({"format_version": FORMAT_VERSION + 1}, "update the workbench"),
    ]
    for values, message in cases:
        broken.write_text(json.dumps(values), encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            read_card(broken)


def test_weights_without_a_model_configuration_or_of_another_kind_are_refused(tmp_path):
    from workbench.identification.classifier import load_classifier

    model, config = tiny_model()
    save_model(model, tmp_path / "v", WeightsCard(model=config.to_dict()))
    with pytest.raises(ValueError, match="not a writer_classifier"):
        load_classifier(tmp_path / "v")
    write_card(tmp_path / "v", WeightsCard())
    with pytest.raises(ValueError, match="no model configuration"):
        load_verifier(tmp_path / "v")
