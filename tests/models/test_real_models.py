"""The paths a real model takes, on tiny randomly initialised models built from a config
in the test (no downloads): other architectures, LoRA adapters, chat templates, and a
training phase under `accelerate launch` on two CPU processes."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import Qwen2Config, Qwen2ForCausalLM

from selftaught.config import LoraConfig
from selftaught.models.loading import is_adapter, load_model, load_tokenizer, render_prompt
from selftaught.models.tiny import build_tokenizer, save_new_tiny
from selftaught.models.train_phase import launch, write_spec
from selftaught.models.training import HFTrainer, encode
from selftaught.samplers import HFSampler
from selftaught.tasks import Example

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [Example(f"Input:\n{i} + 1\nTarget:\n", f"{i + 1}") for i in range(1, 9)]
CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def qwen(tmp_path_factory) -> Path:
    """A 2-layer Qwen2 with the built-in character tokenizer: another architecture."""
    path = tmp_path_factory.mktemp("qwen")
    tokenizer = build_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _loss(path, examples=EXAMPLES) -> float:
    from selftaught.models.training import collate

    model, tokenizer = load_model(path).eval(), load_tokenizer(path)
    batch = collate([encode(tokenizer, e) for e in examples], tokenizer.pad_token_id)
    with torch.no_grad():
        return model(input_ids=batch[0], labels=batch[1], attention_mask=batch[2]).loss.item()


def test_another_architecture_trains_and_samples(qwen, tmp_path):
    HFTrainer(batch_size=8, lr=1e-2).fit(qwen, EXAMPLES, 30, tmp_path / "out", seed=0)
    assert _loss(tmp_path / "out") < _loss(qwen) / 2
    (gens,), _ = HFSampler(tmp_path / "out", max_new_tokens=4).generate(
        [EXAMPLES[0].prompt], 1, 0.0, 0
    )
    assert gens[0].tokens >= 1


def test_lora_trains_a_fresh_adapter_and_continues_one(qwen, tmp_path):
    lora = LoraConfig(r=4, alpha=8, dropout=0.0)
    trainer = HFTrainer(batch_size=8, lr=2e-2, lora=lora)
    trainer.fit(qwen, EXAMPLES, 30, tmp_path / "a1", seed=0)
    assert is_adapter(tmp_path / "a1")
    assert not (tmp_path / "a1" / "model.safetensors").exists()  # the adapter only
    adapter = load_file(tmp_path / "a1" / "adapter_model.safetensors")
    assert adapter and all("lora_" in k for k in adapter)
    assert json.loads((tmp_path / "a1" / "adapter_config.json").read_text())["r"] == 4
    first = _loss(tmp_path / "a1")  # loads base + adapter, merged
    assert first < _loss(qwen) - 0.2
    # continuing starts exactly where the adapter left off; a fresh one starts at the base
    losses = {}
    for name, init in (("continued", tmp_path / "a1"), ("fresh", qwen)):
        trainer.fit(
            init, EXAMPLES, 1, tmp_path / name, 1, lambda _, x, n=name: losses.setdefault(n, x)
        )
    assert losses["continued"] == pytest.approx(first, abs=1e-3)
    assert losses["fresh"] == pytest.approx(_loss(qwen), abs=1e-3)
    (gens,), _ = HFSampler(tmp_path / "continued", max_new_tokens=4).generate(
        [EXAMPLES[0].prompt], 1, 0.0, 0
    )
    assert gens[0].tokens >= 1


def test_gradient_checkpointing_trains_a_lora_adapter_to_the_same_weights(qwen, tmp_path):
    """Recomputed activations give the gradients kept ones give: the same adapter, to
    float rounding (a LoRA model's frozen inputs need no requires_grad hook)."""
    lora = LoraConfig(r=4, alpha=8, dropout=0.0)
    for name, checkpointing in (("kept", False), ("recomputed", True)):
        trainer = HFTrainer(batch_size=8, lr=2e-2, lora=lora, gradient_checkpointing=checkpointing)
        trainer.fit(qwen, EXAMPLES, 3, tmp_path / name, seed=0)
    kept = load_file(tmp_path / "kept" / "adapter_model.safetensors")
    recomputed = load_file(tmp_path / "recomputed" / "adapter_model.safetensors")
    assert kept.keys() == recomputed.keys()
    for key in kept:
        assert torch.allclose(kept[key], recomputed[key], atol=1e-5), key
    assert any(not torch.all(v == 0) for k, v in kept.items() if "lora_B" in k)  # it learnt


@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_qlora_trains_an_adapter_on_a_quantized_base(qwen, tmp_path, bits, monkeypatch):
    """QLoRA on this CPU (bitsandbytes' CPU kernels): the base really is quantized while the
    adapter trains, the adapter learns, and sampling merges it into the full base."""
    import bitsandbytes as bnb

    from selftaught.models import training

    quantized = {"4bit": bnb.nn.Linear4bit, "8bit": bnb.nn.Linear8bitLt}[bits]
    seen = []
    real = training.load_trainable

    def spy(*args):
        model = real(*args)
        seen.append(sum(isinstance(m, quantized) for m in model.modules()))
        return model

    monkeypatch.setattr(training, "load_trainable", spy)
    trainer = HFTrainer(batch_size=8, lr=2e-2, lora=LoraConfig(r=4, alpha=8, quantize=bits))
    trainer.fit(qwen, EXAMPLES, 30, tmp_path / "q1", seed=0)
    trainer.fit(tmp_path / "q1", EXAMPLES, 2, tmp_path / "q2", seed=1)
    assert seen[0] == seen[1] >= 2 * 7  # every linear layer of both blocks, fresh and continued
    assert is_adapter(tmp_path / "q2")
    assert _loss(tmp_path / "q1") < _loss(qwen) - 0.2
    (gens,), _ = HFSampler(tmp_path / "q2", max_new_tokens=4).generate(
        [EXAMPLES[0].prompt], 1, 0.0, 0
    )
    assert gens[0].tokens >= 1


def test_quantize_without_bitsandbytes_names_the_extra(qwen, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    with pytest.raises(ImportError, match=r"selftaught\[qlora\]"):
        load_model(qwen, quantize="4bit")


def test_an_adapter_without_lora_settings_is_refused(qwen, tmp_path):
    from selftaught.models.train_loop import TrainingError

    HFTrainer(batch_size=8, lora=LoraConfig(r=2)).fit(qwen, EXAMPLES, 1, tmp_path / "a", 0)
    with pytest.raises(TrainingError, match="LoRA adapter"):
        HFTrainer(batch_size=8).fit(tmp_path / "a", EXAMPLES, 1, tmp_path / "b", 0)


def test_chat_template_wraps_prompts_in_training_and_sampling(qwen, tmp_path):
    tokenizer = load_tokenizer(qwen)
    assert render_prompt(tokenizer, "Q", True) == "Q"  # no template: unchanged
    tokenizer.chat_template = CHAT
    tokenizer.save_pretrained(qwen)
    try:
        tokenizer = load_tokenizer(qwen)
        assert render_prompt(tokenizer, "Q", True) == "<|user|>Q<|end|><|assistant|>"
        assert render_prompt(tokenizer, "Q", False) == "Q"
        ids, labels = encode(tokenizer, Example("Q", "A"), chat_template=True)
        assert tokenizer.decode(ids[:-2]) == "<|user|>Q<|end|><|assistant|>"
        sampler = HFSampler(qwen, max_new_tokens=2, chat_template=True)
        assert sampler.generate(["Q"], 1, 0.0, 0)[0][0][0].tokens >= 1
    finally:
        tokenizer.chat_template = None
        (qwen / "tokenizer_config.json").write_text(
            json.dumps(
                {
                    k: v
                    for k, v in json.loads((qwen / "tokenizer_config.json").read_text()).items()
                    if k != "chat_template"
                }
            )
        )
        (qwen / "chat_template.jinja").unlink(missing_ok=True)


def test_accelerate_launch_trains_one_phase_on_two_cpu_processes(tmp_path):
    tiny = save_new_tiny(tmp_path / "tiny", 32, 2, 2, seed=0)
    examples = tmp_path / "train.jsonl"
    examples.write_text(
        "".join(
            json.dumps({"prompt": e.prompt, "completion": e.completion}) + "\n" for e in EXAMPLES
        )
    )
    spec = write_spec(
        tmp_path / "spec.json",
        HFTrainer(batch_size=8, lr=1e-2),
        init=tiny,
        examples=examples,
        steps=30,
        out_dir=tmp_path / "out",
        seed=0,
        schedule=None,
    )
    result = launch(spec, 2, str(ROOT / "configs" / "accelerate" / "cpu-2proc.yaml"))
    record = json.loads(spec.with_suffix(".result.json").read_text())
    assert record["processes"] == 2
    assert result.steps == 30 and result.tokens > 0
    assert _loss(tmp_path / "out") < _loss(tiny) / 2


def test_the_loop_runs_a_data_task_on_a_real_architecture_with_lora(qwen, tmp_path):
    from selftaught.config import resolve
    from selftaught.loop import run
    from selftaught.store import RunStore, read_jsonl

    raw = {
        "method": "star",
        "iterations": 1,
        "task": {"name": "gsm8k", "path": str(ROOT / "tests" / "fixtures" / "data" / "gsm8k")},
        "model": {"name_or_path": str(qwen), "lora": {"r": 4, "alpha": 8}},
        "sampling": {"max_new_tokens": 12, "batch_size": 8},
        # a random model answers nothing right: keep every sample so a phase trains
        "selection": {"require_correct": False},
        "train": {"steps": 2, "batch_size": 4},
        "eval": {"batch_size": 8},
        "quiet": True,
    }
    rows = run(resolve(raw), tmp_path / "run")
    store = RunStore(tmp_path / "run")
    assert [r["iteration"] for r in rows] == [0, 1]
    assert is_adapter(store.model_dir(1))
    samples = store.samples(1)
    hinted = [s for s in samples if s["hinted"]]
    assert hinted and all("Hint" in s["prompt"] for s in hinted)
    train = read_jsonl(store.iter_dir(1) / "train.jsonl")
    assert train and not any("Hint" in r["prompt"] for r in train)
    assert rows[1]["problems"] == len({s["problem_id"] for s in samples})
