"""Evaluate tab: score an uploaded corpus (.zip, optionally with a CSV of pairs) with the
loaded verifier.
"""

from __future__ import annotations

import gradio as gr

from workbench.errors import SignatureInputError
from workbench.ui.wiring import bind
from workbench.verification.corpus_eval import evaluate_archive
from workbench.verification.workbench import Workbench


def _path(file) -> str | None:
    if not file:
        return None
    return file if isinstance(file, str) else getattr(file, "name", str(file))


def evaluate(
    workbench: Workbench,
    archive,
    pairs_csv,
    progress=gr.Progress(),  # noqa: B008  (Gradio injects the tracker)
):
    """Metrics, ROC, DET, score histogram and per-pair scores CSV of a corpus (``/evaluate``)."""
    if not _path(archive):
        raise gr.Error("Upload a .zip of the corpus first.")
    try:
        result = evaluate_archive(
            workbench,
            _path(archive),
            _path(pairs_csv),
            progress=lambda f, message: progress(f, desc=message),
        )
    except (SignatureInputError, ValueError) as error:
        raise gr.Error(str(error)) from None
    if result.left_out:
        gr.Warning(f"{len(result.left_out)} image(s) could not be preprocessed and were left out.")
    rows = result.metrics.rows() + (result.validity.rows() if result.validity else [])
    return (
        rows,
        result.roc,
        result.det,
        result.histogram,
        result.tippett,
        result.ece,
        str(result.scores_csv),
    )


def create_tab(workbench: Workbench) -> None:
    """The tab's components and events; call inside a ``gr.Blocks`` context."""
    with gr.Tab("Evaluate"):
        if workbench.model is None:
            gr.Markdown(
                "**No verifier weights found** (`weights/verifier.safetensors`): "
                "evaluation is unavailable."
            )
            return
        gr.Markdown(
            "Measure the loaded verifier on your own corpus. Upload a **.zip** of the corpus "
            "folder in any layout the readers know (BHSig names, CEDAR names, "
            "`<writer>/genuine` + `<writer>/forged` folders): every genuine-genuine and "
            "genuine-forgery pair of every writer is scored. Or add a **CSV of pairs** with the "
            "columns `reference`, `questioned`, `label` (1 = genuine pair, 0 = forgery), paths "
            "relative to the zip's root. Accepted as genuine when score >= threshold."
        )
        with gr.Row():
            archive = gr.File(label="Corpus (.zip)", elem_id="e-zip")
            pairs_csv = gr.File(label="Pairs CSV (optional)", elem_id="e-csv")
        run_button = gr.Button("Evaluate", variant="primary", elem_id="e-run")
        table = gr.Dataframe(
            headers=["metric", "value"],
            label="Metrics",
            interactive=False,
            max_height=800,
            elem_id="e-metrics",
        )
        with gr.Row():
            roc = gr.Plot(label="ROC", elem_id="e-roc")
            det = gr.Plot(label="DET", elem_id="e-det")
        histogram = gr.Plot(label="Score histogram", elem_id="e-hist")
        with gr.Row():
            tippett = gr.Plot(
                label="Tippett plot of the calibrated LRs (weights with a calibration)",
                elem_id="e-tippett",
            )
            ece = gr.Plot(label="ECE plot (calibration and discrimination)", elem_id="e-ece")
        scores = gr.File(label="Per-pair scores (CSV)", interactive=False, elem_id="e-csv-out")
        run_button.click(
            bind(evaluate, workbench),
            inputs=[archive, pairs_csv],
            outputs=[table, roc, det, histogram, tippett, ece, scores],
            api_name="evaluate",
        )
