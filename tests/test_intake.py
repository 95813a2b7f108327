"""Intake (issue 14): cleaning before eq. 1, pages and PDFs, finding the signature on a page."""

from __future__ import annotations

import hashlib
import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from workbench.data.pages import generate_pages
from workbench.data.synthetic import sample_writer
from workbench.errors import SignatureInputError
from workbench.intake.cleaning import CleaningConfig, clean_signature, remove_lines
from workbench.intake.documents import MAX_PDF_PAGES, load_pages
from workbench.intake.finder import find_signatures
from workbench.intake.measure import box_iou
from workbench.intake.signatures import search_document, take_signature
from workbench.preprocess import normalize_stages


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Eight synthetic documents at 200 dpi (scans and phone photos) with their true boxes."""
    out = tmp_path_factory.mktemp("pages")
    generate_pages(out, pages=8, seed=41, dpi=200, writers=6)
    return out, json.loads((out / "truth.json").read_text())


def _encrypted_pdf() -> bytes:
    """A one-page PDF under the standard security handler whose empty password is wrong."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <"
        + b"11" * 32
        + b"> /U <"
        + b"22" * 32
        + b"> /P -4 >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 5\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 5 /Root 1 0 R /Encrypt 4 0 R /ID [<" + b"ab" * 16 + b"><"
    out += b"ab" * 16 + b">] >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _pdf(images: list[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    pictures = [Image.fromarray(i) for i in images]
    pictures[0].save(buffer, "PDF", save_all=True, append_images=pictures[1:], resolution=200)
    return buffer.getvalue()


def test_a_clean_signature_passes_cleaning_unchanged():
    genuine, forged = sample_writer(5, writer=2, genuine=4, forgeries=2)
    for image in genuine + forged:
        cleaned, steps = clean_signature(image)
        before = normalize_stages(image)[1].astype(int)
        after = normalize_stages(cleaned)[1].astype(int)
        assert np.abs(before - after).max() <= 2
        assert [s.name for s in steps] == [
            "flatten illumination", "deskew", "remove lines", "crop to the ink"
        ]  # fmt: skip


def test_squared_paper_under_uneven_light_is_cleaned_back_to_the_signature():
    genuine, _ = sample_writer(5, writer=3, genuine=1, forgeries=0)
    clean = genuine[0]
    h, w = clean.shape
    photo = clean.astype(np.float32)
    photo[:, :: max(8, w // 20)] *= 0.6  # a printed grid, edge to edge
    photo[:: max(8, h // 6), :] *= 0.6
    photo *= np.linspace(0.55, 1.0, w, dtype=np.float32)[None, :]  # light from one side
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    cleaned, steps = clean_signature(photo)
    applied = {s.name for s in steps if s.applied}
    assert {"flatten illumination", "remove lines"} <= applied
    target = normalize_stages(clean)[1].astype(float)
    error_cleaned = np.abs(normalize_stages(cleaned)[1] - target).mean()
    error_raw = np.abs(normalize_stages(photo)[1] - target).mean()
    assert error_cleaned < 0.5 * error_raw
    # Switched off, a stage leaves the lines where they are.
    kept, off = clean_signature(photo, config=CleaningConfig(remove_lines=False))
    assert not off[2].applied and (kept < 128).sum() > (cleaned < 128).sum()


def test_a_long_pen_stroke_is_not_taken_for_a_ruled_line():
    image = np.full((200, 600), 245, np.uint8)
    cv2.line(image, (40, 120), (560, 110), 30, 4)  # straight, but stops short of the edges
    cv2.ellipse(image, (300, 90), (120, 40), 0, 0, 360, 30, 3)
    assert remove_lines(image)[1] == 0
    ruled = image.copy()
    ruled[170:172, :] = 60  # a printed line from edge to edge
    out, removed = remove_lines(ruled)
    assert removed > 0 and out[170:172, :].min() > 200 and (out[100:130] < 128).sum() > 0


def test_the_signature_is_the_top_candidate_on_synthetic_pages(pages):
    folder, truth = pages
    overlaps = []
    for item in truth:
        gray = load_pages(folder / item["file"])[0].gray
        found = find_signatures(gray)
        overlaps.append(box_iou(found[0].box, item["box"]) if found else 0.0)
    assert sum(o >= 0.8 for o in overlaps) >= 7, overlaps  # bench: 95%+ of 200 pages


def test_a_page_without_handwriting_says_so():
    page = np.full((1400, 1000), 245, np.uint8)
    for y in range(100, 1300, 40):
        cv2.putText(page, "printed terms of the agreement", (80, y), cv2.FONT_HERSHEY_SIMPLEX,
                    0.9, 30, 2)  # fmt: skip
    data = cv2.imencode(".png", page)[1].tobytes()
    with pytest.raises(SignatureInputError, match="No handwritten signature was found on 'p.png'"):
        search_document(data, name="p.png")


def test_pdfs_are_searched_page_by_page_and_recorded(pages, tmp_path):
    folder, truth = pages
    page = load_pages(folder / truth[0]["file"])[0].gray
    blank = np.full_like(page, 250)
    data = _pdf([blank, page])
    (tmp_path / "contract.pdf").write_bytes(data)
    found = search_document(tmp_path / "contract.pdf")
    best = found[0].record()
    assert best["page"] == 2 and best["pages_in_file"] == 2 and best["file"] == "contract.pdf"
    assert best["sha256"] == hashlib.sha256(data).hexdigest()
    intake = take_signature(tmp_path / "contract.pdf")
    assert intake.found.page.number == 2 and intake.gray.shape[0] < page.shape[0] // 2


@pytest.mark.parametrize(
    "data, message",
    [
        (_encrypted_pdf(), "password-protected"),
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ngarbage", "could not be read as a PDF"),
    ],
)
def test_bad_pdfs_get_a_message_naming_the_file(data, message):
    with pytest.raises(SignatureInputError, match=rf"'scan\.pdf'.*{message}|{message}.*"):
        load_pages(data, name="scan.pdf")


def test_a_pdf_with_too_many_pages_is_refused():
    data = _pdf([np.full((20, 20), 250, np.uint8)] * (MAX_PDF_PAGES + 1))
    with pytest.raises(SignatureInputError, match=rf"has {MAX_PDF_PAGES + 1} pages"):
        load_pages(data, name="long.pdf")


def test_a_candidate_beyond_those_found_is_refused(pages):
    folder, truth = pages
    with pytest.raises(SignatureInputError, match="Candidate 99 was asked for"):
        take_signature(folder / truth[0]["file"], kind="page", choice=99)


def test_verify_takes_a_page_and_the_report_records_where(pages, tiny_verifier, tmp_path):
    from workbench.verification.report import build_report
    from workbench.verification.workbench import Workbench

    folder, truth = pages
    item = truth[0]
    genuine, _ = sample_writer(item["seed"], writer=item["writer"], genuine=6, forgeries=0)
    references = []
    for i, image in enumerate(genuine[4:]):
        path = tmp_path / f"ref{i}.png"
        cv2.imwrite(str(path), image)
        references.append(path)
    bench = Workbench(tiny_verifier.weights)
    page = folder / item["file"]
    verdict = bench.verify(references, page)
    assert verdict.intakes[-1].found is not None and verdict.intakes[0].found is None
    assert box_iou(verdict.intakes[-1].found.candidate.box, item["box"]) >= 0.8
    html = build_report(bench, references, page, verdict)
    x0, y0, x1, y1 = verdict.intakes[-1].found.candidate.box
    assert f"page 1, box ({x0}, {y0})-({x1}, {y1}), candidate 1" in html
    assert hashlib.sha256(page.read_bytes()).hexdigest() in html


def test_the_pages_command_and_the_bench_measure_finding(tmp_path, capsys):
    from workbench.cli import bench, data

    out = tmp_path / "p"
    assert data.main(["pages", "--out", str(out), "--pages", "3", "--dpi", "150", "--quiet"]) == 0
    truth = json.loads((out / "truth.json").read_text())
    assert len(truth) == 3 and all((out / t["file"]).is_file() for t in truth)
    capsys.readouterr()
    args = ["--pages", str(out), "--find-only"]  # the shipped weights exist, but no scores
    assert bench.main([*args, "--out", str(tmp_path / "r.json")]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["all"]["pages"] == 3 and 0 <= result["all"]["top_hit_rate"] <= 1
    assert result["all"]["find_seconds"]["max"] > 0 and "score_difference" not in result["all"]


def test_the_pages_measure_reports_how_often_the_verdict_accepts_page_and_clean(
    tmp_path, tiny_verifier
):
    from workbench.cli import data
    from workbench.intake.measure import measure_pages
    from workbench.verification.workbench import Workbench

    out = tmp_path / "p"
    assert data.main(["pages", "--out", str(out), "--pages", "2", "--dpi", "150", "--quiet"]) == 0
    lenient = Workbench(tiny_verifier.save(tmp_path / "t", validation={"threshold": 0.0}))
    result = measure_pages(out, workbench=lenient, progress=False)["all"]
    assert result["genuine_accepted"] == {"clean": 1.0, "page": 1.0}  # threshold 0: all accepted
    strict = Workbench(tiny_verifier.save(tmp_path / "s", validation={"threshold": 1.0}))
    result = measure_pages(out, workbench=strict, progress=False)["all"]
    assert result["genuine_accepted"] == {"clean": 0.0, "page": 0.0}
    assert result["score_difference"]["max"] <= 1.0


@pytest.mark.parametrize("corpus", ["BHSig260-Bengali", "BHSig260-Hindi"])
def test_clean_bhsig_scans_pass_cleaning_unchanged(corpus):
    from conftest import real_data

    from workbench.preprocess import load_signature

    files = sorted(p for p in real_data(corpus).rglob("*") if p.suffix.lower() in
                   {".png", ".tif", ".tiff", ".jpg", ".bmp", ".webp"})  # fmt: skip
    assert files
    chosen = [files[i] for i in np.random.default_rng(0).permutation(len(files))[:60]]
    for path in chosen:
        image = load_signature(path)
        before = normalize_stages(image)[1].astype(int)
        after = normalize_stages(clean_signature(image)[0])[1].astype(int)
        assert np.abs(before - after).max() <= 2, path.name
