"""The classifier's known writers, one at a time: the slides' per-writer line and, where the
corpus is on this machine, one of the writer's test signatures with the classifier's top 5.

The per-writer lines come from the classifier's card (``identify train`` scores the test images
of every known writer and stores the counts), so they show even where the real corpora are
absent: their images are never shipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.identification.classifier import slides_line

if TYPE_CHECKING:
    from workbench.identification.desk import ClassifierGuess, IdentificationDesk


@dataclass(frozen=True)
class KnownWriter:
    """What the app shows for one of the classifier's training writers.

    Attributes:
        writer: the writer's name (class).
        line: the slides' line for the writer's test images ("5 images of writer X: 5 correct,
            100.00%"), or why there is none.
        image: one of the writer's test signatures (a path) when it is on this machine.
        guesses: the classifier's top 5 for that image; () without an image.
        note: where the image is, or why there is none.
    """

    writer: str
    line: str
    image: str | None
    guesses: tuple[ClassifierGuess, ...]
    note: str


def known_writer(desk: IdentificationDesk, writer: str) -> KnownWriter:
    """The per-writer line of ``writer`` and, if present here, a test image's top 5.

    Raises:
        ValueError: no classifier, or ``writer`` is not one of its training writers.
    """
    if not desk.has_classifier or desk.classifier_card is None:
        raise ValueError("No writer classifier is loaded: there are no known writers to show.")
    if writer not in desk.classes:
        raise ValueError(f"{writer!r} is not one of the classifier's {len(desk.classes)} writers.")
    tested = desk.classifier_card.extra.get("identification_test") or {}
    entries = {e["writer"]: e for e in tested.get("per_writer", [])}
    line = (
        slides_line(entries[writer])
        if writer in entries
        else "No test images of this writer were scored when the classifier was trained."
    )
    split = desk.classifier_card.split or {}
    paths = [p for p, w, _ in split.get("test", []) if w == writer]
    present = [p for p in paths if Path(p).exists()]
    if not present:
        note = (
            f"The writer's {len(paths)} test image(s) are not on this machine (real corpora are "
            "never shipped): the line above was measured when the classifier was trained."
        )
        return KnownWriter(writer, line, None, (), note)
    guesses = desk.classify(present[0], top=5)
    note = f"{Path(present[0]).name}, one of the writer's {len(paths)} test images."
    return KnownWriter(writer, line, present[0], guesses, note)
