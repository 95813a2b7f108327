"""Pairs listed in an uploaded CSV, checked against the files of an unpacked archive.

Columns ``reference``, ``questioned``, ``label`` (1 = genuine pair, 0 = forgery), optionally
``writer`` and ``kind``; paths relative to the archive's root. Unlike ``read_pairs_csv`` (our own
files), every problem of a CSV a person wrote is reported with a message that says what to fix.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path, PurePosixPath

from workbench.data.pairs import Pair
from workbench.errors import SignatureInputError

CSV_COLUMNS = ("reference", "questioned", "label")


def _clean(path: str) -> str:
    parts = [p for p in path.strip().replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def _locate(relative: str, roots: list[Path]) -> Path | None:
    if not relative or ".." in PurePosixPath(relative).parts:
        return None
    for root in roots:
        candidate = root / relative
        if candidate.is_file() and root.resolve() in candidate.resolve().parents:
            return candidate
    return None


def read_pair_table(
    csv_path: str | os.PathLike, roots: list[Path]
) -> tuple[list[Pair], dict[str, Path]]:
    """Pairs from a CSV (``reference``, ``questioned``, ``label``; optional ``writer``, ``kind``).

    Args:
        roots: folders the paths may be relative to, tried in order.

    Returns:
        (pairs with the CSV's cleaned relative paths, relative path -> file found).

    Raises:
        SignatureInputError: unreadable CSV, missing columns, no rows, a label other than 0/1,
            or paths that are not in the zip.
    """
    name = Path(csv_path).name
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [(c or "").strip().lower() for c in reader.fieldnames or []]
            rows = [{k: (v or "") for k, v in zip(columns, row.values())} for row in reader]
    except (UnicodeDecodeError, csv.Error) as error:
        raise SignatureInputError(f"{name} is not a readable UTF-8 CSV ({error}).") from None
    missing = [c for c in CSV_COLUMNS if c not in columns]
    if missing:
        raise SignatureInputError(
            f"{name} lacks the column(s) {', '.join(missing)}; the pairs CSV needs a header "
            "row with reference, questioned, label (1 = genuine pair, 0 = forgery)."
        )
    if not rows:
        raise SignatureInputError(f"{name} has a header but no pairs.")
    pairs: list[Pair] = []
    for line, row in enumerate(rows, start=2):
        try:
            label = float(row["label"])
        except ValueError:
            label = -1.0
        if label not in (0.0, 1.0):
            raise SignatureInputError(
                f"{name}, line {line}: label {row['label']!r} must be 1 (genuine pair) or "
                "0 (forgery)."
            )
        pairs.append(
            Pair(
                _clean(row["reference"]),
                _clean(row["questioned"]),
                int(label),
                row.get("writer", "").strip(),
                row.get("kind", "").strip(),
            )
        )
    found: dict[str, Path] = {}
    absent: list[str] = []
    for relative in dict.fromkeys(p for pair in pairs for p in (pair.reference, pair.questioned)):
        location = _locate(relative, roots)
        if location is None:
            absent.append(relative or "(empty)")
        else:
            found[relative] = location
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise SignatureInputError(
            f"{len(absent)} path(s) of {name} are not in the zip: {shown}. "
            "Paths must be relative to the zip's root."
        )
    return pairs, found
