"""Pages as users have them (issue 14): a scanned or photographed page (any image format
``load_signature`` reads) or a PDF, whose first pages are rendered with pypdfium2.

Limits (stated in the README): PDFs of at most ``MAX_PDF_BYTES`` and ``MAX_PDF_PAGES`` pages are
read, and of those the first ``SEARCHED_PAGES`` are searched, rendered at ``RENDER_DPI``.
Encrypted, broken and empty PDFs are refused with a message naming the user's file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.errors import SignatureInputError
from workbench.preprocess import load_signature

MAX_PDF_BYTES = 50 * 1024 * 1024
MAX_PDF_PAGES = 100
SEARCHED_PAGES = 5
RENDER_DPI = 200
MAX_PAGE_PIXELS = 40_000_000  # as for images (PreprocessConfig.max_pixels)


@dataclass(frozen=True)
class Page:
    """One page of a document.

    Attributes:
        number: 1-based page number (1 for an image).
        gray: ``uint8`` (H, W) grey levels, dark ink on light paper.
        name: the file's name as the user gave it.
        sha256: SHA-256 of the whole file's bytes (hex).
        pages_in_file: how many pages the file holds (1 for an image).
        pdf: whether the file is a PDF (always searched for signatures).
    """

    number: int
    gray: np.ndarray
    name: str
    sha256: str
    pages_in_file: int = 1
    pdf: bool = False


def is_pdf(data: bytes) -> bool:
    """Whether ``data`` starts like a PDF file (``%PDF-`` within its first 1,024 bytes)."""
    return b"%PDF-" in data[:1024]


def read_file(source: str | os.PathLike | bytes, name: str | None = None) -> tuple[bytes, str]:
    """(the file's bytes, the name to show): ``name``, else the path's file name.

    Raises:
        SignatureInputError: unreadable, or a PDF over ``MAX_PDF_BYTES``.
    """
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), name or "the uploaded file"
    path = Path(source)
    label = name or path.name
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(1024)
        if size > MAX_PDF_BYTES and is_pdf(head):
            raise SignatureInputError(
                f"'{label}' is a PDF of {size / 2**20:.0f} MB; the workbench reads PDFs of at "
                f"most {MAX_PDF_BYTES // 2**20} MB. Extract the page that holds the signature."
            )
        return path.read_bytes(), label
    except OSError as error:
        raise SignatureInputError(f"'{label}' could not be read ({error.strerror}).") from None


def pdf_pages(data: bytes, name: str, *, pages: int = SEARCHED_PAGES, dpi: int = RENDER_DPI):
    """The first ``pages`` pages of a PDF as grey images.

    Raises:
        SignatureInputError: encrypted, broken, empty, too large or too long a PDF.
    """
    import pypdfium2 as pdfium

    if len(data) > MAX_PDF_BYTES:
        raise SignatureInputError(
            f"'{name}' is a PDF of {len(data) / 2**20:.0f} MB; the workbench reads PDFs of at "
            f"most {MAX_PDF_BYTES // 2**20} MB. Extract the page that holds the signature."
        )
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        if "password" in str(error).lower():
            raise SignatureInputError(
                f"'{name}' is a password-protected (encrypted) PDF. Save an unprotected copy of "
                "the page that holds the signature, or a scan of it, and upload that."
            ) from None
        raise SignatureInputError(
            f"'{name}' could not be read as a PDF (it looks damaged or incomplete). Upload a "
            "scan or photo of the page instead."
        ) from None
    try:
        count = len(document)
        if count == 0:
            raise SignatureInputError(f"'{name}' is a PDF without any page.")
        if count > MAX_PDF_PAGES:
            raise SignatureInputError(
                f"'{name}' has {count} pages; the workbench reads PDFs of at most "
                f"{MAX_PDF_PAGES} pages (and searches the first {SEARCHED_PAGES}). Extract the "
                "page that holds the signature."
            )
        digest = hashlib.sha256(data).hexdigest()
        found = []
        for index in range(min(count, pages)):
            try:
                page = document[index]
                width, height = page.get_size()
                if width * height * (dpi / 72.0) ** 2 > MAX_PAGE_PIXELS:
                    raise SignatureInputError(
                        f"Page {index + 1} of '{name}' is {width / 72:.0f} x {height / 72:.0f} "
                        f"inches; pages of at most {MAX_PAGE_PIXELS / 1e6:.0f} megapixels at "
                        f"{dpi} dpi are read. Extract or scan the page with the signature."
                    )
                bitmap = page.render(scale=dpi / 72.0, grayscale=True)
                gray = np.ascontiguousarray(bitmap.to_numpy()).reshape(bitmap.height, -1)
            except (pdfium.PdfiumError, ValueError, OSError):
                raise SignatureInputError(
                    f"Page {index + 1} of '{name}' could not be rendered (the PDF looks damaged)."
                ) from None
            found.append(Page(index + 1, gray[:, : bitmap.width].copy(), name, digest, count, True))
        return found
    finally:
        document.close()


def load_pages(
    source: str | os.PathLike | bytes, *, name: str | None = None, pages: int = SEARCHED_PAGES
) -> list[Page]:
    """The pages of a document file: an image is one page, a PDF its first ``pages`` pages.

    Args:
        source: a path or the file's bytes.
        name: the file's name as the user gave it (messages and reports use it).

    Raises:
        SignatureInputError: a file that is neither a readable image nor a readable PDF.
    """
    data, label = read_file(source, name)
    if is_pdf(data):
        return pdf_pages(data, label, pages=pages)
    digest = hashlib.sha256(data).hexdigest()
    # A path is decoded from the path, so that messages name the file as before.
    gray = load_signature(data if isinstance(source, (bytes, bytearray)) else source)
    return [Page(1, gray, label, digest)]
