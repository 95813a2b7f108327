"""Signature Workbench, the Gradio app: loads the Workbench once and assembles the tabs."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from workbench.pipeline import Workbench  # noqa: E402
from workbench.ui import preprocess_tab  # noqa: E402

TITLE = "Signature Workbench"


def build_app(workbench: Workbench | None = None) -> gr.Blocks:
    """The whole app, ready to ``launch``."""
    workbench = workbench or Workbench()
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(
            f"# {TITLE}\n"
            "Offline handwritten signature verification, measured and explained. "
            "The verifier, the writer-identification classroom and dataset evaluation arrive "
            "in the next releases; this page shows the preprocessing they all share."
        )
        preprocess_tab.create_tab(workbench)
    demo.queue(default_concurrency_limit=1)
    return demo


if __name__ == "__main__":
    build_app().launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )
