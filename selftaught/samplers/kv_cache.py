"""A KV cache for ``HFSampler``'s decoding loop: transformers' ``DynamicCache`` with
layers that write each step's keys and values into a buffer with room to spare.

``DynamicLayer`` concatenates every step (a copy of the whole cache per layer and step:
38% of the built-in model's sampling time in a profile of 256 rows of ~100 tokens);
``StaticLayer`` never copies but hands attention its full length, so every step attends
over the longest possible row. Here a step writes its position, and attention reads the
filled part, a view; the buffer is regrown when full. Rows dropped from a full layer ride
along with that copy (``regrows_next``: the sampler drops ended rows then).
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

ROOM = 128  # positions allocated beyond what the first write needs; doubled when full
# Attention reads each row-head's keys as one stretch of memory, and room left after it
# breaks the stream: `bmm` reads the built-in model's keys at 12-15 GB/s with room for 4
# or 60 positions after each row-head's, at 27-38 with room for 3 or none
# (benchmarks/speed/results-decoding.md). Where this many bytes hold 2 positions or more,
# the cache keeps only that much room and regrows (a copy) every few steps: for the
# built-in model (3 positions of 32 floats) 1.17x and 1.40x the tokens/s of the roomy
# cache in two runs of decoding.py.
TIGHT_ROOM_BYTES = 384


class GrowingLayer(DynamicLayer):
    # its own state, so that it depends on no more of DynamicLayer than its interface
    # (which transformers has reshaped between releases)
    key_buffer: torch.Tensor | None = None
    value_buffer: torch.Tensor | None = None
    length = 0
    tight_room_bytes = TIGHT_ROOM_BYTES

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        if self.key_buffer is None:
            self._allocate(key_states, value_states, end)
        elif end > self.key_buffer.shape[-2]:
            self._regrow(end)
        self.key_buffer[..., self.length : end, :] = key_states
        self.value_buffer[..., self.length : end, :] = value_states
        self.length = end
        self._view()
        return self.keys, self.values

    def capacity(self, end: int, position_bytes: int) -> int:
        """Positions to allocate when ``end`` no longer fits, for keys of
        ``position_bytes`` a position and head."""
        tight = self.tight_room_bytes // position_bytes
        if tight >= 2:
            return end + tight
        had = 0 if self.key_buffer is None else self.key_buffer.shape[-2]
        return max(end + ROOM, 2 * had)

    @property
    def full(self) -> bool:
        """The next position written needs new buffers (a copy of the whole layer)."""
        return self.key_buffer is not None and self.length == self.key_buffer.shape[-2]

    def _allocate(self, key_states, value_states, end: int) -> None:
        capacity = self.capacity(end, key_states.shape[-1] * key_states.element_size())
        self.key_buffer, self.value_buffer = (
            states.new_empty((*states.shape[:-2], capacity, states.shape[-1]))
            for states in (key_states, value_states)
        )
        self.dtype, self.device, self.is_initialized = key_states.dtype, key_states.device, True

    def _regrow(self, end: int, rows: torch.Tensor | None = None) -> None:
        """New buffers with room for ``end`` positions and more, holding what the old ones
        held, of ``rows`` only where given: one copy regrows and drops rows at once."""
        old = self.key_buffer
        capacity = self.capacity(end, old.shape[-1] * old.element_size())
        batch = len(old) if rows is None else len(rows)
        moved = []
        for held in (self.keys, self.values):
            buffer = held.new_empty((batch, *held.shape[1:-2], capacity, held.shape[-1]))
            into = buffer[..., : self.length, :]
            if rows is None:
                into.copy_(held)
            else:  # writes through the strided view: no intermediate copy of the rows
                torch.index_select(held, 0, rows, out=into)
            moved.append(buffer)
        self.key_buffer, self.value_buffer = moved

    def _view(self) -> None:
        self.keys = self.key_buffer[..., : self.length, :]
        self.values = self.value_buffer[..., : self.length, :]

    def get_seq_length(self, *args) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.full:  # the next step would copy the layer anyway
            self._regrow(self.length + 1, indices)
            self._view()
        elif self.length:
            self.key_buffer = self.key_buffer[indices]
            self.value_buffer = self.value_buffer[indices]
            self._view()

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.length:
            self.key_buffer = self.key_buffer.repeat_interleave(repeats, dim=0)
            self.value_buffer = self.value_buffer.repeat_interleave(repeats, dim=0)
            self._view()


def growing_cache(config) -> DynamicCache:
    """A ``DynamicCache`` of growing layers, or the plain one for a model with
    sliding-window or other special layers, which keep their own classes."""
    cache = DynamicCache(config=config)
    if all(type(layer) is DynamicLayer for layer in cache.layers):
        cache.layers = [GrowingLayer() for _ in cache.layers]
    return cache


def all_growing(cache: DynamicCache) -> bool:
    return all(isinstance(layer, GrowingLayer) for layer in cache.layers)


def regrows_next(cache: DynamicCache) -> bool:
    """The next step copies every layer into new buffers: rows dropped now ride along
    with that copy (``GrowingLayer.batch_select_indices``) instead of costing their own."""
    return all(isinstance(layer, GrowingLayer) and layer.full for layer in cache.layers)
