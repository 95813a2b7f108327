"""Attribution on the questioned signature (workbench/explain.py) with a tiny untrained verifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import TINY_SIZE, synthetic_signature
from workbench.config import ModelConfig
from workbench.models import build_model, images_to_tensor
from workbench.verification.attribution import (
    QuestionedAttribution,
    normalize_attribution,
    overlay_attribution,
)

SIZE = TINY_SIZE


def tiny_workbench(tiny_verifier, directory, *, head_gain: float = 300.0):
    """A Workbench on the session's untrained 96 x 96 verifier (``tiny_verifier``), loaded
    (BatchNorm folded) like the app's.

    An untrained head barely moves its logits; ``head_gain`` scales the final layer so that the
    same-writer logit changes measurably between a signature and a blank page.
    """
    from workbench.verification.workbench import Workbench

    def amplify_head(model) -> None:
        model.classifier.weight.mul_(head_gain)

    return Workbench(tiny_verifier.save(directory / "tiny", edit=amplify_head))


@pytest.fixture(scope="module")
def workbench(tiny_verifier, tmp_path_factory):
    return tiny_workbench(tiny_verifier, tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def pair(workbench):
    reference = workbench.normalize(synthetic_signature(11)).image
    questioned = workbench.normalize(synthetic_signature(12, forgery=True)).image
    return reference, questioned


def same_writer_logit(model, reference: np.ndarray, questioned: np.ndarray) -> float:
    with torch.inference_mode():
        return float(model(images_to_tensor(reference), images_to_tensor(questioned))[0, 0])


def model_state(model):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [p.requires_grad for p in model.parameters()],
        [m.training for m in model.modules()],
    )


@pytest.mark.parametrize("method", ["integrated_gradients", "gradcam"])
def test_attribution_is_a_finite_unit_map_of_the_image_size(workbench, pair, method):
    heat = QuestionedAttribution(workbench.model, method).attribute(*pair)
    assert heat.shape == (SIZE, SIZE) and heat.dtype == np.float32
    assert np.isfinite(heat).all()
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    assert heat.max() == pytest.approx(1.0)
    assert heat.std() > 0.01, "the map must not be constant"


@pytest.mark.parametrize("method", ["integrated_gradients", "gradcam"])
def test_model_is_left_as_it_was(workbench, pair, method):
    model = workbench.model
    weights, flags, modes = model_state(model)
    assert any(flags), "the loaded model's parameters normally require grad; the test needs that"
    QuestionedAttribution(model, method).attribute(*pair)
    after_weights, after_flags, after_modes = model_state(model)
    assert all(torch.equal(weights[k], after_weights[k]) for k in weights)
    assert after_flags == flags and after_modes == modes
    assert all(p.grad is None for p in model.parameters()), "no gradient may be left on parameters"


def test_training_mode_is_restored_and_dropout_is_off_during_attribution(pair):
    torch.manual_seed(1)
    model = build_model(
        config=ModelConfig(input_height=SIZE, input_width=SIZE, dropout=0.5)
    ).train()
    explainer = QuestionedAttribution(model, "integrated_gradients", n_steps=8)
    first = explainer.raw_attribution(*pair).values
    second = explainer.raw_attribution(*pair).values
    assert model.training and all(m.training for m in model.modules())
    np.testing.assert_array_equal(first, second)  # eval mode inside: no dropout noise
    assert all(p.grad is None for p in model.parameters())


def test_integrated_gradients_completeness(workbench, pair):
    """Attributions sum to logit_0(questioned) - logit_0(blank page), before display scaling."""
    reference, questioned = pair
    raw = QuestionedAttribution(
        workbench.model, "integrated_gradients", n_steps=64
    ).raw_attribution(reference, questioned)
    blank = np.full_like(questioned, 255)
    logit = same_writer_logit(workbench.model, reference, questioned)
    baseline = same_writer_logit(workbench.model, reference, blank)
    assert raw.output == pytest.approx(logit, abs=1e-4)
    assert raw.baseline_output == pytest.approx(baseline, abs=1e-4)
    change = logit - baseline
    assert abs(change) > 1e-2, "the head gain should make the logit move"
    total = float(raw.values.astype(np.float64).sum())
    assert total == pytest.approx(change, rel=0.03, abs=1e-4)
    assert abs(raw.delta) <= 0.03 * abs(change) + 1e-4
    assert raw.delta == pytest.approx(total - change, abs=1e-3)


def test_log_odds_output_is_complete_too(workbench, pair):
    reference, questioned = pair
    raw = QuestionedAttribution(workbench.model, output="log_odds", n_steps=64).raw_attribution(
        reference, questioned
    )
    with torch.inference_mode():
        logits = workbench.model(
            images_to_tensor(np.stack([reference, reference])),
            images_to_tensor(np.stack([questioned, np.full_like(questioned, 255)])),
        )
    odds = (logits[:, 0] - logits[:, 1]).tolist()
    assert raw.output == pytest.approx(odds[0], abs=1e-4) and raw.baseline_output == pytest.approx(
        odds[1], abs=1e-4
    )
    assert float(raw.values.sum()) == pytest.approx(odds[0] - odds[1], rel=0.03, abs=1e-4)


def test_integrated_gradients_attributes_nothing_to_blank_paper(workbench, pair):
    reference, questioned = pair
    raw = QuestionedAttribution(workbench.model).raw_attribution(reference, questioned)
    paper = questioned == 255
    assert paper.any() and (~paper).any()
    assert np.all(raw.values[paper] == 0.0)
    assert np.count_nonzero(raw.values[~paper]) > 0.5 * np.count_nonzero(~paper)


def test_gradcam_is_the_questioned_half_of_the_layer(workbench, pair):
    """Recompute Grad-CAM by hand on backbone.final: relu(sum_c mean(dy/dA_c) * A_c), on the
    questioned half."""
    reference, questioned = pair
    model = workbench.model
    raw = QuestionedAttribution(model, "gradcam").raw_attribution(reference, questioned)
    saved = {}
    handle = model.backbone.final.register_forward_hook(
        lambda module, inputs, output: saved.update(a=output)
    )
    try:
        with torch.enable_grad():
            logit = model(images_to_tensor(reference), images_to_tensor(questioned))[0, 0]
            (grad,) = torch.autograd.grad(logit, saved["a"])
    finally:
        handle.remove()
    activation = saved["a"].detach()
    assert activation.shape[0] == 2  # both branches in one batch: reference, questioned
    weights = grad[1].mean(dim=(1, 2), keepdim=True)
    cam = torch.relu((weights * activation[1]).sum(0))[None, None]
    expected = torch.nn.functional.interpolate(cam, size=(SIZE, SIZE), mode="bilinear")[
        0, 0
    ].numpy()
    np.testing.assert_allclose(
        raw.values, expected, rtol=1e-4, atol=1e-6 * float(np.abs(expected).max())
    )
    for p in model.parameters():
        p.grad = None


def test_works_from_inside_inference_mode(workbench, pair):
    with torch.inference_mode():
        heat = QuestionedAttribution(workbench.model).attribute(*pair)
    assert np.isfinite(heat).all() and heat.max() > 0


def test_a_blank_questioned_page_gets_an_all_zero_map(workbench, pair):
    blank = np.full_like(pair[1], 255)
    heat = QuestionedAttribution(workbench.model).attribute(pair[0], blank)
    assert heat.shape == blank.shape and not heat.any()


def test_bad_inputs_are_refused_with_a_message(workbench, pair):
    reference, questioned = pair
    with pytest.raises(ValueError, match="method"):
        QuestionedAttribution(workbench.model, "lime")
    with pytest.raises(ValueError, match="output"):
        QuestionedAttribution(workbench.model, output="probability")
    explainer = QuestionedAttribution(workbench.model)
    with pytest.raises(ValueError, match="uint8"):
        explainer.attribute(reference, questioned.astype(np.float32))
    with pytest.raises(ValueError, match="same Workbench"):
        explainer.attribute(reference, questioned[:-8])


def test_normalize_attribution_by_hand():
    values = np.array([[0.0, 2.0], [-4.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(normalize_attribution(values, percentile=100), [[0, 0.5], [1, 0.25]])
    np.testing.assert_allclose(
        normalize_attribution(values, sign="positive", percentile=100), [[0, 1], [0, 0.5]]
    )
    np.testing.assert_allclose(
        normalize_attribution(values, sign="negative", percentile=100), [[0, 0], [1, 0]]
    )
    assert not normalize_attribution(np.zeros((3, 3))).any()
    with pytest.raises(ValueError, match="sign"):
        normalize_attribution(values, sign="both")


def test_overlay_keeps_unattributed_paper_white(pair):
    questioned = pair[1]
    heat = np.zeros(questioned.shape, np.float32)
    heat[: SIZE // 2] = 1.0
    picture = overlay_attribution(questioned, heat, blur_sigma=0)
    assert picture.shape == (SIZE, SIZE, 3) and picture.dtype == np.uint8
    bottom, top = picture[SIZE // 2 :], picture[: SIZE // 2]
    np.testing.assert_array_equal(bottom, np.repeat(questioned[SIZE // 2 :, :, None], 3, axis=2))
    assert np.any(top != np.repeat(questioned[: SIZE // 2, :, None], 3, axis=2))
    with pytest.raises(ValueError, match="match"):
        overlay_attribution(questioned, heat[:10])
    blurred = overlay_attribution(
        questioned, heat
    )  # the display blur spreads colour a little past the edge
    np.testing.assert_array_equal(
        blurred[-SIZE // 4 :], np.repeat(questioned[-SIZE // 4 :, :, None], 3, axis=2)
    )
    assert np.any(blurred[SIZE // 2 : SIZE // 2 + 2] != picture[SIZE // 2 : SIZE // 2 + 2])
    untouched = overlay_attribution(questioned, np.zeros_like(heat))
    np.testing.assert_array_equal(untouched, np.repeat(questioned[:, :, None], 3, axis=2))
