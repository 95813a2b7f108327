"""The app's one-click example rows, as ``python -m workbench.cli.examples`` writes them.

``examples.json`` holds the rows (reference and questioned file names relative to its folder,
the expected verdict and the shipped weights' score); the Verify tab and the regression test
read them here.
"""

from __future__ import annotations

import json
from pathlib import Path


def _record(folder: str | Path) -> dict:
    """``folder/examples.json`` as ``python -m workbench.cli.examples`` writes it ({} if absent)."""
    path = Path(folder) / "examples.json"
    return json.loads(path.read_text()) if path.exists() else {}


def load_rows(folder: str | Path) -> list[dict]:
    """The example rows of ``folder/examples.json`` with absolute paths (empty if absent).

    Each row: ``references`` (list of path strings), ``questioned`` (path string),
    ``expected_genuine`` (the truth), ``verdict_genuine`` (the shipped weights' verdict) and
    ``score`` (the recorded score in 0..1), with its parts where the weights fuse it:
    ``network_scores`` and ``shapes`` (one per reference).
    """
    record = _record(folder)
    if not record:
        return []
    return [
        {
            **row,
            "references": [str(Path(folder) / r) for r in row["references"]],
            "questioned": str(Path(folder) / row["questioned"]),
        }
        for row in record["rows"]
    ]


def load_share(folder: str | Path) -> dict | None:
    """How many of the randomly drawn synthetic writers the shipped weights decide right
    (``writers``, ``both_rows_right``, ``genuine_accepted``, ``forgery_rejected``), or None."""
    return _record(folder).get("share")


def examples_label(rows: list[dict], share: dict | None) -> str:
    """The Verify tab's caption of the examples: the truth and the model's verdict of each row,
    and the share of random synthetic writers it decides right."""

    def word(genuine: bool) -> str:
        return "genuine" if genuine else "forgery"

    parts = [
        f"{word(r['expected_genuine'])} (model: {word(r['verdict_genuine'])})"
        if "verdict_genuine" in r
        else word(r["expected_genuine"])
        for r in rows
    ]
    text = (
        "Synthetic examples, writers drawn at random from our generator (never trained on); truth: "
    )
    text += ", ".join(parts)
    if share:
        text += (
            f". On {share['writers']} such random writers the shipped model gets both rows right "
            f"for {share['both_rows_right']}: it accepts {share['genuine_accepted']} genuine "
            f"signatures and rejects {share['forgery_rejected']} forgeries."
        )
    return text
