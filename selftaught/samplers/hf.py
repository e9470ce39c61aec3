"""``HFSampler``: sampling with transformers' ``generate``.

It batches prompts sorted by length (less padding), uses a static KV cache (1.26x the
default dynamic cache's tokens/s on the built-in model: see benchmarks/sampling_cache),
and stops each row at the end-of-sequence token.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from selftaught.models.loading import load_model, load_tokenizer, render_prompt
from selftaught.samplers.base import Generation, SamplingStats


class HFSampler:
    def __init__(
        self,
        model_path: str | Path,
        batch_size: int = 256,
        max_new_tokens: int = 400,
        top_p: float = 1.0,
        stop: tuple[str, ...] = (),
        dtype: str = "float32",
        chat_template: bool = False,
    ):
        # on this process's GPU when there is one: generation there is 5-7x the CPU's
        # tokens/s even for the 1.1M-parameter model (benchmarks/speed/results-gpu.md)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = load_model(model_path, dtype).to(device).eval()
        self.tokenizer = load_tokenizer(model_path)
        self.chat_template = chat_template
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.top_p = top_p
        self.stop = stop

    def generate(self, prompts, num_samples, temperature, seed, progress=None):
        prompts = [render_prompt(self.tokenizer, p, self.chat_template) for p in prompts]
        jobs = [(i, j) for i in range(len(prompts)) for j in range(num_samples)]
        lengths = [len(ids) for ids in self.tokenizer(prompts)["input_ids"]]
        jobs.sort(key=lambda job: (lengths[job[0]], job))
        results: list[list[Generation | None]] = [[None] * num_samples for _ in prompts]
        stats = SamplingStats()
        start = time.perf_counter()
        for b in range(0, len(jobs), self.batch_size):
            batch = jobs[b : b + self.batch_size]
            # a seed per batch keeps samples reproducible batch by batch (and on resume)
            torch.manual_seed(seed * 1_000_003 + b)
            texts = self._generate_batch([prompts[i] for i, _ in batch], temperature)
            for (i, j), generation in zip(batch, texts, strict=True):
                results[i][j] = generation
            batch_tokens = sum(g.tokens for g in texts)
            stats.tokens += batch_tokens
            if progress:
                progress(len(batch), tokens=batch_tokens)
        stats.seconds = time.perf_counter() - start
        return results, stats

    @torch.inference_mode()
    def _generate_batch(self, prompts: list[str], temperature: float) -> list[Generation]:
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(self.model.device)
        sample = temperature > 0
        out = self.model.generate(
            **enc,
            max_new_tokens=self.max_new_tokens,
            do_sample=sample,
            temperature=temperature if sample else None,
            top_p=self.top_p if sample else None,
            top_k=None,
            cache_implementation="static",
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        new = out[:, enc["input_ids"].shape[1] :]
        generations = []
        for row in new.tolist():
            count = _generated_length(row, self.tokenizer.eos_token_id, self.tokenizer.pad_token_id)
            text = self.tokenizer.decode(row[:count], skip_special_tokens=True)
            generations.append(Generation(_cut_at_stop(text, self.stop), count))
        return generations


def _generated_length(row: list[int], eos: int, pad: int) -> int:
    """Tokens up to and including the first end-of-sequence, without trailing padding."""
    if eos in row:
        return row.index(eos) + 1
    while row and row[-1] == pad and pad != eos:
        row = row[:-1]
    return len(row)


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    cuts = [text.index(s) for s in stop if s in text]
    return text[: min(cuts)] if cuts else text
