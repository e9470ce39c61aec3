"""vLLM's CPU build really samples from the built-in model, and agrees with HFSampler.

vLLM is found in this Python (``pip install 'selftaught[vllm]'``) or, because its CPU build
pins its own transformers and numpy, in a virtualenv whose Python is named by
``SELFTAUGHT_VLLM_PYTHON`` (``bash scripts/install.sh --vllm-venv DIR``, as .ci/run does).
Either way one engine runs in a child process, this file run as a script (vLLM starts
processes of its own, which wants a ``__main__`` guard), through one scenario: start on a
model, reload another in place, sample, switch to a LoRA adapter. It writes what it
generated as JSON, and the tests compare that here with HFSampler in this Python.
Without vLLM every test here skips and says why. The engine's start costs 30-60 s on two
cores, so the scenario runs once for all the tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROMPTS = [
    "Input:\n1 + 1\nTarget:\n",
    "Input:\n3 + 5\nTarget:\n",
    "Input:\n1 2 + 4 5\nTarget:\n",
    "Input:\n9 + 9\nTarget:\n",
    "x",
]
MAX_NEW = 64
MANY = [f"Input:\n{a} {b} {a} + {b} {a} {b}\nTarget:\n" for a in range(1, 9) for b in range(1, 9)]


DEFAULT_VENV_PYTHON = Path.home() / ".cache/selftaught/vllm-venv/bin/python"  # .ci/run's


def vllm_python() -> str | None:
    """A Python that can import vLLM: this one, SELFTAUGHT_VLLM_PYTHON's, or that of the
    virtualenv .ci/run makes by default."""
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    other = os.environ.get("SELFTAUGHT_VLLM_PYTHON") or str(DEFAULT_VENV_PYTHON)
    return other if Path(other).exists() else None


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    python = vllm_python()
    if python is None:
        pytest.skip(
            "vLLM is not installed: pip install 'selftaught[vllm]', or on a CPU-only machine "
            "`bash scripts/install.sh --vllm-venv DIR` and SELFTAUGHT_VLLM_PYTHON=DIR/bin/python"
        )
    from selftaught.config_files import resolve
    from selftaught.models.base_model import base_model_path
    from selftaught.models.tiny import save_new_tiny
    from tests.conftest import TOY

    tmp = tmp_path_factory.mktemp("vllm")
    # head size 64 / 2 = 32, the smallest vLLM's CPU build has a kernel for
    start = save_new_tiny(tmp / "random", 64, 2, 2, seed=1)
    trained = base_model_path(resolve(TOY, "toy"))  # M of conftest's toy config, cached
    adapter = make_adapter(trained, tmp / "adapter")
    request = {"start": str(start), "trained": str(trained), "adapter": str(adapter)}
    (tmp / "request.json").write_text(json.dumps(request))
    proc = subprocess.run(
        [python, __file__, str(tmp / "request.json"), str(tmp / "result.json")],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    if proc.returncode != 0:
        output = f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        pytest.fail(f"the vLLM child failed ({python}):\n{output}")
    return request, json.loads((tmp / "result.json").read_text())


def make_adapter(base: Path, path: Path) -> Path:
    """A LoRA adapter with random (not zero) B matrices, so it changes what the model says."""
    import torch
    from peft import LoraConfig, get_peft_model

    from selftaught.models.loading import load_model, load_tokenizer

    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(load_model(base), config)
    model.save_pretrained(path, safe_serialization=True)
    load_tokenizer(base).save_pretrained(path)
    return path


def hf_greedy(path):
    from selftaught.models.sampling import HFSampler

    out, _ = HFSampler(path, batch_size=8, max_new_tokens=MAX_NEW).generate(PROMPTS, 1, 0.0, 0)
    return [[g.text, g.tokens] for (g,) in out]


def test_greedy_equals_hf_on_the_trained_model_after_an_in_place_reload(scenario):
    request, result = scenario
    assert result["reloaded_greedy"] == hf_greedy(request["trained"])
    # the trained model writes scratchpads and stops at its end-of-sequence token
    assert "<scratch>" in result["reloaded_greedy"][0][0]
    assert all(tokens < MAX_NEW for _, tokens in result["reloaded_greedy"][:4])


def test_greedy_equals_hf_on_the_model_the_engine_started_with(scenario):
    request, result = scenario
    assert result["start_greedy"] == hf_greedy(request["start"])
    assert result["start_greedy"] != result["reloaded_greedy"]


def test_greedy_through_a_lora_adapter_equals_hf_on_the_merged_model(scenario):
    request, result = scenario
    assert result["adapter_greedy"] == hf_greedy(request["adapter"])
    assert result["adapter_greedy"] != result["reloaded_greedy"]


def test_samples_n_per_prompt_reproducibly_with_progress(scenario):
    _, result = scenario
    a, b, c = result["sampled_a"], result["sampled_b"], result["sampled_c"]
    assert [len(g) for g in a] == [3] * len(PROMPTS)
    assert a == b
    assert a != c
    assert all(0 < tokens <= MAX_NEW for gens in a for _, tokens in gens)
    assert result["sampled_tokens"] == sum(tokens for gens in a for _, tokens in gens)
    assert sum(result["progress"]) == 3 * len(PROMPTS)
    assert result["greedy_repeats"] == [[g, g] for g in result["reloaded_greedy"]]
    assert result["many"] == [4] * len(MANY)


def test_factory_builds_the_configured_hf_sampler(tmp_path):
    from selftaught.config import SamplingConfig
    from selftaught.models.sampling import HFSampler, make_sampler
    from selftaught.models.tiny import save_new_tiny

    path = save_new_tiny(tmp_path / "m", 32, 2, 2, seed=0)
    config = SamplingConfig(max_new_tokens=7, batch_size=5, top_p=0.9)
    sampler = make_sampler(config, path, batch_size=3)
    assert isinstance(sampler, HFSampler)
    assert (sampler.batch_size, sampler.max_new_tokens, sampler.top_p) == (3, 7, 0.9)


def test_factory_names_the_extra_to_install_when_vllm_is_missing(tmp_path):
    from selftaught.config import SamplingConfig
    from selftaught.models.sampling import BackendNotInstalled, make_sampler

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed in this Python")
    with pytest.raises(BackendNotInstalled, match=r"pip install 'selftaught\[vllm\]'"):
        make_sampler(SamplingConfig(backend="vllm"), tmp_path)
    ray_vllm = SamplingConfig(backend="ray", ray_backend="vllm")
    with pytest.raises(BackendNotInstalled, match="vllm"):
        make_sampler(ray_vllm, tmp_path)


def _child(request_file: str, result_file: str) -> None:
    """The scenario, in a Python that has vLLM."""
    from selftaught.models.vllm_sampler import VLLMSampler

    req = json.loads(Path(request_file).read_text())

    def pairs(gens):
        return [[[g.text, g.tokens] for g in row] for row in gens]

    result = {}
    # max_lora_rank: LoRA must be enabled when the engine starts to take an adapter later
    sampler = VLLMSampler(req["start"], max_new_tokens=MAX_NEW, enforce_eager=True, max_lora_rank=8)
    try:
        out, _ = sampler.generate(PROMPTS, 1, 0.0, 0)
        result["start_greedy"] = [row[0] for row in pairs(out)]
        sampler.reload(req["trained"])
        out, _ = sampler.generate(PROMPTS, 1, 0.0, 0)
        result["reloaded_greedy"] = [row[0] for row in pairs(out)]
        out, _ = sampler.generate(PROMPTS, 2, 0.0, 0)
        result["greedy_repeats"] = pairs(out)
        seen: list[int] = []
        a, stats = sampler.generate(PROMPTS, 3, 1.0, 5, seen.append)
        result["progress"], result["sampled_tokens"] = seen, stats.tokens
        result["sampled_a"] = pairs(a)
        result["sampled_b"] = pairs(sampler.generate(PROMPTS, 3, 1.0, 5)[0])
        result["sampled_c"] = pairs(sampler.generate(PROMPTS, 3, 1.0, 6)[0])
        # more prompt tokens than one engine step takes (4,096): seeded samples must survive
        many, _ = sampler.generate(MANY, 4, 1.0, 0)
        result["many"] = [len(row) for row in many]
        sampler.reload(req["adapter"])
        out, _ = sampler.generate(PROMPTS, 1, 0.0, 0)
        result["adapter_greedy"] = [row[0] for row in pairs(out)]
    finally:
        sampler.close()
    Path(result_file).write_text(json.dumps(result))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
