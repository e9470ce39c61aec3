import pytest
import torch
from safetensors.torch import load_file

from selftaught.config import LoraConfig, RunConfig
from selftaught.models.loading import load_model, load_tokenizer
from selftaught.models.tiny import save_new_tiny
from selftaught.models.train_loop import (
    TrainingError,
    save_optimizer_state,
    train,
)
from selftaught.models.training import (
    IGNORE,
    HFTrainer,
    collate,
    compile_layers,
    completion_tokens,
    enable_checkpointing,
    encode,
    load_trainable,
    micro_batches,
    model_inputs,
    pack,
    shuffled_batches,
)
from selftaught.tasks import Example


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_new_tiny(tmp_path_factory.mktemp("tiny"), 32, 2, 2, seed=0)


def test_loss_covers_the_completion_only(tiny):
    tokenizer = load_tokenizer(tiny)
    ids, labels = encode(tokenizer, Example("Input:\n1 + 1\nTarget:\n", "2"))
    prompt_len = len("Input:\n1 + 1\nTarget:\n")  # one token per character
    assert labels[:prompt_len] == [IGNORE] * prompt_len
    assert tokenizer.decode(labels[prompt_len:]) == "2</s>"
    assert ids[prompt_len:] == labels[prompt_len:]


def test_collate_pads_right_and_masks_padding():
    input_ids, labels, mask = collate([([5, 6, 7], [IGNORE, 6, 7]), ([5], [5])], pad_id=0)
    assert input_ids.tolist() == [[5, 6, 7], [5, 0, 0]]
    assert labels.tolist() == [[IGNORE, 6, 7], [5, IGNORE, IGNORE]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_pack_puts_sequences_end_to_end_with_positions_restarting():
    input_ids, labels, positions = pack([([5, 6, 7], [IGNORE, 6, 7]), ([8, 9], [8, 9])])
    assert input_ids.tolist() == [[5, 6, 7, 8, 9]]
    # 8 opens a sequence: nothing before it in that sequence predicts it
    assert labels.tolist() == [[IGNORE, 6, 7, IGNORE, 9]]
    assert positions.tolist() == [[0, 1, 2, 0, 1]]


def test_batches_cover_every_example_each_epoch():
    import random

    encoded = [([i] * (i % 7 + 1), [i]) for i in range(96)]
    batches = shuffled_batches(encoded, 8, random.Random(0))
    first = [ids[0] for _ in range(12) for ids, _ in next(batches)]
    second = [ids[0] for _ in range(12) for ids, _ in next(batches)]
    assert sorted(first) == sorted(second) == list(range(96))
    assert first != second
    tiny = shuffled_batches(encoded[:3], 8, random.Random(0))  # fewer examples than a batch
    assert sorted(ids[0] for ids, _ in next(tiny)) == [0, 1, 2]


def test_micro_batches_group_rows_of_like_length():
    batch = [([0] * n, [0] * n) for n in (5, 1, 9, 3, 7, 2, 8)]
    groups = micro_batches(batch, 3)
    assert [[len(ids) for ids, _ in g] for g in groups] == [[1, 2, 3], [5, 7, 8], [9]]
    assert micro_batches(batch[:2], 4) == [[batch[1]], [batch[0]]]
    assert micro_batches(batch, 1) == [batch]  # as it is: the same rounding as before


def test_completion_tokens_counts_labels_after_the_shift():
    batch = [([5, 6, 7], [IGNORE, 6, 7]), ([5, 6], [5, 6])]  # the first label predicts nothing
    assert completion_tokens(batch) == 3


@pytest.mark.parametrize(
    "parts, padding_free, attention",
    [(3, False, None), (1, True, None), (3, True, None), (1, True, "eager"), (3, False, "eager")],
)
def test_micro_batches_and_packing_give_the_gradient_of_one_padded_batch(
    tiny, parts, padding_free, attention
):
    """Also with eager attention (``train.attn_implementation``) against sdpa's."""
    from accelerate import Accelerator

    # lengths from 1 to 4 digits, so one padded batch is mostly padding
    examples = [
        Example(f"Input:\n{n} + {n}\nTarget:\n", f"{2 * n}\n" * (len(str(n)) * 3))
        for n in (1, 22, 333, 4444, 5, 66, 777, 8888)
    ]
    tokenizer = load_tokenizer(tiny)
    batch = [encode(tokenizer, ex) for ex in examples]
    losses, grads = [], []
    for trainer, n in (
        (HFTrainer(), 1),
        (HFTrainer(padding_free=padding_free, attn_implementation=attention), parts),
    ):
        model = load_model(tiny, "float32", attention=trainer.attn_implementation)
        model.train()
        loss, tokens = trainer._accumulate(Accelerator(), model, batch, tokenizer, n)
        assert int(tokens) == sum(len(ids) for ids, _ in batch)
        losses.append(loss)
        grads.append({name: p.grad for name, p in model.named_parameters()})
    # the loss over the whole batch's completion tokens, not a mean of per-part means, and
    # no attention across packed sequences; compared as gradients, before an optimizer step
    # (Adam turns a rounding difference in a near-zero gradient into a full step of either
    # sign)
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=0)
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-7, msg=name)


def test_fit_lowers_the_loss_and_saves_safetensors(tiny, tmp_path):
    examples = [Example(f"Input:\n{i} + 1\nTarget:\n", f"{i + 1}") for i in range(1, 9)]
    trainer = HFTrainer(batch_size=8, lr=1e-2)
    before = _loss(tiny, examples)
    result = trainer.fit(tiny, examples, 40, tmp_path / "out", seed=0)
    after = _loss(tmp_path / "out", examples)
    assert result.steps == 40 and result.tokens > 0
    assert after < before / 2
    assert (tmp_path / "out" / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.tmp"))
    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_mixed_precision_multiplies_in_bfloat16_and_keeps_float32_weights(
    tiny, tmp_path, monkeypatch, product_dtypes
):
    examples = [Example(f"Input:\n{i} + 1\nTarget:\n", f"{i + 1}") for i in range(1, 9)]
    before = _loss(tiny, examples)
    product_dtypes.clear()  # _loss's own
    HFTrainer(batch_size=8, lr=1e-2, mixed_precision="bf16").fit(
        tiny, examples, 40, tmp_path / "out", seed=0
    )
    monkeypatch.undo()
    assert product_dtypes == {torch.bfloat16}
    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert {w.dtype for w in weights.values()} == {torch.float32}
    assert _loss(tmp_path / "out", examples) < before / 2


def test_fit_refuses_an_empty_training_set(tiny, tmp_path):
    with pytest.raises(TrainingError, match="no training examples"):
        HFTrainer().fit(tiny, [], 5, tmp_path / "out", seed=0)
    assert not (tmp_path / "out").exists()


def test_fit_stops_on_a_non_finite_loss(tiny, tmp_path):
    examples = [Example("Input:\n1 + 1\nTarget:\n", "2")]
    with pytest.raises(TrainingError, match="loss is (nan|inf)"):
        HFTrainer(lr=1e30, max_grad_norm=1e30).fit(tiny, examples, 20, tmp_path / "out", 0)
    assert not (tmp_path / "out").exists()


def _loss(path, examples) -> float:
    model, tokenizer = load_model(path).eval(), load_tokenizer(path)
    batch = collate([encode(tokenizer, e) for e in examples], tokenizer.pad_token_id)
    with torch.no_grad():
        return model(input_ids=batch[0], labels=batch[1], attention_mask=batch[2]).loss.item()


def test_continuing_one_schedule_equals_one_uninterrupted_run(tiny, tmp_path):
    # 8 examples, batch 8: every step sees the same batch, so two 4-step calls can match
    # one 8-step call only if the optimizer moments and the LR schedule carry over
    examples = [Example(f"Input:\n{i} + 1\nTarget:\n", f"{i + 1}") for i in range(1, 9)]
    trainer = HFTrainer(batch_size=8, lr=1e-2)
    trainer.fit(tiny, examples, 8, tmp_path / "whole", seed=0)
    trainer.fit(tiny, examples, 4, tmp_path / "half", seed=0, schedule=(0, 8))
    trainer.fit(tmp_path / "half", examples, 4, tmp_path / "both", seed=0, schedule=(4, 8))
    trainer.fit(tmp_path / "half", examples, 4, tmp_path / "restarted", seed=0)
    whole = load_file(tmp_path / "whole" / "model.safetensors")
    both = load_file(tmp_path / "both" / "model.safetensors")
    restarted = load_file(tmp_path / "restarted" / "model.safetensors")
    assert all(torch.allclose(whole[k], both[k], atol=1e-5) for k in whole)
    assert not all(torch.allclose(whole[k], restarted[k], atol=1e-5) for k in whole)


def test_continuing_without_saved_optimizer_state_is_a_clear_error(tiny, tmp_path):
    examples = [Example("Input:\n1 + 1\nTarget:\n", "2")]
    with pytest.raises(TrainingError, match="no optimizer state"):
        HFTrainer().fit(tiny, examples, 2, tmp_path / "out", seed=0, schedule=(2, 4))


def test_the_trainer_takes_keywords_and_a_runs_settings():
    with pytest.raises(TypeError):
        HFTrainer(8, 1e-2)
    config = RunConfig.model_validate(
        {
            "train": {
                "batch_size": 4,
                "lr": 1e-4,
                "micro_batches": 2,
                "mixed_precision": "bf16",
                "padding_free": True,
                "attn_implementation": "eager",
                "torch_compile": True,
                "torch_compile_backend": "aot_eager",
            },
            "model": {"dtype": "bfloat16"},
        }
    )
    trainer = HFTrainer.from_config(config)
    assert (trainer.batch_size, trainer.lr, trainer.micro_batches) == (4, 1e-4, 2)
    assert trainer.mixed_precision == "bf16" and trainer.padding_free
    assert trainer.attn_implementation == "eager"
    assert trainer.torch_compile and trainer.torch_compile_backend == "aot_eager"
    assert trainer.dtype == "bfloat16" and trainer.chat_template and trainer.lora is None


def _reference_run(batches) -> torch.nn.Module:
    """The loop written out: what train() must compute, bit for bit."""
    from transformers import get_cosine_schedule_with_warmup

    torch.manual_seed(1)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.01, betas=(0.9, 0.98))
    schedule = get_cosine_schedule_with_warmup(optimizer, 2, len(batches))
    for x in batches:
        model(x).pow(2).mean().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    return model


def test_the_shared_loop_is_adamw_on_a_cosine_schedule_bit_for_bit(tmp_path):
    from accelerate import Accelerator

    torch.manual_seed(0)
    batches = [torch.randn(3, 4) for _ in range(6)]

    def step_loss(model, x):
        loss = model(x).pow(2).mean()
        loss.backward()
        return loss.detach(), x.numel()

    settings = dict(lr=0.1, weight_decay=0.01, warmup_ratio=0.3, max_grad_norm=0.5)
    torch.manual_seed(1)
    model, seen = torch.nn.Linear(4, 1), []
    trained = train(
        Accelerator(),
        model,
        iter(batches),
        step_loss,
        6,
        progress=lambda step, loss: seen.append(step),
        **settings,
    )
    reference = _reference_run(batches)
    assert torch.equal(model.weight, reference.weight) and torch.equal(model.bias, reference.bias)
    assert seen == [1, 2, 3, 4, 5, 6] and trained.result.tokens == 6 * 12
    # the same schedule in two calls, the optimizer state saved and restored in between
    torch.manual_seed(1)
    model = torch.nn.Linear(4, 1)
    first = train(
        Accelerator(), model, iter(batches[:3]), step_loss, 3, schedule=(0, 6), **settings
    )
    save_optimizer_state(first.optimizer, model, tmp_path / "optimizer.safetensors")
    train(
        Accelerator(),
        model,
        iter(batches[3:]),
        step_loss,
        3,
        schedule=(3, 6),
        optimizer_state=tmp_path / "optimizer.safetensors",
        **settings,
    )
    assert torch.equal(model.weight, reference.weight) and torch.equal(model.bias, reference.bias)


def test_completion_loss_is_the_models_own_loss():
    """A large vocabulary's loss from completion positions only equals the full one."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from selftaught.models.training import completion_loss

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=5000,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    model = LlamaForCausalLM(config)
    batch = [
        ([5, 6, 7, 8, 9, 10], [IGNORE] * 3 + [8, 9, 10]),
        ([5, 6, 7, 8], [IGNORE, IGNORE, 7, 8]),
        ([1, 2, 3, 4, 5, 6, 7, 8], [IGNORE] * 6 + [7, 8]),
    ]
    ids, labels, mask = collate(batch, 0)
    for n in (None, torch.tensor(10)):
        full = model(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=n)
        for padding_free in (False, True):
            inputs, labels_in = model_inputs(batch, 0, padding_free)
            assert completion_loss(model, inputs, labels_in, n).item() == pytest.approx(
                full.loss.item(), rel=1e-5
            )


def test_gradient_checkpointing_trains_to_the_same_weights(tiny, tmp_path):
    examples = [Example(f"Input:\n{i} + 1\nTarget:\n", str(i + 1)) for i in range(8)]
    for name, checkpointing in (("kept", False), ("recomputed", True)):
        trainer = HFTrainer(batch_size=4, lr=1e-2, gradient_checkpointing=checkpointing)
        trainer.fit(tiny, examples, 3, tmp_path / name, seed=0)
    kept = load_file(tmp_path / "kept" / "model.safetensors")
    recomputed = load_file(tmp_path / "recomputed" / "model.safetensors")
    before = load_file(tiny / "model.safetensors")
    assert any(not torch.equal(kept[k], v) for k, v in before.items())  # it learnt
    for key in kept:
        assert torch.allclose(kept[key], recomputed[key], atol=1e-5), key
    model = load_model(tiny, "float32")
    enable_checkpointing(model)
    assert all(layer.gradient_checkpointing for layer in model.model.layers)


@pytest.mark.parametrize("lora", [None, LoraConfig(r=2, alpha=4)], ids=["full", "lora"])
def test_compiled_layers_train_as_the_plain_ones(tiny, tmp_path, lora, monkeypatch):
    """torch_compile: every decoder layer goes through torch.compile (aot_eager here:
    dynamo's graphs and autograd's, no code generated, so the test stays fast), the
    checkpoint keeps its files and keys, and the losses match the uncompiled phase's."""
    calls = []
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: calls.append(kw) or real(fn, **kw))
    examples = [Example(f"Input:\n{i} + 1\nTarget:\n", str(i + 1)) for i in range(8)]
    losses = {}
    for name, compiled in (("plain", False), ("compiled", True)):
        trainer = HFTrainer(
            batch_size=4,
            lr=1e-2,
            lora=lora,
            torch_compile=compiled,
            torch_compile_backend="aot_eager",
        )
        seen = losses.setdefault(name, [])
        trainer.fit(
            tiny,
            examples,
            3,
            tmp_path / name,
            seed=0,
            progress=lambda _, x, seen=seen: seen.append(x),
        )
    layers = load_model(tiny, "float32").config.num_hidden_layers
    assert calls == [{"dynamic": True, "backend": "aot_eager"}] * layers
    assert losses["compiled"] == pytest.approx(losses["plain"], rel=1e-4)
    assert sorted(p.name for p in (tmp_path / "compiled").iterdir()) == sorted(
        p.name for p in (tmp_path / "plain").iterdir()
    )
    weights = next((tmp_path / "compiled").glob("*.safetensors"))
    assert set(load_file(weights)) == set(load_file(tmp_path / "plain" / weights.name))


def test_a_model_without_named_layers_is_compiled_whole(tiny):
    model = load_model(tiny, "float32")
    model._no_split_modules = None  # transformers sets it on the instance
    compile_layers(model, "aot_eager")
    assert model._compiled_call_impl is not None
    assert all(layer._compiled_call_impl is None for layer in model.model.layers)


@pytest.mark.parametrize("lora", [None, LoraConfig(r=2, alpha=4)], ids=["full", "lora"])
def test_the_trained_model_has_the_attention_asked_for(tiny, lora):
    assert load_trainable(tiny, "float32", lora).config._attn_implementation == "sdpa"
    model = load_trainable(tiny, "float32", lora, "eager")
    assert model.config._attn_implementation == "eager"
