"""The app in a real browser: Debian's chromium driven by playwright against 127.0.0.1."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import synthetic_signature
from workbench.data.dedupe import file_sha256

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@contextmanager
def served(workbench):
    """The whole app on 127.0.0.1 and a free port, for ``workbench``; yields its URL."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from app import MAX_UPLOAD, build_app

    demo = build_app(workbench)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        max_file_size=MAX_UPLOAD,
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@contextmanager
def chromium():
    """Debian's chromium under playwright with the project's flags (skips when absent)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def app_url(tiny_verifier, tmp_path_factory):
    from workbench.verification.workbench import Workbench

    # The session's small untrained verifier: the page's behaviour, not the weights' accuracy,
    # is under test. A made-up validation curve: the page must show the rates of the slider's
    # threshold.
    curve = {
        "threshold": [0.0, 0.5, 1.0],
        "far": [1.0, 0.25, 0.0],
        "frr": [0.0, 0.5, 1.0],
        "n_genuine": 2,
        "n_forged": 4,
    }
    # Likelihood-ratio calibrations by hand: pooled, and a corpus's own population.
    calibration = {"references": 1, "intercept": 0.0, "bounds": [-2.0, 2.0], "n_same": 10,
                   "n_different": 10, "cllr": 0.5, "cllr_min": 0.4, "data": "by hand"}  # fmt: skip
    calibrations = [
        {**calibration, "alternative": alternative, "slope": slope, "population": population}
        for alternative in ("skilled", "random")
        for slope, population in ((1.0, ""), (3.0, "Corpus A"))
    ]
    weights = tiny_verifier.save(
        tmp_path_factory.mktemp("weights") / "tiny",
        validation={"threshold": 0.5, "curve": curve},
        extra={"calibration": calibrations},
    )
    with served(Workbench(weights)) as url:
        yield url


@pytest.fixture(scope="module")
def page(app_url):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(app_url)
        page.wait_for_selector("text=Signature Workbench", timeout=30_000)
        yield page


def upload(page, path) -> None:
    # A fresh page: a file left in the input by an earlier test would hide its drop zone.
    page.reload()
    page.wait_for_selector("text=Signature Workbench", timeout=30_000)
    page.get_by_role("tab", name="Preprocess").click()
    page.locator("#pp-input input[type=file]").set_input_files(str(path))
    # gr.File uploads in the background: the file's name appears when it is done.
    page.locator("#pp-input").get_by_text(Path(path).name).first.wait_for(timeout=30_000)


def test_verify_shows_verdict_normalized_images_and_heatmaps(page, output_dir):
    page.get_by_role("tab", name="Verify").click()
    refs = [str(EXAMPLES / "writer1_genuine_1.png"), str(EXAMPLES / "writer1_genuine_2.png")]
    page.locator("#v-refs input[type=file]").set_input_files(refs)
    page.locator("#v-questioned input[type=file]").set_input_files(
        str(EXAMPLES / "writer1_forgery_1.png")
    )
    page.locator("#v-run").click()
    page.locator("#verdict-label").wait_for(timeout=60_000)
    text = page.locator("#v-verdict").inner_text()
    assert "Score" in text and "threshold" in text and "mean of 2 references" in text
    page.locator("#v-query-norm img").wait_for(timeout=10_000)
    assert page.locator("#v-ref-norm img").count() >= 2
    assert (
        page.locator("#v-ref-orig img").count() >= 2
        and page.locator("#v-query-orig img").count() == 1
    )
    assert page.locator("#v-scores").get_by_text("writer1_genuine_2.png").count() == 1
    page.locator("#v-explain").click()
    page.locator("#v-heatmaps img").first.wait_for(timeout=60_000)
    assert page.locator("#v-heatmaps img").count() >= 8  # 4 blocks x (reference, questioned)
    page.locator("#v-cross img, #v-cross canvas, #v-cross svg").first.wait_for(timeout=30_000)
    page.locator("#v-attribution img").wait_for(timeout=30_000)
    page.locator("#v-report").click()
    page.locator("#v-report-file").get_by_text(".html").first.wait_for(timeout=60_000)
    page.screenshot(path=str(output_dir / "verify_tab.png"), full_page=True)


def test_verify_without_questioned_shows_a_message(page):
    page.get_by_role("tab", name="Verify").click()
    page.reload()
    page.wait_for_selector("text=Signature Workbench", timeout=30_000)
    page.locator("#v-refs input[type=file]").set_input_files(
        str(EXAMPLES / "writer1_genuine_1.png")
    )
    page.locator("#v-run").click()
    page.get_by_text("Add the questioned signature").first.wait_for(timeout=30_000)
    assert page.get_by_text("Traceback").count() == 0


def draw_signature(page, selector: str) -> None:
    """Pick the brush of a gr.Sketchpad, then draw a few strokes with the mouse."""
    page.locator(f"{selector} button[aria-label='Brush']").first.click()
    canvas = page.locator(f"{selector} canvas").first
    canvas.wait_for(timeout=10_000)
    box = canvas.bounding_box()
    for row, stroke in enumerate([(0.15, 0.85), (0.25, 0.7), (0.3, 0.9)]):
        y = box["y"] + box["height"] * (0.35 + 0.15 * row)
        page.mouse.move(box["x"] + box["width"] * stroke[0], y)
        page.mouse.down()
        for step in range(1, 21):
            x = stroke[0] + (stroke[1] - stroke[0]) * step / 20
            wobble = 0.08 * box["height"] * ((-1) ** step)
            page.mouse.move(box["x"] + box["width"] * x, y + wobble, steps=2)
        page.mouse.up()


def test_drawn_questioned_signature_is_verified(page, output_dir):
    page.reload()
    page.wait_for_selector("text=Signature Workbench", timeout=30_000)
    page.get_by_role("tab", name="Verify").click()
    page.locator("#v-refs input[type=file]").set_input_files(
        str(EXAMPLES / "writer1_genuine_1.png")
    )
    page.get_by_text("Or draw the signatures").click()
    draw_signature(page, "#v-draw-questioned")
    page.locator("#v-run").click()
    page.locator("#verdict-label").wait_for(timeout=60_000)
    page.locator("#v-query-norm img").wait_for(timeout=10_000)
    assert "one reference" in page.locator("#v-verdict").inner_text()
    page.screenshot(path=str(output_dir / "verify_drawn.png"), full_page=True)


def test_threshold_control_shows_validation_rates(page):
    page.reload()
    page.wait_for_selector("text=Signature Workbench", timeout=30_000)
    page.get_by_role("tab", name="Verify").click()
    text = page.locator("#v-rates").inner_text()
    assert (
        "FAR 25.0%" in text and "FRR 50.0%" in text and "of 4" in text
    )  # the fixture's curve at 0.5


def test_page_serves_and_normalizes_an_uploaded_signature(page, tmp_path, output_dir):
    sample = tmp_path / "signature.png"
    Image.fromarray(synthetic_signature(3)).save(sample)
    upload(page, sample)
    page.locator("#pp-run").click()
    page.locator("#pp-normalized img").wait_for(timeout=30_000)
    page.locator("#pp-record").get_by_text("alpha (eq. 4)").wait_for(timeout=10_000)
    assert page.locator("#pp-grayscale img").count() == 1
    page.screenshot(path=str(output_dir / "preprocess_tab.png"), full_page=True)


def test_bad_file_shows_a_message_not_a_traceback(page, tmp_path, output_dir):
    blank = tmp_path / "blank.png"
    Image.new("L", (600, 200), 250).save(blank)
    upload(page, blank)
    page.locator("#pp-run").click()
    message = page.get_by_text("No signature found")
    message.first.wait_for(timeout=30_000)
    assert page.get_by_text("Traceback").count() == 0
    page.screenshot(path=str(output_dir / "preprocess_tab_error.png"), full_page=True)


def test_the_verdict_as_data_matches_the_verdict(app_url):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    refs = [handle_file(str(EXAMPLES / f"writer2_genuine_{i}.png")) for i in (1, 2)]
    query = handle_file(str(EXAMPLES / "writer2_genuine_3.png"))
    data = client.predict(references=refs, questioned=query, threshold=0.5, api_name="/verify_data")
    table = client.predict(references=refs, questioned=query, threshold=0.5, api_name="/verify")[-1]
    assert [r["file"] for r in data["references"]] == [row[0] for row in table["data"]]
    assert [f"{r['score']:.4f}" for r in data["references"]] == [row[2] for row in table["data"]]
    mean = sum(r["score"] for r in data["references"]) / 2
    assert abs(data["score"] - mean) < 1e-5 and data["threshold"] == 0.5
    assert data["same_writer"] == (data["score"] >= 0.5)
    assert [e["alternative"] for e in data["evidence"]] == ["skilled", "random"]
    assert all(e["verbal"] for e in data["evidence"])
    with pytest.raises(Exception, match="at least one reference"):
        client.predict(references=[], questioned=query, threshold=0.5, api_name="/verify_data")
    # The likelihood ratios of one corpus's own calibration (slope 3 against the pooled 1).
    assert data["calibration_population"] == "all validated corpora (pooled)"
    own = client.predict(references=refs, questioned=query, threshold=0.5,
                         population="Corpus A", api_name="/verify_data")  # fmt: skip
    assert own["calibration_population"] == "Corpus A" and own["score"] == data["score"]
    assert [e["log10_lr"] for e in own["evidence"]] != [e["log10_lr"] for e in data["evidence"]]
    with pytest.raises(Exception, match="Klingon is not in the list of choices"):
        client.predict(references=refs, questioned=query, threshold=0.5, population="Klingon",
                       api_name="/verify_data")  # fmt: skip


def test_gradio_client_api(app_url):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    refs = [
        handle_file(str(EXAMPLES / "writer2_genuine_1.png")),
        handle_file(str(EXAMPLES / "writer2_genuine_2.png")),
    ]
    verdict, originals, gallery, original, normalized, table = client.predict(
        references=refs,
        questioned=handle_file(str(EXAMPLES / "writer2_genuine_3.png")),
        threshold=0.5,
        api_name="/verify",
    )
    assert "Score" in verdict and "threshold" in verdict
    assert len(gallery) == 2 and len(originals) == 2 and normalized and original
    assert [row[0] for row in table["data"]] == ["writer2_genuine_1.png", "writer2_genuine_2.png"]
    assert [row[1] for row in table["data"]] == ["the whole image"] * 2
    report = Path(
        client.predict(
            references=refs,
            questioned=handle_file(str(EXAMPLES / "writer2_genuine_3.png")),
            threshold=0.5,
            api_name="/report",
        )
    ).read_text(encoding="utf-8")
    for name in ("writer2_genuine_1.png", "writer2_genuine_3.png"):
        assert file_sha256(EXAMPLES / name) in report
    assert verdict.split("**Score ")[1][:6] in report  # the verdict's score, as the page showed it
    original, cleaning, grayscale, image, record = client.predict(
        handle_file(str(EXAMPLES / "writer1_genuine_1.png")), api_name="/normalize"
    )
    assert "alpha (eq. 4)" in [row[0] for row in record["data"]]
    assert len(cleaning) == 4  # the four cleaning stages, each shown
    assert ["signature taken from", "the whole image"] in record["data"]


def test_a_signature_on_a_photographed_page_is_found_and_verified(app_url):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    page = handle_file(str(EXAMPLES / "page_writer1_genuine_3.jpg"))
    gallery, table, candidate = client.predict(page, api_name="/find_signatures")
    assert len(gallery) >= 1 and candidate == 1
    assert table["data"][0][:2] == [1, 1]  # best candidate, page 1
    refs = [handle_file(str(EXAMPLES / f"writer1_genuine_{i}.png")) for i in (1, 2)]
    verdict, _, _, original, normalized, rows = client.predict(
        references=refs, questioned=page, threshold=0.5, candidate=1, api_name="/verify"
    )
    assert "Score" in verdict and normalized and original
    assert all(row[1] == "the whole image" for row in rows["data"])
    report = Path(
        client.predict(
            references=refs, questioned=page, threshold=0.5, candidate=1, api_name="/report"
        )
    ).read_text(encoding="utf-8")
    assert (
        "page 1, box (" in report and file_sha256(EXAMPLES / "page_writer1_genuine_3.jpg") in report
    )
    crop = client.predict(handle_file(str(EXAMPLES / "writer1_genuine_1.png")),
                           api_name="/find_signatures")  # fmt: skip
    assert len(crop[0]) >= 1  # a crop is a page with one signature on it


def test_an_upload_over_the_size_limit_is_refused(app_url, tmp_path):
    from gradio_client import Client, handle_file

    big = tmp_path / "huge.png"
    with open(big, "wb") as handle:
        handle.truncate(61 * 1024 * 1024)  # over the app's 60 MB limit
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match="(?i)size|large|413"):
        client.predict(handle_file(str(big)), api_name="/normalize")
