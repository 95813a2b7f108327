"""The examiner's HTML report (workbench/verification/report.py): hashes, scores, embedded
images, escaping, determinism."""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import re
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from tests.conftest import synthetic_signature
from tests.test_explain import tiny_workbench
from workbench.checkpoint import Validation, WeightsCard
from workbench.verification.attribution import QuestionedAttribution
from workbench.verification.report import (
    build_report,
    file_sha256,
    threshold_provenance,
    write_report,
)

WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
VALIDATION = {"epoch": 3, "eer": 0.0991, "threshold": 0.3093, "auc": 0.96}
TEST_ENTRY = {
    "n_pairs": 1234,
    "val_threshold_far": 0.1076,
    "val_threshold_frr": 0.1550,
    "eer": 0.1272,
    "data": [{"protocol": "bhsig-b"}],
}


class _Collector(HTMLParser):
    """Every tag name and every src/href attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [
            (k, v or "") for k, v in attrs if k in ("src", "href", "srcset", "action", "data")
        ]


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def workbench(tiny_verifier, tmp_path_factory):
    wb = tiny_workbench(tiny_verifier, tmp_path_factory.mktemp("weights"))
    wb.card = replace(wb.card, validation=Validation.from_dict(VALIDATION), test=(TEST_ENTRY,))
    return wb


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two references (one with a hostile name) and a questioned signature, as PNG files."""
    folder = tmp_path_factory.mktemp("inputs")
    names = [
        "<script>alert(1)</script>".replace("/", "_") + ".png",
        'ref & "two".png',
        "questioned.png",
    ]
    paths = []
    for seed, name in zip((21, 22, 23), names):
        path = folder / name
        Image.fromarray(synthetic_signature(seed, forgery=seed == 23)).save(path)
        paths.append(path)
    return paths[:2], paths[2]


@pytest.fixture(scope="module")
def results(workbench, inputs):
    references, questioned = inputs
    verdict = workbench.verify(references, questioned)
    explanation = workbench.explain(references[0], questioned)
    attribution = QuestionedAttribution(workbench.model).attribute(
        explanation.reference, explanation.questioned
    )
    return verdict, explanation, attribution


@pytest.fixture(scope="module")
def page(workbench, inputs, results):
    verdict, explanation, attribution = results
    return build_report(
        workbench,
        *inputs,
        verdict,
        explanation=explanation,
        attribution=attribution,
        generated_at=WHEN,
    )


def test_every_file_hash_and_the_weights_hash_are_in_the_report(page, inputs, workbench, tmp_path):
    references, questioned = inputs
    for path in [*references, questioned]:
        assert file_sha256(path) == sha256_of(path)
        assert sha256_of(path) in page
    assert workbench.card.weights_sha256 in page
    assert "format version" in page and "tiny" in page


def test_scores_threshold_and_verdict_as_formatted(page, results):
    verdict = results[0]
    assert len(verdict.scores) == 2
    for score in verdict.scores:
        assert f"<td>{score:.4f}</td>" in page
    assert f"<b>{verdict.score:.4f}</b>" in page and f"<b>{verdict.threshold:.4f}</b>" in page
    assert ("GENUINE (same writer)" if verdict.genuine else "NOT GENUINE") in page
    assert "2024-05-06 07:08:09 UTC" in page


def test_all_images_are_embedded_pngs_and_nothing_is_external(page):
    parser = _Collector()
    parser.feed(page)
    sources = [v for k, v in parser.links if k == "src"]
    # 3 inputs x (original + normalized) + 4 blocks x 2 branches + cross-attention + attribution
    assert len(sources) == 6 + 8 + 1 + 1
    assert all(v.startswith("data:image/png;base64,") for v in sources)
    for uri in sources:
        Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).verify()
    assert not [v for k, v in parser.links if k != "src"]
    assert "script" not in parser.tags and "link" not in parser.tags and "iframe" not in parser.tags
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", page, re.IGNORECASE)
    assert "url(" not in page and "@import" not in page
    assert "@media print" in page


def test_file_names_are_escaped(page):
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;" in page
    assert "ref &amp; &quot;two&quot;.png" in page


def test_threshold_source_and_recorded_error_rates(page):
    assert "validation threshold stored with the weights" in page
    assert "FAR = FRR = 9.91%" in page
    assert "FAR 10.76%, FRR 15.50%" in page and "1234 pairs" in page
    assert "not a" in page and "calibrated probability" in page


def test_same_inputs_give_byte_identical_reports(workbench, inputs, results, tmp_path):
    verdict, explanation, attribution = results
    options = {"explanation": explanation, "attribution": attribution, "generated_at": WHEN}
    first = write_report(tmp_path / "a.html", workbench, *inputs, verdict, **options)
    second = write_report(tmp_path, workbench, *inputs, verdict, **options)
    assert second.name == "signature-report-20240506T070809Z.html"
    assert first.read_bytes() == second.read_bytes()
    later = build_report(
        workbench,
        *inputs,
        verdict,
        **{**options, "generated_at": datetime(2024, 5, 6, 7, 8, 10, tzinfo=UTC)},
    )
    assert later != first.read_text(encoding="utf-8")


def test_report_without_explanation_and_without_validation_rates(workbench, inputs):
    bare = copy.copy(workbench)
    bare.card = replace(workbench.card, validation=None, test=None)
    verdict = bare.verify(*inputs)
    assert verdict.threshold == 0.5
    page = build_report(bare, *inputs, verdict, generated_at=WHEN)
    assert "argmax" in page and "records no validation error rates" in page
    assert page.count("data:image/png;base64,") == 6
    assert "Where the verifier looked" not in page


def test_examiner_threshold_is_labelled_as_such(workbench, inputs):
    verdict = workbench.verify(*inputs, threshold=0.7)
    page = build_report(workbench, *inputs, verdict, generated_at=WHEN)
    assert "set by the examiner" in page and "do not apply to the 0.7000 used here" in page


def test_threshold_provenance_handles_missing_keys():
    assert threshold_provenance(WeightsCard(), 0.5) == (
        "0.5, the argmax of the two logits (the weights store no validation threshold)",
        [],
    )
    source, rates = threshold_provenance(
        WeightsCard.from_dict({"validation": {"threshold": 0.4, "far": 0.1, "frr": 0.2}}), 0.4
    )
    assert "validation threshold" in source
    assert rates == ["Validation writers: FAR 10.00%, FRR 20.00% at the validation threshold."]
    card = WeightsCard.from_dict({"validation": {"far": 0.1}, "test": [{"eer": 0.2}]})
    assert threshold_provenance(card, 0.5)[1] == []


def test_a_validation_curve_gives_rates_at_the_threshold_used():
    curve = {
        "threshold": [0.0, 0.5, 1.0],
        "far": [1.0, 0.25, 0.0],
        "frr": [0.0, 0.125, 1.0],
        "n_genuine": 8,
        "n_forged": 4,
    }
    source, rates = threshold_provenance(
        WeightsCard(validation=Validation(threshold=0.3, eer=0.2, curve=curve)), 0.6
    )
    assert "set by the examiner" in source
    assert rates[0] == (
        "Validation writers at threshold 0.500 (nearest tabulated): FAR 25.00% "
        "(forgeries accepted, of 4 pairs), FRR 12.50% (genuine rejected, of 8 pairs)."
    )
    assert (
        len(rates) == 1
    )  # the EER line belongs to the stored threshold and the curve supersedes it


def test_mismatched_inputs_are_refused(workbench, inputs, results):
    references, questioned = inputs
    verdict = results[0]
    with pytest.raises(ValueError, match="2 reference scores"):
        build_report(workbench, references[:1], questioned, verdict, generated_at=WHEN)
    with pytest.raises(ValueError, match="not found"):
        build_report(
            workbench, references, questioned.with_name("missing.png"), verdict, generated_at=WHEN
        )
    with pytest.raises(ValueError, match="attribution map"):
        build_report(
            workbench,
            references,
            questioned,
            verdict,
            attribution=np.zeros((5, 5)),
            generated_at=WHEN,
        )


def test_report_for_a_person_to_look_at(page, output_dir):
    (output_dir / "examiner_report.html").write_text(page, encoding="utf-8")


def test_old_reports_are_removed_when_a_new_one_is_written(tmp_path):
    import os
    import time

    from workbench.verification.views import prune

    old, new = tmp_path / "report-old", tmp_path / "report-new"
    for folder in (old, new):
        folder.mkdir()
        (folder / "r.html").write_text("<html></html>")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert prune(tmp_path, max_age_s=3600) == 1
    assert not old.exists() and (new / "r.html").is_file()
