"""benchmarks/scale.py on tiny synthetic worlds: one measured grid point per process, its
bookkeeping (texts = users + items, extrapolations), and the plot. The hashing encoder stands
in for MiniLM so the test takes seconds."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("scale_bench", REPO / "benchmarks" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows(scale):
    points = [(60, 40, 400), (60, 40, 1200), (60, 120, 1200)]
    return [scale.measure_point(users=u, items=i, interactions=n, lm_sample=16, steps=2,
                                threads=1, lm_model="hashing:32") for u, i, n in points]


def test_point_counts_texts_and_extrapolates(rows):
    for row in rows:
        assert row["n_texts"] == row["users"] + row["items"]
        assert row["lm_encode_s"] == pytest.approx(row["lm_s_per_text"] * row["n_texts"],
                                                   abs=0.01)
        assert row["lm_sample"] == 16 and row["lm_extrapolated"] is True
        assert row["steps_timed"] == 2 and row["train_epoch_s"] == pytest.approx(
            row["step_s"] * row["steps_per_epoch"], abs=0.01)
        # peaks are monotonic; the baseline is a current RSS (other counter, rounded)
        assert row["peak_rss_train_mb"] >= row["peak_rss_data_mb"] >= row["base_rss_mb"] - 1
        assert row["base_rss_mb"] > 0
        assert row["train_params"] > 0
    # steps per epoch follow the training positives (80% of interactions) at batch 4096
    assert rows[0]["steps_per_epoch"] == math.ceil(0.8 * 400 / 4096) == 1
    # more items -> more texts and more item-table parameters; interactions change neither
    assert rows[0]["n_texts"] == rows[1]["n_texts"] < rows[2]["n_texts"]
    assert rows[0]["train_params"] == rows[1]["train_params"] < rows[2]["train_params"]


def test_grids_cover_the_issue_ranges(scale):
    full = scale.grid(quick=False)
    assert {p["interactions"] for p in full} == {10**4, 10**5, 10**6}
    assert {p["items"] for p in full} == {10**3, 10**4, 10**5}
    quick = scale.grid(quick=True)
    assert {p["interactions"] for p in quick} == {10**4, 10**5, 10**6}
    assert {p["items"] for p in quick} == {10**3, 10**4, 10**5}
    assert len({p["users"] for p in quick}) == 1  # texts change with items only
    for p in full + quick:  # every point is a world the generator can draw
        assert p["interactions"] <= p["users"] * p["items"] / 2


def test_plot_writes_a_png(scale, rows, tmp_path):
    path = scale.plot(rows, tmp_path / "scale.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
