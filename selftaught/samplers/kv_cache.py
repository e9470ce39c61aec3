"""A KV cache for ``HFSampler``'s decoding loop: transformers' ``DynamicCache`` with
layers that write each step's keys and values into a buffer with room to spare.

``DynamicLayer`` concatenates every step (a copy of the whole cache per layer and step:
38% of the built-in model's sampling time in a profile of 256 rows of ~100 tokens);
``StaticLayer`` never copies but hands attention its full length, so every step attends
over the longest possible row. Here a step writes its position, and attention reads the
filled part, a view.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

ROOM = 128  # positions allocated beyond what the first write needs; doubled when full


class GrowingLayer(DynamicLayer):
    # its own state, so that it depends on no more of DynamicLayer than its interface
    # (which transformers has reshaped between releases)
    key_buffer: torch.Tensor | None = None
    value_buffer: torch.Tensor | None = None
    length = 0

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        if self.key_buffer is None or end > self.key_buffer.shape[-2]:
            self._grow(key_states, value_states, end)
        self.key_buffer[..., self.length : end, :] = key_states
        self.value_buffer[..., self.length : end, :] = value_states
        self.length = end
        self._view()
        return self.keys, self.values

    def _grow(self, key_states, value_states, end: int) -> None:
        had = 0 if self.key_buffer is None else self.key_buffer.shape[-2]
        capacity = max(end + ROOM, 2 * had)
        keys, values = (
            states.new_empty((*states.shape[:-2], capacity, states.shape[-1]))
            for states in (key_states, value_states)
        )
        if had:
            keys[..., : self.length, :] = self.keys
            values[..., : self.length, :] = self.values
        self.key_buffer, self.value_buffer = keys, values
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True

    def _view(self) -> None:
        self.keys = self.key_buffer[..., : self.length, :]
        self.values = self.value_buffer[..., : self.length, :]

    def get_seq_length(self, *args) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.length:
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
