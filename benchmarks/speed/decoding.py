"""Which part of `HFSampler`'s decoding loop buys what: side by side in one process.

    python benchmarks/speed/decoding.py            # writes results-decoding.md
    python benchmarks/speed/decoding.py --profile  # where ours spends its time, and a
                                                   # step's cost whatever its rows

The shipped built-in M, 256 addition prompts (1-5 digits) in one batch, greedy, 200 new
tokens at most; seven ways, alternating for 5 rounds, best round reported, and the greedy
text of every way checked equal to the first's:

- ours: the growing KV cache (`samplers/kv_cache.py`), rows that ended leave once they
  are a quarter of the batch (`hf.LEAVE_AT`) or with the cache's next regrowth (every 4
  steps here: `kv_cache.regrows_next`), a step's attention as two batched products
  (`samplers/decode_attention.py`);
- the same with rows leaving at a quarter only, as before `kv_cache.regrows_next`;
- the same with the cache's room as it was before `kv_cache.TIGHT_ROOM_BYTES`: 128
  positions after each row-head's keys, doubled when full (for this model's keys the
  cache now keeps room for 3 and regrows every 4 steps);
- ours with transformers' sdpa attention (torch's flash-attention CPU kernel);
- and with transformers' `DynamicCache` (a concatenation per layer and step), rows
  leaving at once;
- the growing cache, rows leave at once (the cache copied at every end), sdpa;
- the sampler before all of these: `generate` with a static cache, every row to the
  longest's end, sdpa (what `HFSampler` still does on CUDA, where `generate` compiles it).

Then what bounds a step's attention: the bytes/s at which `bmm` multiplies one query per
row and head by that row's cached keys (shapes of a mid-run step: 256 rows, 4 heads of
32, 100 cached positions; 8 layers' worth of keys, so that they come from memory, not the
32 MB cache) with room for 60 more positions after each row-head's keys, for 4, 3 and
none, in float32, and in bfloat16 with the room of 60, against the bytes/s of summing
1 GB.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from transformers import DynamicCache

from selftaught.models.base_model import shipped_path
from selftaught.samplers import hf, kv_cache
from selftaught.samplers.decode_attention import NAME
from selftaught.tasks import AdditionTask

HERE = Path(__file__).parent


def bytes_per_second(step, tensors, repeats: int = 20) -> float:
    for x in tensors:  # warm
        step(x)
    began = time.perf_counter()
    for _ in range(repeats):
        for x in tensors:
            step(x)
    seconds = (time.perf_counter() - began) / repeats
    return sum(x.numel() * x.element_size() for x in tensors) / seconds


def attention_bandwidth() -> list[str]:
    """Markdown lines: the products' bytes/s in float32 and bf16, and memory's."""
    rows, heads, length, dim = 256, 4, 100, 32
    memory = torch.randn(2**28)  # 1 GB
    lines = ["", "| what | GB/s |", "|---|---|"]
    lines.append(
        f"| summing 1 GB (float32) | {bytes_per_second(torch.sum, [memory], 5) / 1e9:.1f} |"
    )
    f32, bf16 = torch.float32, torch.bfloat16
    for dtype, room in ((f32, 60), (f32, 4), (f32, 3), (f32, 0), (bf16, 60)):
        query = torch.randn(rows * heads, 1, dim, dtype=dtype)
        buffers = [torch.randn(rows, heads, length + room, dim, dtype=dtype) for _ in range(8)]
        keys = [b[:, :, :length].reshape(rows * heads, length, dim) for b in buffers]
        rate = bytes_per_second(lambda k, q=query: torch.bmm(q, k.transpose(1, 2)), keys)
        lines.append(
            f"| a step's query x keys, `bmm`, {dtype}, room for {room} more positions "
            f"| {rate / 1e9:.1f} |"
        )
    return lines


def dynamic_cache(config) -> DynamicCache:
    return DynamicCache(config=config)


class RoomyLayer(kv_cache.GrowingLayer):
    """The growing cache before 2026-11-28 17:30: room for 128 positions, doubled when full,
    whatever the keys' size (no ``kv_cache.TIGHT_ROOM_BYTES``)."""

    tight_room_bytes = 0


def roomy_cache(config) -> DynamicCache:
    return layered_cache(config, RoomyLayer)


class NeverFullLayer(kv_cache.GrowingLayer):
    """Rows leave at ``LEAVE_AT`` only, as before ``kv_cache.regrows_next``: a layer that
    never says the next step regrows it."""

    full = False


def leave_at_three_quarters_cache(config) -> DynamicCache:
    return layered_cache(config, NeverFullLayer)


def layered_cache(config, layer: type) -> DynamicCache:
    cache = kv_cache.growing_cache(config)  # (main() rebinds hf.growing_cache)
    cache.layers = [layer() for _ in cache.layers]
    return cache


# name: (cache, LEAVE_AT, attention), or None for generate
WAYS = {
    "ours: growing cache, rows leave at 3/4 or when it regrows, decode attention": (
        hf.growing_cache,
        0.75,
        NAME,
    ),
    "the same, rows leave at 3/4 only": (leave_at_three_quarters_cache, 0.75, NAME),
    "the same with room for 128 positions, doubled when full": (roomy_cache, 0.75, NAME),
    "ours with sdpa": (hf.growing_cache, 0.75, "sdpa"),
    "DynamicCache, rows leave at once, sdpa": (dynamic_cache, 1.0, "sdpa"),
    "growing cache, rows leave at once, sdpa": (hf.growing_cache, 1.0, "sdpa"),
    "first: generate, static cache, sdpa": None,
}


def timed_steps(sampler, prompts) -> tuple[float, int, float]:
    """Seconds of one ``generate`` over ``prompts``, its decoding steps (model calls), and
    the seconds of its cache's regrowth copies (``GrowingLayer._regrow``), outside the
    profiler."""
    calls, copying = [0], [0.0]
    regrow = kv_cache.GrowingLayer._regrow

    def timed_regrow(layer, *args):
        began = time.perf_counter()
        regrow(layer, *args)
        copying[0] += time.perf_counter() - began

    hook = sampler.model.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    kv_cache.GrowingLayer._regrow = timed_regrow
    try:
        began = time.perf_counter()
        sampler.generate(prompts, 1, 0.0, 0)
        return time.perf_counter() - began, calls[0], copying[0]
    finally:
        kv_cache.GrowingLayer._regrow = regrow
        hook.remove()


def step_costs(sampler, prompts) -> str:
    """What a step costs whatever its rows: one prompt's decoding, a step for one row, is
    Python and operator dispatch more than arithmetic; that cost times the 256-row call's
    steps is its share of that call, beside the regrowth's."""
    for _ in range(2):  # the second of each: warm
        one, one_steps, _ = timed_steps(sampler, prompts[:1])
        seconds, steps, copying = timed_steps(sampler, prompts)
    fixed = one / one_steps
    return (
        f"\nOne prompt: {one_steps} model calls in {one * 1e3:.0f} ms, {fixed * 1e3:.2f} ms "
        f"each (a step's cost whatever its rows).\n256 prompts: {steps} model calls in "
        f"{seconds * 1e3:.0f} ms; at {fixed * 1e3:.2f} ms each, that fixed cost is "
        f"{100 * fixed * steps / seconds:.0f}% of it; the cache's regrowth copies "
        f"{copying * 1e3:.0f} ms, {100 * copying / seconds:.0f}%."
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "results-decoding.md"))
    parser.add_argument("--profile", action="store_true", help="profile ours once, print")
    args = parser.parse_args()
    load = os.getloadavg()
    path = shipped_path()
    task = AdditionTask(1, 5, 256, 1, seed=0)
    prompts = [task.prompt(p) for p in task.train_problems()]
    sampler = hf.HFSampler(path, batch_size=256, max_new_tokens=200)
    sampler.generate(prompts[:16], 1, 0.0, 0)  # warm-up
    if args.profile:
        with torch.autograd.profiler.profile() as profile:
            sampler.generate(prompts, 1, 0.0, 0)
        print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
        print(step_costs(sampler, prompts))
        return
    rates: dict[str, list[float]] = {name: [] for name in WAYS}
    first = None
    for _ in range(args.rounds):
        for name, way in WAYS.items():
            sampler.rows_leave = way is not None
            hf.growing_cache, hf.LEAVE_AT, attention = way or (hf.growing_cache, 1.0, "sdpa")
            sampler.model.set_attn_implementation(attention)
            began = time.perf_counter()
            out, stats = sampler.generate(prompts, 1, 0.0, 0)
            rates[name].append(stats.tokens / (time.perf_counter() - began))
            first = first or out
            assert out == first, f"{name}: other greedy text"
    ours = max(rates[next(iter(WAYS))])
    lines = [
        "# Decoding: what each part of `HFSampler`'s loop buys",
        "",
        f"Command: `python benchmarks/speed/decoding.py`. "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}. "
        f"The shipped M, 256 addition prompts in one batch, greedy, max_new_tokens 200; "
        f"{args.rounds} alternating rounds; the same greedy text from every way.",
        "",
        "| way | tokens/s (best) | every round | ours / this |",
        "|---|---|---|---|",
    ]
    for name, values in rates.items():
        rounds = ", ".join(f"{v:,.0f}" for v in values)
        lines.append(f"| {name} | {max(values):,.0f} | {rounds} | {ours / max(values):.2f}x |")
    lines += ["", "## What bounds a step's attention", *attention_bandwidth()]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
