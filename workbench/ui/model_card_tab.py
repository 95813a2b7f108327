"""Model card tab: the loaded verifier's MODEL_CARD.md and a summary of its JSON description."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from workbench.verification.workbench import DEFAULT_WEIGHTS, Workbench

CARD_NAME = "MODEL_CARD.md"


def weights_folder(workbench: Workbench) -> Path:
    """The folder of the loaded weights when the Workbench records it, else the shipped ``weights/``."""
    for attribute in ("weights_path", "weights"):
        value = getattr(workbench, attribute, None)
        if isinstance(value, (str, Path)) and str(value):
            return Path(value).parent
    return DEFAULT_WEIGHTS.parent


def _card_sha(folder: Path) -> set[str]:
    """Weights hashes recorded by the JSON files in ``folder`` (the weights a card there describes)."""
    found = set()
    for path in folder.glob("*.json"):
        try:
            sha = json.loads(path.read_text(encoding="utf-8")).get("weights_sha256")
        except (OSError, ValueError, AttributeError):
            continue
        if sha:
            found.add(sha)
    return found


def card_markdown(workbench: Workbench) -> str:
    """The card's Markdown, with a note when it describes other weights; a short text when absent."""
    if workbench.model is None:
        return "**No verifier weights are loaded**, so there is no model card to show."
    folder = weights_folder(workbench)
    card = folder / CARD_NAME
    if not card.is_file():
        return f"**No model card found** (`{CARD_NAME}` beside the weights in `{folder.name}/`)."
    text = card.read_text(encoding="utf-8")
    sha = workbench.meta.get("weights_sha256")
    recorded = _card_sha(folder)
    if sha and recorded and sha not in recorded:
        text = (
            f"> **Note:** the loaded weights (SHA-256 `{sha[:12]}...`) are not the weights this card "
            f"describes (`{folder.name}/`); its figures do not apply to them.\n\n" + text
        )
    return text


def summary_rows(meta: dict) -> list[list[str]]:
    """``[property, value]`` rows describing a checkpoint's JSON (``workbench.meta``)."""
    model = meta.get("model", {})
    validation = meta.get("validation", {})
    height, width = model.get("input_height"), model.get("input_width")
    size = f"{height} x {width}" if height and width else "-"
    growth, stem = model.get("growth_rate"), model.get("stem_channels")
    width_text = str(model.get("width", "-")) + (
        f" (growth {growth}, stem {stem})" if growth and stem else ""
    )
    threshold = validation.get("threshold")
    eer = validation.get("eer")
    return [
        ["name", str(meta.get("name", "-"))],
        ["architecture", str(meta.get("architecture", "siamese_densenet36"))],
        ["width", width_text],
        ["attention", str(model.get("attention", "-"))],
        [
            "cross-attention",
            "on" if model.get("cross_attention") else "off" if "cross_attention" in model else "-",
        ],
        ["input size (H x W)", size],
        [
            "validation threshold",
            f"{threshold:.4f}" if isinstance(threshold, (int, float)) else "- (0.5, the argmax)",
        ],
        ["validation EER", f"{100 * eer:.2f}%" if isinstance(eer, (int, float)) else "-"],
        ["weights SHA-256", str(meta.get("weights_sha256", "-"))],
    ]


def create_tab(workbench: Workbench) -> None:
    """The tab's components; call inside a ``gr.Blocks`` context."""
    with gr.Tab("Model card"):
        if workbench.model is not None:
            gr.Dataframe(
                value=summary_rows(workbench.meta),
                headers=["property", "value"],
                label="Loaded model",
                interactive=False,
                elem_id="mc-summary",
            )
        gr.Markdown(card_markdown(workbench), elem_id="mc-card")
