"""The likelihood ratio shown with a verdict (workbench/verification/evidence.py), by hand."""

import math
import shutil

import numpy as np
import pytest

from workbench.verification.calibration import Calibration, choose_calibration
from workbench.verification.evidence import evidence, evidence_markdown


def _calibration(alternative: str, references: int, slope: float = 1.0) -> Calibration:
    return Calibration(
        alternative=alternative,
        references=references,
        slope=slope,
        intercept=0.0,
        bounds=(-2.0, 2.0),
        n_same=100,
        n_different=99,
        cllr=0.4,
        cllr_min=0.3,
        data="validation writers of X",
    )


STORED = [_calibration("skilled", 1), _calibration("random", 1), _calibration("skilled", 5, 2.0)]


def test_evidence_by_hand_and_bounded():
    found = evidence(STORED, 0.9, references=1)
    assert [e.alternative for e in found] == ["skilled", "random"]
    skilled = found[0]
    assert skilled.log10_lr == pytest.approx(math.log(9) / math.log(10))  # logit(0.9) = ln 9
    assert skilled.lr == pytest.approx(9.0) and skilled.lr_text() == "LR 9.00"
    assert skilled.verbal == "weak support for: the reference writer wrote it"
    assert not skilled.at_bound and "simulation" in skilled.h2 and "another" in found[1].h2
    # A score of 0.999 would say LR 999: the validation data support 100 at most.
    high = evidence(STORED, 0.999, references=1)[0]
    assert high.at_bound and high.log10_lr == 2.0 and high.lr_text() == "LR 100"
    low = evidence(STORED, 0.02, references=1)[0]
    assert low.lr_text() == "LR 1/49.0" and low.verbal.endswith("a skilled forgery")


def test_the_calibration_for_the_references_given_is_used():
    assert choose_calibration(STORED, "skilled", 7).references == 5
    assert choose_calibration(STORED, "skilled", 3).references == 1
    assert choose_calibration(STORED, "random", 5).references == 1
    assert choose_calibration(STORED, "skilled", 0) is None
    five = evidence(STORED, 0.9, references=5)
    assert five[0].log10_lr == pytest.approx(2 * math.log10(9)) and five[0].at_bound is False
    assert evidence([], 0.9, references=1) == []


def test_evidence_markdown_states_hypotheses_calibration_and_bounds():
    text = evidence_markdown(evidence(STORED, 0.9, references=2), references=2)
    assert "LR 9.00" in text and "Cllr 0.400" in text and "Cllr_min 0.300" in text
    assert "fitted for 1 reference(s) (you gave 2)" in text and "1/100 .. 100" in text
    assert "H1: the questioned signature was written by the writer" in text
    assert "not the probability that the signature is genuine" in text
    assert evidence_markdown([], references=1) == ""


def test_the_workbench_reads_calibrations_from_the_card_and_the_verdict_shows_them(
    tiny_verifier, tmp_path, signature
):
    from workbench.ui.verify_tab import _verdict_markdown
    from workbench.verification.workbench import Workbench

    plain = Workbench(tiny_verifier.weights)
    verdict = plain.verify([signature], signature)
    assert plain.calibrations == [] and plain.evidence(verdict) == []
    assert "decision rule" in _verdict_markdown(verdict, 1) and "LR" not in _verdict_markdown(
        verdict, 1
    )
    calibrations = {"calibration": [c.to_dict() for c in STORED]}
    calibrated = Workbench(tiny_verifier.save(tmp_path / "w", extra=calibrations))
    assert calibrated.calibrations == STORED
    verdict = calibrated.verify([signature], signature)
    found = calibrated.evidence(verdict)
    expected = STORED[0].log10_lr([verdict.score])[0]
    assert found[0].log10_lr == pytest.approx(float(np.clip(expected, -2, 2)))
    shown = _verdict_markdown(verdict, 1, found)
    assert "decision rule" in shown and found[0].lr_text() in shown


def test_the_report_states_the_evidence_and_the_warnings(tiny_verifier, tmp_path, signature):
    import cv2

    from workbench.verification.copies import fit_copy_check
    from workbench.verification.report import build_report
    from workbench.verification.workbench import Workbench

    reference, questioned = tmp_path / "reference.png", tmp_path / "questioned.png"
    cv2.imwrite(str(reference), signature)
    shutil.copy(reference, questioned)  # the questioned file is a copy of the reference
    plain = Workbench(tiny_verifier.weights)
    page = build_report(plain, [reference], questioned, plain.verify([reference], questioned))
    assert "<h2>Evidence</h2>" in page and "carry no likelihood-ratio calibration" in page
    extra = {
        "calibration": [c.to_dict() for c in STORED],
        "copy_check": fit_copy_check([0.4, 0.6]).to_dict(),
    }
    bench = Workbench(tiny_verifier.save(tmp_path / "w", extra=extra))
    verdict = bench.verify([reference], questioned)
    page = build_report(bench, [reference], questioned, verdict)
    found = bench.evidence(verdict)
    assert found[0].lr_text() in page and found[1].lr_text() in page
    assert "ENFSI verbal" in page and "POSSIBLE COPY OR TRACING" in page
    assert "a decision rule, not evidence" in page


def test_a_corpus_calibration_population_is_chosen_by_name_and_never_mixed():
    import dataclasses

    from workbench.verification.calibration import populations

    bengali = [
        dataclasses.replace(c, slope=3.0, population="BHSig260-Bengali", data="B only")
        for c in STORED
    ]
    stored = STORED + bengali
    assert populations(stored) == ["", "BHSig260-Bengali"]
    assert populations(bengali) == ["BHSig260-Bengali"]
    pooled = evidence(stored, 0.8, references=5)
    own = evidence(stored, 0.8, references=5, population="BHSig260-Bengali")
    assert [e.calibration.population for e in pooled] == ["", ""]
    assert [e.calibration.population for e in own] == ["BHSig260-Bengali"] * 2
    assert own[0].calibration.references == 5 and own[0].calibration.data == "B only"
    # slope 3 against 2 on the same score: the own population's LR, not the pooled one's
    assert own[0].log10_lr == pytest.approx(1.5 * pooled[0].log10_lr)
    assert choose_calibration(stored, "skilled", 5, "Dutch") is None
    with pytest.raises(ValueError, match="No calibration was fitted on 'Dutch'"):
        evidence(stored, 0.8, references=5, population="Dutch")
    # A record written before populations existed reads as the pooled one.
    old = STORED[0].to_dict()
    del old["population"]
    assert Calibration.from_dict(old).population == ""


def test_the_verify_tab_and_report_use_the_population_chosen(tiny_verifier, tmp_path, signature):
    import dataclasses

    import cv2
    import gradio as gr

    from workbench.ui.verify_tab import POOLED, report, verify_data
    from workbench.verification.workbench import Workbench

    reference = tmp_path / "reference.png"
    cv2.imwrite(str(reference), signature)
    own = [
        dataclasses.replace(c, slope=3.0, population="Corpus A", data="Corpus A only")
        for c in STORED
    ]
    extra = {"calibration": [c.to_dict() for c in STORED + own]}
    bench = Workbench(tiny_verifier.save(tmp_path / "w", extra=extra))
    assert bench.populations == ["", "Corpus A"]
    pooled = verify_data(bench, [str(reference)], str(reference))
    chosen = verify_data(bench, [str(reference)], str(reference), population="Corpus A")
    assert pooled["calibration_population"] == POOLED
    assert chosen["calibration_population"] == "Corpus A"
    assert pooled["score"] == chosen["score"]
    assert chosen["evidence"][0]["log10_lr"] != pooled["evidence"][0]["log10_lr"]
    with pytest.raises(gr.Error, match="No likelihood-ratio calibration is named 'Corpus B'"):
        verify_data(bench, [str(reference)], str(reference), population="Corpus B")
    page = open(report(bench, [str(reference)], str(reference), None, population="Corpus A"))
    text = page.read()
    page.close()
    expected = bench.evidence(bench.verify([str(reference)], str(reference)), "Corpus A")
    assert expected[0].lr_text() in text and expected[0].calibration.population == "Corpus A"
    assert "Corpus A only" in text and "validation writers of X" not in text


def test_a_workbench_with_a_writer_space_fuses_it_into_the_likelihood_ratio(
    tiny_verifier, tmp_path
):
    import html

    import cv2

    from tests.conftest import synthetic_signature
    from workbench.verification.calibration import fit_calibration
    from workbench.verification.scoring import writer_space_similarity
    from workbench.verification.workbench import Workbench
    from workbench.verification.writer_space import embed_images, fit_writer_space, similarity

    size = tiny_verifier.size
    model = tiny_verifier.load()
    images = np.stack([cv2.resize(synthetic_signature(s), (size, size)) for s in range(12)])
    space = fit_writer_space(embed_images(model, images), [f"w{s % 4}" for s in range(12)])
    rng = np.random.default_rng(0)
    fused = fit_calibration(
        rng.random(50), rng.random(50), alternative="skilled", references=1,
        similarities_same=rng.uniform(0.2, 1, 50), similarities_different=rng.uniform(-1, 0.3, 50),
    )  # fmt: skip
    assert fused.uses_writer_space
    extra = {"writer_space": space.to_dict(), "calibration": [fused.to_dict()]}
    bench = Workbench(tiny_verifier.save(tmp_path / "fused", extra=extra))
    assert bench.writer_space is not None
    refs, questioned = [images[0], images[4]], images[1]
    verdict = bench.verify(refs, questioned)
    normalized = np.stack(verdict.references)
    expected = similarity(
        space, embed_images(model, normalized), embed_images(model, verdict.questioned[None])
    )
    assert verdict.similarity == pytest.approx(expected, abs=1e-4)
    assert -1.0 <= verdict.similarity <= 1.0
    # taken again from the feature cache: the same similarity (the space as stored, rounded)
    hits = bench.feature_cache.hits
    again = writer_space_similarity(
        bench.model, bench.writer_space, normalized, verdict.questioned, cache=bench.feature_cache
    )
    assert bench.feature_cache.hits == hits + 3  # 2 references and the questioned signature
    assert again == pytest.approx(verdict.similarity, abs=1e-9)
    found = bench.evidence(verdict)
    assert len(found) == 1 and found[0].calibration.uses_writer_space
    assert found[0].log10_lr == pytest.approx(
        float(fused.log10_lr([verdict.score], [verdict.similarity])[0])
    )
    from workbench.ui.verify_tab import _verdict_markdown
    from workbench.verification.report import build_report

    shown = _verdict_markdown(verdict, 2, found)
    assert f"**{verdict.similarity:+.3f}**" in shown and "2 references together" in shown
    assert found[0].calibration.score_used in shown
    files = [tmp_path / f"{i}.png" for i in range(3)]
    for path, image in zip(files, [images[0], images[4], images[1]]):
        cv2.imwrite(str(path), image)
    on_files = bench.verify(files[:2], files[2])
    page = build_report(bench, files[:2], files[2], on_files)
    assert f"<b>{on_files.similarity:+.3f}</b>" in page
    section = page[page.index("<h2>Evidence</h2>") :]
    found_on_files = bench.evidence(on_files)
    assert found_on_files[0].lr_text() in section
    assert html.escape(found_on_files[0].calibration.score_used) in section
    from workbench.ui.verify_tab import verify_data

    data = verify_data(bench, [str(f) for f in files[:2]], str(files[2]))
    assert data["writer_space_similarity"] == pytest.approx(on_files.similarity, abs=1e-6)
    assert data["evidence"][0]["log10_lr"] == pytest.approx(found_on_files[0].log10_lr, abs=1e-4)
    # the same calibration without the writer space cannot be used: an error, not a guess
    lacking = Workbench(
        tiny_verifier.save(tmp_path / "lacking", extra={"calibration": [fused.to_dict()]})
    )
    verdict = lacking.verify(refs, questioned)
    assert verdict.similarity is None
    with pytest.raises(ValueError, match="need the writer space"):
        lacking.evidence(verdict)
    import gradio as gr

    with pytest.raises(gr.Error, match="need the writer space"):
        verify_data(lacking, [str(f) for f in files[:2]], str(files[2]))
