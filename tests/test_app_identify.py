"""The Identify tab in a real browser (Debian's chromium driven by playwright against 127.0.0.1).

The verifier is tiny and untrained, with the head of ``tests.test_identification`` whose score
falls with the feature difference: a writer enrolled with the questioned image itself then ranks
first deterministically.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.test_app_browser import chromium, served
from tests.test_identification import new_writer_files, save_tiny_verifier

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(tiny_verifier, tmp_path_factory):
    from workbench.verification.workbench import Workbench

    weights = save_tiny_verifier(tiny_verifier, tmp_path_factory.mktemp("weights") / "tiny")
    with served(Workbench(weights)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(app_url):
    with chromium() as browser:
        yield browser


def open_tab(browser, app_url):
    """A fresh page (its own Gradio session) on the Identify tab."""
    page = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
    page.goto(app_url)
    page.wait_for_selector("text=Signature Workbench", timeout=30_000)
    page.get_by_role("tab", name="Identify").click()
    page.locator("#i-run").wait_for(timeout=10_000)
    return page


def identify(page, path) -> None:
    page.locator("#i-questioned input[type=file]").set_input_files(str(path))
    page.locator("#i-questioned img").first.wait_for(timeout=10_000)
    page.locator("#i-run").click()
    page.locator("#i-verdict").wait_for(timeout=60_000)


def draw(page, elem_id: str) -> None:
    """A wavy stroke with the mouse on a sketchpad (dark ink on a transparent canvas)."""
    pad = page.locator(f"#{elem_id}")
    pad.get_by_role("button", name="Brush").click()
    box = pad.locator(".pixi-target canvas").bounding_box()
    x0, y0 = box["x"] + 120, box["y"] + box["height"] / 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    for k in range(80):
        page.mouse.move(x0 + 4 * k, y0 + 40 * math.sin(k / 5), steps=2)
    page.mouse.up()


def in_table(page, elem_id: str, text: str):
    """The visible cells of a Dataframe holding ``text`` (its hidden sizing row is left out)."""
    return page.locator(f"#{elem_id} [role=gridcell]").get_by_text(text, exact=True)


def cell(page, elem_id: str, row: int, col: int) -> str:
    return page.locator(f'#{elem_id} [data-testid="cell-{row}-{col}"]').inner_text()


def rows(page, elem_id: str) -> int:
    """Data rows of a Dataframe (its grid's aria-rowcount counts the header too)."""
    return int(page.locator(f"#{elem_id} [role=grid]").get_attribute("aria-rowcount")) - 1


def test_enrolled_writer_is_identified_at_once_and_stays_in_its_session(
    browser, app_url, tmp_path, output_dir
):
    files = new_writer_files(tmp_path)
    page = open_tab(browser, app_url)
    assert in_table(page, "i-writers", "synthetic writer 5").count() == 1
    page.locator("#i-name textarea, #i-name input").first.fill("Ada Lovelace")
    page.locator("#i-enroll-files input[type=file]").set_input_files([str(f) for f in files[:2]])
    page.locator("#i-enroll-files").get_by_text(files[1].stem).wait_for(timeout=10_000)
    page.locator("#i-enroll").click()
    in_table(page, "i-writers", "Ada Lovelace").wait_for(timeout=60_000)
    assert (
        "Enrolled Ada Lovelace with 2 reference(s)" in page.locator("#i-enroll-status").inner_text()
    )

    identify(page, files[0])  # one of the enrolled references
    in_table(page, "i-verifier", "Ada Lovelace").wait_for(timeout=30_000)
    assert cell(page, "i-verifier", 0, 1) == "Ada Lovelace"
    assert rows(page, "i-verifier") == 6  # 5 synthetic writers + Ada
    assert "Ada Lovelace" not in page.locator("#i-classifier").inner_text()  # it cannot name her
    assert page.get_by_text("Traceback").count() == 0
    page.screenshot(path=str(output_dir / "identify_tab.png"), full_page=True)

    other = open_tab(browser, app_url)  # another user: Ada was enrolled in the first session only
    identify(other, files[0])
    assert rows(other, "i-verifier") == 5 and rows(other, "i-writers") == 5
    assert in_table(other, "i-verifier", "Ada Lovelace").count() == 0
    other.context.close()
    page.context.close()


def test_enrolling_without_a_name_shows_a_message(browser, app_url, tmp_path, output_dir):
    page = open_tab(browser, app_url)
    page.locator("#i-enroll-files input[type=file]").set_input_files(
        str(new_writer_files(tmp_path, 1)[0])
    )
    page.locator("#i-enroll").click()
    page.get_by_text("Give the writer a name").first.wait_for(timeout=30_000)
    assert page.get_by_text("Traceback").count() == 0
    page.screenshot(path=str(output_dir / "identify_tab_error.png"), full_page=True)
    page.context.close()


def test_drawn_signatures_enroll_and_identify(browser, app_url, output_dir):
    page = open_tab(browser, app_url)
    page.locator("#i-name textarea, #i-name input").first.fill("Drawn writer")
    draw(page, "i-enroll-draw")
    page.locator("#i-enroll").click()
    in_table(page, "i-writers", "Drawn writer").wait_for(timeout=60_000)
    assert "with 1 reference(s)" in page.locator("#i-enroll-status").inner_text()
    draw(page, "i-draw")
    page.locator("#i-run").click()
    page.locator("#i-verdict").wait_for(timeout=60_000)
    in_table(page, "i-verifier", "Drawn writer").wait_for(timeout=30_000)
    assert rows(page, "i-verifier") == 6 and page.get_by_text("Traceback").count() == 0
    page.screenshot(path=str(output_dir / "identify_tab_drawn.png"), full_page=True)
    page.context.close()


def test_gradio_client_enroll_then_identify(app_url, tmp_path):
    from gradio_client import Client, handle_file

    files = new_writer_files(tmp_path)
    client = Client(app_url, verbose=False)
    status, writers, *_ = client.predict(
        "Grace", [handle_file(str(f)) for f in files[:2]], None, api_name="/enroll"
    )
    assert "Enrolled **Grace**" in status and "Grace" in [row[0] for row in writers["data"]]
    decision, _, ranking = client.predict(handle_file(str(files[0])), None, api_name="/identify")
    assert ranking["data"][0][1] == "Grace" and len(ranking["data"]) == 6
    assert "Verifier" in decision


def shipped_classifier_writers() -> list[str]:
    from workbench.config import DEFAULT_CLASSIFIER

    path = DEFAULT_CLASSIFIER.with_suffix(".json")
    if not path.exists():
        pytest.skip("no shipped writer classifier")
    return json.loads(path.read_text())["classes"]


def test_a_known_writer_shows_the_slides_line_in_the_browser(browser, app_url, output_dir):
    writer = shipped_classifier_writers()[1]
    page = open_tab(browser, app_url)
    box = page.locator("#i-known-writer input")
    box.click()
    box.fill(writer)
    page.get_by_role("option", name=writer, exact=True).click()
    page.locator("#i-known-show").click()
    line = page.locator("#i-known-line")
    line.get_by_text(f"of writer {writer}:").or_(line.get_by_text("No test images")).wait_for(
        timeout=30_000
    )
    assert page.get_by_text("Traceback").count() == 0
    page.screenshot(path=str(output_dir / "identify_known_writer.png"), full_page=True)
    page.context.close()


def test_gradio_client_known_writer(app_url):
    from gradio_client import Client

    writer = shipped_classifier_writers()[0]
    text, image, top5 = Client(app_url, verbose=False).predict(writer, api_name="/known_writer")
    assert writer in text or "No test images" in text
    if image is not None:  # the corpus is on this machine: the top 5 of its test image
        assert len(top5["data"]) == 5
