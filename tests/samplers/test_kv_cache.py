import pytest
import torch
from transformers.cache_utils import DynamicLayer

from selftaught.models.tiny import save_new_tiny
from selftaught.samplers.kv_cache import ROOM, TIGHT_ROOM_BYTES, GrowingLayer, growing_cache


@pytest.mark.parametrize("dim", [3, 80], ids=["small keys: tight room", "large keys: doubled"])
def test_a_growing_layer_holds_what_a_dynamic_layer_holds(dim):
    """Prefill, steps past the first allocation's room, rows dropped and repeated: the
    same keys and values as transformers' own layer, which concatenates."""
    torch.manual_seed(0)
    ours, theirs = GrowingLayer(), DynamicLayer()

    def both(method, *args):
        for layer in (ours, theirs):
            out = getattr(layer, method)(*args)
        return out

    both("update", torch.randn(4, 2, 7, dim), torch.randn(4, 2, 7, dim))
    for _ in range(ROOM + 5):
        keys, values = both("update", torch.randn(4, 2, 1, dim), torch.randn(4, 2, 1, dim))
        assert torch.equal(keys, theirs.keys) and torch.equal(values, theirs.values)
    both("batch_select_indices", torch.tensor([0, 2]))
    both("batch_repeat_interleave", 3)
    keys, values = both("update", torch.randn(6, 2, 1, dim), torch.randn(6, 2, 1, dim))
    assert torch.equal(ours.keys, theirs.keys) and torch.equal(ours.values, theirs.values)
    assert ours.get_seq_length() == theirs.get_seq_length() == 7 + ROOM + 6
    assert ours.key_buffer.shape[-2] > ours.get_seq_length()  # room left: written in place


def test_small_keys_keep_little_room_and_large_ones_double_it():
    """Room after each row-head's keys breaks the stream attention reads (kv_cache.py):
    keys of 32 float32 (the built-in model's) keep room for 3 positions; keys of 64 or
    more get 128 positions of room, doubled when full."""
    layer = GrowingLayer()
    assert TIGHT_ROOM_BYTES // (32 * 4) == 3
    assert layer.capacity(100, 32 * 4) == 103
    assert layer.capacity(100, 64 * 4) == 100 + ROOM
    layer.update(torch.zeros(1, 1, 300, 64), torch.zeros(1, 1, 300, 64))
    assert layer.key_buffer.shape[-2] == 300 + ROOM
    assert layer.capacity(300 + ROOM + 1, 64 * 4) == 2 * (300 + ROOM)


@pytest.mark.parametrize("steps", [3, 2], ids=["full: regrown", "room left"])
def test_rows_dropped_when_full_ride_along_with_the_regrowth(steps):
    """Dropping rows from a full layer (the next write would copy it into new buffers)
    makes that copy, of the kept rows only, and the next write lands in place."""
    ours, theirs = GrowingLayer(), DynamicLayer()
    for layer in (ours, theirs):  # keys of 32 float32: room for 3 positions
        torch.manual_seed(0)
        layer.update(torch.randn(4, 2, 5, 32), torch.randn(4, 2, 5, 32))
        for _ in range(steps):
            layer.update(torch.randn(4, 2, 1, 32), torch.randn(4, 2, 1, 32))
        layer.batch_select_indices(torch.tensor([0, 3]))
    assert ours.full is False and ours.key_buffer.shape[0] == 2
    assert ours.key_buffer.shape[-2] == (8 + 1 + 3 if steps == 3 else 5 + 3)
    buffer = ours.key_buffer.data_ptr()
    for layer in (ours, theirs):
        layer.update(torch.ones(2, 2, 1, 32), torch.ones(2, 2, 1, 32))
    assert ours.key_buffer.data_ptr() == buffer
    assert torch.equal(ours.keys, theirs.keys) and torch.equal(ours.values, theirs.values)


def test_the_cache_of_a_plain_decoder_grows_in_place(tmp_path):
    model = save_new_tiny(tmp_path / "tiny", 32, 2, 2, seed=0)
    from selftaught.models.loading import load_model

    cache = growing_cache(load_model(model).config)
    assert len(cache.layers) == 2 and all(type(x) is GrowingLayer for x in cache.layers)
