"""Shared test helpers. Real-data tests find the data root through :func:`shared_data_dir`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# No network at test time, ever: transformers / huggingface_hub must use local files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tests never write embeddings into the user's own cache (~/.cache/fusionrec).
os.environ.setdefault("FUSIONREC_CACHE", tempfile.mkdtemp(prefix="fusionrec-test-cache-"))

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """CPU tests stay the default: on a machine with a GPU only a run that selects the ``gpu``
    marker (``pytest -m gpu``) lets torch see it. Everything else runs as CI runs it, on the
    CPU: ``trainer.device: auto`` would otherwise pick the GPU, whose kernels are not
    bit-reproducible (the seeded tests compare weights exactly)."""
    selected = (config.getoption("markexpr") or "").replace("not gpu", "")
    if "gpu" not in selected:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # read when CUDA first initialises: not yet


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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.real)])
def store_url(request, tmp_path):
    """An event-store URL for each backend: a SQLite file, and a fresh database on the real
    tier's PostgreSQL server (``-m real``; see ``real_support``)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.sqlite3'}"
    else:
        from real_support import fresh_postgres_database

        with fresh_postgres_database() as url:
            yield url


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A random-weight 2-layer, 32-wide BERT with a one-logit head and the bundled MiniLM
    tokenizer, saved as a local model folder (offline; its scores mean nothing). Where the
    bundled package is not installed (a lent GPU machine), ``$FUSIONREC_TOKENIZER_DIR`` names
    a folder with the same tokenizer files (``benchmarks/gpu_check.py --prepare`` writes one)."""
    import shutil

    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from fusionrec.encoders.resolve import _bundled_path

    folder = tmp_path_factory.mktemp("tiny-bert")
    given = os.environ.get("FUSIONREC_TOKENIZER_DIR")
    source = Path(given) if given else _bundled_path()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        shutil.copy(source / name, folder / name)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, num_labels=1,
                        max_position_embeddings=256)
    BertForSequenceClassification(config).save_pretrained(str(folder))
    return folder


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one thread avoids OpenMP spin-waits on a shared, busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
