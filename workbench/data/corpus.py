"""The in-memory description of a signature corpus: which file is whose, genuine or forged."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

GENUINE = "genuine"
FORGED = "forged"
IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
    ".bmp",
    ".webp",
    ".gif",
    ".pgm",
    ".ppm",
)


@dataclass(frozen=True)
class SignatureRecord:
    """One signature image.

    Attributes:
        path: path relative to the corpus root (POSIX separators).
        writer: writer id, unique within the corpus (the genuine author; for a forgery, the
            writer whose signature was imitated).
        kind: ``"genuine"`` or ``"forged"`` (skilled forgery).
        index: sample number within the writer and kind, as named by the corpus.
    """

    path: str
    writer: str
    kind: str
    index: int


@dataclass(frozen=True)
class Corpus:
    """A set of signature records under one root folder, read with one layout.

    Attributes:
        root: the folder the record paths are relative to.
        layout: the reader that read it (``bhsig``, ``writer-folders``, ``cedar``,
            ``genuine-only``).
        records: sorted by writer, kind and index.
        duplicates: records removed by deduplication (empty until ``dedupe`` runs).
        unmatched: image files under the root that the layout does not describe.
    """

    root: Path
    layout: str
    records: tuple[SignatureRecord, ...]
    duplicates: tuple[SignatureRecord, ...] = field(default=())
    unmatched: tuple[str, ...] = field(default=())

    @property
    def writers(self) -> list[str]:
        """Writer ids in natural order (``2`` before ``10``)."""
        return sorted({r.writer for r in self.records}, key=natural_key)

    def of_writer(self, writer: str, kind: str | None = None) -> list[SignatureRecord]:
        return [r for r in self.records if r.writer == writer and (kind is None or r.kind == kind)]

    def counts(self) -> dict[str, int]:
        kinds = Counter(r.kind for r in self.records)
        return {"writers": len(self.writers), GENUINE: kinds[GENUINE], FORGED: kinds[FORGED]}

    def absolute(self, record: SignatureRecord) -> Path:
        return self.root / record.path

    def with_records(self, records, duplicates=()) -> Corpus:
        return replace(self, records=tuple(records), duplicates=tuple(duplicates))


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers numerically: ``writer_9`` < ``writer_10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))
