"""Shared fixtures: synthetic signatures from the project's generator and the optional real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SIGNATURE_DATA", ROOT.parent / "shared" / "data"))


def real_data(*parts: str) -> Path:
    """A folder of ../shared/data (or $SIGNATURE_DATA); skips the test when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set SIGNATURE_DATA)")
    return path


def synthetic_signature(seed: int, *, forgery: bool = False) -> np.ndarray:
    """One synthetic signature (uint8, dark ink on light paper) from the project's generator."""
    from workbench.data.synthetic import make_writer, render_forgery, render_genuine

    rng = np.random.default_rng(seed)
    template = make_writer(rng)
    return (render_forgery if forgery else render_genuine)(template, rng)


@pytest.fixture(scope="session")
def signature() -> np.ndarray:
    return synthetic_signature(7)


@pytest.fixture()
def output_dir() -> Path:
    """test-output/ at the project root: screenshots and figures a person may want to look at."""
    path = ROOT / "test-output"
    path.mkdir(exist_ok=True)
    return path
