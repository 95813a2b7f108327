"""Pictures of what the verifier looked at: heatmap overlays and cross-attention matrices."""

from __future__ import annotations

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def overlay_heatmap(image: np.ndarray, heat: np.ndarray, *, strength: float = 0.55) -> np.ndarray:
    """Blend a low-resolution map over a normalized signature.

    Args:
        image: ``uint8`` (H, W) normalized signature.
        heat: (h, w) float map, resized bilinearly to (H, W) and min-max scaled for display.

    Returns:
        ``uint8`` (H, W, 3) RGB.
    """
    h, w = image.shape
    resized = cv2.resize(heat.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    span = float(resized.max() - resized.min())
    scaled = (resized - resized.min()) / span if span > 1e-12 else np.zeros_like(resized)
    colour = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[:, :, ::-1]
    base = np.repeat(image[:, :, None], 3, axis=2).astype(np.float32)
    return np.clip(base * (1 - strength) + colour * strength, 0, 255).astype(np.uint8)


def spp_cell_labels(levels: tuple[int, ...] = (1, 2, 4)) -> list[str]:
    """Token names in SPP order: ``1``, then ``2:r,c`` and ``4:r,c`` row by row."""
    return [f"{n}:{r},{c}" if n > 1 else "1" for n in levels for r in range(n) for c in range(n)]


def cross_attention_figure(a1: np.ndarray, a2: np.ndarray) -> plt.Figure:
    """Both 21 x 21 attention matrices, rows and columns labelled by SPP cell (eq. 7-8)."""
    labels = spp_cell_labels()
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2), dpi=90)
    titles = (
        "A1: questioned tokens (rows) attend to reference tokens",
        "A2: reference tokens (rows) attend to questioned tokens",
    )
    for ax, matrix, title in zip(axes, (a1, a2), titles):
        shown = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=max(float(matrix.max()), 1e-6))
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        for edge in (0.5, 4.5):  # boundaries between pyramid levels
            ax.axhline(edge, c="w", lw=0.8)
            ax.axvline(edge, c="w", lw=0.8)
        ax.set_title(title, fontsize=9)
        fig.colorbar(shown, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
