"""Shared test helpers. Real-data tests find the data root through :func:`shared_data_dir`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No network at test time, ever: transformers / huggingface_hub must use local files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The real-data root: ``$FUSIONREC_DATA`` or ``<repo>/../shared/data``; skips when absent."""
    root = os.environ.get("FUSIONREC_DATA")
    path = Path(root).expanduser() if root else REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set FUSIONREC_DATA)")
    return path


@pytest.fixture
def shared_data() -> Path:
    """Fixture form of :func:`shared_data_dir`."""
    return shared_data_dir()
