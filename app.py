"""Signature Workbench, the Gradio app: loads the Workbench once and assembles the tabs."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from workbench.config import DEFAULT_VERIFIER  # noqa: E402
from workbench.ui import (  # noqa: E402  # noqa: E402
    evaluate_tab,
    identify_tab,  # noqa: E402
    model_card_tab,
    preprocess_tab,
    verify_tab,
)
from workbench.verification.workbench import Workbench  # noqa: E402

TITLE = "Signature Workbench"
# Uploads larger than this are refused by the server before any of our code reads them (PDFs
# are read up to 50 MB, images up to 40 megapixels: README, "Pages, phone photos and PDFs").
MAX_UPLOAD = "60mb"


def build_app(workbench: Workbench | None = None) -> gr.Blocks:
    """The whole app, ready to ``launch``."""
    if workbench is None:
        weights = os.environ.get("SIGNATURE_WEIGHTS", str(DEFAULT_VERIFIER))
        workbench = Workbench(weights if os.path.exists(weights) else None)
    # Uploaded files and outputs Gradio caches are deleted after an hour, checked every hour.
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# {TITLE}\n"
            "Offline handwritten signature verification, measured and explained: a Siamese "
            "DenseNet-36 with difference SimAM attention and cross-writer attention "
            "(Ling, Zhang, Yin and Liu)."
        )
        verify_tab.create_tab(workbench)
        identify_tab.create_tab(workbench)
        preprocess_tab.create_tab(workbench)
        evaluate_tab.create_tab(workbench)
        model_card_tab.create_tab(workbench)
    demo.queue(default_concurrency_limit=1)
    return demo


if __name__ == "__main__":
    build_app().launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_UPLOAD,
    )
