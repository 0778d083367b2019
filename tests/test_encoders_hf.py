"""The Hugging Face encoder on tiny models built from configs in the test (RANDOM weights: these
check plumbing, pooling and padding, not semantics) and saved to tmp_path, the way a user would
point ``encoder.model`` at any local model folder."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from fusionrec.encoders.base import EncoderError  # noqa: E402
from fusionrec.encoders.config import EncoderConfig  # noqa: E402
from fusionrec.encoders.factory import build_encoder  # noqa: E402
from fusionrec.encoders.features import text_features  # noqa: E402

TEXTS = ["rock band with loud guitars and drums", "jazz", "a quiet song",
         "pop pop pop pop pop pop pop pop pop pop pop pop", "cable."]
CORPUS = TEXTS + ["the band plays rock and jazz songs with guitars", "loud quiet drums cable"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer BERT with random weights and a WordPiece vocabulary of letters and words."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = sorted({w.strip(".") for text in CORPUS for w in text.split()})
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + words + list(letters)
             + [f"##{c}" for c in letters])
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    """A 2-layer GPT-2 with random weights and a byte-level BPE trained on a few sentences."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2Model, GPT2TokenizerFast

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    tokenizer = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                  bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2,
                        n_positions=64)
    GPT2Model(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _oracle(folder, texts, pooling):
    """Each text alone through the model (no padding at all), pooled by hand."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    out = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt")
            hidden = model(**ids).last_hidden_state[0]
            vector = {"mean": hidden.mean(0), "cls": hidden[0], "last": hidden[-1]}[pooling]
            out.append(vector.numpy())
    out = np.stack(out)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_bert_pooling_matches_unpadded_oracle(tiny_bert, pooling):
    config = EncoderConfig(model=str(tiny_bert), pooling=pooling, precision="fp32",
                           compile=False, batch_size=2)
    encoder = build_encoder(config)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, _oracle(tiny_bert, TEXTS, pooling), atol=2e-5)
    assert encoder.identity["pooling"] == pooling
    assert encoder.runtime["precision"] == "fp32"


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_gpt2_pooling_matches_unpadded_oracle(tiny_gpt2, pooling):
    config = EncoderConfig(model=str(tiny_gpt2), pooling=pooling, precision="fp32",
                           compile=False, batch_size=3)
    encoder = build_encoder(config)
    assert encoder.is_decoder
    np.testing.assert_allclose(encoder.encode(TEXTS), _oracle(tiny_gpt2, TEXTS, pooling),
                               atol=2e-5)


def test_auto_pooling_and_invalid_pooling(tiny_bert, tiny_gpt2):
    assert build_encoder(EncoderConfig(model=str(tiny_bert))).pooling == "mean"
    assert build_encoder(EncoderConfig(model=str(tiny_gpt2))).pooling == "last"
    with pytest.raises(EncoderError, match="cls pooling needs"):
        build_encoder(EncoderConfig(model=str(tiny_gpt2), pooling="cls"))
    with pytest.raises(EncoderError, match="last-token pooling"):
        build_encoder(EncoderConfig(model=str(tiny_bert), pooling="last"))


def test_max_length_truncates_and_is_capped_by_the_model(tiny_bert):
    short = build_encoder(EncoderConfig(model=str(tiny_bert), max_length=4, precision="fp32"))
    long_text = " ".join(["rock"] * 40)
    np.testing.assert_allclose(short.encode([long_text]), short.encode(["rock rock"]),
                               atol=1e-5)  # [CLS] rock rock [SEP] either way
    assert build_encoder(EncoderConfig(model=str(tiny_bert), max_length=512)).max_length == 64


def test_bf16_runs_and_records_agreement(tiny_bert):
    encoder = build_encoder(EncoderConfig(model=str(tiny_bert), precision="bf16",
                                          compile=False))
    vectors = encoder.encode(TEXTS)
    runtime = encoder.runtime
    assert runtime["precision"] == "bf16"
    assert runtime["agreement_vs_fp32"]["n"] == len(TEXTS)
    assert runtime["agreement_vs_fp32"]["min_cosine"] > 0.99
    fp32 = build_encoder(EncoderConfig(model=str(tiny_bert), precision="fp32")).encode(TEXTS)
    assert np.min(np.sum(vectors * fp32, axis=1)) > 0.99


def test_bf16_runs_on_a_mixed_twin_and_leaves_the_fp32_model_alone(tiny_bert):
    from fusionrec.encoders.mixed import LowPrecisionLinear

    encoder = build_encoder(EncoderConfig(model=str(tiny_bert), precision="bf16",
                                          compile=False))
    encoder.load()
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    vectors = encoder.encode(TEXTS)
    twin = encoder._runner
    assert twin is not encoder.model
    assert any(isinstance(m, LowPrecisionLinear) for m in twin.modules())
    assert all(v.dtype == torch.float32 and torch.equal(v, before[k])
               for k, v in encoder.model.state_dict().items())
    assert "fp32 norms and residual stream" in encoder.runtime["recipe"]
    fp32 = build_encoder(EncoderConfig(model=str(tiny_bert), precision="fp32"))
    reference = fp32.encode(TEXTS)
    assert fp32.runtime["recipe"] == "fp32"
    assert np.min(np.sum(vectors * reference, axis=1)) > 0.9999


def test_bf16_gpt2_through_the_cache_records_precision(tiny_gpt2, tmp_path):
    from test_text_fixtures import tiny_dataset

    config = EncoderConfig(model=str(tiny_gpt2), cache_dir=str(tmp_path), precision="bf16",
                           compile=False)
    features = text_features(tiny_dataset(), config, progress=False)
    runtime = features.meta["items"]["runtime"]
    assert runtime["precision"] == "bf16" and "fp32 norms" in runtime["recipe"]
    assert runtime["agreement_vs_fp32"]["min_cosine"] > 0.9999
    reference = text_features(tiny_dataset(), dataclasses.replace(
        config, precision="fp32", cache_dir=str(tmp_path / "fp32")), progress=False)
    assert np.min(np.sum(features.item * reference.item, axis=1)) > 0.9999


def test_empty_input_and_empty_text(tiny_bert):
    encoder = build_encoder(EncoderConfig(model=str(tiny_bert), precision="fp32"))
    assert encoder.encode([]).shape == (0, 32)
    assert encoder.model is None  # nothing to encode: weights never loaded
    assert np.isfinite(encoder.encode(["", "jazz"])).all()


def test_any_local_model_folder_drives_text_features(tiny_gpt2, tmp_path):
    from test_text_fixtures import tiny_dataset

    config = EncoderConfig(model=str(tiny_gpt2), cache_dir=str(tmp_path), precision="fp32")
    features = text_features(tiny_dataset(), config, progress=False)
    assert features.item.shape == (4, 32) and features.user.shape == (3, 32)
    assert features.meta["encoder"]["pooling"] == "last"
    assert len(features.meta["encoder"]["weights_hash"]) == 16
    again = text_features(tiny_dataset(), config, progress=False)
    assert again.meta["items"]["encoded"] == 0
    np.testing.assert_array_equal(again.item, features.item)


def test_agreement_sample_batches_bound_padding():
    from fusionrec.encoders.hf import sample_batches

    lengths = [66, 40, 30, 19, 13, 9, 6, 4]  # a Last.FM sample, longest first
    batches = sample_batches(lengths)
    assert [b for a, b in batches][-1] == len(lengths) and batches[0][0] == 0
    assert all(prev[1] == nxt[0] for prev, nxt in zip(batches, batches[1:]))  # contiguous
    for a, b in batches:  # padding to the batch's first (longest) text at most doubles it
        assert lengths[a] * (b - a) <= 2 * sum(lengths[a:b])
    assert sample_batches([5] * 70, max_size=32) == [(0, 32), (32, 64), (64, 70)]


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_each_thread_encodes_its_own_batches_with_the_one_thread_result(tiny_bert, precision):
    texts = CORPUS * 3  # 21 texts, 11 batches of 2
    config = EncoderConfig(model=str(tiny_bert), precision=precision, compile=False,
                           batch_size=2, num_threads=1)
    alone = build_encoder(config)
    pair = build_encoder(dataclasses.replace(config, num_threads=2))
    before = torch.get_num_threads()
    expected = alone.encode(texts)
    assert alone.runtime["workers"] == 1
    got = pair.encode(texts)
    assert pair.runtime["workers"] == 2 and pair.runtime["threads"] == 2
    np.testing.assert_allclose(got, expected, atol=1e-6)  # same batches, same kernels
    assert torch.get_num_threads() == before  # the caller's thread setting is restored


def test_a_later_call_checks_the_vectors_it_delivers_against_fp32(tiny_bert, monkeypatch):
    from fusionrec.encoders import hf

    encoder = build_encoder(EncoderConfig(model=str(tiny_bert), precision="bf16",
                                          compile=False, batch_size=2, num_threads=2))
    encoder.encode(TEXTS)
    first = encoder.runtime["agreement_vs_fp32"]
    seen = {}
    real = hf.agreement

    def spy(reference, delivered):
        seen["reference"], seen["delivered"] = reference.copy(), delivered.copy()
        return real(reference, delivered)

    monkeypatch.setattr(hf, "agreement", spy)
    vectors = encoder.encode(CORPUS)
    again = encoder.runtime["agreement_vs_fp32"]
    assert again["n"] == len(CORPUS) and again["min_cosine"] > 0.9999 and first["n"] == 5
    fp32 = build_encoder(EncoderConfig(model=str(tiny_bert), precision="fp32",
                                       normalize=False)).encode(CORPUS)
    sample = hf.HFEncoder._sample(np.argsort(-np.array(
        [len(ids) for ids in encoder.tokenise(CORPUS)]), kind="stable"))
    np.testing.assert_allclose(seen["reference"], fp32[sample], atol=1e-5)  # an fp32 pass
    delivered = seen["delivered"] / np.linalg.norm(seen["delivered"], axis=1, keepdims=True)
    np.testing.assert_allclose(delivered, vectors[sample], atol=1e-6)  # what was returned


def test_a_failing_batch_stops_the_workers_and_reaches_the_caller():
    from fusionrec.encoders.hf import _Batch
    from fusionrec.encoders.threads import run_on_threads

    done = []

    def run(job):
        if job.rows[0] == 3:
            raise ValueError("batch 3 failed")
        done.append(int(job.rows[0]))

    jobs = [_Batch(np.array([i]), None, "fp32") for i in range(50)]
    with pytest.raises(ValueError, match="batch 3"):
        run_on_threads(jobs, run, workers=2, threads_each=1)
    assert len(done) < 49  # the other worker stopped taking jobs
    done.clear()
    run_on_threads(jobs[4:], run, workers=2, threads_each=1)
    assert sorted(done) == list(range(4, 50))


@pytest.mark.parametrize("threads,compiles", [(1, True), (2, False)])
def test_auto_compile_only_for_large_single_thread_jobs(tiny_bert, monkeypatch, threads,
                                                        compiles):
    from fusionrec.encoders import hf

    calls = []
    monkeypatch.setattr(hf, "COMPILE_MIN_TOKENS", 1)  # every job counts as large
    monkeypatch.setattr(hf.HFEncoder, "_compile", lambda self: calls.append(1) or self._runner)
    encoder = build_encoder(EncoderConfig(model=str(tiny_bert), precision="bf16",
                                          num_threads=threads, batch_size=2))
    encoder.encode(CORPUS)
    assert bool(calls) is compiles and encoder.runtime["compiled"] is compiles
