"""The app's one-click example rows, as ``python -m workbench.cli.examples`` writes them.

``examples.json`` holds the rows (reference and questioned file names relative to its folder,
the expected verdict and the shipped weights' score); the Verify tab and the regression test
read them here.
"""

from __future__ import annotations

import json
from pathlib import Path


def load_rows(folder: str | Path) -> list[dict]:
    """The example rows of ``folder/examples.json`` with absolute paths (empty if absent).

    Each row: ``references`` (list of path strings), ``questioned`` (path string),
    ``expected_genuine`` (bool) and ``score`` (the recorded score in 0..1).
    """
    path = Path(folder) / "examples.json"
    if not path.exists():
        return []
    rows = json.loads(path.read_text())["rows"]
    return [
        {
            **row,
            "references": [str(Path(folder) / r) for r in row["references"]],
            "questioned": str(Path(folder) / row["questioned"]),
        }
        for row in rows
    ]
