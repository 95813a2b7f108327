"""Preprocessing (eq. 1-5): hand-computed values, invariances and refused inputs."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pytest
from PIL import Image

from workbench import SignatureInputError
from workbench.config import PreprocessConfig
from workbench.preprocess import (
    grayscale_normalize,
    image_moments,
    load_signature,
    moment_alpha,
    moment_normalize,
    preprocess,
)


def ellipse_image(cx: int, cy: int, a: int, b: int, shape=(300, 500)) -> np.ndarray:
    """Black ink on the pixels whose centres lie inside the ellipse of semi-axes a, b."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    inside = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0
    return np.where(inside, 0, 255).astype(np.uint8)


def test_moments_and_centroid_of_a_drawn_ellipse():
    image = ellipse_image(cx=200, cy=140, a=80, b=30)
    m = image_moments(image)
    # A filled ellipse of semi-axes a, b: area pi*a*b, variance a^2/4 along x and b^2/4 along y.
    assert m["m00"] == pytest.approx(255 * math.pi * 80 * 30, rel=0.01)
    assert m["xc"] == pytest.approx(200, abs=0.05)
    assert m["yc"] == pytest.approx(140, abs=0.05)
    assert m["mu20"] / m["m00"] == pytest.approx(80**2 / 4, rel=0.02)
    assert m["mu02"] / m["m00"] == pytest.approx(30**2 / 4, rel=0.03)
    assert abs(m["mu11"]) / m["m00"] < 0.01
    # Eq. 4: the x spread limits; 2*sqrt(2)*sigma_x = sqrt(2)*a.
    expected = 0.6 * 224 / (math.sqrt(2) * 80)
    assert moment_alpha(m, height=224, width=224) == pytest.approx(expected, rel=0.01)


def test_moment_normalize_centres_and_scales_the_ellipse():
    out, info = moment_normalize(ellipse_image(cx=150, cy=200, a=40, b=90, shape=(400, 400)))
    assert out.shape == (224, 224) and out.dtype == np.uint8
    m = image_moments(out)
    assert m["xc"] == pytest.approx(111.5, abs=0.3)
    assert m["yc"] == pytest.approx(111.5, abs=0.3)
    # The larger spread (y) now fills 0.6 of the frame: 2*sqrt(2)*sigma_y = 0.6*224.
    sigma_y = math.sqrt(m["mu02"] / m["m00"])
    assert 2 * math.sqrt(2) * sigma_y == pytest.approx(0.6 * 224, rel=0.02)
    assert info["alpha"] == pytest.approx(0.6 * 224 / (math.sqrt(2) * 90), rel=0.01)
    assert out[0, 0] == 255 and out[-1, -1] == 255


def test_grayscale_normalize_gives_foreground_mean_30_std_10(signature):
    values, info = grayscale_normalize(signature, clip=False)
    foreground = values[values != 255.0]
    assert foreground.size == info["pixels"] > 100
    assert foreground.mean() == pytest.approx(30.0, abs=1e-3)
    assert foreground.std() == pytest.approx(10.0, abs=1e-3)
    clipped, _ = grayscale_normalize(signature)
    assert clipped.dtype == np.uint8
    assert set(np.unique(clipped[values == 255.0])) == {255}


def test_grayscale_normalize_constant_ink_uses_std_one():
    image = np.full((64, 64), 240, np.uint8)
    image[20:40, 10:50] = 50
    values, info = grayscale_normalize(image, clip=False)
    assert info["std"] == 1.0
    assert np.all(values[21:39, 11:49] == 30.0)  # inside the (median-rounded) corners


def test_translation_inside_a_larger_canvas_leaves_output_unchanged(signature):
    h, w = signature.shape
    paper = int(np.median(signature))
    canvas = np.full((h + 300, w + 500), paper, np.uint8)
    canvas[170 : 170 + h, 230 : 230 + w] = signature
    a, _ = preprocess(signature)
    b, _ = preprocess(canvas)
    inner = (slice(4, -4), slice(4, -4))
    diff = np.abs(a.astype(int) - b.astype(int))[inner]
    assert diff.max() <= 2


def test_scaling_the_input_2x_leaves_output_nearly_unchanged(signature):
    big = cv2.resize(signature, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    a, ra = preprocess(signature)
    b, rb = preprocess(big)
    assert rb.alpha == pytest.approx(ra.alpha / 2, rel=0.05)
    ink_a, ink_b = 255.0 - a, 255.0 - b
    correlation = np.corrcoef(ink_a.ravel(), ink_b.ravel())[0, 1]
    assert correlation > 0.9
    assert np.abs(ink_a - ink_b).mean() < 6


def test_preprocess_record(signature):
    out, record = preprocess(signature)
    assert out.shape == (224, 224)
    assert (record.original_height, record.original_width) == signature.shape
    assert 0 < record.alpha < 5
    assert record.foreground_pixels > 0
    assert 0 <= record.foreground_threshold < 255
    assert set(record.to_dict()) >= {
        "foreground_mean",
        "foreground_std",
        "centroid_x",
        "centroid_y",
        "alpha",
    }
    assert out.min() < 100  # dark strokes survive the shrinking
    m = image_moments(out)
    assert (m["xc"], m["yc"]) == (pytest.approx(111.5, abs=1.0), pytest.approx(111.5, abs=1.0))


# --------------------------------------------------------------------------- formats


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "fmt, tolerance",
    [("PNG", 0), ("BMP", 0), ("TIFF", 0), ("WEBP", 0), ("JPEG", 40)],
)
def test_formats_decode_to_the_same_grey_levels(signature, fmt, tolerance):
    kwargs = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
    loaded = load_signature(encode(Image.fromarray(signature), fmt, **kwargs))
    assert loaded.shape == signature.shape and loaded.dtype == np.uint8
    diff = np.abs(loaded.astype(int) - signature.astype(int))
    assert diff.max() <= tolerance and diff.mean() < 2


def test_sixteen_bit_tiff(signature, tmp_path):
    path = tmp_path / "sig16.tif"
    Image.fromarray(signature.astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode.startswith("I;16")
    np.testing.assert_array_equal(load_signature(path), signature)


def test_palette_image(signature):
    palette = Image.fromarray(signature).convert("P")
    loaded = load_signature(encode(palette, "PNG"))
    assert np.abs(loaded.astype(int) - signature.astype(int)).mean() < 3


def test_rgba_is_composited_on_white(signature):
    paper = signature > 200
    rgba = np.zeros(signature.shape + (4,), np.uint8)  # black, with the ink as opacity
    rgba[..., 3] = np.where(paper, 0, 255 - signature)
    loaded = load_signature(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert loaded[paper].min() == 255  # transparent areas are white paper, not black
    np.testing.assert_allclose(loaded[~paper], signature[~paper], atol=1)


def test_exif_orientation_is_applied(signature):
    rotated = Image.fromarray(signature).transpose(Image.Transpose.ROTATE_90)  # stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    loaded = load_signature(encode(rotated, "JPEG", quality=95, exif=exif))
    assert loaded.shape == signature.shape
    assert np.abs(loaded.astype(int) - signature.astype(int)).mean() < 2


def test_numpy_and_pil_inputs(signature):
    rgb = np.stack([signature] * 3, axis=-1)
    np.testing.assert_array_equal(load_signature(rgb), signature)
    np.testing.assert_array_equal(load_signature(Image.fromarray(signature)), signature)
    np.testing.assert_allclose(
        load_signature(signature.astype(np.float32) / 255.0), signature, atol=1
    )


# --------------------------------------------------------------------------- refusals


def blank_page(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    texture = cv2.resize(rng.normal(0, 6, (12, 30)), (600, 240), interpolation=cv2.INTER_CUBIC)
    return np.clip(228 + texture + rng.normal(0, 4, (240, 600)), 0, 255).astype(np.uint8)


def huge_png() -> bytes:
    # 7000 x 6000 = 42 megapixels; a bilevel PNG of it is a few kilobytes.
    return encode(Image.new("1", (7000, 6000), 1), "PNG")


def truncated_png(signature: np.ndarray) -> bytes:
    data = encode(Image.fromarray(signature), "PNG")
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "make_input, words",
    [
        (lambda sig: b"%PDF-1.4 this is not an image", "not an image"),
        (lambda sig: b"", "empty"),
        (truncated_png, "truncated"),
        (lambda sig: huge_png(), "too large"),
        (lambda sig: np.full((10, 300), 255, np.uint8), "at least 16"),
        (lambda sig: encode(Image.fromarray(blank_page()), "PNG"), "blank"),
        (lambda sig: np.full((200, 500), 255, np.uint8), "blank"),
        (lambda sig: np.zeros((2, 3, 5)), "H x W"),
    ],
    ids=[
        "not-image",
        "empty",
        "truncated",
        "too-large",
        "too-small",
        "blank-page",
        "white",
        "bad-shape",
    ],
)
def test_bad_inputs_raise_signature_input_error(signature, make_input, words):
    with pytest.raises(SignatureInputError, match=words):
        preprocess(make_input(signature))


def test_bad_files_on_disk(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("hello, not a picture")
    with pytest.raises(SignatureInputError, match="empty"):
        load_signature(empty)
    with pytest.raises(SignatureInputError, match="not an image"):
        load_signature(text)
    with pytest.raises(SignatureInputError, match="not found"):
        load_signature(tmp_path / "missing.png")
    with pytest.raises(SignatureInputError, match="folder"):
        load_signature(tmp_path)


def test_max_pixels_is_configurable(signature):
    h, w = signature.shape
    with pytest.raises(SignatureInputError, match="too large"):
        load_signature(signature, config=PreprocessConfig(max_pixels=h * w - 1))


def test_signature_input_error_is_a_value_error():
    assert issubclass(SignatureInputError, ValueError)


def test_messages_name_the_users_file_never_the_servers_folder(tmp_path):
    from workbench.errors import SignatureInputError
    from workbench.preprocess import load_signature

    folder = tmp_path / "gradio" / "0f3a9c"
    folder.mkdir(parents=True)
    (folder / "my scan.png").write_bytes(b"not a png at all")
    (folder / "empty.png").write_bytes(b"")
    for name in ("my scan.png", "empty.png", "missing.png"):
        with pytest.raises(SignatureInputError) as caught:
            load_signature(folder / name)
        assert f"'{name}'" in str(caught.value) and str(folder) not in str(caught.value)
