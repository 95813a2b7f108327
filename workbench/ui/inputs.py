"""Turning what the browser sends (uploaded files, drawings) into signature sources."""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

DRAWINGS = Path(tempfile.gettempdir()) / "signature-workbench-drawings"
SHOWN = Path(tempfile.gettempdir()) / "signature-workbench-shown"


def _write_once(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` unless it is there, under a temporary name renamed into place:
    a concurrent reader never sees a half-written file (two users verifying the same images
    get the same content-named files)."""
    if path.exists():
        path.touch()  # handed out again: not pruned on its first use's schedule
        return
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with open(fd, "wb") as handle:
        handle.write(data)
    Path(staging).replace(path)


PRUNE_EVERY_S = 60.0
_pruned_at: dict[Path, float] = {}


def _keep_png(folder: Path, prefix: str, data: bytes) -> str:
    """``data`` as ``folder/<prefix>_<SHA-256 prefix>.png`` (written once, atomically); entries
    of ``folder`` older than an hour are removed, at most once a minute (each verdict shows
    several images: listing the folder for each would sit on every call), so a long-running
    server does not fill its disk."""
    import time

    from workbench.verification.views import KEEP_SECONDS, prune

    folder.mkdir(parents=True, exist_ok=True)
    now = time.monotonic()
    if now - _pruned_at.get(folder, -PRUNE_EVERY_S) >= PRUNE_EVERY_S:
        _pruned_at[folder] = now
        prune(folder, max_age_s=KEEP_SECONDS)
    path = folder / f"{prefix}_{hashlib.sha256(data).hexdigest()[:16]}.png"
    _write_once(path, data)
    return str(path)


def shown_file(image: np.ndarray) -> str:
    """An image for display (``uint8`` grey (H, W) or RGB (H, W, 3)) as a PNG file named by its
    content, written atomically.

    Gradio writes arrays it is given to a content-named cache file in place, so a second call
    with the same output can truncate the file while the first call's client downloads it
    (measured: 17 of 200 downloads failed under 20 concurrent users). A file path is copied
    into Gradio's cache by a rename instead.
    """
    import cv2

    if image.ndim == 3:  # RGB, as Gradio shows arrays; OpenCV writes BGR
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise ValueError("The image could not be encoded for display.")
    return _keep_png(SHOWN, "shown", encoded.tobytes())


def file_paths(files) -> list[str]:
    """Paths of a gr.File value (None, one file or a list; str or objects with ``.name``)."""
    if not files:
        return []
    items = files if isinstance(files, list) else [files]
    return [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in items]


def drawing_to_file(value) -> str | None:
    """Save a drawn signature (a gr.Sketchpad / gr.ImageEditor value) as a PNG file.

    The file is named by the SHA-256 of its bytes, so the same drawing gives the same file and
    the examiner's report can cite its hash. Transparent canvas becomes white paper.

    Returns:
        The PNG's path, or None when nothing was drawn (no value, or a fully transparent or
        uniform canvas).
    """
    if value is None:
        return None
    image = value.get("composite") if isinstance(value, dict) else value
    if image is None:
        return None
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        rgb = array[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        array = rgb.round().astype(np.uint8)
    if array.size == 0 or int(array.max()) == int(array.min()):
        return None
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return _keep_png(DRAWINGS, "drawn", buffer.getvalue())


def intake_view(intake, max_side: int = 1000) -> np.ndarray:
    """The file as loaded (a signature image or a whole page), at most ``max_side`` pixels on
    its long side, RGB, with the box the signature was taken from drawn in red on a page."""
    import cv2

    image = intake.loaded
    scale = min(1.0, max_side / max(image.shape))
    shown = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    shown = cv2.cvtColor(shown, cv2.COLOR_GRAY2RGB)
    if intake.found is not None:
        x0, y0, x1, y1 = (int(round(v * scale)) for v in intake.found.candidate.box)
        cv2.rectangle(shown, (x0, y0), (x1, y1), (220, 30, 30), max(2, int(4 * scale)))
    return shown
