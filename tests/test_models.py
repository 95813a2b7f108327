"""Verifier layers and variants: hand-computed SimAM, symmetry, attention shapes, losses."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from workbench.config import ATTENTIONS, WIDTHS, ModelConfig
from workbench.losses import (
    contrastive_ce_loss,
    distilled,
    focal_contrast_loss,
    hardest_pairs,
)
from workbench.models import MODELS, VARIANTS, build_model, create_attn, example_inputs
from workbench.models.cross_attention import CrossAttention
from workbench.models.pooling import SpatialPyramidPooling
from workbench.models.simam import DifferenceSimAM, SimAM, simam_weights


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_simam_weights_by_hand_on_a_2x2_map():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]]]])
    # mean 3; d = 4, 1, 0, 9; v = 14 / (4 - 1); E_inv = d / (4 (v + 1e-4)) + 0.5
    v = 14.0 / 3.0
    expected = [
        [sigmoid(d / (4 * (v + 1e-4)) + 0.5) for d in row] for row in ((4.0, 1.0), (0.0, 9.0))
    ]
    torch.testing.assert_close(simam_weights(x)[0, 0], torch.tensor(expected), rtol=1e-6, atol=1e-7)
    y1, y2, maps = SimAM()(x, 2 * x)
    torch.testing.assert_close(y1, x * torch.tensor(expected))
    assert maps.shape == (1, 2, 2, 2)


def test_difference_simam_is_symmetric_and_uses_the_difference():
    torch.manual_seed(0)
    a, b = torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)
    module = DifferenceSimAM()
    a1, b1, maps_ab = module(a, b)
    b2, a2, maps_ba = module(b, a)
    torch.testing.assert_close(maps_ab, maps_ba)
    torch.testing.assert_close(a1, a2)
    torch.testing.assert_close(b1, b2)
    w = simam_weights(a - b)
    torch.testing.assert_close(a1, a * w)
    torch.testing.assert_close(maps_ab[:, 0], w.mean(1))
    # Identical inputs: D = 0, every weight sigmoid(0.5).
    _, _, same = module(a, a)
    torch.testing.assert_close(same, torch.full_like(same, sigmoid(0.5)))


def test_spp_tokens():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    tokens = SpatialPyramidPooling((1, 2, 4))(x)
    assert tokens.shape == (2, 21, 3)
    torch.testing.assert_close(tokens[:, 0], x.amax(dim=(2, 3)))
    torch.testing.assert_close(tokens[:, 1], x[:, :, :4, :4].amax(dim=(2, 3)))  # level 2, top-left
    torch.testing.assert_close(
        tokens[:, 20], x[:, :, 6:, 6:].amax(dim=(2, 3))
    )  # level 4, last cell


def test_cross_attention_rows_sum_to_one_and_align():
    torch.manual_seed(0)
    module = CrossAttention(dim=8, hidden=6)
    t1, t2 = torch.randn(3, 21, 8), torch.randn(3, 21, 8)
    f1, f2, a1, a2 = module(t1, t2)
    assert f1.shape == f2.shape == (3, 21, 6)
    assert a1.shape == a2.shape == (3, 21, 21)
    torch.testing.assert_close(a1.sum(-1), torch.ones(3, 21))
    torch.testing.assert_close(f1, a2 @ module.value(t2))
    torch.testing.assert_close(f2, a1 @ module.value(t1))


def test_backbone_has_36_convolutions_and_gelu():
    model = build_model(config=ModelConfig(width="compact", attention="none"))
    convs = [m for m in model.backbone.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 36 and convs[0].in_channels == 1
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert any(isinstance(m, nn.GELU) for m in model.modules())


def run_forward_backward(config: ModelConfig, size: int = 64) -> None:
    model = build_model(config=config)
    x1 = torch.rand(2, 1, size, size).contiguous(memory_format=torch.channels_last)
    x2 = torch.rand(2, 1, size, size).contiguous(memory_format=torch.channels_last)
    logits, explanation = model(x1, x2, explain=True)
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()
    loss = focal_contrast_loss(logits, torch.tensor([1, 0]))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert len(explanation.block_maps) == 4
    spatial = config.attention in ("simam", "diff_simam", "cbam")
    assert all((m is not None) == spatial for m in explanation.block_maps)
    if spatial:
        assert explanation.block_maps[0].shape == (2, 2, size // 4, size // 4)
    if config.cross_attention:
        assert explanation.cross_attention[0].shape == (2, 21, 21)
    else:
        assert explanation.cross_attention is None


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("cross", [True, False])
def test_every_attention_and_cross_attention_switch(attention, cross):
    run_forward_backward(ModelConfig(attention=attention, cross_attention=cross))


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_pairs_from_image_features_score_as_pairs_of_images(attention):
    # Scoring reuses each image's stem and first dense block (issue 15): nothing may couple
    # the branches before that block ends, for any attention switch.
    torch.manual_seed(0)
    model = build_model(config=ModelConfig(attention=attention, input_height=64, input_width=64))
    model.eval()
    x1, x2 = torch.rand(3, 1, 64, 64), torch.rand(3, 1, 64, 64)
    with torch.inference_mode():
        whole = model(x1, x2)
        split = model.forward_from_features(model.image_features(x1), model.image_features(x2))
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_registry_variant(variant):
    model = build_model(variant=variant)
    for key, value in VARIANTS[variant].items():
        assert getattr(model.config, key) == value
    run_forward_backward(model.config)


def test_paper_width_runs():
    assert set(WIDTHS) == {"paper", "compact"}
    run_forward_backward(ModelConfig(width="paper"))


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="attention"):
        ModelConfig(attention="transformer")
    with pytest.raises(ValueError, match="variant"):
        build_model(variant="nope")
    with pytest.raises(ValueError, match="model"):
        build_model("resnet")
    with pytest.raises(ValueError, match="attention"):
        create_attn("transformer", 8)
    with pytest.raises(ValueError, match="verifier"):
        build_model("embedding_siamese", variant="full")
    with pytest.raises(ValueError, match="n_writers"):
        build_model("writer_classifier")
    with pytest.raises(ValueError, match="ModelConfig"):
        build_model(config=MODELS["writer_classifier"].tiny_config)  # a dict of the wrong model
    with pytest.raises(ValueError, match="EmbeddingConfig"):
        build_model("embedding_siamese", config=ModelConfig())


# --------------------------------------------------------------------------- the registry


def outputs_of(result) -> tuple[torch.Tensor, ...]:
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_runs_forward_and_backward(name):
    """Walks the registry: a model registered there is tested here without editing this file."""
    entry = MODELS[name]
    torch.manual_seed(0)
    model = build_model(name, config=entry.tiny_config).train()
    assert isinstance(model.config, entry.config_class)
    inputs = example_inputs(name, entry.tiny_config, batch=2)
    assert len(inputs) == entry.n_inputs
    assert all(x.shape[:2] == (2, 1) for x in inputs)
    outputs = outputs_of(model(*inputs))
    assert outputs and all(o.shape[0] == 2 and torch.isfinite(o).all() for o in outputs)
    sum(o.float().pow(2).sum() for o in outputs).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    # The same model from its dataclass, from the dict a weights JSON stores, and its state.
    config = entry.config_class.from_dict(entry.tiny_config)
    again = build_model(name, config=config.to_dict())
    assert again.config == config
    assert again.state_dict().keys() == model.state_dict().keys()


def test_create_attn_builds_every_kind_with_its_lambda():
    for kind in ATTENTIONS:
        module = create_attn(kind, 16, simam_lambda=0.5)
        y1, y2, _ = module(torch.rand(2, 16, 4, 4), torch.rand(2, 16, 4, 4))
        assert y1.shape == y2.shape == (2, 16, 4, 4)
        if kind in ("simam", "diff_simam"):
            assert module.lam == 0.5


def test_backbone_forward_hook_sees_each_block():
    model = build_model(config=ModelConfig(attention="none")).eval()
    backbone = model.backbone
    seen = []

    def hook(i: int, x: torch.Tensor) -> torch.Tensor:
        seen.append((i, x.shape[1], x.shape[2]))
        return x

    x = torch.rand(2, 1, 64, 64)
    with torch.inference_mode():
        plain = backbone(x)
        hooked = backbone(x, after_block=hook)
    assert plain.shape == (2, backbone.out_channels, 2, 2)
    torch.testing.assert_close(plain, hooked, rtol=0, atol=0)
    assert seen == [(i, c, 64 // 4 // 2**i) for i, c in enumerate(backbone.block_channels)]


def test_embedding_siamese_embeds_each_input_on_its_own():
    """Several inputs give a tuple, each as if embedded alone (BatchNorm's batch statistics)."""
    torch.manual_seed(0)
    model = build_model("embedding_siamese", config=MODELS["embedding_siamese"].tiny_config)
    a, b, c = example_inputs("embedding_siamese", model.config, batch=3) + (
        torch.rand(3, 1, 64, 64),
    )
    model.train()
    alone = [model(x) for x in (a, b, c)]
    together = model(a, b, c)
    assert isinstance(together, tuple) and len(together) == 3
    for one, other in zip(alone, together):
        torch.testing.assert_close(one, other, rtol=0, atol=0)
        torch.testing.assert_close(one.norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match="at least one"):
        model()


# --------------------------------------------------------------------------- losses


def test_focal_contrast_loss_by_hand():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # p1 = 0.75, then 0.5
    targets = torch.tensor([1, 0])
    first = -0.25 * (1 - 0.75) ** 2 * math.log(0.75)
    second = -(1 - 0.25) * 0.5**2 * math.log(0.5)
    assert focal_contrast_loss(logits, targets).item() == pytest.approx(
        (first + second) / 2, rel=1e-6
    )


def test_focal_reduces_to_weighted_ce_at_gamma_zero():
    torch.manual_seed(1)
    logits, targets = torch.randn(16, 2), torch.randint(0, 2, (16,))
    log_p = torch.log_softmax(logits, 1)
    weights = torch.where(targets == 1, 0.25, 0.75)
    expected = -(weights * torch.where(targets == 1, log_p[:, 0], log_p[:, 1])).mean()
    torch.testing.assert_close(focal_contrast_loss(logits, targets, gamma=0.0), expected)
    ce = contrastive_ce_loss(logits, targets)
    torch.testing.assert_close(focal_contrast_loss(logits, targets, alpha=0.5, gamma=0.0), 0.5 * ce)


def test_hard_mining_averages_the_hardest_share_of_each_class():
    # p1 = 0.9, 0.6, 0.2 for genuine pairs (losses rise), 0.1, 0.5, 0.8, 0.95 for forgeries.
    p1 = torch.tensor([0.9, 0.6, 0.2, 0.1, 0.5, 0.8, 0.95])
    logits = torch.stack([torch.log(p1), torch.log(1 - p1)], dim=1)
    targets = torch.tensor([1, 1, 1, 0, 0, 0, 0])
    per_pair = focal_contrast_loss(logits, targets, reduction="none")
    assert per_pair.shape == (7,)
    torch.testing.assert_close(per_pair.mean(), focal_contrast_loss(logits, targets))
    # keep 0.5: ceil(1.5) = 2 genuine (p1 0.2, 0.6) and ceil(2) = 2 forgeries (p1 0.95, 0.8)
    expected = per_pair[[2, 1, 6, 5]].mean()
    torch.testing.assert_close(hardest_pairs(focal_contrast_loss, 0.5)(logits, targets), expected)
    ce = hardest_pairs(contrastive_ce_loss, 0.25)(logits, targets)  # 1 genuine, 1 forgery
    torch.testing.assert_close(ce, (-torch.log(p1[2]) - torch.log(1 - p1[6])) / 2)
    assert hardest_pairs(focal_contrast_loss, 1.0) is focal_contrast_loss
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="share of pairs kept"):
            hardest_pairs(focal_contrast_loss, bad)


def test_distillation_mixes_the_hard_loss_with_the_teachers_softened_probabilities():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    teacher = torch.tensor([[1.0, 0.0], [-2.0, 2.0]])
    targets = torch.tensor([1, 0])
    t = 2.0
    # KL(q || p) per pair with q the teacher's and p the student's softmax at temperature t.
    q, p = torch.softmax(teacher / t, dim=1), torch.softmax(logits / t, dim=1)
    kl = (q * (q.log() - p.log())).sum(1).mean()
    hard = contrastive_ce_loss(logits, targets)
    loss = distilled(contrastive_ce_loss, 0.25, t)(logits, targets, teacher)
    torch.testing.assert_close(loss, 0.75 * hard + 0.25 * t**2 * kl)
    # A student that already agrees with its teacher owes it nothing.
    agree = distilled(contrastive_ce_loss, 1.0, t)(teacher, targets, teacher)
    torch.testing.assert_close(agree, torch.tensor(0.0))
    # Gradients flow into the student, never into the teacher's logits.
    student, taught = logits.clone().requires_grad_(), teacher.clone().requires_grad_()
    distilled(focal_contrast_loss, 0.5, t)(student, targets, taught).backward()
    assert student.grad.abs().sum() > 0 and taught.grad is None
    with pytest.raises(ValueError, match="distillation weight"):
        distilled(focal_contrast_loss, 1.5, t)
    with pytest.raises(ValueError, match="temperature must be positive"):
        distilled(focal_contrast_loss, 0.5, 0.0)


def test_fused_inference_model_gives_the_same_scores():
    from workbench.models.fusion import fuse_for_inference

    torch.manual_seed(0)
    model = build_model(config=ModelConfig())
    model.train()
    x1, x2 = torch.rand(4, 1, 64, 64), torch.rand(4, 1, 64, 64)
    model(x1, x2).sum().backward()  # moves BatchNorm running statistics away from the defaults
    model.eval()
    fused = fuse_for_inference(model)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules()) < sum(
        isinstance(m, nn.BatchNorm2d) for m in model.modules()
    )
    with torch.inference_mode():
        torch.testing.assert_close(fused(x1, x2), model(x1, x2), rtol=1e-4, atol=1e-5)
    assert model.training is False and any(
        isinstance(m, nn.BatchNorm2d) for m in model.backbone.stem
    )


def test_config_round_trip_keeps_resolved_widths():
    config = ModelConfig(width="compact", attention="cbam", cross_attention=False)
    stored = config.to_dict()
    assert (
        stored["growth_rate"] == WIDTHS["compact"][0]
        and stored["stem_channels"] == WIDTHS["compact"][1]
    )
    assert ModelConfig.from_dict(stored) == config
    custom = ModelConfig(growth_rate=6, stem_channels=12)
    assert ModelConfig.from_dict(custom.to_dict()).growth_rate == 6


def test_checkpoint_round_trip_and_mismatch(tmp_path):
    from workbench.checkpoint import load_verifier, save_model

    config = ModelConfig(input_height=64, input_width=64)
    model = build_model(config=config).eval()
    save_model(model, tmp_path / "m", {"model": config.to_dict()})
    loaded = load_verifier(tmp_path / "m.safetensors")[0]
    x = torch.rand(2, 1, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x, x.flip(0)), model(x, x.flip(0)))
    # Edit the file itself: whatever type load_verifier returns its card as.
    stored = json.loads((tmp_path / "m.json").read_text())
    stored["model"]["growth_rate"] = 4
    (tmp_path / "m.json").write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="does not match"):
        load_verifier(tmp_path / "m")
