import types

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from selftaught.models.loading import load_model
from selftaught.models.tiny import save_new_tiny
from selftaught.samplers.decode_attention import (
    NAME,
    SharedPrefix,
    decode_attention,
    use_decode_attention,
)


def cache_views(batch, kv_heads, length, dim, room=5):
    """Keys and values as the growing cache hands them over: the filled part of a
    longer buffer."""
    buffers = torch.randn(2, batch, kv_heads, length + room, dim)
    return buffers[0, :, :, :length], buffers[1, :, :, :length]


@pytest.mark.parametrize("kv_heads", [6, 2], ids=["one key head per head", "grouped"])
def test_a_step_attends_as_transformers_sdpa(kv_heads):
    """Left-padded rows (a padding mask), heads sharing key heads in groups as SmolLM2's
    do, keys and values a view of the cache: what sdpa computes."""
    torch.manual_seed(0)
    batch, heads, length, dim = 5, 6, 9, 8
    module = types.SimpleNamespace(num_key_value_groups=heads // kv_heads, is_causal=True)
    query = torch.randn(batch, heads, 1, dim)
    key, value = cache_views(batch, kv_heads, length, dim)
    mask = torch.ones(batch, 1, 1, length, dtype=torch.bool)
    for row in range(batch):
        mask[row, ..., :row] = False  # row r has r padding positions
    for m in (mask, None):
        ours, _ = decode_attention(module, query, key, value, m, scaling=0.3)
        theirs, _ = sdpa_attention_forward(module, query, key, value, m, scaling=0.3)
        assert ours.shape == theirs.shape == (batch, 1, heads, dim)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_a_prefill_is_sdpa_s_own():
    torch.manual_seed(0)
    module = types.SimpleNamespace(num_key_value_groups=1, is_causal=True)
    query, key, value = torch.randn(3, 2, 4, 5, 8).unbind(0)
    ours, _ = decode_attention(module, query, key, value, None)
    theirs, _ = sdpa_attention_forward(module, query, key, value, None)
    assert torch.equal(ours, theirs)


def test_a_model_on_sdpa_decodes_with_it_and_greedily_writes_the_same(tmp_path):
    path = save_new_tiny(tmp_path / "tiny", 32, 2, 2, seed=0)
    plain, ours = load_model(path), load_model(path)
    use_decode_attention(ours)
    assert ours.config._attn_implementation == NAME
    prompt = torch.tensor([[5, 6, 7, 8], [0, 0, 9, 10]])
    mask = (prompt != 0).long()
    with torch.inference_mode():
        rows = [
            model.generate(input_ids=prompt, attention_mask=mask, max_new_tokens=8)
            for model in (plain, ours)
        ]
    assert torch.equal(*rows)


def test_a_model_set_to_another_attention_keeps_it(tmp_path):
    path = save_new_tiny(tmp_path / "tiny", 32, 2, 2, seed=0)
    model = load_model(path)
    model.set_attn_implementation("eager")
    use_decode_attention(model)
    assert model.config._attn_implementation == "eager"


@pytest.mark.parametrize("queries", [1, 3], ids=["a step", "a prefill"])
@pytest.mark.parametrize("padded", [True, False], ids=["padding mask", "no mask"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bf16"])
def test_a_prefix_held_once_attends_as_if_every_row_had_it(queries, padded, dtype):
    """Cascade attention: the prefix's keys shared by all rows, one softmax over them and
    each row's own (causal among its queries, padded on the left): sdpa over every row's
    [prefix | own] keys, with the prefix visible to all; in bf16 ours computes in float32
    (sdpa's result, in float32, rounded to bf16)."""
    torch.manual_seed(0)
    batch, heads, kv_heads, length, shared, dim = 4, 6, 2, 7, 5, 8
    module = types.SimpleNamespace(num_key_value_groups=3, is_causal=True, layer_idx=1)
    query = torch.randn(batch, heads, queries, dim).to(dtype)
    key, value = (x.to(dtype) for x in cache_views(batch, kv_heads, length, dim))
    prefix_keys, prefix_values = torch.randn(2, 1, kv_heads, shared, dim).to(dtype)
    causal = torch.ones(queries, length, dtype=torch.bool).tril(length - queries)
    mask = causal.expand(batch, 1, queries, length).clone()
    for row in range(batch):
        mask[row, ..., :row] = False
    prefix = SharedPrefix(
        [torch.zeros(0), prefix_keys.float()], [torch.zeros(0), prefix_values.float()]
    )
    ours, _ = decode_attention(
        module, query, key, value, mask if padded else None, scaling=0.3, shared_prefix=prefix
    )
    assert ours.dtype == dtype
    query, key, value = query.float(), key.float(), value.float()
    prefix_keys, prefix_values = prefix_keys.float(), prefix_values.float()
    whole_mask = torch.cat([torch.ones(batch, 1, queries, shared, dtype=torch.bool), mask], -1)
    if not padded:
        whole_mask = whole_mask[:1]
    theirs, _ = sdpa_attention_forward(
        module,
        query,
        torch.cat([prefix_keys.expand(batch, -1, -1, -1), key], dim=2),
        torch.cat([prefix_values.expand(batch, -1, -1, -1), value], dim=2),
        whole_mask,
        scaling=0.3,
    )
    torch.testing.assert_close(ours, theirs.to(dtype), rtol=1e-5, atol=1e-6)
    assert prefix.reads == 1
