"""Attention for ``HFSampler``'s decoding on the CPU: a step's query per row against the KV
cache, and a few-shot batch's shared prefix held once for all its rows.

torch's CPU kernel for ``scaled_dot_product_attention`` (flash attention) spends ~2 ms
per layer on 256 rows of 32-wide heads over ~100 cached positions: 42% of the built-in
model's sampling time (benchmarks/speed/results.md). At one query per row, attention is
two batched products per head (query by keys, weights by values) over views of the cache,
which torch's ``bmm`` runs as they lie in memory.

A few-shot batch's rows share their exemplars (~400 tokens). Copied into every row's
cache, they are most of what each step reads (and the copy itself was 13% of SmolLM2's
sampling time); held once (``SharedPrefix``), all rows' queries meet the prefix's keys in
one product per key head, and one softmax spans the prefix's scores and the row's own
(cascade attention, as vLLM and FlashInfer call it).

Registered with transformers' attention interface, so the model's own layers call it,
with the prefix as a keyword argument of the model's forward, which transformers hands
to attention. Computed in float32 (a bf16 model's prefix too: bf16 ``bmm`` is slower on
this CPU). Any other call (a prefill without a prefix, a bf16 step without one, a GPU, a
model with dropout, softcapping or sinks) goes to transformers' sdpa.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "selftaught_decode"


@dataclass
class SharedPrefix:
    """Keys and values of the leading tokens every row of a batch shares, one row of them
    per layer (``[1, kv_heads, length, dim]``); the batch's cache holds each row's own
    tokens. ``reads`` counts the layers that attended to it: a model whose layers do not
    hand the forward's keyword arguments to attention would leave it at 0."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    reads: int = 0

    @classmethod
    def of(cls, cache) -> SharedPrefix:
        """From a cache that ran the prefix for one row."""
        # float32, as ``attend`` computes: it is one row
        layers = cache.layers
        return cls([x.keys.float() for x in layers], [x.values.float() for x in layers])

    @property
    def length(self) -> int:
        return self.keys[0].shape[-2]


def decode_attention(
    module,
    query,
    key,
    value,
    attention_mask,
    dropout=0.0,
    scaling=None,
    shared_prefix: SharedPrefix | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """``sdpa_attention_forward``'s signature and result (``[batch, queries, heads, dim]``)
    for query ``[batch, heads, queries, dim]``, keys and values ``[batch, kv_heads, length,
    dim]``, heads sharing a key head in groups (``repeat_kv``'s order)."""
    scaling = scaling or query.shape[-1] ** -0.5
    plain = is_plain(query, dropout, kwargs)
    # a prefix where ``attend`` is not sdpa's equal is left unread (``reads``): the
    # sampler sees it and copies the prefix into every row instead
    if shared_prefix is not None and plain:
        shared_prefix.reads += 1
        layer = module.layer_idx
        prefix = shared_prefix.keys[layer][0], shared_prefix.values[layer][0]
        return attend(query, key, value, attention_mask, scaling, prefix), None
    # without a prefix, a bfloat16 step is sdpa's: upcasting the cache would cost more
    if plain and query.shape[2] == 1 and query.dtype == torch.float32:
        return attend(query, key, value, attention_mask, scaling), None
    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
    )


def is_plain(query, dropout: float, kwargs: dict) -> bool:
    """Attention that ``attend`` computes as sdpa does."""
    return (
        query.device.type == "cpu"
        and not dropout
        and kwargs.get("softcap") is None
        and kwargs.get("s_aux") is None  # attention sinks (gpt-oss)
        and kwargs.get("position_bias") is None
    )


def attend(query, key, value, mask, scaling: float, prefix=None) -> torch.Tensor:
    """Softmax attention of each row's queries over its keys (the mask: True, or 0, where
    a query may attend; None: causal) and, when given, over ``prefix`` = (keys, values)
    ``[kv_heads, length, dim]`` shared by every row and visible to every query. In
    float32, whatever the model's precision (bf16 ``bmm`` is slower on this CPU)."""
    batch, heads, queries, dim = query.shape
    kv_heads, length, value_dim = key.shape[1], key.shape[2], value.shape[-1]
    rows = heads // kv_heads * queries  # per key head: the heads sharing it, each query
    # a key head's queries, each row's [heads sharing it x queries]
    q = (query.float() * scaling).reshape(batch * kv_heads, rows, dim)
    # reshape views the cache without a copy: its buffer is batch-major, contiguous
    keys = key.float().reshape(batch * kv_heads, length, dim)
    scores = torch.bmm(q, keys.transpose(1, 2)).view(batch, kv_heads, -1, queries, length)
    scores = _masked(scores, mask, queries, length).view(batch, kv_heads, rows, length)
    if prefix is not None:
        shared = _by_key_head(q, batch, kv_heads)  # [kv_heads, batch * rows, dim]
        prefix_scores = torch.bmm(shared, prefix[0].transpose(1, 2))
        scores = torch.cat([_by_row(prefix_scores, batch), scores], dim=-1)
    weights = scores.softmax(dim=-1)
    own = weights[..., weights.shape[-1] - length :].reshape(batch * kv_heads, rows, length)
    out = torch.bmm(own, value.float().reshape(batch * kv_heads, length, value_dim))
    out = out.view(batch, kv_heads, rows, value_dim)
    if prefix is not None:
        prefix_weights = _by_key_head(weights[..., : prefix[0].shape[1]], batch, kv_heads)
        out = out + _by_row(torch.bmm(prefix_weights, prefix[1]), batch)
    return out.view(batch, heads, queries, value_dim).transpose(1, 2).to(query.dtype)


def _masked(scores, mask, queries: int, length: int):
    """``scores`` ``[batch, kv_heads, group, queries, length]`` with -inf where the mask
    (``[batch, 1, queries, length]``) hides a key."""
    if mask is None:
        if queries == 1:
            return scores
        # the queries are the last of the row's tokens
        mask = torch.ones(queries, length, dtype=torch.bool, device=scores.device)
        mask = mask.tril(length - queries)
    if mask.dtype == torch.bool:
        return scores.masked_fill(~mask.unsqueeze(-3), float("-inf"))
    return scores + mask.unsqueeze(-3)


def _by_key_head(x, batch: int, kv_heads: int):
    """``[batch * kv_heads, rows, n]`` (or ``[batch, kv_heads, rows, n]``) as ``[kv_heads,
    batch * rows, n]``: every row's queries of a key head, for one product with the
    prefix."""
    x = x.reshape(batch, kv_heads, -1, x.shape[-1]).transpose(0, 1)
    return x.reshape(kv_heads, -1, x.shape[-1])


def _by_row(x, batch: int):
    """``[kv_heads, batch * rows, n]`` back to ``[batch, kv_heads, rows, n]``."""
    return x.view(x.shape[0], batch, -1, x.shape[-1]).transpose(0, 1)


AttentionInterface.register(NAME, decode_attention)
AttentionMaskInterface.register(NAME, sdpa_mask)


def use_decode_attention(model) -> None:
    """Decoding steps of a model on transformers' sdpa through ``decode_attention``; a
    model set to another implementation (eager, flash attention) keeps it."""
    if getattr(model.config, "_attn_implementation", None) == "sdpa":
        model.set_attn_implementation(NAME)
