"""Attention over a packed row (``train.padding_free``), one sequence at a time.

For sdpa and eager attention, transformers reads a packed row's restarting positions as
sequence boundaries and masks a [row x row] score matrix block by block: every layer
scores every token of the row against every other, nearly all of them masked, and the
mask, softmax and casts run over that whole matrix. With 8 sequences of ~52 tokens packed
into ~420 that is 8x the scores a padded batch computes; at the built-in model's rows of
~1,100 tokens, padding-free trained at half the padded speed (benchmarks/speed), and on
SmolLM2-135M's bf16 LoRA phase it made 1.88x float32's tokens/s where this makes 1.98x
(benchmarks/real_model).

Here the row's sequences are gathered into a padded batch ``[sequences, heads, longest,
dim]``, attended to by the kernel the model was set to (sdpa, or the model's own eager
function) under a causal mask per sequence, and scattered back: the attention of a padded
batch, and no padding anywhere else in the model. It is what FlashAttention's varlen
kernel does for packed rows on a GPU with flash_attention_2 (which is left as it is).
Every other call (a padded batch, with its attention mask) goes to the kernel unchanged.
On a GPU each layer reads the row's positions back to the CPU (a synchronization), which
flash_attention_2's varlen path does not need.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask, sdpa_mask

from selftaught.models.loading import unwrap_peft

# the kernel a model was set to -> the registered name of its packed form
PACKED = {"sdpa": "selftaught_packed_sdpa", "eager": "selftaught_packed_eager"}
MASKS = {"sdpa": sdpa_mask, "eager": eager_mask}


@dataclass(frozen=True)
class Layout:
    """Where a packed row's tokens go in the padded batch of its sequences."""

    gather: torch.Tensor  # [sequences, longest]: the row position at each slot
    scatter: torch.Tensor  # [row]: each row position's slot, counted over the whole batch
    allowed: torch.Tensor  # [sequences, 1, longest, longest]: causal, within the sequence


def sequence_starts(position_ids: torch.Tensor | None, length: int) -> torch.Tensor:
    """Where each sequence of a row of ``length`` tokens starts: wherever its position does
    not follow the one before, as transformers reads packed rows. One sequence without
    positions (or with positions of another shape)."""
    if position_ids is None or position_ids.numel() != length:
        return torch.zeros(1, dtype=torch.long)
    positions = position_ids.reshape(-1).cpu()
    breaks = (positions[1:] != positions[:-1] + 1).nonzero().squeeze(1) + 1
    return torch.cat([breaks.new_zeros(1), breaks])


def layout(starts: torch.Tensor, length: int, device) -> Layout:
    """The layout of a row of ``length`` tokens whose sequences begin at ``starts``."""
    lengths = torch.diff(starts, append=starts.new_tensor([length]))
    offsets = torch.arange(int(lengths.max()))
    filled = offsets < lengths[:, None]  # [sequences, longest]
    # a padding slot reads its sequence's first token: any real one would do, its output
    # is never scattered back and no real query attends to it
    gather = torch.where(filled, starts[:, None] + offsets, starts[:, None])
    scatter = filled.flatten().nonzero().squeeze(1)
    causal = torch.ones(len(offsets), len(offsets), dtype=torch.bool).tril()
    allowed = (causal & filled[:, None, :]).unsqueeze(1)
    return Layout(gather.to(device), scatter.to(device), allowed.to(device))


def packed_attention(
    module, query, key, value, attention_mask, *, kernel: str, position_ids=None, **kwargs
):
    """transformers' attention signature and result (``[batch, queries, heads, dim]``) for
    ``query`` ``[batch, heads, queries, dim]``, keys and values ``[batch, kv_heads, keys,
    dim]``; a row without an attention mask (``packed_mask``) attended sequence by
    sequence."""
    attend = kernel_function(kernel, module)
    if attention_mask is not None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return attend(module, query, key, value, attention_mask, **kwargs)
    length = query.shape[2]
    at = layout(sequence_starts(position_ids, length), length, query.device)

    def padded(x):  # [1, heads, row, dim] -> [sequences, heads, longest, dim]
        flat = x[0].transpose(0, 1).index_select(0, at.gather.flatten())
        return flat.unflatten(0, at.gather.shape).transpose(1, 2)

    mask = at.allowed
    if kernel == "eager":  # eager adds its mask to the scores, as transformers' eager_mask
        mask = torch.zeros(mask.shape, device=mask.device).masked_fill(
            ~mask, torch.finfo(torch.float32).min
        )
    out, _ = attend(module, padded(query), padded(key), padded(value), mask, **kwargs)
    # [sequences, longest, heads, dim] -> [1, row, heads, dim]
    return out.flatten(0, 1).index_select(0, at.scatter).unsqueeze(0), None


def kernel_function(kernel: str, module):
    if kernel == "sdpa":
        return sdpa_attention_forward
    return eager_function(type(module))


def eager_function(attention_class):
    """The model's eager attention: every transformers modeling file defines its own."""
    return getattr(sys.modules[attention_class.__module__], "eager_attention_forward", None)


def packed_mask(*, batch_size: int, attention_mask=None, kernel: str, **kwargs):
    """No mask for one row without padding or cached keys (``packed_attention`` masks
    each sequence); the kernel's own mask otherwise."""
    whole = kwargs.get("q_length") == kwargs.get("kv_length")
    if batch_size == 1 and attention_mask is None and whole:
        return None
    return MASKS[kernel](batch_size=batch_size, attention_mask=attention_mask, **kwargs)


for _kernel, _name in PACKED.items():
    AttentionInterface.register(_name, partial(packed_attention, kernel=_kernel))
    AttentionMaskInterface.register(_name, partial(packed_mask, kernel=_kernel))


def use_packed_attention(model) -> bool:
    """Switch a model (or a PEFT model's base) on sdpa or eager attention to its packed
    form; False, and the model left as it is, for any other attention, or a model with
    sliding-window layers (``packed_mask`` would drop their window)."""
    base = unwrap_peft(model)
    config = base.config
    kernel = config._attn_implementation
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    if (
        kernel not in PACKED
        or getattr(config, "sliding_window", None) is not None
        or any(kind != "full_attention" for kind in layer_types)
        or (kernel == "eager" and eager_function(type(base)) is None)
    ):
        return False
    base.set_attn_implementation(PACKED[kernel])
    return True
