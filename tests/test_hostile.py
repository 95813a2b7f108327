"""Hostile input at the doors that read files (issue 15): property tests with hypothesis.

Every input either gives a usable result or a ``SignatureInputError`` whose message names the
user's file and never the server's folder; nothing else escapes, and nothing is written
outside the folder an extraction was given. About 1,000 inputs a run (the sum of the
``max_examples`` below).
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from workbench.data.archive import safe_extract
from workbench.data.pair_table import read_pair_table
from workbench.errors import SignatureInputError
from workbench.intake.documents import load_pages
from workbench.preprocess import load_signature

# A server-like temporary folder: messages must never show it.
SERVER = Path(tempfile.mkdtemp(prefix="gradio-")) / "3f9a0c1d"
SERVER.mkdir(parents=True, exist_ok=True)


def _signature() -> np.ndarray:
    image = np.full((60, 160), 245, np.uint8)
    image[25:32, 20:140] = 30
    image[10:50, 70:76] = 40
    return image


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _seeds() -> dict[str, bytes]:
    """Valid files of every kind we accept, to be mutated."""
    gray = Image.fromarray(_signature())
    rgba = Image.fromarray(np.dstack([_signature()] * 3 + [np.full((60, 160), 200, np.uint8)]))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    frames = [gray, Image.fromarray(255 - _signature())]
    pdf = io.BytesIO()
    gray.save(pdf, "PDF", resolution=100)
    return {
        "png": _encode(gray, "PNG"),
        "png16": _encode(Image.fromarray(_signature().astype(np.uint16) * 257), "PNG"),
        "palette": _encode(gray.convert("P"), "PNG"),
        "rgba": _encode(rgba, "PNG"),
        "cmyk.jpg": _encode(gray.convert("CMYK"), "JPEG"),
        "exif.jpg": _encode(gray.convert("RGB"), "JPEG", exif=exif),
        "pages.tif": _encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]),
        "anim.gif": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "webp": _encode(gray, "WEBP", lossless=True),
        "bmp": _encode(gray, "BMP"),
        "pdf": pdf.getvalue(),
    }


SEEDS = _seeds()
NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00"),
    min_size=1,
    max_size=24,
).filter(lambda n: n not in (".", ".."))


@st.composite
def hostile_bytes(draw) -> bytes:
    """A seed file truncated, with bytes flipped or inserted, or random bytes outright."""
    how = draw(st.sampled_from(["truncate", "flip", "insert", "random", "as is"]))
    if how == "random":
        return draw(st.binary(min_size=0, max_size=2048))
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if how == "flip":
        for _ in range(draw(st.integers(1, 12))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] = draw(st.integers(0, 255))
    elif how == "insert":
        position = draw(st.integers(0, len(data)))
        data[position:position] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


def _clean_message(error: Exception, name: str) -> None:
    message = str(error)
    assert str(SERVER) not in message and "Traceback" not in message, message
    assert message.strip(), "an empty message"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=hostile_bytes(), name=NAMES)
def test_any_bytes_give_a_signature_or_a_message_naming_the_file(data, name):
    path = SERVER / f"{name}.png"
    try:
        path.write_bytes(data)
    except OSError:  # a name this file system refuses: not the reader's concern
        return
    try:
        image = load_signature(path)
    except SignatureInputError as error:
        _clean_message(error, name)
    else:
        assert image.dtype == np.uint8 and image.ndim == 2
    finally:
        path.unlink(missing_ok=True)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=hostile_bytes())
def test_any_bytes_as_a_page_or_pdf_give_pages_or_a_message(data):
    try:
        pages = load_pages(data, name="upload.pdf")
    except SignatureInputError as error:
        _clean_message(error, "upload.pdf")
    else:
        assert pages and all(p.gray.dtype == np.uint8 and p.gray.ndim == 2 for p in pages)


MEMBER = st.one_of(
    NAMES,
    st.sampled_from(
        [
            "../escape.png",
            "/etc/abs.png",
            "a/../../up.png",
            "C:\\win.png",
            "__MACOSX/._x.png",
            ".hidden.png",
            "dir/",
            "a/b/c/deep.png",
        ]
    ),  # fmt: skip
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(members=st.lists(st.tuples(MEMBER, st.binary(max_size=256)), min_size=0, max_size=8),
       nested=st.booleans())  # fmt: skip
def test_hostile_zips_never_write_outside_their_folder(tmp_path_factory, members, nested):
    root = tmp_path_factory.mktemp("zip")
    archive, dest = root / "upload.zip", root / "out"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for member, payload in members:
            handle.writestr(member, payload)
    data = buffer.getvalue()
    if nested:  # a zip inside a zip
        outer = io.BytesIO()
        with zipfile.ZipFile(outer, "w") as handle:
            handle.writestr("inner.zip", data)
        data = outer.getvalue()
    archive.write_bytes(data)
    before = sorted(p.name for p in root.iterdir())
    try:
        written = safe_extract(archive, dest)
    except SignatureInputError as error:
        _clean_message(error, "upload.zip")
    else:
        assert written >= 1
        for path in dest.rglob("*"):
            assert dest.resolve() in path.resolve().parents
    assert sorted(p.name for p in root.iterdir() if p.name != "out") == [
        n for n in before if n != "out"
    ]


CELLS = st.text(max_size=20)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(header=st.lists(CELLS, max_size=6), rows=st.lists(st.lists(CELLS, max_size=7), max_size=5),
       raw=st.one_of(st.none(), st.binary(max_size=300)))  # fmt: skip
def test_hostile_pair_csvs_give_pairs_or_a_message(tmp_path_factory, header, rows, raw):
    root = tmp_path_factory.mktemp("csv")
    (root / "a.png").write_bytes(SEEDS["png"])
    table = root / "pairs.csv"
    if raw is not None:
        table.write_bytes(raw)
    else:
        import csv

        with open(table, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
    try:
        pairs, files = read_pair_table(table, [root])
    except SignatureInputError as error:
        _clean_message(error, "pairs.csv")
    else:
        assert pairs and all(p.label in (0, 1) for p in pairs)
        assert all(root.resolve() in Path(f).resolve().parents for f in files.values())


def test_a_decompression_bomb_is_refused_by_name():
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    # A header announcing 100,000 x 100,000 grey pixels (10 gigapixels) and a few bytes of data.
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    data += chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    path = SERVER / "bomb.png"
    path.write_bytes(data)
    with pytest.raises(SignatureInputError, match="'bomb.png' is too large") as caught:
        load_signature(path)
    _clean_message(caught.value, "bomb.png")


def test_a_symlink_in_a_zip_is_not_followed(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        link = zipfile.ZipInfo("writer/link.png")
        link.external_attr = (0o120777 << 16) | 0x20  # a symbolic link to /etc/passwd
        handle.writestr(link, "/etc/passwd")
        handle.writestr("writer/real.png", SEEDS["png"])
    archive = tmp_path / "upload.zip"
    archive.write_bytes(buffer.getvalue())
    dest = tmp_path / "out"
    assert safe_extract(archive, dest) == 1
    written = [p for p in dest.rglob("*") if p.is_file()]
    assert [p.name for p in written] == ["real.png"] and not any(p.is_symlink() for p in written)


def test_a_zip_of_100000_tiny_files_is_refused_before_anything_is_written(tmp_path):
    archive, dest = tmp_path / "many.zip", tmp_path / "out"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as handle:
        for i in range(100_000):
            handle.writestr(f"w{i % 100}/{i}.png", b"x")
    refused = "many.zip holds 100000 entries, more than the 20000"
    with pytest.raises(SignatureInputError, match=refused) as error:
        safe_extract(archive, dest)
    _clean_message(error.value, "many.zip")
    assert not dest.exists() or not any(dest.rglob("*"))
