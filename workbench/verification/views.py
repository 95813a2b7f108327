"""What the Verify tab and the examiner's report show for a pair: attention heatmaps over the
images, the cross-attention figure and a captum attribution (no Gradio here).

The UI turns the ``SignatureInputError`` / ``ValueError`` raised here into messages; the
benchmark (``workbench.cli.bench --app``) times the same functions.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from workbench.verification.attribution import QuestionedAttribution, overlay_attribution
from workbench.verification.overlays import cross_attention_figure, overlay_heatmap
from workbench.verification.report import write_report
from workbench.verification.workbench import PairExplanation, Workbench

# Reports are written under one folder; those older than KEEP_SECONDS are removed when the next
# one is written, so a long-running server does not fill its disk.
REPORTS = Path(tempfile.gettempdir()) / "signature-workbench-reports"
KEEP_SECONDS = 3600


def prune(folder: Path, *, max_age_s: float) -> int:
    """Remove the entries of ``folder`` (files, or folders with their files) last modified more
    than ``max_age_s`` seconds ago; returns how many were removed."""
    import shutil
    import time

    removed = 0
    cutoff = time.time() - max_age_s
    for entry in folder.iterdir() if folder.is_dir() else []:
        try:
            if entry.lstat().st_mtime < cutoff:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed += 1
        except OSError:  # removed meanwhile by another request
            continue
    return removed


# The attribution methods a person picks from (label -> QuestionedAttribution's method).
METHODS = {"Integrated Gradients": "integrated_gradients", "Grad-CAM": "gradcam"}
DEFAULT_METHOD = "Integrated Gradients"


def _explanation(
    workbench: Workbench, reference: str, questioned: str, method: str, questioned_choice: int = 1
) -> tuple[PairExplanation, np.ndarray]:
    """The pair's attention maps and the captum attribution (log-odds) on the questioned image:
    (explanation, (H, W) float32 saliency in 0..1). ``method`` is a key of ``METHODS``."""
    if method not in METHODS:
        raise ValueError(f"Unknown attribution method {method!r}: choose one of {list(METHODS)}.")
    result = workbench.explain(reference, questioned, questioned_choice=questioned_choice)
    attribution = QuestionedAttribution(workbench.model, method=METHODS[method], output="log_odds")
    with workbench.model_use.exclusive():  # gradients switched and layers hooked: alone
        return result, attribution.attribute(result.reference, result.questioned)


def explanation_views(
    workbench: Workbench,
    reference: str,
    questioned: str,
    method: str = DEFAULT_METHOD,
    *,
    questioned_choice: int = 1,
) -> tuple[list[tuple[np.ndarray, str]], Figure | None, np.ndarray]:
    """What the Explain button shows: (heatmap overlays (H, W, 3) uint8 with captions, the
    cross-attention figure or None, the attribution overlay (H, W, 3) uint8).

    Raises SignatureInputError / ValueError.
    """
    result, saliency = _explanation(workbench, reference, questioned, method, questioned_choice)
    overlays = []
    for i, maps in enumerate(result.block_maps, start=1):
        if maps is None:
            continue
        overlays.append((overlay_heatmap(result.reference, maps[0]), f"block {i}: reference"))
        overlays.append((overlay_heatmap(result.questioned, maps[1]), f"block {i}: questioned"))
    figure = None
    if result.cross_attention is not None:
        figure = cross_attention_figure(*result.cross_attention)
        plt.close(figure)
    return overlays, figure, overlay_attribution(result.questioned, saliency)


def examiner_report(
    workbench: Workbench,
    paths: list[str],
    questioned: str,
    threshold: float,
    method: str = DEFAULT_METHOD,
    questioned_choice: int = 1,
    population: str = "",
) -> Path:
    """The examiner's HTML report of the comparison, written to a new temporary folder (the
    explanation is of the first reference; ``questioned_choice``: the questioned page's
    candidate; ``population``: the LR calibration's, "" = pooled). Raises
    SignatureInputError / ValueError."""
    verdict = workbench.verify(
        paths, questioned, threshold=threshold, questioned_choice=questioned_choice
    )
    result, saliency = _explanation(workbench, paths[0], questioned, method, questioned_choice)
    REPORTS.mkdir(parents=True, exist_ok=True)
    prune(REPORTS, max_age_s=KEEP_SECONDS)
    folder = Path(tempfile.mkdtemp(prefix="report-", dir=REPORTS))
    return write_report(
        folder,
        workbench,
        paths,
        questioned,
        verdict,
        explanation=result,
        attribution=saliency,
        attribution_method=METHODS[method],
        questioned_choice=questioned_choice,
        population=population,
    )
