"""Preprocessing tab: a signature through eq. 1 and eq. 2-5, with what was measured."""

from __future__ import annotations

import gradio as gr

from workbench.config import EXAMPLES_DIR
from workbench.errors import SignatureInputError
from workbench.intake.cleaning import CleaningConfig
from workbench.intake.signatures import KINDS
from workbench.ui.inputs import file_paths, intake_view
from workbench.ui.wiring import bind
from workbench.verification.report import intake_note
from workbench.verification.workbench import Workbench

EXAMPLES = EXAMPLES_DIR


def _record_table(record) -> list[list[str]]:
    r = record
    return [
        ["input size (H x W)", f"{r.original_height} x {r.original_width} px"],
        ["foreground threshold (Otsu)", f"grey <= {r.foreground_threshold:.0f}"],
        ["foreground pixels", f"{r.foreground_pixels}"],
        ["foreground mean / std before eq. 1", f"{r.foreground_mean:.1f} / {r.foreground_std:.1f}"],
        ["centroid (x_c, y_c)", f"({r.centroid_x:.1f}, {r.centroid_y:.1f}) px"],
        ["alpha (eq. 4)", f"{r.alpha:.4f}"],
        ["anti-alias sigma", f"{r.antialias_sigma:.2f} px"],
        ["output size", f"{r.output_height} x {r.output_width} px"],
    ]


STAGES = {
    "flatten illumination": "flatten",
    "deskew": "deskew",
    "remove lines": "remove_lines",
    "crop to the ink": "crop",
}


def normalize(
    workbench: Workbench,
    path,
    kind: str = "auto",
    stages: list[str] | None = None,
    candidate: float = 1,
):
    """The loaded image (a page: with the box the signature was taken from), the cleaning
    stages, the eq. 1 and eq. 2-5 images and what was measured (``/normalize``). ``kind``:
    ``auto``, ``signature`` or ``page``; ``stages``: the cleaning stages switched on (default
    all); ``candidate``: which of a page's signatures (1 = best)."""
    paths = file_paths(path)
    if not paths:
        raise gr.Error(
            "Upload a signature, a page or a PDF first (PNG, JPEG, TIFF, BMP, WebP, PDF)."
        )
    chosen = list(STAGES) if stages is None else list(stages)
    unknown = [s for s in chosen if s not in STAGES]
    if unknown or kind not in KINDS:
        raise gr.Error(
            f"Unknown choice {unknown or kind!r}: stages are {', '.join(STAGES)}; kinds are "
            f"{', '.join(KINDS)}."
        )
    cleaning = CleaningConfig(**{flag: name in chosen for name, flag in STAGES.items()})
    try:
        number = int(candidate or 1)
        result = workbench.normalize(paths[0], kind=kind, choice=number, cleaning=cleaning)
    except (SignatureInputError, ValueError) as error:
        raise gr.Error(str(error)) from None
    steps = [(step.image, f"{step.name}: {step.detail}") for step in result.intake.steps]
    table = _record_table(result.record)
    table.insert(0, ["signature taken from", intake_note(result.intake)])
    return intake_view(result.intake), steps, result.grayscale, result.image, table


def create_tab(workbench: Workbench) -> None:
    """The tab's components and events; call inside a ``gr.Blocks`` context."""
    with gr.Tab("Preprocess"):
        gr.Markdown(
            "Every signature goes through the paper's preprocessing before the network sees it: "
            "**grayscale normalization** (eq. 1: stroke grey levels to mean 30 and std 10, paper "
            "to white) and **moment normalization** (eq. 2-5: the strokes' centroid to the centre "
            "and their spread scaled to fill 224 x 224). Before them, **cleaning** takes what "
            "users have to a clean signature: uneven light is flattened, ruled or squared "
            "paper straightened and its lines removed, and the image cropped to the ink; each "
            "stage acts only where it finds something to do, so a clean crop passes unchanged. "
            "A **page or PDF** is searched for the signature first (printed text, lines and "
            "stamps are passed over)."
        )
        with gr.Row():
            source = gr.File(
                label="Signature, page or PDF",
                file_count="single",
                file_types=["image", ".pdf"],
                elem_id="pp-input",
            )
            original = gr.Image(
                label="Loaded (grey levels; a page: the signature's box in red)",
                type="numpy",
                interactive=False,
                elem_id="pp-original",
            )
        with gr.Row():
            kind = gr.Radio(
                list(KINDS),
                value="auto",
                label="The file is (auto: a PDF or a page-shaped image is searched)",
                elem_id="pp-kind",
            )
            stages = gr.CheckboxGroup(
                list(STAGES), value=list(STAGES), label="Cleaning stages", elem_id="pp-stages"
            )
            candidate = gr.Number(
                value=1,
                precision=0,
                minimum=1,
                label="Candidate on a page (1 = best)",
                elem_id="pp-candidate",
            )
        cleaned = gr.Gallery(
            label="Cleaning, stage by stage (what each found)",
            columns=4,
            height=240,
            elem_id="pp-cleaning",
        )
        with gr.Row():
            grayscale = gr.Image(
                label="After eq. 1", type="numpy", interactive=False, elem_id="pp-grayscale"
            )
            normalized = gr.Image(
                label="After eq. 2-5 (224 x 224)",
                type="numpy",
                interactive=False,
                elem_id="pp-normalized",
            )
        table = gr.Dataframe(
            headers=["measurement", "value"],
            label="What was measured",
            interactive=False,
            elem_id="pp-record",
        )
        button = gr.Button("Normalize", variant="primary", elem_id="pp-run")
        examples = sorted(str(p) for p in EXAMPLES.glob("*.png"))
        examples += [str(p) for p in EXAMPLES.glob("page_*.jpg")]  # a photographed document
        if examples:
            gr.Examples(examples=examples, inputs=source, label="Synthetic examples")
        button.click(
            bind(normalize, workbench),
            inputs=[source, kind, stages, candidate],
            outputs=[original, cleaned, grayscale, normalized, table],
            api_name="normalize",
        )
