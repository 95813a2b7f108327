"""Verify tab: one or more reference signatures against a questioned one; explanations on
request.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from workbench.config import EXAMPLES_DIR
from workbench.errors import SignatureInputError
from workbench.intake.documents import SEARCHED_PAGES
from workbench.intake.signatures import search_document
from workbench.ui.gpu import on_gpu
from workbench.ui.inputs import drawing_to_file, file_paths, intake_view, shown_file
from workbench.ui.wiring import bind
from workbench.verification.evidence import evidence_markdown
from workbench.verification.examples import examples_label, load_rows, load_share
from workbench.verification.fusion import LOCAL_PATCH
from workbench.verification.report import intake_note
from workbench.verification.views import (
    DEFAULT_METHOD,
    METHODS,
    examiner_report,
    explanation_views,
)
from workbench.verification.workbench import Workbench

EXAMPLES = EXAMPLES_DIR
# Verdicts answered at once: while one request's network runs (torch, outside Python's lock),
# others' uploads and intake go on (issue 15, 20 users on 2 cores: /verify 15.6-16.6 calls/s
# at 3, 13.7 at 2, 7.6 at 1; README). Scoring only reads the model (``Workbench.model_use``);
# every other event stays one at a time.
VERDICTS_AT_ONCE = 3
POOLED = "all validated corpora (pooled)"


def _population(workbench: Workbench, value) -> str:
    """The calibration population chosen (``POOLED`` or none -> "", the pooled one), or
    gr.Error for one the weights do not carry."""
    if value in (None, "", POOLED):
        return ""
    if value not in workbench.populations:
        known = ", ".join([POOLED, *(p for p in workbench.populations if p)])
        raise gr.Error(
            f"No likelihood-ratio calibration is named '{value}'. Choose one of: {known}."
        )
    return str(value)


def _inputs(references, drawn_reference, questioned, drawn_questioned) -> tuple[list[str], str]:
    """The reference paths (uploads, then the drawing) and the questioned path, or gr.Error."""
    paths = file_paths(references)
    drawn = drawing_to_file(drawn_reference)
    if drawn:
        paths.append(drawn)
    if not paths:
        raise gr.Error("Add at least one reference signature (upload it or draw it).")
    uploaded = file_paths(questioned)
    drawn_query = drawing_to_file(drawn_questioned)
    if uploaded and drawn_query:
        raise gr.Error(
            "Give the questioned signature once: either upload it or draw it (clear the other)."
        )
    query = uploaded[0] if uploaded else drawn_query
    if not query:
        raise gr.Error("Add the questioned signature (upload it or draw it).")
    return paths, query


def rates_markdown(workbench: Workbench, threshold: float) -> str:
    """The validation writers' error rates at ``threshold``, from the weights' JSON."""
    rates = workbench.validation_rates(threshold)
    if rates is None:
        return "_The weights carry no validation curve: FAR/FRR at this threshold are unknown._"
    return (
        f"On the validation writers at threshold {rates['threshold']:.3f}: "
        f"**FAR {100 * rates['far']:.1f}%** (forgeries accepted, of {rates['n_forged']}), "
        f"**FRR {100 * rates['frr']:.1f}%** (genuine signatures rejected, of {rates['n_genuine']})."
    )


def _verdict_markdown(
    verdict, n_refs: int, evidence: list | None = None, copy=None, conditions=None
) -> str:
    label = (
        "GENUINE (same writer)" if verdict.genuine else "NOT GENUINE (forgery or another writer)"
    )
    colour = "#1a7f37" if verdict.genuine else "#b42318"
    aggregate = f"mean of {n_refs} references" if n_refs > 1 else "one reference"
    together = f"{n_refs} references together" if n_refs > 1 else "reference"
    warning = (
        f"<p id='copy-warning' style='color:#b42318'><b>{copy.message()}</b></p>\n\n"
        if copy is not None and copy.flagged
        else ""
    )
    if conditions is not None and conditions.outside:
        warning += (
            f"<p id='conditions-warning' style='color:#b42318'><b>{conditions.message()}</b>"
            "</p>\n\n"
        )
    return (
        f"<h2 style='color:{colour}' id='verdict-label'>{label}</h2>\n\n"
        + warning
        + f"**Score {verdict.score:.4f}** ({aggregate}) against threshold "
        f"**{verdict.threshold:.4f}**: "
        f"accepted when score >= threshold. "
        + (
            "Each reference's score fuses the network's probability that both signatures come "
            "from the same writer with their shape correlation (the normalized images' ink, "
            "best of small shifts)"
            + (
                f" and their local shape correlation (each {LOCAL_PATCH} px patch's ink at its "
                "best place nearby)"
                if verdict.local_shapes
                else ""
            )
            + ", weighted as fitted on validation writers (table below)."
            if verdict.fused
            else "The score is the network's probability that both signatures come from the "
            "same writer."
        )
        + (
            f" Writer space: the questioned signature's similarity to the {together}"
            f" is **{verdict.similarity:+.3f}** (-1 .. 1; the backbone's features, projected "
            "to keep each training writer's signatures together)."
            if verdict.similarity is not None
            else ""
        )
        + " This verdict is a *decision rule*, not evidence"
        + (": the likelihood ratios below are." if evidence else ".")
        + ("\n\n" + evidence_markdown(evidence, n_refs) if evidence else "")
    )


def verify(
    workbench: Workbench,
    references,
    questioned,
    threshold,
    drawn_reference=None,
    drawn_questioned=None,
    candidate=1,
    population=POOLED,
):
    """The verdict, the given and normalized images and the per-reference scores (``/verify``).
    A page or PDF is searched for signatures: references use the best candidate, the
    questioned signature the ``candidate``-th (1 = best; ``/find_signatures`` lists them).
    ``population``: whose validation writers the likelihood ratios are calibrated on."""
    paths, questioned = _inputs(references, drawn_reference, questioned, drawn_questioned)
    chosen = _population(workbench, population)
    verdict = _verdict(workbench, paths, questioned, threshold, candidate)
    table = [
        [Path(p).name, intake_note(i), f"{s:.4f}", "accept" if s >= verdict.threshold else "reject"]
        + _parts(verdict, n)
        for n, (p, i, s) in enumerate(zip(paths, verdict.intakes, verdict.scores))
    ]
    gallery = [(shown_file(img), f"reference {i + 1}") for i, img in enumerate(verdict.references)]
    originals = [
        (_as_given(path, intake), f"reference {i + 1}: {Path(path).name}")
        for i, (path, intake) in enumerate(zip(paths, verdict.intakes))
    ]
    return (
        _verdict_markdown(
            verdict,
            len(paths),
            _evidence(workbench, verdict, chosen),
            workbench.copy_flag(verdict),
            workbench.conditions_check(verdict),
        ),
        originals,
        gallery,
        _as_given(questioned, verdict.intakes[-1]),
        shown_file(verdict.questioned),
        table,
    )


def _parts(verdict, index: int) -> list[str]:
    """The network score and the shape correlations of one reference's pair ("-" for a
    correlation the score does not use: without a fusion the score is the network's)."""
    if not verdict.fused:
        return [f"{verdict.scores[index]:.4f}", "-", "-"]
    local = verdict.local_shapes[index] if verdict.local_shapes else None
    return [
        f"{verdict.network_scores[index]:.4f}",
        f"{verdict.shapes[index]:+.3f}",
        "-" if local is None else f"{local:+.3f}",
    ]


def _verdict(workbench: Workbench, paths: list[str], questioned: str, threshold, candidate):
    """``Workbench.verify`` with the ``candidate``-th signature of a questioned page; its
    errors as ``gr.Error``."""
    try:
        return workbench.verify(
            paths, questioned, threshold=threshold, questioned_choice=_candidate(candidate)
        )
    except (SignatureInputError, ValueError) as error:
        raise gr.Error(str(error)) from None


def _evidence(workbench: Workbench, verdict, population: str) -> list:
    """``Workbench.evidence``; its errors (weights whose calibration and writer space do not
    match) as ``gr.Error``."""
    try:
        return workbench.evidence(verdict, population)
    except ValueError as error:
        raise gr.Error(str(error)) from None


def _as_given(path: str, intake):
    """What the user gave, for display: the file itself (no re-encoding) when the signature is
    the whole image, else the page with the box it was taken from."""
    if intake is None or intake.found is None:  # a PDF is always searched: found is set
        return path
    return shown_file(intake_view(intake))


def verify_data(
    workbench: Workbench, references, questioned, threshold=None, candidate=1, population=POOLED
):
    """The verdict as data, without images (``/verify_data``): for programs that want the
    decision, the per-reference scores and the likelihood ratios, not the pictures."""
    paths, questioned_path = _inputs(references, None, questioned, None)
    chosen = _population(workbench, population)
    verdict = _verdict(workbench, paths, questioned_path, threshold, candidate)
    copy, conditions = workbench.copy_flag(verdict), workbench.conditions_check(verdict)
    return {
        "score": round(verdict.score, 6),
        "threshold": verdict.threshold,
        "decision_rule": "score >= threshold: same writer",
        "same_writer": verdict.genuine,
        "references": [
            {
                "file": Path(p).name,
                "taken_from": intake_note(i),
                "score": round(s, 6),
                # the score's parts: the network's probability and, where the weights fuse
                # them, the shape correlations (None: the score does not use it)
                "network_score": round(n, 6),
                "shape_correlation": None if c is None else round(c, 6),
                "local_shape_correlation": None if local is None else round(local, 6),
            }
            for p, i, s, n, c, local in zip(
                paths,
                verdict.intakes,
                verdict.scores,
                verdict.network_scores or verdict.scores,
                verdict.shapes or (None,) * len(verdict.scores),
                verdict.local_shapes or (None,) * len(verdict.scores),
            )
        ],
        "evidence": [
            {
                "alternative": e.alternative,
                "log10_lr": round(e.log10_lr, 4),
                "verbal": e.verbal,
                "at_bound": e.at_bound,
            }
            for e in _evidence(workbench, verdict, chosen)
        ],  # fmt: skip
        "calibration_population": chosen or POOLED,
        # the writer space's similarity to the references together (None without one)
        "writer_space_similarity": (
            None if verdict.similarity is None else round(verdict.similarity, 6)
        ),
        # the warnings the page shows: outside validated conditions (None: the weights carry
        # no conditions), a possible copy or tracing, each message in words
        "outside_validated_conditions": None if conditions is None else conditions.outside,
        "possible_copy": None if copy is None else copy.flagged,
        "warnings": [x.message() for x in (copy, conditions) if x is not None and x.message()],
    }


def _candidate(value) -> int:
    try:
        number = int(value or 1)
    except (TypeError, ValueError):
        raise gr.Error("The candidate must be a whole number, 1 for the best.") from None
    if number < 1:
        raise gr.Error("The candidate must be 1 (the best) or more.")
    return number


def find_signatures(questioned):
    """The candidate signatures on the questioned page or PDF, best first
    (``/find_signatures``): a gallery of crops and a table of where each lies."""
    uploaded = file_paths(questioned)
    if not uploaded:
        raise gr.Error("Upload the questioned page (image or PDF) first.")
    try:
        found = search_document(uploaded[0])
    except SignatureInputError as error:
        raise gr.Error(str(error)) from None
    gallery = [(f.crop, f.label()) for f in found]
    rows = [
        [f.rank, f.page.number, *f.candidate.box, f"{f.candidate.score:.2f}", f.page.sha256[:16]]
        for f in found
    ]
    return gallery, rows, 1


def pick_candidate(event: gr.SelectData) -> int:
    """The candidate number of the gallery item clicked."""
    return int(event.index) + 1


def explain(
    workbench: Workbench,
    references,
    questioned,
    method=DEFAULT_METHOD,
    drawn_reference=None,
    drawn_questioned=None,
    candidate=1,
):
    """Heatmaps, cross-attention and attribution for the first reference (``/explain``)."""
    paths, questioned = _inputs(references, drawn_reference, questioned, drawn_questioned)
    try:
        return explanation_views(
            workbench, paths[0], questioned, method, questioned_choice=_candidate(candidate)
        )
    except (SignatureInputError, ValueError) as error:
        raise gr.Error(str(error)) from None


def report(
    workbench: Workbench,
    references,
    questioned,
    threshold,
    method=DEFAULT_METHOD,
    drawn_reference=None,
    drawn_questioned=None,
    candidate=1,
    population=POOLED,
):
    """The path of the examiner's self-contained HTML report (``/report``)."""
    paths, questioned = _inputs(references, drawn_reference, questioned, drawn_questioned)
    chosen = _population(workbench, population)
    try:
        choice = _candidate(candidate)
        return str(examiner_report(workbench, paths, questioned, threshold, method, choice, chosen))
    except (SignatureInputError, ValueError) as error:
        raise gr.Error(str(error)) from None


def validation_rates(workbench: Workbench, t: float) -> str:
    """``rates_markdown`` for the slider's value (``/validation_rates``; the API calls it ``t``)."""
    return rates_markdown(workbench, t)


def create_tab(workbench: Workbench) -> None:
    """The tab's components and events; call inside a ``gr.Blocks`` context."""
    has_model = workbench.model is not None

    with gr.Tab("Verify"):
        if not has_model:
            gr.Markdown(
                "**No verifier weights found** (`weights/verifier.safetensors`): "
                "verification is unavailable."
            )
            return
        gr.Markdown(
            "Give one or more **reference** signatures known to be genuine and the "
            "**questioned** signature. Each reference is scored against the questioned "
            "signature; the decision uses the mean score."
        )
        with gr.Row():
            references = gr.File(
                label="Reference signature(s): crops, pages or PDFs",
                file_count="multiple",
                file_types=["image", ".pdf"],
                elem_id="v-refs",
            )
            # gr.File keeps the uploaded bytes as they are, so the report's SHA-256 is the
            # examiner's file's.
            questioned = gr.File(
                label="Questioned signature: a crop, a page or a PDF",
                file_count="single",
                file_types=["image", ".pdf"],
                elem_id="v-questioned",
            )
        rows = load_rows(EXAMPLES)
        if rows:
            gr.Examples(
                examples=[[row["references"], row["questioned"]] for row in rows],
                inputs=[references, questioned],
                label=examples_label(rows, load_share(EXAMPLES)),
            )
        page_example = EXAMPLES / "page_writer1_genuine_3.jpg"
        if rows and page_example.is_file():
            gr.Examples(
                examples=[[rows[0]["references"], str(page_example)]],
                inputs=[references, questioned],
                label="A questioned signature on a photographed document (synthetic): the "
                "page is searched for the signature",
            )
        with gr.Accordion("Or draw the signatures", open=False):
            with gr.Row():
                drawn_reference = gr.Sketchpad(
                    label=(
                        "Draw a reference (added to the uploaded ones): pick the brush, then draw"
                    ),
                    type="numpy",
                    canvas_size=(600, 240),
                    elem_id="v-draw-ref",
                )
                drawn_questioned = gr.Sketchpad(
                    label="Draw the questioned signature: pick the brush, then draw",
                    type="numpy",
                    canvas_size=(600, 240),
                    elem_id="v-draw-questioned",
                )
        with gr.Accordion("The questioned signature is on a page or in a PDF", open=False):
            gr.Markdown(
                "A scanned page, a photo of a document or a PDF (its first "
                f"{SEARCHED_PAGES} pages) is searched for handwriting; printed text, ruled "
                "lines, boxes and round stamps are passed over. The best candidate is used "
                "unless you pick another below. References given as pages use their best "
                "candidate. Where each signature was taken from (page, box, the file's "
                "SHA-256) is recorded in the report."
            )
            with gr.Row():
                find_button = gr.Button("Find signatures on the questioned file", elem_id="v-find")
                candidate = gr.Number(
                    value=1,
                    precision=0,
                    minimum=1,
                    label="Candidate used as the questioned signature (1 = best; click one below)",
                    elem_id="v-candidate",
                )
            candidates = gr.Gallery(
                label="Candidates, best first", columns=4, height=220, elem_id="v-candidates"
            )
            candidate_table = gr.Dataframe(
                headers=["#", "page", "x0", "y0", "x1", "y1", "score", "file SHA-256 (start)"],
                label="Where each candidate lies (pixels of the page)",
                interactive=False,
                elem_id="v-candidate-table",
            )
        default = workbench.threshold
        threshold = gr.Slider(
            0.0,
            1.0,
            value=default,
            step=0.001,
            label="Threshold (default: chosen on validation writers)",
            elem_id="v-threshold",
        )
        rates = gr.Markdown(rates_markdown(workbench, default), elem_id="v-rates")
        population = gr.Dropdown(
            [POOLED, *(p for p in workbench.populations if p)],
            value=POOLED,
            label="Likelihood ratios calibrated on the validation writers of",
            info="Pooled: every corpus the model was validated on. A single corpus: for cases "
            "whose script, scanner and medium match it (calibration data should represent the "
            "case's conditions).",
            visible=len(workbench.populations) > 1,
            elem_id="v-population",
        )
        run = gr.Button("Verify", variant="primary", elem_id="v-run")
        data_run = gr.Button(visible=False)  # /verify_data: the verdict for programs
        data = gr.JSON(visible=False)
        verdict = gr.Markdown(elem_id="v-verdict")
        with gr.Row():
            ref_originals = gr.Gallery(
                label="References as given", columns=4, height=240, elem_id="v-ref-orig"
            )
            query_original = gr.Image(
                label="Questioned as given (a page: the box the signature was taken from)",
                type="numpy",
                interactive=False,
                height=240,
                elem_id="v-query-orig",
            )
        with gr.Row():
            ref_gallery = gr.Gallery(
                label="Normalized references (eq. 1-5)", columns=4, height=240, elem_id="v-ref-norm"
            )
            query_image = gr.Image(
                label="Normalized questioned",
                type="numpy",
                interactive=False,
                height=240,
                elem_id="v-query-norm",
            )
        scores = gr.Dataframe(
            headers=[
                "reference",
                "signature taken from",
                "score",
                "this reference alone",
                "network score",
                "shape correlation",
                "local shape correlation",
            ],
            label="Per-reference scores",
            interactive=False,
            elem_id="v-scores",
        )
        with gr.Row():
            method = gr.Radio(
                list(METHODS),
                value=DEFAULT_METHOD,
                label="Attribution (captum)",
                elem_id="v-method",
            )
            explain_button = gr.Button(
                "Explain (heatmaps, cross-attention, attribution)", elem_id="v-explain"
            )
            report_button = gr.Button("Examiner's report (HTML)", elem_id="v-report")
        report_file = gr.File(
            label="Examiner's report: self-contained HTML, print it to PDF", elem_id="v-report-file"
        )
        heatmaps = gr.Gallery(
            label="Difference SimAM heatmap after each dense block",
            columns=4,
            height=320,
            elem_id="v-heatmaps",
        )
        with gr.Row():
            cross = gr.Plot(
                label="Cross-attention between the 21 SPP cells of both signatures",
                elem_id="v-cross",
            )
            attribution_image = gr.Image(
                label=(
                    "Attribution on the questioned signature: where the score's log-odds come from"
                ),
                type="numpy",
                interactive=False,
                height=320,
                elem_id="v-attribution",
            )
        drawings = [drawn_reference, drawn_questioned]
        threshold.change(
            bind(validation_rates, workbench),
            inputs=threshold,
            outputs=rates,
            api_name="validation_rates",
            queue=False,
        )
        # on_gpu wraps what Gradio calls, as it did the closures: the bound handler.
        find_button.click(
            find_signatures,
            inputs=questioned,
            outputs=[candidates, candidate_table, candidate],
            api_name="find_signatures",
        )
        candidates.select(pick_candidate, outputs=candidate, api_name=False, queue=False)
        run.click(
            on_gpu(bind(verify, workbench)),
            inputs=[references, questioned, threshold] + drawings + [candidate, population],
            outputs=[verdict, ref_originals, ref_gallery, query_original, query_image, scores],
            api_name="verify",
            concurrency_limit=VERDICTS_AT_ONCE,
        )
        data_run.click(
            on_gpu(bind(verify_data, workbench)),
            inputs=[references, questioned, threshold, candidate, population],
            outputs=data,
            api_name="verify_data",
            concurrency_limit=VERDICTS_AT_ONCE,
        )
        explain_button.click(
            on_gpu(bind(explain, workbench)),
            inputs=[references, questioned, method] + drawings + [candidate],
            outputs=[heatmaps, cross, attribution_image],
            api_name="explain",
        )
        report_button.click(
            on_gpu(bind(report, workbench)),
            inputs=[references, questioned, threshold, method] + drawings + [candidate, population],
            outputs=report_file,
            api_name="report",
        )
