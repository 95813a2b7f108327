"""Training augmentation: the light and the real-variation kinds, and the stroke-width transform."""

from __future__ import annotations

import pytest
import torch

from workbench.augment import StrokeWidth, image_augmenter, pair_augmenter
from workbench.cli import pretrain, train


def _strokes(n: int = 4, size: int = 64) -> torch.Tensor:
    """Ink-bright images: a one-pixel horizontal stroke and a three-pixel vertical one."""
    x = torch.zeros(n, 1, size, size)
    x[:, :, 20, 10:50] = 0.9
    x[:, :, 10:50, 40:43] = 0.9
    return x


@pytest.mark.parametrize("kind", ["light", "real"])
def test_each_kind_keeps_shape_range_and_layout_and_is_seeded(kind):
    x = _strokes()
    augment = image_augmenter(kind)
    torch.manual_seed(3)
    a = augment(x)
    torch.manual_seed(3)
    b = augment(x)
    assert a.shape == x.shape and a.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, b)  # the same torch seed, the same batch
    assert float(a.min()) >= -1e-6 and float(a.max()) <= 0.9 + 1e-6
    assert not torch.equal(a, x)
    assert float(a.sum()) > 0  # ink survives


def test_real_variation_changes_more_than_light():
    """Over many images the real kind's warps, widths and blur move more pixels than the
    affine alone."""
    x = _strokes(32)
    torch.manual_seed(0)
    light = image_augmenter("light")(x)
    torch.manual_seed(0)
    real = image_augmenter("real")(x)
    assert float((real - light).abs().sum()) > 0.05 * float(x.sum())


def test_stroke_width_thickens_or_thins_without_erasing():
    x = _strokes(1)[0]
    widths = StrokeWidth(p=1.0)
    seen = set()
    for seed in range(20):
        torch.manual_seed(seed)
        out = widths(x)
        assert out.shape == x.shape
        if float(out.sum()) > float(x.sum()):
            seen.add("thicker")
        else:
            seen.add("finer")
            assert float(out[0, 20, 10:50].max()) > 0  # a one-pixel stroke fades, stays
            assert float(out.sum()) < float(x.sum())
    assert seen == {"thicker", "finer"}
    assert torch.equal(StrokeWidth(p=0.0)(x), x)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="Unknown augmentation 'heavy'"):
        image_augmenter("heavy")
    with pytest.raises(ValueError, match="Unknown augmentation"):
        pair_augmenter(0, "heavy")


def test_pair_augmenter_swaps_pairs_and_augments_both_sides():
    x1, x2 = _strokes(64), torch.zeros(64, 1, 64, 64)
    torch.manual_seed(1)
    a, b = pair_augmenter(0, "real")(x1, x2)
    swapped = a.flatten(1).sum(1) == 0  # the empty image moved to the first branch
    assert 0 < int(swapped.sum()) < 64
    assert torch.equal(b[swapped].flatten(1).sum(1) > 0, torch.ones(int(swapped.sum()), dtype=bool))


def test_command_lines_take_the_kind():
    parser = train.build_parser()
    assert parser.parse_args(["--out", "o", "--augment"]).augment == "light"
    assert parser.parse_args(["--out", "o", "--augment", "real"]).augment == "real"
    assert parser.parse_args(["--out", "o"]).augment is None
    args = pretrain.build_parser().parse_args(["--pack", "p", "--out", "o", "--augment", "real"])
    assert args.augment == "real"
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "o", "--augment", "heavy"])


def test_real_variation_includes_a_slight_phone_perspective():
    from torchvision.transforms import v2

    from workbench.augment import real_variation

    found = [t for t in real_variation().transforms if isinstance(t, v2.RandomPerspective)]
    assert len(found) == 1
    perspective = found[0]
    assert 0 < perspective.distortion_scale <= 0.2  # slight: a phone not quite parallel
