"""From a file as the user has it to the signature the verifier sees (issue 14).

A signature image is cleaned (``cleaning.clean_signature``). A page (a PDF, or an image that
looks like a page: large and page-shaped) is searched (``finder.find_signatures``), and the
chosen candidate is cut out, everything but its own ink painted as paper, then cleaned. Where
a page-shaped image holds no candidate, it is taken as a signature image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from workbench.errors import SignatureInputError
from workbench.intake.cleaning import (
    DEFAULT_CLEANING,
    CleaningConfig,
    CleaningStep,
    clean_signature,
    estimate_background,
)
from workbench.intake.documents import SEARCHED_PAGES, Page, load_pages
from workbench.intake.finder import Candidate, find_signatures

KINDS = ("auto", "signature", "page")
PAGE_SIDE = 1600  # an image this long on its long side ...
PAGE_ASPECT = (1.15, 1.65)  # ... and this shaped (A4 1.41, Letter 1.29, a 4:3 photo 1.33)


@dataclass(frozen=True)
class FoundSignature:
    """A candidate signature on one page of a document, cut out for verification.

    Attributes:
        page: the page it lies on (number, file name, the file's SHA-256).
        candidate: its box and score on that page.
        rank: 1 for the finder's best candidate of the document, 2 for the next...
        crop: ``uint8`` grey image of the box with a margin, everything but the candidate's own
            ink painted as paper.
    """

    page: Page
    candidate: Candidate
    rank: int
    crop: np.ndarray

    def record(self) -> dict:
        """Where the signature came from, for the report: file, page, box, SHA-256, rank."""
        x0, y0, x1, y1 = self.candidate.box
        return {
            "file": self.page.name,
            "page": self.page.number,
            "pages_in_file": self.page.pages_in_file,
            "box": [x0, y0, x1, y1],
            "rank": self.rank,
            "sha256": self.page.sha256,
        }

    def label(self) -> str:
        x0, y0, x1, y1 = self.candidate.box
        return f"#{self.rank}: page {self.page.number}, box ({x0}, {y0})-({x1}, {y1})"


@dataclass(frozen=True)
class Intake:
    """What intake did to one file: the signature's grey image before eq. 1, the cleaning
    steps, where on a page it was found (None for a signature image), and the image as loaded
    (the signature image, or the page)."""

    gray: np.ndarray
    steps: tuple[CleaningStep, ...]
    found: FoundSignature | None
    loaded: np.ndarray


def cut_out(gray: np.ndarray, candidate: Candidate, *, margin: float = 0.1) -> np.ndarray:
    """The candidate's box with ``margin`` (share of its larger side) around it, its light
    flattened (paper 255); pixels that are not the candidate's own ink become paper."""
    x0, y0, x1, y1 = candidate.box
    pad = int(round(margin * max(x1 - x0, y1 - y0)))
    h, w = gray.shape
    X0, Y0, X1, Y1 = max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)
    region = gray[Y0:Y1, X0:X1].copy()
    keep = np.zeros(region.shape, bool)
    keep[
        y0 - Y0 : y0 - Y0 + candidate.mask.shape[0], x0 - X0 : x0 - X0 + candidate.mask.shape[1]
    ] = candidate.mask
    # The paper under the ink (a photo's grey, uneven light) is divided out: white paper, as
    # in the scans the verifier was trained on.
    paper = np.maximum(estimate_background(region), 1.0)
    flat = region.astype(np.float32) * 255.0 / paper
    flat[~keep] = 255.0
    return np.clip(flat + 0.5, 0, 255).astype(np.uint8)


def search_pages(document: list[Page]) -> list[FoundSignature]:
    """Every candidate signature on ``document``'s pages, best first.

    Raises:
        SignatureInputError: no handwriting on any page.
    """
    found = [(c, page) for page in document for c in find_signatures(page.gray)]
    if not found:
        first = document[0]
        searched = (
            f"pages 1-{len(document)} of {first.pages_in_file}"
            if first.pages_in_file > 1
            else "the page"
        )
        raise SignatureInputError(
            f"No handwritten signature was found on '{first.name}' ({searched} searched): only "
            "print, lines or blank paper. Upload the page that holds the signature, or a crop "
            "of the signature itself."
        )
    found.sort(key=lambda item: -item[0].score)
    return [
        FoundSignature(page, candidate, rank + 1, cut_out(page.gray, candidate))
        for rank, (candidate, page) in enumerate(found)
    ]


def search_document(
    source: str | os.PathLike | bytes, *, name: str | None = None, pages: int = SEARCHED_PAGES
) -> list[FoundSignature]:
    """``search_pages`` of the first ``pages`` pages of a document file.

    Raises:
        SignatureInputError: an unreadable file, or no handwriting on the pages searched.
    """
    return search_pages(load_pages(source, name=name, pages=pages))


def looks_like_page(gray: np.ndarray) -> bool:
    """An image large and shaped like a page or a photo of one."""
    long, short = max(gray.shape), min(gray.shape)
    return long >= PAGE_SIDE and PAGE_ASPECT[0] <= long / max(short, 1) <= PAGE_ASPECT[1]


def take_signature(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    kind: str = "auto",
    choice: int = 1,
    cleaning: CleaningConfig = DEFAULT_CLEANING,
) -> Intake:
    """The signature in a file, cleaned and ready for eq. 1.

    Args:
        name: the file's name as the user gave it (messages, the report).
        kind: ``signature`` (the file is the signature), ``page`` (search it), or ``auto``: a
            PDF is searched, an image too when ``looks_like_page`` (and taken as a signature
            when no candidate is found on it).
        choice: which candidate of a page (1 = the finder's best).

    Raises:
        SignatureInputError: unreadable file, no handwriting on a page or PDF, ``choice``
            beyond the candidates found.
        ValueError: an unknown ``kind``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}.")
    document = load_pages(source, name=name)
    found: list[FoundSignature] = []
    if document[0].pdf or kind == "page":
        found = search_pages(document)
    elif kind == "auto" and looks_like_page(document[0].gray):
        try:
            found = search_pages(document)
        except SignatureInputError:
            found = []  # a large photo of the signature alone
    if not found:
        gray, steps = clean_signature(document[0].gray, config=cleaning)
        return Intake(gray, tuple(steps), None, document[0].gray)
    if not 1 <= choice <= len(found):
        raise SignatureInputError(
            f"Candidate {choice} was asked for, but {len(found)} were found on "
            f"'{document[0].name}'."
        )
    chosen = found[choice - 1]
    gray, steps = clean_signature(chosen.crop, config=cleaning)
    return Intake(gray, tuple(steps), chosen, chosen.page.gray)
