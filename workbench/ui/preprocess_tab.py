"""Preprocessing tab: a signature through eq. 1 and eq. 2-5, with what was measured."""

from __future__ import annotations

import gradio as gr
import numpy as np

from workbench.config import EXAMPLES_DIR
from workbench.errors import SignatureInputError
from workbench.ui.wiring import bind
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


def normalize(
    workbench: Workbench, path: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[str]]]:
    """The loaded, eq. 1 and eq. 2-5 images and what was measured (``/normalize``)."""
    if not path:
        raise gr.Error("Upload a signature image first (PNG, JPEG, TIFF, BMP or WebP).")
    try:
        result = workbench.normalize(path)
    except SignatureInputError as error:
        raise gr.Error(str(error)) from None
    return result.original, result.grayscale, result.image, _record_table(result.record)


def create_tab(workbench: Workbench) -> None:
    """The tab's components and events; call inside a ``gr.Blocks`` context."""
    with gr.Tab("Preprocess"):
        gr.Markdown(
            "Every signature goes through the paper's preprocessing before the network sees it: "
            "**grayscale normalization** (eq. 1: stroke grey levels to mean 30 and std 10, paper "
            "to white) and **moment normalization** (eq. 2-5: the strokes' centroid to the centre "
            "and their spread scaled to fill 224 x 224)."
        )
        with gr.Row():
            source = gr.Image(
                label="Signature",
                type="filepath",
                sources=["upload", "clipboard"],
                elem_id="pp-input",
            )
            original = gr.Image(
                label="Loaded (grey levels)", type="numpy", interactive=False, elem_id="pp-original"
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
        if examples:
            gr.Examples(examples=examples, inputs=source, label="Synthetic examples")
        button.click(
            bind(normalize, workbench),
            inputs=source,
            outputs=[original, grayscale, normalized, table],
            api_name="normalize",
        )
