"""Golden-output regression of the shipped verifier (weights/verifier.*)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import real_data
from workbench.checkpoint import WeightsCard, read_card
from workbench.cli import evaluate
from workbench.verification.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "verifier.safetensors"

pytestmark = pytest.mark.skipif(not WEIGHTS.exists(), reason="no shipped weights in weights/ yet")


@pytest.fixture(scope="module")
def card() -> WeightsCard:
    return read_card(WEIGHTS)


def assert_recorded(verdict, score, network, shapes, local, context) -> None:
    """The verdict's network scores and shape correlations as recorded to 1e-4; its fused
    score to 1e-3: fusing multiplies the network score's log-odds by about 4.5, so the last
    digits an OpenCV or torch release moves (up to 1e-4 in the network score between OpenCV
    5.0 and 5.1) come out about five times larger."""
    assert list(verdict.network_scores) == pytest.approx(network, abs=1e-4), context
    assert list(verdict.shapes) == pytest.approx(shapes, abs=1e-4), context
    assert list(verdict.local_shapes) == pytest.approx(local, abs=1e-4), context
    assert verdict.score == pytest.approx(score, abs=1e-3 if verdict.fused else 1e-4), context


def test_shipped_weights_give_the_recorded_example_scores(card):
    bench = Workbench(WEIGHTS)
    assert card.examples, "the model card records example scores"
    for pair in card.examples:
        verdict = bench.verify(
            [ROOT / "examples" / pair["reference"]], ROOT / "examples" / pair["questioned"]
        )
        shapes = [] if pair["shape"] is None else [pair["shape"]]
        local = [] if pair.get("local_shape") is None else [pair["local_shape"]]
        assert_recorded(verdict, pair["score"], [pair["network_score"]], shapes, local, pair)


def test_shipped_weights_give_the_app_examples_recorded_verdicts():
    from workbench.cli.examples import load_rows

    rows = load_rows(ROOT / "examples")
    recorded = json.loads((ROOT / "examples" / "examples.json").read_text())
    assert rows and recorded["weights_sha256"] == read_card(WEIGHTS).weights_sha256
    bench = Workbench(WEIGHTS)
    for row in rows:
        verdict = bench.verify(row["references"], row["questioned"])
        assert verdict.genuine == row["verdict_genuine"], row
        assert_recorded(
            verdict,
            row["score"],
            row["network_scores"],
            row["shapes"],
            row["local_shapes"],
            row,
        )


def test_app_examples_are_the_first_writers_of_a_random_draw():
    """Not a showcase: the example images are the generator's images of the first two writers
    the seeded draw gives, whatever the weights decide on them."""
    import numpy as np
    from PIL import Image

    from workbench.cli.examples import EXAMPLE_WRITERS, draw_writers, writer_images

    recorded = json.loads((ROOT / "examples" / "examples.json").read_text())
    drawn = draw_writers(recorded["seed"], recorded["share"]["writers"])
    assert recorded["drawn"] == drawn
    assert recorded["writers"] == drawn[:EXAMPLE_WRITERS]
    for slot, writer in enumerate(recorded["writers"], start=1):
        for key, image in writer_images(recorded["seed"], writer).items():
            shipped = np.asarray(Image.open(ROOT / "examples" / f"writer{slot}_{key}.png"))
            assert np.array_equal(shipped, image), (slot, key)


def test_recorded_share_of_random_synthetic_writers_reproduces():
    from workbench.cli.examples import score_writer, writer_images

    recorded = json.loads((ROOT / "examples" / "examples.json").read_text())
    bench = Workbench(WEIGHTS)
    right = accepted = rejected = 0
    for writer in recorded["drawn"]:
        genuine_row, forgery_row = score_writer(bench, writer_images(recorded["seed"], writer))
        accepted += genuine_row["verdict_genuine"]
        rejected += not forgery_row["verdict_genuine"]
        right += genuine_row["verdict_genuine"] and not forgery_row["verdict_genuine"]
    share = recorded["share"]
    assert share["writers"] == len(recorded["drawn"]) >= 40
    assert (right, accepted, rejected) == (
        share["both_rows_right"],
        share["genuine_accepted"],
        share["forgery_rejected"],
    )


@pytest.mark.real_data
def test_bhsig_b_test_accuracy_matches_the_model_card(card, tmp_path, capsys):
    recorded = [t for t in card.test or () if "Bengali" in t["data"][0]["path"]]
    if not recorded:
        pytest.skip("the model card has no BHSig-B test evaluation")
    data = real_data("BHSig260-Bengali")
    args = [
        "--weights",
        str(WEIGHTS),
        "--data",
        str(data),
        "--protocol",
        "bhsig-b",
        "--split",
        "test",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    assert evaluate.main(args) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    assert result["n_pairs"] == recorded[0]["n_pairs"]
    assert result["acc"] == pytest.approx(recorded[0]["acc"], abs=0.005)
