"""``HFSampler``: sampling a transformers model with its own decoding loop.

It batches prompts sorted by length (less padding), runs a batch's shared leading tokens
(a few-shot prompt's exemplars) once for all its rows, and ends each row at the
end-of-sequence token, the chat template's end-of-turn token, or the first stop string,
while generating: a pretrained model left to run on writes the few-shot prompt's next
question until ``max_new_tokens``. Rows that have ended leave the batch and its KV cache,
which ``generate`` cannot do: there every row steps until the longest is done. On the
CPU its attention is ``decode_attention``'s, which also holds a few-shot batch's shared
prefix once for all rows. Measured against plain batched ``generate`` (benchmarks/speed):
1.81-2.76x on the built-in model, 5.65-6.12x greedy and 4.86-5.20x at K=4 on SmolLM2-135M
from a few-shot prompt. Greedy rows are ``generate``'s (a test); sampling applies its
temperature and top-p warpers, then draws.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import torch
from transformers import StaticCache, TemperatureLogitsWarper, TopPLogitsWarper

from selftaught.models.loading import load_model, load_tokenizer, render_prompt
from selftaught.samplers.base import Generation, SamplingStats, cut_at_stop
from selftaught.samplers.decode_attention import NAME, SharedPrefix, use_decode_attention
from selftaught.samplers.kv_cache import all_growing, growing_cache, regrows_next

# rows that have ended leave the batch once no more than this share of it is still going,
# or whenever the cache is about to be copied anyway (kv_cache.regrows_next)
LEAVE_AT = 0.75
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
        # rows leave the batch as they end (our loop) but on CUDA, where compiled
        # static-cache ``generate`` is faster still (_generate_static)
        self.rows_leave = device == "cpu"
        if self.rows_leave:
            use_decode_attention(self.model)
        # a few-shot batch's exemplars held once for all its rows (decode_attention.py)
        self.prefix_apart = self.model.config._attn_implementation == NAME
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
        rows = (self._decode if self.rows_leave else self._generate_static)(ids, temperature)
        generations = []
        for row in rows:
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            generations.append(Generation(cut_at_stop(text, self.stop), len(row)))
        return generations

    def _inputs(self, ids: list[list[int]], static: bool):
        """The batch's token ids and attention mask, left-padded (the tokenizer's side for
        generation: models/loading.py), its KV cache and the rows' shared prefix, where it
        is held apart from the cache (else None): see ``_after_shared_prefix``. For
        ``generate`` the cache is a static one, or None for the static one it makes."""
        shared = shared_prefix_length(ids)
        if shared >= SHARED_PREFIX_MIN:
            return self._after_shared_prefix(ids, shared, static)
        enc = self.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        device = self.model.device
        cache = None if static else growing_cache(self.model.config)
        return enc["input_ids"].to(device), enc["attention_mask"].to(device), cache, None

    def _after_shared_prefix(self, ids: list[list[int]], shared: int, static: bool):
        """The rows' first ``shared`` tokens (the few-shot exemplars, or one prompt's K
        samples) are run once, for one row, into a cache that every row then starts
        from; each row's rest follows, padded on its left, so row r reads
        [prefix | padding | its rest] at the positions it has in a left-padded batch
        (positions count unmasked tokens). Prefill was most of a few-shot batch's time:
        a 400-token prompt for a 45-token rationale, recomputed per row. Where
        ``decode_attention`` runs, the prefix is not copied into the rows' cache but held
        once beside it (``SharedPrefix``), and the rows' input is [padding | their rest]."""
        device, pad = self.model.device, self.tokenizer.pad_token_id
        lead = ids[0][:shared]
        once = growing_cache(self.model.config)
        run = {"use_cache": True, "logits_to_keep": 1, self.cache_keyword: once}
        self.model(input_ids=torch.tensor([lead], device=device), **run)
        rests = [row[shared:] for row in ids]
        width = max(map(len, rests))
        cache, apart = once, None
        # (not for sliding-window layers: every row's query sees all of a held prefix)
        if self.prefix_apart and not static and all_growing(once):
            cache, apart, lead = growing_cache(self.model.config), SharedPrefix.of(once), []
        elif static:
            length = shared + width + self.max_new_tokens
            cache = StaticCache(config=self.model.config, max_cache_len=length)
            for index, layer in enumerate(once.layers):
                rows = len(ids), *layer.keys.shape[1:]
                cache.update(layer.keys.expand(rows), layer.values.expand(rows), index)
        else:
            cache.batch_repeat_interleave(len(ids))
        input_ids = [[*lead, *[pad] * (width - len(r)), *r] for r in rests]
        mask = [[1] * len(lead) + [0] * (width - len(r)) + [1] * len(r) for r in rests]
        input_ids, mask = torch.tensor(input_ids, device=device), torch.tensor(mask, device=device)
        return input_ids, mask, cache, apart

    def _decode(self, ids: list[list[int]], temperature: float) -> list[list[int]]:
        """Each row's new tokens, up to and including the one that ends it (an
        end-of-sequence id, or the token that completes a stop string). Rows that have
        ended leave the batch, and the cache, once they are a quarter of it, or sooner
        where the next step copies the cache into larger buffers anyway (every 4 steps
        for the built-in model), a copy that then drops them: the rest go on with fewer
        rows, so short rows stop costing compute (``generate`` steps every row until the
        longest ends); leaving at once would copy the cache at every end."""
        input_ids, mask, cache, prefix = self._inputs(ids, static=False)
        input_ids = input_ids[:, cache.get_seq_length() :]  # what the cache holds is run
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1] :]
        apart = {}
        if prefix is not None:
            positions, apart = positions + prefix.length, {"shared_prefix": prefix}
        device = input_ids.device
        batch = torch.arange(len(ids), device=device)  # each cache row's row in ``ids``
        going = torch.ones(len(ids), dtype=torch.bool, device=device)
        eos = torch.tensor(self.eos_ids, device=device)
        new = input_ids[:, :0]
        rows: list[list[int]] = [[] for _ in ids]
        for step in range(self.max_new_tokens):
            logits = self.model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
                **{self.cache_keyword: cache},
                **apart,
            ).logits[:, -1, :]
            if step == 0 and prefix is not None and prefix.reads < len(prefix.keys):
                # this model's layers did not hand the prefix to attention: copy it instead
                self.prefix_apart = False
                return self._decode(ids, temperature)
            chosen = self._choose(new, logits, temperature)
            new = torch.cat([new, chosen[:, None]], dim=1)
            ended = going & self._ended(new, logits, eos, step == self.max_new_tokens - 1)
            for index in ended.nonzero().squeeze(1).tolist():
                rows[batch[index]] = new[index].tolist()
            going &= ~ended
            left = int(going.sum())
            if not left:
                break
            if left <= LEAVE_AT * len(going) or (left < len(going) and regrows_next(cache)):
                keep = going.nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                batch, new, mask, chosen = batch[keep], new[keep], mask[keep], chosen[keep]
                positions, going = positions[keep], going[keep]
            input_ids = chosen[:, None]
            mask = torch.cat([mask, mask.new_ones((len(going), 1))], dim=1)
            positions = positions[:, -1:] + 1
        return rows

    def _ended(self, new, logits, eos, last: bool) -> torch.Tensor:
        """Which rows the latest token ends: an end-of-sequence id, a completed stop
        string, or the last token allowed."""
        if last:
            return torch.ones(len(new), dtype=torch.bool, device=new.device)
        ended = torch.isin(new[:, -1], eos)
        if self.stop_criterion is not None:
            ended |= self.stop_criterion(new, logits)
        return ended

    def _generate_static(self, ids: list[list[int]], temperature: float) -> list[list[int]]:
        """The same rows from ``generate`` with a static cache, which transformers compiles
        on CUDA (CUDA graphs: 2.3-2.4x the uncompiled step, benchmarks/speed/results-gpu.md);
        a graph needs fixed shapes, so rows cannot leave the batch there."""
        input_ids, mask, cache, _ = self._inputs(ids, static=True)
        sample = temperature > 0
        width = input_ids.shape[1]
        out = self.model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            **(
                {self.cache_keyword: cache}
                if cache is not None
                else {"cache_implementation": "static"}
            ),
            max_new_tokens=self.max_new_tokens,
            do_sample=sample,
            temperature=temperature if sample else None,
            top_p=self.top_p if sample else None,
            top_k=None,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_ids,
            stopping_criteria=self._criteria(width),
        )
        rows = []
        for row in out[:, width:].tolist():
            row = row[: _generated_length(row, self.eos_ids, self.tokenizer.pad_token_id)]
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            if self.stop and cut_at_stop(text, self.stop) != text:
                row = row[: self._stop_length(row)]
            rows.append(row)
        return rows

    def _criteria(self, prompt_length: int):
        if self.stop_criterion is None:
            return None
        from transformers import StoppingCriteriaList

        pad = self.tokenizer.pad_token_id
        return StoppingCriteriaList([_Generated(self.stop_criterion, prompt_length, pad)])

    def _stop_length(self, row: list[int]) -> int:
        """The tokens generated up to the one that completed a stop string: the row's
        real length, since after it ``generate`` only pads."""
        lo, hi = 1, len(row)  # a prefix of hi tokens holds a stop; find the shortest
        while lo < hi:
            mid = (lo + hi) // 2
            text = self.tokenizer.decode(row[:mid], skip_special_tokens=True)
            if cut_at_stop(text, self.stop) != text:
                hi = mid
            else:
                lo = mid + 1
        return hi

    def _choose(self, new: torch.Tensor, logits: torch.Tensor, temperature: float) -> torch.Tensor:
        """Greedy at temperature 0; else a draw after transformers' own temperature and
        top-p warpers, as ``generate`` would apply them."""
        if temperature <= 0:
            return logits.argmax(dim=-1)
        scores = TemperatureLogitsWarper(temperature)(new, logits.float())
        if self.top_p < 1.0:
            scores = TopPLogitsWarper(self.top_p)(new, scores)
        return torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)


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
