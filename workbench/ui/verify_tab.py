"""Verify tab: one or more reference signatures against a questioned one; explanations on request."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import matplotlib.pyplot as plt

from workbench.errors import SignatureInputError
from workbench.overlays import cross_attention_figure, overlay_heatmap
from workbench.pipeline import Workbench

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _paths(files) -> list[str]:
    if not files:
        return []
    items = files if isinstance(files, list) else [files]
    return [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in items]


def _verdict_markdown(verdict, n_refs: int) -> str:
    label = "GENUINE (same writer)" if verdict.genuine else "NOT GENUINE (forgery or another writer)"
    colour = "#1a7f37" if verdict.genuine else "#b42318"
    aggregate = f"mean of {n_refs} references" if n_refs > 1 else "one reference"
    return (
        f"<h2 style='color:{colour}' id='verdict-label'>{label}</h2>\n\n"
        f"**Score {verdict.score:.4f}** ({aggregate}) against threshold **{verdict.threshold:.4f}**: "
        f"accepted when score >= threshold. The score is the network's probability that both "
        f"signatures come from the same writer."
    )


def create_tab(workbench: Workbench) -> None:
    """The tab's components and events; call inside a ``gr.Blocks`` context."""
    has_model = workbench.model is not None
    validation = workbench.meta.get("validation", {})

    def verify(references, questioned, threshold):
        paths = _paths(references)
        if not paths:
            raise gr.Error("Add at least one reference signature.")
        if not questioned:
            raise gr.Error("Add the questioned signature.")
        try:
            verdict = workbench.verify(paths, questioned, threshold=threshold)
        except (SignatureInputError, ValueError) as error:
            raise gr.Error(str(error)) from None
        table = [[Path(p).name, f"{s:.4f}", "accept" if s >= verdict.threshold else "reject"] for p, s in zip(paths, verdict.scores)]
        gallery = [(img, f"reference {i + 1}") for i, img in enumerate(verdict.references)]
        return _verdict_markdown(verdict, len(paths)), gallery, verdict.questioned, table

    def explain(references, questioned):
        paths = _paths(references)
        if not paths or not questioned:
            raise gr.Error("Add a reference and a questioned signature first.")
        try:
            result = workbench.explain(paths[0], questioned)
        except (SignatureInputError, ValueError) as error:
            raise gr.Error(str(error)) from None
        overlays = []
        for i, maps in enumerate(result.block_maps, start=1):
            if maps is None:
                continue
            overlays.append((overlay_heatmap(result.reference, maps[0]), f"block {i}: reference"))
            overlays.append((overlay_heatmap(result.questioned, maps[1]), f"block {i}: questioned"))
        figure = None
        if result.cross_attention is not None:
            figure = cross_attention_figure(*result.cross_attention)
            plt.close(figure)
        return overlays, figure

    with gr.Tab("Verify"):
        if not has_model:
            gr.Markdown("**No verifier weights found** (`weights/verifier.safetensors`): verification is unavailable.")
            return
        gr.Markdown(
            "Give one or more **reference** signatures known to be genuine and the **questioned** "
            "signature. Each reference is scored against the questioned signature; the decision uses "
            "the mean score."
        )
        with gr.Row():
            references = gr.File(label="Reference signature(s)", file_count="multiple", file_types=["image"], elem_id="v-refs")
            questioned = gr.Image(label="Questioned signature", type="filepath", sources=["upload", "clipboard"], elem_id="v-questioned")
        default = float(validation.get("threshold", 0.5))
        threshold = gr.Slider(0.0, 1.0, value=default, step=0.001, label="Threshold (default: chosen on validation writers)", elem_id="v-threshold")
        run = gr.Button("Verify", variant="primary", elem_id="v-run")
        verdict = gr.Markdown(elem_id="v-verdict")
        with gr.Row():
            ref_gallery = gr.Gallery(label="Normalized references (eq. 1-5)", columns=4, height=240, elem_id="v-ref-norm")
            query_image = gr.Image(label="Normalized questioned", type="numpy", interactive=False, elem_id="v-query-norm")
        scores = gr.Dataframe(headers=["reference", "score", "this reference alone"], label="Per-reference scores", interactive=False, elem_id="v-scores")
        explain_button = gr.Button("Explain (attention heatmaps and cross-attention)", elem_id="v-explain")
        heatmaps = gr.Gallery(label="Difference SimAM heatmap after each dense block", columns=4, height=320, elem_id="v-heatmaps")
        cross = gr.Plot(label="Cross-attention between the 21 SPP cells of both signatures", elem_id="v-cross")
        if (EXAMPLES / "writer1_genuine_1.png").exists():
            gr.Examples(
                examples=[
                    [[str(EXAMPLES / "writer1_genuine_1.png"), str(EXAMPLES / "writer1_genuine_2.png")], str(EXAMPLES / "writer1_genuine_3.png")],
                    [[str(EXAMPLES / "writer1_genuine_1.png"), str(EXAMPLES / "writer1_genuine_2.png")], str(EXAMPLES / "writer1_forgery_1.png")],
                    [[str(EXAMPLES / "writer2_genuine_1.png")], str(EXAMPLES / "writer2_forgery_1.png")],
                ],
                inputs=[references, questioned],
                label="Synthetic examples",
            )
        run.click(verify, inputs=[references, questioned, threshold], outputs=[verdict, ref_gallery, query_image, scores], api_name="verify")
        explain_button.click(explain, inputs=[references, questioned], outputs=[heatmaps, cross], api_name="explain")
