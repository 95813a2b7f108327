"""The Evaluate and Model card tabs in a real browser (same recipe and fixtures as
test_app_browser.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_app_browser import app_url, page  # noqa: F401  (fixtures: tiny untrained weights, chromium)
from tests.test_corpus_eval import make_corpus, zip_folder

pytestmark = pytest.mark.browser


def open_tab(page, name: str) -> None:  # noqa: F811  (page: a playwright Page)
    page.get_by_role("tab", name=name).click()


def test_evaluate_tab_scores_a_zipped_corpus(page, tmp_path, output_dir):  # noqa: F811
    archive = zip_folder(
        make_corpus(tmp_path / "corpus"), tmp_path / "corpus.zip", prefix="corpus/"
    )
    open_tab(page, "Evaluate")
    page.locator("#e-zip input[type=file]").set_input_files(str(archive))
    page.locator("#e-zip a[download]").first.wait_for(timeout=30_000)  # the upload has finished
    page.locator("#e-run").click()
    metrics = page.locator("#e-metrics")
    metrics.get_by_text("AUC").first.wait_for(timeout=120_000)
    assert metrics.get_by_text("layout writer-folders").count() >= 1
    assert metrics.get_by_text("forgery pairs (label 0)").count() >= 1
    for plot in ("#e-roc", "#e-det", "#e-hist"):
        page.locator(f"{plot} img, {plot} canvas, {plot} svg").first.wait_for(timeout=30_000)
    download = page.locator("#e-csv-out a[download]").first
    download.wait_for(timeout=30_000)
    assert download.get_attribute("download") == "scores.csv"
    page.screenshot(path=str(output_dir / "evaluate_tab.png"), full_page=True)


def test_evaluate_tab_explains_a_file_that_is_not_a_zip(page, tmp_path, output_dir):  # noqa: F811
    page.reload()
    page.wait_for_selector("text=Signature Workbench", timeout=30_000)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a corpus")
    open_tab(page, "Evaluate")
    page.locator("#e-zip input[type=file]").set_input_files(str(notes))
    page.locator("#e-zip a[download]").first.wait_for(timeout=30_000)
    page.locator("#e-run").click()
    page.get_by_text("is not a zip archive").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)  # let the message finish appearing before the screenshot
    assert page.get_by_text("Traceback").count() == 0
    page.screenshot(path=str(output_dir / "evaluate_tab_error.png"), full_page=True)


def test_model_card_tab_shows_the_card_and_the_loaded_model(page, output_dir):  # noqa: F811
    from workbench.config import DEFAULT_VERIFIER as DEFAULT_WEIGHTS

    if not (DEFAULT_WEIGHTS.parent / "MODEL_CARD.md").exists():
        pytest.skip("weights/MODEL_CARD.md is absent")
    open_tab(page, "Model card")
    page.locator("#mc-summary").get_by_text("weights SHA-256").first.wait_for(timeout=30_000)
    assert page.locator("#mc-summary").get_by_text("96 x 96").count() >= 1
    card = page.locator("#mc-card")
    card.get_by_text("Model card").first.wait_for(timeout=30_000)
    assert "not the weights this card describes" in card.inner_text()  # tiny weights, shipped card
    page.screenshot(path=str(output_dir / "model_card_tab.png"), full_page=True)


def test_evaluate_api(app_url, tmp_path):  # noqa: F811
    from gradio_client import Client, handle_file

    archive = zip_folder(make_corpus(tmp_path / "corpus"), tmp_path / "corpus.zip")
    client = Client(app_url, verbose=False)
    table, *_figures, scores = client.predict(handle_file(str(archive)), None, api_name="/evaluate")
    rows = {row[0]: row[1] for row in table["data"]}
    assert rows["pairs"] == "18" and rows["genuine pairs (label 1)"] == "6"
    assert len(Path(scores).read_text(encoding="utf-8").strip().splitlines()) == 1 + 18
