"""The Workbench object: normalize and verify with weights loaded from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import TINY_SIZE
from workbench import SignatureInputError
from workbench.models import images_to_tensor
from workbench.verification.workbench import Workbench

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def weights(tiny_verifier, tmp_path_factory):
    """The session's tiny verifier with a validation threshold that is not the 0.5 fallback."""
    return tiny_verifier.save(tmp_path_factory.mktemp("w") / "tiny", validation={"threshold": 0.42})


def test_verify_scores_each_reference_and_decides_on_the_mean(weights):
    bench = Workbench(weights)
    assert bench.threshold == 0.42
    refs = [EXAMPLES / "writer1_genuine_1.png", EXAMPLES / "writer1_genuine_2.png"]
    verdict = bench.verify(refs, EXAMPLES / "writer1_forgery_1.png")
    assert len(verdict.scores) == 2 and all(0.0 <= s <= 1.0 for s in verdict.scores)
    assert verdict.score == pytest.approx(np.mean(verdict.scores))
    assert verdict.genuine == (verdict.score >= 0.42)
    # The same scores as calling the model by hand on the normalized images.
    images = [bench.normalize(p).image for p in refs]
    query = bench.normalize(EXAMPLES / "writer1_forgery_1.png").image
    with torch.inference_mode():
        logits = bench.model(
            images_to_tensor(np.stack(images)), images_to_tensor(np.stack([query, query]))
        )
    np.testing.assert_allclose(verdict.scores, torch.softmax(logits, 1)[:, 0].numpy(), rtol=1e-5)
    strict = bench.verify(refs, EXAMPLES / "writer1_forgery_1.png", threshold=1.0)
    assert strict.threshold == 1.0 and strict.genuine is False


def test_normalize_uses_the_weights_preprocessing(weights):
    result = Workbench(weights).normalize(EXAMPLES / "writer2_genuine_1.png")
    assert result.image.shape == (TINY_SIZE, TINY_SIZE)
    assert result.grayscale.shape == result.original.shape


def test_verify_refuses_bad_input(weights):
    bench = Workbench(weights)
    with pytest.raises(SignatureInputError, match="reference"):
        bench.verify([], EXAMPLES / "writer1_genuine_1.png")
    with pytest.raises(SignatureInputError, match="blank"):
        bench.verify([EXAMPLES / "writer1_genuine_1.png"], np.full((100, 300), 250, np.uint8))
    with pytest.raises(ValueError, match="No verifier"):
        Workbench().verify([EXAMPLES / "writer1_genuine_1.png"], EXAMPLES / "writer1_genuine_2.png")


def test_explain_returns_block_heatmaps_and_cross_attention(weights):
    bench = Workbench(weights)
    explanation = bench.explain(
        EXAMPLES / "writer1_genuine_1.png", EXAMPLES / "writer1_forgery_1.png"
    )
    side = TINY_SIZE // 4  # after the stem; each transition halves it
    assert [m.shape for m in explanation.block_maps] == [
        (2, side, side),
        (2, side // 2, side // 2),
        (2, side // 4, side // 4),
        (2, side // 8, side // 8),
    ]
    np.testing.assert_array_equal(
        explanation.block_maps[0][0], explanation.block_maps[0][1]
    )  # difference SimAM
    a1, a2 = explanation.cross_attention
    assert a1.shape == a2.shape == (21, 21)
    np.testing.assert_allclose(a1.sum(1), 1.0, rtol=1e-5)
    verdict = bench.verify([EXAMPLES / "writer1_genuine_1.png"], EXAMPLES / "writer1_forgery_1.png")
    assert explanation.score == pytest.approx(verdict.score, abs=1e-6)
    with pytest.raises(ValueError, match="threshold"):
        bench.verify(
            [EXAMPLES / "writer1_genuine_1.png"], EXAMPLES / "writer1_forgery_1.png", threshold=1.5
        )


def test_verdict_carries_the_normalized_images_it_scored(weights):
    bench = Workbench(weights)
    refs = [EXAMPLES / "writer2_genuine_1.png", EXAMPLES / "writer2_genuine_2.png"]
    verdict = bench.verify(refs, EXAMPLES / "writer2_forgery_1.png")
    assert len(verdict.references) == 2
    np.testing.assert_array_equal(verdict.references[1], bench.normalize(refs[1]).image)
    np.testing.assert_array_equal(
        verdict.questioned, bench.normalize(EXAMPLES / "writer2_forgery_1.png").image
    )
