import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

from selftaught.models.packed_attention import (
    PACKED,
    layout,
    sequence_starts,
    use_packed_attention,
)
from selftaught.models.training import HFTrainer, collate, pack
from selftaught.tasks import Example

SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, vocab_size=50)


def llama(kernel: str, packed: bool):
    """Two key heads for four query heads, as SmolLM2 groups them (3 for 9)."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SMALL, num_attention_heads=4, num_key_value_heads=2))
    model.set_attn_implementation(kernel)
    if packed:
        assert use_packed_attention(model)
        assert model.config._attn_implementation == PACKED[kernel]
    return model.train()


def batch_of(lengths):
    generator = torch.Generator().manual_seed(1)
    rows = [torch.randint(1, 50, (n,), generator=generator).tolist() for n in lengths]
    return [(ids, ids) for ids in rows]


def test_sequences_start_where_positions_restart():
    positions = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])
    assert sequence_starts(positions, 9).tolist() == [0, 3, 5]
    assert sequence_starts(None, 9).tolist() == [0]
    assert sequence_starts(torch.arange(4)[None], 4).tolist() == [0]


def test_the_layout_gathers_each_sequence_and_scatters_it_back():
    at = layout(torch.tensor([0, 3, 5]), 9, "cpu")
    assert at.gather.tolist() == [[0, 1, 2, 0], [3, 4, 3, 3], [5, 6, 7, 8]]
    row = torch.arange(9) * 10
    assert torch.equal(row[at.gather].flatten()[at.scatter], row)
    # causal within a sequence, never onto its padding slots
    assert at.allowed[1, 0].tolist() == [
        [True, False, False, False],
        [True, True, False, False],
        [True, True, False, False],
        [True, True, False, False],
    ]


@pytest.mark.parametrize("kernel", ["sdpa", "eager"])
@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "bf16"])
def test_a_packed_row_gives_the_logits_and_gradients_of_transformers_masking(kernel, bf16):
    """Against transformers' own block-diagonal mask over the whole row (which it builds
    where no cache is passed, as in training), with grouped key heads."""
    input_ids, labels, positions = pack(batch_of([5, 17, 3, 30, 9]))
    results = []
    for packed in (False, True):
        model = llama(kernel, packed)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(input_ids=input_ids, position_ids=positions, labels=labels, use_cache=False)
        out.loss.backward()
        grads = {name: p.grad for name, p in model.named_parameters()}
        results.append((out.logits.float(), grads))
    (logits, grads), (packed_logits, packed_grads) = results
    tolerance = {"rtol": 2e-2, "atol": 2e-2} if bf16 else {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(packed_logits, logits, **tolerance)
    for name, grad in grads.items():
        torch.testing.assert_close(packed_grads[name], grad, **tolerance, msg=name)


@pytest.mark.parametrize("kernel", ["sdpa", "eager"])
def test_a_padded_batch_keeps_the_kernels_own_masking(kernel):
    input_ids, _, mask = collate(batch_of([4, 9, 2]), 0)
    plain, packed = (llama(kernel, p).eval() for p in (False, True))
    with torch.no_grad():
        expected = plain(input_ids=input_ids, attention_mask=mask).logits
        got = packed(input_ids=input_ids, attention_mask=mask).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("kernel", ["sdpa", "eager"])
def test_a_row_after_cached_keys_keeps_the_kernels_own_masking(kernel):
    """Several new tokens after a cache (a prefill continued): the kernel's causal mask,
    offset by the cached length, not a fresh sequence's."""
    from transformers import DynamicCache

    ids = torch.tensor([batch_of([9])[0][0]])
    logits = []
    for packed in (False, True):
        model = llama(kernel, packed).eval()
        cache = DynamicCache(config=model.config)
        with torch.no_grad():
            model(input_ids=ids[:, :5], past_key_values=cache, use_cache=True)
            out = model(input_ids=ids[:, 5:], past_key_values=cache, use_cache=True)
        logits.append(out.logits)
    torch.testing.assert_close(logits[1], logits[0], rtol=1e-5, atol=1e-6)


def test_other_attention_and_sliding_windows_are_left_as_they_are():
    torch.manual_seed(0)
    config = dict(**SMALL, num_attention_heads=4, num_key_value_heads=2)
    windowed = MistralForCausalLM(MistralConfig(**config, sliding_window=4))
    windowed.set_attn_implementation("sdpa")
    assert not use_packed_attention(windowed)
    assert windowed.config._attn_implementation == "sdpa"
    full = LlamaForCausalLM(LlamaConfig(**config))
    full.config._attn_implementation = "flex_attention"  # not loaded: its package may lack
    assert not use_packed_attention(full)


def test_a_lora_model_is_switched_through_its_base():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(llama("sdpa", False), LoraConfig(r=2, target_modules=["q_proj"]))
    assert use_packed_attention(model)
    assert model.get_base_model().config._attn_implementation == PACKED["sdpa"]


@pytest.mark.parametrize("padding_free", [False, True])
def test_the_trainer_packs_attention_only_when_padding_free(
    tiny_model, tmp_path, monkeypatch, padding_free
):
    import selftaught.models.training as training

    switched = []
    monkeypatch.setattr(
        training, "use_packed_attention", lambda model: switched.append(model) or True
    )
    examples = [Example(f"Input:\n{i} + 1\nTarget:\n", str(i + 1)) for i in range(4)]
    HFTrainer(batch_size=4, padding_free=padding_free).fit(tiny_model, examples, 1, tmp_path, 0)
    assert len(switched) == int(padding_free)
