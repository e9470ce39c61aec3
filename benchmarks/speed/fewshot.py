"""Sampling a real pretrained model from a few-shot prompt: ours against plain `generate`.

    nice -n 10 python benchmarks/speed/fewshot.py            # writes results-fewshot.md
    python benchmarks/speed/fewshot.py --prompts 4 --rounds 1 --out -   # a smoke run

SmolLM2-135M-Instruct (`bash scripts/install.sh smollm2`), the addition task's prompts with
8 worked exemplars in the `columns` format (configs/star-smollm2-addition.yaml), 1-2 digit
sums; greedy (one sample a prompt, as STaR samples) and K=4 at temperature 0.8 (as B-STaR
and pass@k sample) on a quarter of the prompts, so both have as many rows. Side by side,
alternating in each round, the same prompts, batches and `max_new_tokens`, every contender
stopping a row at the task's stop string while it generates:

- ours: `HFSampler` (the exemplars' KV cache computed once per batch and held once for
  all its rows, `samplers/decode_attention.py`; each row leaves the batch at its stop);
- ours with the exemplars' cache computed once but copied into every row's cache (the
  sampler before the prefix was held apart);
- ours without the shared prefix: the same sampler, every row prefilled in full;
- ours with the model in bfloat16 (`model.dtype: bfloat16`; its MFU against the bfloat16
  matmul peak), whose 64-wide bf16 heads the KV cache holds with room for 3 positions
  (`kv_cache.TIGHT_ROOM_BYTES`), and the same with the cache's room as it was before
  (128 positions, doubled when full: `decoding.py`'s roomy cache);
- plain `generate` as a user writes it: a left-padded batch, the default (dynamic) cache,
  `stop_strings`.

Tokens = generated tokens up to the stop, the ones a caller gets. MFU = 2 * parameters *
(prompt + generated tokens that were run) / s over the float32 matmul peak measured here;
by that count the shared prefix does less work for the same output, so the ratio of
output tokens/s is the figure that matters.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from selftaught.models.loading import load_model, load_tokenizer
from selftaught.models.pretrained import resolve_model
from selftaught.samplers import hf
from selftaught.samplers.base import cut_at_stop
from selftaught.samplers.hf import HFSampler
from selftaught.tasks import AdditionTask

HERE = Path(__file__).parent
OURS = "ours (shared prefix held once, rows leave at their stop)"
COPIED = "ours, shared prefix copied into every row"
BF16 = "ours in bfloat16 (`model.dtype: bfloat16`)"
BF16_ROOMY = "ours in bfloat16, the cache's room as before (128, doubled)"
PLAIN = "plain `generate` (dynamic cache, stop_strings)"
sys.path.insert(0, str(HERE))
from decoding import roomy_cache  # noqa: E402
from run import matmul_peak  # noqa: E402  (the same peak as the built-in model's table)


def plain_generate(model, tokenizer, prompts, k, temperature, max_new, stop, batch_size):
    """What a user writes: padded batches into `generate`, default cache, stop strings."""
    rows = [p for p in prompts for _ in range(k)]
    texts, tokens = [], 0
    for b in range(0, len(rows), batch_size):
        enc = tokenizer(rows[b : b + batch_size], return_tensors="pt", padding=True)
        sample = temperature > 0
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=max_new,
                do_sample=sample,
                temperature=temperature if sample else None,
                top_p=None,
                top_k=None,
                stop_strings=list(stop),
                tokenizer=tokenizer,
                pad_token_id=tokenizer.pad_token_id,
            )
        for row in out[:, enc["input_ids"].shape[1] :].tolist():
            count = len(row)
            while count and row[count - 1] == tokenizer.pad_token_id:
                count -= 1
            tokens += count
            texts.append(cut_at_stop(tokenizer.decode(row[:count], skip_special_tokens=True), stop))
    return texts, tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32, help="greedy; K=4 takes a quarter")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "results-fewshot.md"))
    args = parser.parse_args()
    began, load_before = time.perf_counter(), os.getloadavg()
    peak = matmul_peak(2048, 10)
    peak_bf16 = matmul_peak(2048, 10, torch.bfloat16)
    path = resolve_model("smollm2-135m-instruct")
    task = AdditionTask(1, 2, args.prompts, 1, few_shot=8, format="columns", seed=0)
    prompts = [task.prompt(p) for p in task.train_problems()][: args.prompts]
    tokenizer = load_tokenizer(path)
    model = load_model(path, "float32").eval()
    params = sum(p.numel() for p in model.parameters())
    prompt_tokens = sum(len(tokenizer(p)["input_ids"]) for p in prompts) / len(prompts)
    ours = HFSampler(path, args.batch_size, args.max_new_tokens, stop=task.stop)
    ours_bf16 = HFSampler(
        path, args.batch_size, args.max_new_tokens, stop=task.stop, dtype="bfloat16"
    )
    shared = hf.shared_prefix_length([tokenizer(p)["input_ids"] for p in prompts])

    growing_cache = hf.growing_cache

    def run_ours(asked, k, temperature, share=True, apart=True, sampler=ours, cache=None):
        hf.SHARED_PREFIX_MIN = 64 if share else 1 << 30
        hf.growing_cache = cache or growing_cache
        sampler.prefix_apart = apart
        out, stats = sampler.generate(asked, k, temperature, seed=0)
        return [g.text for gens in out for g in gens], stats.tokens

    contenders = {
        OURS: lambda asked, k, t: run_ours(asked, k, t),
        COPIED: lambda asked, k, t: run_ours(asked, k, t, apart=False),
        "ours, every row prefilled": lambda asked, k, t: run_ours(asked, k, t, share=False),
        BF16: lambda asked, k, t: run_ours(asked, k, t, sampler=ours_bf16),
        BF16_ROOMY: lambda asked, k, t: run_ours(asked, k, t, sampler=ours_bf16, cache=roomy_cache),
        PLAIN: lambda asked, k, t: plain_generate(
            model, tokenizer, asked, k, t, args.max_new_tokens, task.stop, args.batch_size
        ),
    }
    tables = []
    for k, temperature in ((1, 0.0), (4, 0.8)):
        asked = prompts[: max(1, len(prompts) // k)]  # as many rows either way
        best, rounds, texts = {}, {}, {}
        for _ in range(args.rounds):
            for name, fn in contenders.items():
                start = time.perf_counter()
                got, tokens = fn(asked, k, temperature)
                seconds = time.perf_counter() - start
                rounds.setdefault(name, []).append(tokens / seconds)
                if tokens / seconds >= max(rounds[name]):
                    best[name] = (tokens / seconds, tokens, seconds)
                texts[name] = got
        base = best[OURS][0]
        rows = [
            "| sampler | tokens/s (best) | every round | tokens | ours / this | MFU |",
            "|---|---|---|---|---|---|",
        ]
        for name, (tps, tokens, seconds) in best.items():
            rows_run = len(asked) * k
            work = rows_run * prompt_tokens + tokens
            if name in (OURS, COPIED, BF16, BF16_ROOMY):  # the prefix once per batch
                work -= (rows_run - math.ceil(rows_run / args.batch_size)) * shared
            bf16 = name in (BF16, BF16_ROOMY)
            mfu = 100 * 2 * params * work / seconds / (peak_bf16 if bf16 else peak)
            every = ", ".join(f"{r:,.0f}" for r in rounds[name])
            rows.append(
                f"| {name} | {tps:,.0f} | {every} | {tokens:,} | {base / tps:.2f}x | {mfu:.1f}% |"
            )

        same = {
            name: sum(a == b for a, b in zip(got, texts[PLAIN], strict=True))
            for name, got in texts.items()
        }
        what = "greedy" if temperature == 0 else f"K={k} at temperature {temperature}"
        tables.append(
            f"### {what}\n\n" + "\n".join(rows) + "\n\n"
            + (f"Same greedy text as plain `generate` (float32) on {len(asked)} prompts: "
               + ", ".join(f"{name}: {n}" for name, n in same.items() if name != PLAIN)
               + ".\n" if temperature == 0 else "")
        )  # fmt: skip
    report = (
        "# Speed: a real model from a few-shot prompt, ours against plain `generate`\n\n"
        f"Command: `python benchmarks/speed/fewshot.py`\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in "
        f"{(time.perf_counter() - began) / 60:.1f} min on {platform.processor() or 'CPU'}, "
        f"{os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} "
        f"threads. Load average before: {', '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}.\n\n"
        f"Model: SmolLM2-135M-Instruct ({params:,} parameters, float32). {len(prompts)} "
        f"prompts of {prompt_tokens:.0f} tokens on average, {shared} of them shared (8 "
        f"exemplars); batches of {args.batch_size}; max_new_tokens={args.max_new_tokens}; "
        f"matmul peak float32 {peak / 1e9:.1f}, bfloat16 {peak_bf16 / 1e9:.1f} GFLOP/s. Best of "
        f"{args.rounds} alternating "
        "rounds.\n\n" + "\n".join(tables)
    )
    print(report)
    if args.out != "-":
        Path(args.out).write_text(report)


if __name__ == "__main__":
    main()
