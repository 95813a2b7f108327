"""Model card tab: the loaded verifier's MODEL_CARD.md and a summary of its JSON description."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from workbench.checkpoint import WeightsCard, read_card
from workbench.config import FALLBACK_THRESHOLD, WEIGHTS_DIR
from workbench.verification.workbench import Workbench

CARD_NAME = "MODEL_CARD.md"


def weights_folder(workbench: Workbench) -> Path:
    """The folder of the loaded weights when the Workbench records it, else the shipped
    ``weights/``."""
    for attribute in ("weights_path", "weights"):
        value = getattr(workbench, attribute, None)
        if isinstance(value, (str, Path)) and str(value):
            return Path(value).parent
    return WEIGHTS_DIR


def _card_sha(folder: Path) -> set[str]:
    """Weights hashes recorded by the weights' JSON files in ``folder`` (the weights a card
    there describes)."""
    found = set()
    for path in folder.glob("*.json"):
        try:
            sha = read_card(path).weights_sha256
        except (OSError, ValueError):
            continue
        if sha:
            found.add(sha)
    return found


def card_markdown(workbench: Workbench) -> str:
    """The card's Markdown, with a note when it describes other weights; a short text when
    absent."""
    if workbench.model is None:
        return "**No verifier weights are loaded**, so there is no model card to show."
    folder = weights_folder(workbench)
    card = folder / CARD_NAME
    if not card.is_file():
        return f"**No model card found** (`{CARD_NAME}` beside the weights in `{folder.name}/`)."
    text = card.read_text(encoding="utf-8")
    sha = workbench.card.weights_sha256
    recorded = _card_sha(folder)
    if sha and recorded and sha not in recorded:
        text = (
            f"> **Note:** the loaded weights (SHA-256 `{sha[:12]}...`) are not the weights "
            f"this card describes (`{folder.name}/`); its figures do not apply to them.\n\n" + text
        )
    return text


def summary_rows(card: WeightsCard) -> list[list[str]]:
    """``[property, value]`` rows describing a checkpoint's card (``workbench.card``)."""
    model = card.model
    height, width = model.get("input_height"), model.get("input_width")
    size = f"{height} x {width}" if height and width else "-"
    growth, stem = model.get("growth_rate"), model.get("stem_channels")
    width_text = str(model.get("width", "-")) + (
        f" (growth {growth}, stem {stem})" if growth and stem else ""
    )
    threshold = card.stored_threshold
    eer = card.validation.eer if card.validation is not None else None
    return [
        ["name", "-" if card.name is None else card.name],
        ["architecture", card.architecture],
        ["width", width_text],
        ["attention", str(model.get("attention", "-"))],
        [
            "cross-attention",
            "on" if model.get("cross_attention") else "off" if "cross_attention" in model else "-",
        ],
        ["input size (H x W)", size],
        [
            "validation threshold",
            f"- ({FALLBACK_THRESHOLD}, the argmax)" if threshold is None else f"{threshold:.4f}",
        ],
        ["validation EER", "-" if eer is None else f"{100 * eer:.2f}%"],
        ["weights SHA-256", "-" if card.weights_sha256 is None else card.weights_sha256],
    ]


def create_tab(workbench: Workbench) -> None:
    """The tab's components; call inside a ``gr.Blocks`` context."""
    with gr.Tab("Model card"):
        if workbench.model is not None:
            gr.Dataframe(
                value=summary_rows(workbench.card),
                headers=["property", "value"],
                label="Loaded model",
                interactive=False,
                elem_id="mc-summary",
            )
        gr.Markdown(card_markdown(workbench), elem_id="mc-card")
