"""Identify tab: the slides' writer CLASSIFIER (closed set) against the Siamese VERIFIER
(enrollment).

Writers a user enrolls or removes change that browser session's own gallery only: a ``gr.State``
that starts empty (the shared synthetic writers are used) and holds a copy of them from the
session's first enrollment or removal on. Nothing leaks to other users; it vanishes with the
session.
"""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr
import numpy as np

from workbench.config import EXAMPLES_DIR
from workbench.errors import SignatureInputError
from workbench.identification.desk import (
    CROSSMEDIA_COMPARISON,
    DEFAULT_COMPARISON,
    Identification,
    IdentificationDesk,
    drawn_signature,
)
from workbench.identification.gallery import Gallery
from workbench.ui.inputs import file_paths
from workbench.ui.wiring import bind
from workbench.verification.workbench import Workbench

EXAMPLES = EXAMPLES_DIR

EXPLANATION = (
    '**Two ways to answer "who wrote this?"** The **writer classifier** (Conv-Pool-Dense, one '
    "output per training writer) always names one of the writers it was trained on, however "
    "unfamiliar the signature: adding a writer means retraining it. The **Siamese verifier** "
    "compares the signature with each enrolled writer's references and ranks writers by a "
    "writer score (the pairwise verifier: the mean over the references; an embedding Siamese: "
    "the similarity to the centroid of the references' embeddings); enrolling a writer takes "
    "a few references and changes no weights, and when the best score is under the threshold "
    "it answers *no enrolled writer matches*."
)


CROSSMEDIA_LESSON = (
    "### The advanced case: CrossMedia-zh\n\n"
    "100 writers who all wrote **the same name** (王涛, Wang Tao), ten times each on paper, on an "
    "iPad, on a phone held in the hand and on a phone lying on a table. With the name fixed, "
    "only the writer's *style* tells writers apart, and the medium changes that style: the "
    "classifier and the embeddings learned on people writing their own names have much less "
    "to go on. Each writer is enrolled with a few references and questioned on every medium, "
    "so the table shows how far a medium shift moves a signature away from its references. "
    "This is identification by style alone, the hard case, not the classroom lesson above."
)


def _crossmedia_markdown(path: Path) -> str:
    if path.exists():
        return CROSSMEDIA_LESSON + "\n\n" + path.read_text(encoding="utf-8")
    return (
        CROSSMEDIA_LESSON + "\n\nNot measured yet: `python -m workbench.identify compare "
        f"--media crossmedia --markdown {path.parent.name}/{path.name}` with a classifier "
        "trained on CrossMedia-zh (weights/MODEL_CARD.md gives the commands)."
    )


def _comparison_markdown(path: Path) -> str:
    if path.exists():
        return "### Measured comparison\n\n" + path.read_text(encoding="utf-8")
    return (
        "### Measured comparison\n\nNot measured yet: train a classifier with held-out writers "
        "(`python -m workbench.cli.identify train --data CORPUS --out weights "
        "--holdout-writers 40`) and an embedding Siamese (`identify siamese-train`), then run "
        "`python -m workbench.cli.identify compare "
        "--classifier weights/writer_classifier.safetensors "
        "--embedding weights/siamese_triplet.safetensors "
        f"--markdown {path.parent.name}/{path.name}`."
    )


def _writers_table(desk: IdentificationDesk, gallery: Gallery) -> list[list]:
    def trained_on(writer: str) -> str:
        if not desk.has_classifier:
            return "no classifier"
        return "yes" if desk.classifier_knows(writer) else "no"

    return [[w, len(gallery.references(w)), trained_on(w)] for w in gallery.writers]


def _decision_markdown(result: Identification) -> str:
    colour = "#1a7f37" if result.accepted else "#b42318"
    answer = html.escape(result.best.writer) if result.accepted else "no enrolled writer matches"
    lines = [
        f"<h3 style='color:{colour}' id='i-verdict'>Verifier: {answer}</h3>",
        "",
        f"Verification ({html.escape(result.verifier)}): {result.decision}.",
    ]
    if result.guesses:
        top = result.guesses[0]
        lines.append(
            f"Classifier: **{top.writer}** ({100 * top.probability:.1f}%), "
            "necessarily one of its training writers."
        )
    lines += ["", f"*{result.classifier_note}*"]
    return "\n".join(lines)


def _verdict(rank: int, accepted: bool) -> str:
    if rank != 1:
        return ""
    return "match" if accepted else "below threshold"


def _session(desk: IdentificationDesk, gallery: Gallery | None) -> Gallery:
    """``gallery``, or the session's own copy of the shared writers when it has none yet."""
    return desk.session_gallery() if gallery is None else gallery


def identify(desk: IdentificationDesk, questioned, drawn, gallery, verifier=None):
    """The decision, the classifier's top 5 and the chosen verifier's ranking (``/identify``)."""
    source = questioned or drawn_signature(drawn)
    if source is None:
        raise gr.Error("Upload or draw the questioned signature first.")
    try:
        result = desk.identify(
            source,
            top=5,
            gallery=gallery if gallery is not None else desk.gallery,
            verifier=verifier or None,
        )
    except (SignatureInputError, ValueError) as error:
        raise gr.Error(str(error)) from None
    guesses = [[i, g.writer, f"{g.probability:.4f}"] for i, g in enumerate(result.guesses, start=1)]
    if not desk.has_classifier:
        guesses = [["-", "(no classifier loaded)", "-"]]
    ranking = [
        [
            i,
            m.writer,
            f"{m.score:.4f}",
            ", ".join(f"{s:.3f}" for s in m.scores),
            _verdict(i, result.accepted),
        ]
        for i, m in enumerate(result.matches, start=1)
    ]
    return _decision_markdown(result), guesses, ranking


def show_known_writer(desk: IdentificationDesk, writer):
    """One of the classifier's writers: the slides' line, a test image and its top 5
    (``/known_writer``)."""
    from workbench.identification.known_writers import known_writer

    if not writer:
        raise gr.Error("Pick one of the classifier's writers first.")
    try:
        view = known_writer(desk, writer)
    except ValueError as error:
        raise gr.Error(str(error)) from None
    guesses = [[i, g.writer, f"{g.probability:.4f}"] for i, g in enumerate(view.guesses, start=1)]
    text = f"**{html.escape(view.line)}**\n\n{html.escape(view.note)}"
    # Pixels, not the path: Gradio serves no file from outside the app's folders.
    image = None
    if view.image is not None:
        from PIL import Image

        with Image.open(view.image) as opened:
            image = np.asarray(opened.convert("L"))
    return text, image, guesses


def enroll(desk: IdentificationDesk, name, files, drawn, gallery):
    """Enroll a writer in the session's gallery: a note, the writers, the gallery (``/enroll``)."""
    gallery = _session(desk, gallery)
    sources = file_paths(files)
    drawing = drawn_signature(drawn)
    if drawing is not None:
        sources.append(drawing)
    try:
        name = desk.enroll(name, sources, gallery=gallery)
    except (SignatureInputError, ValueError) as error:
        raise gr.Error(str(error)) from None
    note = (
        f"Enrolled **{name}** with {len(gallery.references(name))} reference(s), "
        "no retraining. "
        "Identify one of their signatures: the verifier can rank them at once"
        + ("; the classifier cannot name them." if not desk.classifier_knows(name) else ".")
    )
    return note, _writers_table(desk, gallery), gallery


def remove(desk: IdentificationDesk, name, gallery):
    """Remove a writer from the session's gallery (``/remove_writer``)."""
    gallery = _session(desk, gallery)
    try:
        desk.remove(name, gallery=gallery)
    except (SignatureInputError, ValueError) as error:
        raise gr.Error(str(error)) from None
    return (
        f"Removed **{name.strip()}** from your enrolled writers.",
        _writers_table(desk, gallery),
        gallery,
    )


def _known_writers_panel(desk: IdentificationDesk) -> None:
    """A known writer's line, test image and the classifier's top 5."""
    tested = (
        (desk.classifier_card.extra.get("identification_test") or {})
        if desk.classifier_card
        else {}
    )
    summary = ""
    if tested.get("top1") is not None:
        summary = (
            f" On the test images of its {tested['writers']} writers it is right "
            f"{100 * tested['top1']:.1f}% of the time (top-5 {100 * tested['top5']:.1f}%)."
        )
    gr.Markdown(
        "### The classifier's own writers\nPick one of the writers it was trained on: the "
        "slides' line for their test images and, where the corpus is on this machine, one of "
        "them with the classifier's top 5." + summary
    )
    with gr.Row():
        writer = gr.Dropdown(
            choices=desk.classes, label="Known writer", elem_id="i-known-writer", scale=2
        )
        show = gr.Button("Show", elem_id="i-known-show", scale=1)
    line = gr.Markdown(elem_id="i-known-line")
    with gr.Row():
        image = gr.Image(label="A test image", interactive=False, elem_id="i-known-image")
        top5 = gr.Dataframe(
            headers=["rank", "writer", "probability"],
            label="Writer classifier: top 5",
            interactive=False,
            elem_id="i-known-top5",
        )
    show.click(
        bind(show_known_writer, desk),
        inputs=[writer],
        outputs=[line, image, top5],
        api_name="known_writer",
    )


def create_tab(workbench: Workbench, desk: IdentificationDesk | None = None) -> None:
    """The tab's components and events; call inside a ``gr.Blocks`` context.

    Args:
        workbench: the verifier.
        desk: the classifier and the shared synthetic writers; built from ``workbench`` (and
            ``weights/writer_classifier.safetensors`` when present) when None.
    """
    with gr.Tab("Identify"):
        if workbench.model is None:
            gr.Markdown(
                "**No verifier weights found** (`weights/verifier.safetensors`): "
                "identification is unavailable."
            )
            return
        desk = desk or IdentificationDesk(workbench)

        gr.Markdown(EXPLANATION)
        gallery_state = gr.State(None)
        with gr.Row():
            questioned = gr.Image(
                label="Questioned signature",
                type="filepath",
                sources=["upload", "clipboard"],
                elem_id="i-questioned",
            )
            drawn = gr.Sketchpad(
                label="... or draw it (used when no file is uploaded)",
                type="numpy",
                canvas_size=(800, 300),
                brush=gr.Brush(default_size=4, colors=["#000000"], color_mode="fixed"),
                elem_id="i-draw",
            )
        choice = gr.Radio(
            choices=list(desk.verifiers),
            value=desk.default_verifier,
            label="Verifier that ranks the enrolled writers",
            info="; ".join(
                f"{v.name}: threshold {v.threshold:.3f} ({v.threshold_note})"
                for v in desk.verifiers.values()
            ),
            elem_id="i-verifier-choice",
        )
        run = gr.Button("Identify", variant="primary", elem_id="i-run")
        decision = gr.Markdown(elem_id="i-decision")
        with gr.Row():
            classifier_table = gr.Dataframe(
                headers=["rank", "writer", "probability"],
                label="Writer classifier: top 5 of its training writers",
                interactive=False,
                elem_id="i-classifier",
            )
            verifier_table = gr.Dataframe(
                headers=["rank", "writer", "writer score", "per-reference scores", "verdict"],
                label="Verifier: enrolled writers by writer score (pairwise: mean over the "
                "references; embedding: similarity to the references' centroid)",
                interactive=False,
                elem_id="i-verifier",
            )
        if (EXAMPLES / "writer1_genuine_3.png").exists():
            gr.Examples(
                examples=[
                    [str(EXAMPLES / "writer1_genuine_3.png")],
                    [str(EXAMPLES / "writer2_genuine_3.png")],
                ],
                inputs=[questioned],
                label="Synthetic questioned signatures (enroll their writer below first)",
            )
        if desk.has_classifier:
            _known_writers_panel(desk)
        gr.Markdown(
            "### Enroll a new writer\nA name and a few genuine signatures (files and/or a "
            "drawing). Writers you enroll stay in your browser session only; the synthetic "
            "writers are shared demo writers."
        )
        name = gr.Textbox(label="Writer's name", placeholder="e.g. Ada Lovelace", elem_id="i-name")
        with gr.Row():
            files = gr.File(
                label="Reference signatures",
                file_count="multiple",
                file_types=["image"],
                elem_id="i-enroll-files",
            )
            enroll_drawn = gr.Sketchpad(
                label="... and/or draw one",
                type="numpy",
                canvas_size=(800, 300),
                brush=gr.Brush(default_size=4, colors=["#000000"], color_mode="fixed"),
                elem_id="i-enroll-draw",
            )
        with gr.Row():
            enroll_button = gr.Button("Enroll", variant="primary", elem_id="i-enroll")
            remove_button = gr.Button("Remove the named writer", elem_id="i-remove")
        status = gr.Markdown(elem_id="i-enroll-status")
        writers = gr.Dataframe(
            value=_writers_table(desk, desk.gallery),
            headers=["writer", "references", "classifier trained on it"],
            label="Enrolled writers",
            interactive=False,
            elem_id="i-writers",
        )
        if (EXAMPLES / "writer1_genuine_2.png").exists():
            gr.Examples(
                examples=[
                    [
                        "writer 1 (examples)",
                        [
                            str(EXAMPLES / "writer1_genuine_1.png"),
                            str(EXAMPLES / "writer1_genuine_2.png"),
                        ],
                    ]
                ],
                inputs=[name, files],
                label="Synthetic writer to enroll",
            )
        gr.Markdown(_comparison_markdown(DEFAULT_COMPARISON), elem_id="i-comparison")
        with gr.Accordion("The advanced case: CrossMedia-zh, one name, four media", open=False):
            gr.Markdown(_crossmedia_markdown(CROSSMEDIA_COMPARISON), elem_id="i-crossmedia")
        run.click(
            bind(identify, desk),
            inputs=[questioned, drawn, gallery_state, choice],
            outputs=[decision, classifier_table, verifier_table],
            api_name="identify",
        )
        enroll_button.click(
            bind(enroll, desk),
            inputs=[name, files, enroll_drawn, gallery_state],
            outputs=[status, writers, gallery_state],
            api_name="enroll",
        )
        remove_button.click(
            bind(remove, desk),
            inputs=[name, gallery_state],
            outputs=[status, writers, gallery_state],
            api_name="remove_writer",
        )
