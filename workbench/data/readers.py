"""Corpus readers, one per folder layout, and layout auto-detection.

Layouts (file extensions: any common image format):
- ``bhsig``: official BHSig260 names, ``<W>/B-S-<W>-G-<NN>.*`` and ``<W>/H-S-<W>-F-<NN>.*``.
- ``writer-folders``: ``<W>/genuine/*`` and ``<W>/forged/*`` (also ``forgeries``/``forgery``).
- ``cedar``: ``original_<W>_<N>.*`` and ``forgeries_<W>_<N>.*``, flat or in ``full_org/`` and
  ``full_forg/``.
- ``sign-data`` (the Kaggle "sign_data" layout, e.g. SigComp2011-Dutch): ``<W>/`` holds W's
  genuine signatures (``<NN>_<W>.*`` or ``<W>_<NN>.*``), ``<W>_forg/`` the skilled forgeries of
  W (``<NN>_<F><W>.*`` or ``<F><W>_<NN>.*``, F a 4-digit forger number). Detected only when a
  ``*_forg`` folder exists: without this reader each ``<W>_forg`` would pass for a writer.
- ``genuine-only``: folders of one writer's genuine signatures, ``<W>/<N>.*``; nested groups
  (``experiment/rect/<W>``) give writer ids with the group path (``experiment/rect/1``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from workbench.data.corpus import (
    FORGED,
    GENUINE,
    IMAGE_EXTENSIONS,
    Corpus,
    SignatureRecord,
    natural_key,
)

# A reader maps a relative POSIX path to (writer, kind, index), or None when it does not match.
Matcher = Callable[[PurePosixPath], "tuple[str, str, int] | None"]

_BHSIG = re.compile(r"^([BH])-S-(\d+)-([GF])-(\d+)$", re.IGNORECASE)
_CEDAR = re.compile(r"^(original|forgeries)_(\d+)_(\d+)$", re.IGNORECASE)
_FORGED_FOLDERS = {"forged", "forgeries", "forgery", "forge", "forg"}
_GENUINE_FOLDERS = {"genuine", "genuines", "original", "org"}


def _trailing_number(stem: str) -> int:
    found = re.findall(r"\d+", stem)
    return int(found[-1]) if found else 0


def match_bhsig(path: PurePosixPath) -> tuple[str, str, int] | None:
    found = _BHSIG.match(path.stem)
    if not found:
        return None
    script, writer, kind, index = found.groups()
    return f"{script.upper()}-{int(writer)}", GENUINE if kind.upper() == "G" else FORGED, int(index)


def match_writer_folders(path: PurePosixPath) -> tuple[str, str, int] | None:
    if len(path.parts) < 3:
        return None
    folder = path.parts[-2].lower()
    kind = GENUINE if folder in _GENUINE_FOLDERS else FORGED if folder in _FORGED_FOLDERS else None
    if kind is None:
        return None
    return "/".join(path.parts[:-2]), kind, _trailing_number(path.stem)


def match_cedar(path: PurePosixPath) -> tuple[str, str, int] | None:
    found = _CEDAR.match(path.stem)
    if not found:
        return None
    kind, writer, index = found.groups()
    return str(int(writer)), GENUINE if kind.lower() == "original" else FORGED, int(index)


def match_sign_data(path: PurePosixPath) -> tuple[str, str, int] | None:
    if len(path.parts) < 2:
        return None
    group, folder = path.parts[:-2], path.parts[-2]
    forged = folder.lower().endswith("_forg")
    writer = folder[: -len("_forg")] if forged else folder
    numbers = [part for part in path.stem.split("_") if part.isdigit()]
    if not writer or len(numbers) != 2:
        return None
    # The sample number is the short part; the other is W (genuine) or forger F + W (forged).
    short, long = sorted(numbers, key=len)
    if forged:
        if not long.endswith(writer) or len(long) <= len(writer):
            return None
        index = int(long[: -len(writer)]) * 100 + int(short)  # unique across forgers
    else:
        if long != writer:
            return None
        index = int(short)
    return "/".join((*group, writer)), FORGED if forged else GENUINE, index


def match_genuine_only(path: PurePosixPath) -> tuple[str, str, int] | None:
    if len(path.parts) < 2:
        return None
    return "/".join(path.parts[:-1]), GENUINE, _trailing_number(path.stem)


# Order matters on ties: the most specific layout first.
READERS: dict[str, Matcher] = {
    "bhsig": match_bhsig,
    "cedar": match_cedar,
    "writer-folders": match_writer_folders,
    "sign-data": match_sign_data,
    "genuine-only": match_genuine_only,
}


def _looks_forged(path: PurePosixPath) -> bool:
    """Whether a parent folder's name says forgeries (``forged``, ``forg``, ``<W>_forg``...)."""
    names = [part.lower() for part in path.parts[:-1]]
    return any(n in _FORGED_FOLDERS or n.endswith(("_forg", "_forged")) for n in names)


def list_images(root: Path) -> list[PurePosixPath]:
    """Image files under ``root`` as sorted relative POSIX paths; hidden files are skipped."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__MACOSX"))]
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(PurePosixPath(Path(folder, name).relative_to(root).as_posix()))
    return sorted(found, key=lambda p: natural_key(str(p)))


def detect_layout(paths: list[PurePosixPath]) -> str:
    """The layout whose reader names the most files (ties go to the more specific layout)."""
    if not paths:
        raise ValueError("No image files found (looked for " + ", ".join(IMAGE_EXTENSIONS) + ").")
    scores = {name: sum(matcher(p) is not None for p in paths) for name, matcher in READERS.items()}
    if not any(len(p.parts) >= 2 and p.parts[-2].lower().endswith("_forg") for p in paths):
        scores["sign-data"] = 0  # its genuine folders alone are a genuine-only corpus
    best = max(READERS, key=lambda name: scores[name])  # max keeps the first of equal scores
    if scores[best] < len(paths) / 2:
        raise ValueError(
            "Could not recognise the folder layout: fewer than half of the images match any of "
            + ", ".join(READERS)
            + ". See workbench/data/readers.py for the expected names."
        )
    return best


def read_corpus(path: str | os.PathLike, *, layout: str | None = None) -> Corpus:
    """Read every signature under ``path`` with the given or the detected layout.

    Raises:
        ValueError: the folder does not exist, holds no images, or no layout fits.
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"Corpus folder not found: {root}")
    paths = list_images(root)
    chosen = layout or detect_layout(paths)
    if chosen not in READERS:
        raise ValueError(f"Unknown layout {chosen!r}; choose one of {', '.join(READERS)}.")
    if chosen == "genuine-only":
        forgeries = sorted({str(p.parent) for p in paths if _looks_forged(p)})
        if forgeries:
            raise ValueError(
                f"{root}: folders named like forgeries ({', '.join(forgeries[:3])}) would be read "
                "as genuine writers by the genuine-only layout; use --layout sign-data "
                "(<W>/ + <W>_forg/) or writer-folders (<W>/genuine + <W>/forged)."
            )
    matcher = READERS[chosen]
    records, unmatched = [], []
    for p in paths:
        found = matcher(p)
        if found is None:
            unmatched.append(str(p))
        else:
            writer, kind, index = found
            records.append(SignatureRecord(path=str(p), writer=writer, kind=kind, index=index))
    records.sort(
        key=lambda r: (natural_key(r.writer), r.kind != GENUINE, r.index, natural_key(r.path))
    )
    return Corpus(root=root, layout=chosen, records=tuple(records), unmatched=tuple(unmatched))
