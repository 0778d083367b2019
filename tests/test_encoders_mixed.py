"""The mixed-precision inference twin (bf16 matmuls, fp32 norms and residual stream) on tiny
BERT / GPT-2 models built from configs (random weights: these check numerics and plumbing)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch import nn  # noqa: E402

from fusionrec.encoders.mixed import (CastCache, LowPrecisionLinear,  # noqa: E402
                                      _fused_linear_available, mixed_precision_copy,
                                      uses_fused_kernels)
from fusionrec.encoders.precision import autocast_context  # noqa: E402

FUSED = _fused_linear_available(torch.bfloat16)


def _bert(attn: str = "sdpa"):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=64, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=32,
                        attn_implementation=attn)
    return BertModel(config).eval()


def _gpt2():
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=64, n_embd=64, n_layer=2, n_head=4, n_positions=32,
                        bos_token_id=0, eos_token_id=0)
    return GPT2Model(config).eval()


def _batch():
    """Two rows, the second right-padded: (ids, mask), both (2, 12)."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 64, (2, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    return ids, mask


def _pooled(model, precision: str = "fp32") -> torch.Tensor:
    ids, mask = _batch()
    with torch.inference_mode(), autocast_context(precision, "cpu"):
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1), hidden


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_twin_agrees_with_fp32_and_keeps_norms_and_output_fp32(attn):
    model = _bert(attn)
    twin = mixed_precision_copy(model)
    seen = []
    for module in twin.modules():
        if isinstance(module, nn.LayerNorm):
            module.register_forward_hook(lambda m, args, out: seen.append(
                (m.weight.dtype, args[0].dtype, out.dtype)))
    reference, _ = _pooled(model)
    pooled, hidden = _pooled(twin, "bf16")
    assert hidden.dtype == torch.float32  # final LayerNorm output: the residual stream
    # embeddings LN + 2 per layer, each with fp32 weights, fp32 input and fp32 output
    assert seen == [(torch.float32,) * 3] * 5
    assert _cosine(pooled, reference).min() > 0.9999
    assert (pooled - reference).abs().max() < 0.01
    linears = [m for m in twin.modules() if isinstance(m, LowPrecisionLinear)]
    assert len(linears) == 2 * 6 and not any(isinstance(m, nn.Linear) for m in twin.modules())
    assert all(m.weight.dtype == torch.bfloat16 for m in linears)
    assert twin.pooler is None  # BERT's pooler feeds no pooling mode


def test_a_norm_upcasts_its_input_passed_by_position_or_keyword():
    norm = mixed_precision_copy(_bert()).encoder.layer[0].output.LayerNorm
    x = torch.randn(2, 3, 64, dtype=torch.bfloat16)
    expected = nn.functional.layer_norm(x.float(), (64,), norm.weight, norm.bias, norm.eps)
    assert torch.equal(norm(x), expected) and torch.equal(norm(input=x), expected)


def test_twin_is_closer_to_fp32_than_plain_bf16():
    """The point of fp32 norms + residual: plain ``model.to(bfloat16)`` drifts further."""
    import copy

    model = _bert()
    reference, _ = _pooled(model)
    twin, _ = _pooled(mixed_precision_copy(model), "bf16")
    plain, _ = _pooled(copy.deepcopy(model).to(torch.bfloat16))
    assert (1 - _cosine(twin, reference)).max() < (1 - _cosine(plain, reference)).max()


def test_the_model_passed_in_is_not_modified():
    model = _bert()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reference, _ = _pooled(model)
    twin = mixed_precision_copy(model)
    _pooled(twin, "bf16")
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(before[k].dtype == after[k].dtype and torch.equal(before[k], after[k])
               for k in before)
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())
    assert all(isinstance(m, nn.Linear) for m in
               (model.encoder.layer[0].intermediate.dense, model.pooler.dense))
    assert type(model.encoder.layer[0].intermediate.intermediate_act_fn).__name__ == \
        "GELUActivation"
    assert torch.equal(_pooled(model)[0], reference)
    # embeddings and norms are shared, not copied; matmul weights are the twin's own
    assert (twin.embeddings.word_embeddings.weight.data_ptr()
            == model.embeddings.word_embeddings.weight.data_ptr())
    assert (twin.encoder.layer[0].output.LayerNorm.weight.data_ptr()
            == model.encoder.layer[0].output.LayerNorm.weight.data_ptr())
    assert (twin.encoder.layer[0].attention.self.query.weight.data_ptr()
            != model.encoder.layer[0].attention.self.query.weight.data_ptr())


@pytest.mark.skipif(not FUSED, reason="no oneDNN bf16 linear on this CPU")
def test_fused_kernels_match_the_unfused_fallback():
    model = _bert()
    fused_twin, unfused_twin = mixed_precision_copy(model, fuse=True), \
        mixed_precision_copy(model, fuse=False)
    assert uses_fused_kernels(fused_twin) and not uses_fused_kernels(unfused_twin)
    dense = fused_twin.encoder.layer[0].intermediate
    assert dense.dense.activation == "gelu" and isinstance(dense.intermediate_act_fn,
                                                           nn.Identity)
    fused, _ = _pooled(fused_twin, "bf16")
    unfused, _ = _pooled(unfused_twin, "bf16")
    assert _cosine(fused, unfused).min() > 0.9999


def test_gpt2_conv1d_becomes_a_transposed_linear_and_agrees():
    model = _gpt2()
    twin = mixed_precision_copy(model)
    attn = twin.h[0].attn.c_attn
    original = model.h[0].attn.c_attn  # Conv1D: weight (in, out)
    assert isinstance(attn, LowPrecisionLinear)
    assert (attn.in_features, attn.out_features) == tuple(original.weight.shape)
    reference, _ = _pooled(model)
    pooled, hidden = _pooled(twin, "bf16")
    assert hidden.dtype == torch.float32
    assert _cosine(pooled, reference).min() > 0.9999


def test_low_precision_linear_matches_nn_linear():
    torch.manual_seed(0)
    linear = nn.Linear(16, 8)
    x = torch.randn(3, 5, 16)
    for activation, fused in [("none", False), ("gelu", False)] + (
            [("none", True), ("gelu", True)] if FUSED else []):
        low = LowPrecisionLinear.from_module(linear, torch.bfloat16, activation, fused)
        expected = linear(x)
        if activation == "gelu":
            expected = nn.functional.gelu(expected)
        with torch.inference_mode():
            out = low(x)
        assert out.dtype == torch.bfloat16 and out.shape == (3, 5, 8)
        assert torch.allclose(out.float(), expected, atol=0.05, rtol=0.02), (activation, fused)
    with pytest.raises(ValueError, match="activation"):
        LowPrecisionLinear(linear.weight, linear.bias, torch.bfloat16, activation="relu")


def test_cast_cache_casts_a_shared_input_once_and_sees_in_place_changes():
    cache = CastCache()
    x = torch.randn(4, 8)
    first = cache(x, torch.bfloat16)
    assert first.dtype == torch.bfloat16 and cache(x, torch.bfloat16) is first  # q, k, v
    assert cache(first, torch.bfloat16) is first  # already low precision: no cast
    x.mul_(2)  # a new version of the same tensor is cast again
    again = cache(x, torch.bfloat16)
    assert again is not first and torch.equal(again, x.to(torch.bfloat16))
    other = x.clone()
    assert cache(other, torch.bfloat16) is not again
    cache.clear()
    assert cache._entry is None


def test_cast_cache_keeps_one_entry_per_thread():
    import threading

    cache = CastCache()
    x = torch.randn(4, 8)
    mine = cache(x, torch.bfloat16)
    seen = {}

    def other_thread():
        seen["before"] = cache._entry  # empty here: the main thread's entry is its own
        y = torch.randn(4, 8)
        cache(y, torch.bfloat16)
        cache.clear()  # the end of this thread's forward pass

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert seen["before"] is None
    assert cache(x, torch.bfloat16) is mine  # neither overwritten nor cleared by the other


def test_twin_holds_no_activation_after_a_forward():
    twin = mixed_precision_copy(_bert())
    _pooled(twin, "bf16")
    caches = {id(m._cast): m._cast for m in twin.modules() if isinstance(m, LowPrecisionLinear)}
    assert len(caches) == 1  # one cache shared by every linear of the twin
    assert next(iter(caches.values()))._entry is None
