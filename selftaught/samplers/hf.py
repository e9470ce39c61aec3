"""``HFSampler``: sampling with transformers' ``generate``.

It batches prompts sorted by length (less padding), uses a static KV cache (1.26x the
default dynamic cache's tokens/s on the built-in model: see benchmarks/sampling_cache),
runs a batch's shared leading tokens (a few-shot prompt's exemplars) once for all its
rows (3.4x plain ``generate`` on SmolLM2-135M: benchmarks/speed/results-fewshot.md),
and stops each row at the end-of-sequence token, the chat template's end-of-turn token,
or the first stop string, while generating: a pretrained model left to run on writes the
few-shot prompt's next question until ``max_new_tokens``, and every row costs that much.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import torch
from transformers import DynamicCache, StaticCache

from selftaught.models.loading import load_model, load_tokenizer, render_prompt
from selftaught.samplers.base import Generation, SamplingStats, cut_at_stop

# from this many shared leading tokens on, a batch runs them once (_after_shared_prefix);
# the built-in model's prompts share a few tokens at most, and keep the plain call
SHARED_PREFIX_MIN = 64


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
        self.stop = tuple(stop)
        self.eos_ids = [self.tokenizer.eos_token_id, *end_of_turn_ids(self.tokenizer)]
        self.eos_ids = list(dict.fromkeys(self.eos_ids))
        # transformers 5.24 renamed past_key_values; both are supported (pyproject: >=4.56)
        forward = inspect.signature(self.model.forward).parameters
        self.cache_keyword = "cache" if "cache" in forward else "past_key_values"
        self.stop_criterion = None
        if self.stop:  # built once: it tabulates how every vocabulary entry overlaps a stop
            from transformers import StopStringCriteria

            self.stop_criterion = StopStringCriteria(self.tokenizer, list(self.stop))

    def generate(self, prompts, num_samples, temperature, seed, progress=None):
        prompts = [render_prompt(self.tokenizer, p, self.chat_template) for p in prompts]
        jobs = [(i, j) for i in range(len(prompts)) for j in range(num_samples)]
        # tokenized once: the order of the jobs, the shared prefix and the batches' tensors
        ids = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        jobs.sort(key=lambda job: (len(ids[job[0]]), job))
        results: list[list[Generation | None]] = [[None] * num_samples for _ in prompts]
        stats = SamplingStats()
        start = time.perf_counter()
        for b in range(0, len(jobs), self.batch_size):
            batch = jobs[b : b + self.batch_size]
            # a seed per batch keeps samples reproducible batch by batch (and on resume)
            torch.manual_seed(seed * 1_000_003 + b)
            texts = self._generate_batch([ids[i] for i, _ in batch], temperature)
            for (i, j), generation in zip(batch, texts, strict=True):
                results[i][j] = generation
            batch_tokens = sum(g.tokens for g in texts)
            stats.tokens += batch_tokens
            if progress:
                progress(len(batch), tokens=batch_tokens)
        stats.seconds = time.perf_counter() - start
        return results, stats

    @torch.inference_mode()
    def _generate_batch(self, ids: list[list[int]], temperature: float) -> list[Generation]:
        shared = shared_prefix_length(ids)
        if shared >= SHARED_PREFIX_MIN:
            inputs = self._after_shared_prefix(ids, shared)
        else:
            inputs = {"cache_implementation": "static", **self._padded(ids)}
        sample = temperature > 0
        width = inputs["input_ids"].shape[1]
        out = self.model.generate(
            **inputs,
            max_new_tokens=self.max_new_tokens,
            do_sample=sample,
            temperature=temperature if sample else None,
            top_p=self.top_p if sample else None,
            top_k=None,
            pad_token_id=self.tokenizer.pad_token_id,
            # one id keeps the built-in model's call exactly as it always was
            eos_token_id=self.eos_ids if len(self.eos_ids) > 1 else self.eos_ids[0],
            stopping_criteria=self._criteria(width),
        )
        new = out[:, width:]
        generations = []
        for row in new.tolist():
            count = _generated_length(row, self.eos_ids, self.tokenizer.pad_token_id)
            text = self._decode(row[:count])
            if self.stop and cut_at_stop(text, self.stop) != text:
                count = self._stop_length(row[:count])
            generations.append(Generation(cut_at_stop(text, self.stop), count))
        return generations

    def _padded(self, ids: list[list[int]]) -> dict[str, torch.Tensor]:
        """Left-padded (the tokenizer's side for generation: models/loading.py)."""
        enc = self.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        return dict(enc.to(self.model.device))

    def _after_shared_prefix(self, ids: list[list[int]], shared: int) -> dict:
        """The rows' first ``shared`` tokens (the few-shot exemplars, or one prompt's K
        samples) are run once, for one row, into a static cache that every row then
        starts from; each row's rest follows, padded on its left, so row r reads
        [prefix | padding | its rest] at the positions it has in a left-padded batch
        (positions count unmasked tokens). Prefill was most of a few-shot batch's time:
        a 400-token prompt for a 45-token rationale, recomputed per row."""
        device, pad = self.model.device, self.tokenizer.pad_token_id
        prefix = torch.tensor([ids[0][:shared]], device=device)
        once = DynamicCache(config=self.model.config)
        self.model(input_ids=prefix, use_cache=True, **{self.cache_keyword: once})
        rests = [row[shared:] for row in ids]
        width = max(map(len, rests))
        cache = StaticCache(
            config=self.model.config, max_cache_len=shared + width + self.max_new_tokens
        )
        for index, layer in enumerate(once.layers):
            rows = len(ids), *layer.keys.shape[1:]
            cache.update(layer.keys.expand(rows), layer.values.expand(rows), index)
        input_ids = [[*ids[0][:shared], *[pad] * (width - len(r)), *r] for r in rests]
        mask = [[1] * shared + [0] * (width - len(r)) + [1] * len(r) for r in rests]
        return {
            "input_ids": torch.tensor(input_ids, device=device),
            "attention_mask": torch.tensor(mask, device=device),
            self.cache_keyword: cache,
        }

    def _criteria(self, prompt_length: int):
        if self.stop_criterion is None:
            return None
        from transformers import StoppingCriteriaList

        pad = self.tokenizer.pad_token_id
        return StoppingCriteriaList([_Generated(self.stop_criterion, prompt_length, pad)])

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _stop_length(self, row: list[int]) -> int:
        """The tokens generated up to the one that completed a stop string: the row's
        real length, since after it ``generate`` only pads."""
        lo, hi = 1, len(row)  # a prefix of hi tokens holds a stop; find the shortest
        while lo < hi:
            mid = (lo + hi) // 2
            text = self._decode(row[:mid])
            if cut_at_stop(text, self.stop) != text:
                hi = mid
            else:
                lo = mid + 1
        return hi


def shared_prefix_length(ids: list[list[int]]) -> int:
    """How many leading tokens every row has in common, short of each row's last: a row
    needs one token of its own to be run, whose logits give its first new token."""
    shortest = min(map(len, ids)) - 1
    first = ids[0]
    for n in range(shortest):
        if any(row[n] != first[n] for row in ids):
            return n
    return max(shortest, 0)


class _Generated:
    """A stopping criterion shown only the generated tokens (the prompt masked with
    padding): transformers' stop strings also match across the prompt's end, so a prompt
    ending in a newline would stop a row at once on the stop ``"\\n\\n"``."""

    def __init__(self, inner, prompt_length: int, pad: int):
        self.inner, self.prompt_length, self.pad = inner, prompt_length, pad

    def __call__(self, input_ids, scores, **kwargs):
        masked = input_ids.clone()
        masked[:, : self.prompt_length] = self.pad
        return self.inner(masked, scores, **kwargs)


def end_of_turn_ids(tokenizer) -> list[int]:
    """The special token that closes an assistant turn in the tokenizer's chat template
    (``<|im_end|>``, ``<|eot_id|>``, ...), where that is not already its end-of-sequence
    token: a chat model ends its answer with it, and would otherwise go on to a new turn."""
    if not getattr(tokenizer, "chat_template", None):
        return []
    marker = "XYZZY"
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": marker}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # a template that insists on other roles: no end-of-turn to find
        return []
    after = text.split(marker, 1)[1] if marker in text else ""
    ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after else []
    special = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    return [ids[0]] if ids and ids[0] in special else []


def _generated_length(row: list[int], eos: list[int] | int, pad: int) -> int:
    """Tokens up to and including the first end-of-sequence, without trailing padding."""
    eos = [eos] if isinstance(eos, int) else eos
    ends = [row.index(e) for e in eos if e in row]
    if ends:
        return min(ends) + 1
    while row and row[-1] == pad and pad not in eos:
        row = row[:-1]
    return len(row)
