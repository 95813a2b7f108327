"""Signature corpora: readers, deduplication, writer splits, pairs and a synthetic generator."""

from workbench.data.corpus import FORGED, GENUINE, Corpus, SignatureRecord
from workbench.data.dedupe import dedupe
from workbench.data.pairs import Pair, make_pairs, read_pairs_csv, write_pairs_csv
from workbench.data.readers import READERS, detect_layout, read_corpus
from workbench.data.splits import PROTOCOLS, WriterSplit, get_protocol, split_writers

__all__ = [
    "FORGED",
    "GENUINE",
    "PROTOCOLS",
    "READERS",
    "Corpus",
    "Pair",
    "SignatureRecord",
    "WriterSplit",
    "dedupe",
    "detect_layout",
    "get_protocol",
    "make_pairs",
    "read_corpus",
    "read_pairs_csv",
    "split_writers",
    "write_pairs_csv",
]
