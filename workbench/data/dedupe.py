"""Content-hash deduplication of a corpus.

Circulated copies of BHSig260 hold byte-identical copies of the same image under different
sample numbers; left in, they put the same picture on both sides of a "genuine" pair and
inflate accuracy. Identical content is found by the SHA-256 of the file's bytes.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from workbench.data.corpus import Corpus, SignatureRecord


def file_sha256(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dedupe(corpus: Corpus) -> Corpus:
    """Keep one record per distinct content.

    Within a group of identical files the first record (corpus order: writer, kind, index) is
    kept. A group whose copies carry different labels (writer or kind) is ambiguous, so every
    copy is dropped.

    Returns:
        A corpus whose ``duplicates`` holds the removed records.
    """
    groups: dict[str, list[SignatureRecord]] = defaultdict(list)
    for record in corpus.records:
        groups[file_sha256(corpus.absolute(record))].append(record)
    keep_paths: set[str] = set()
    for members in groups.values():
        labels = {(m.writer, m.kind) for m in members}
        if len(labels) == 1:
            keep_paths.add(members[0].path)
    kept = [r for r in corpus.records if r.path in keep_paths]
    removed = [r for r in corpus.records if r.path not in keep_paths]
    return corpus.with_records(kept, removed)
