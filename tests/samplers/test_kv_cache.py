import torch
from transformers.cache_utils import DynamicLayer

from selftaught.models.tiny import save_new_tiny
from selftaught.samplers.kv_cache import ROOM, GrowingLayer, growing_cache


def test_a_growing_layer_holds_what_a_dynamic_layer_holds():
    """Prefill, steps past the first allocation's room, rows dropped and repeated: the
    same keys and values as transformers' own layer, which concatenates."""
    torch.manual_seed(0)
    ours, theirs = GrowingLayer(), DynamicLayer()

    def both(method, *args):
        for layer in (ours, theirs):
            out = getattr(layer, method)(*args)
        return out

    both("update", torch.randn(4, 2, 7, 3), torch.randn(4, 2, 7, 3))
    for _ in range(ROOM + 5):
        keys, values = both("update", torch.randn(4, 2, 1, 3), torch.randn(4, 2, 1, 3))
        assert torch.equal(keys, theirs.keys) and torch.equal(values, theirs.values)
    both("batch_select_indices", torch.tensor([0, 2]))
    both("batch_repeat_interleave", 3)
    keys, values = both("update", torch.randn(6, 2, 1, 3), torch.randn(6, 2, 1, 3))
    assert torch.equal(ours.keys, theirs.keys) and torch.equal(ours.values, theirs.values)
    assert ours.get_seq_length() == theirs.get_seq_length() == 7 + ROOM + 6
    assert ours.key_buffer.shape[-2] > ours.get_seq_length()  # room left, nothing copied


def test_the_cache_of_a_plain_decoder_grows_in_place(tmp_path):
    model = save_new_tiny(tmp_path / "tiny", 32, 2, 2, seed=0)
    from selftaught.models.loading import load_model

    cache = growing_cache(load_model(model).config)
    assert len(cache.layers) == 2 and all(type(x) is GrowingLayer for x in cache.layers)
