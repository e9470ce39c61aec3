"""HF generate with a static KV cache against the default dynamic cache, side by side.

    python benchmarks/sampling_cache/run.py [--batch 256] [--new-tokens 200] [--rounds 3]

On the built-in model architecture (randomly initialised, so every row runs the full
`--new-tokens`: the comparison is of decoding speed, not of answers), both settings
generate the same prompts in alternating rounds; the result is the ratio of their
generated tokens per second. Writes `results.md` beside this file.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from selftaught.models.loading import load_model, load_tokenizer
from selftaught.models.tiny import save_new_tiny
from selftaught.tasks import AdditionTask

HERE = Path(__file__).parent


def tokens_per_second(model, enc, new_tokens: int, cache: str | None) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            **enc,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            cache_implementation=cache,
            pad_token_id=0,
        )
    generated = (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
    return generated / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = save_new_tiny(Path(tmp), 128, 4, 4, seed=0)
        model, tokenizer = load_model(path).eval(), load_tokenizer(path)
    task = AdditionTask(1, 5, train_size=args.batch)
    prompts = [task.prompt(p) for p in task.train_problems()]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    rates: dict[str, list[float]] = {"dynamic": [], "static": []}
    for _ in range(args.rounds):  # alternate, so machine load falls on both alike
        rates["dynamic"].append(tokens_per_second(model, enc, args.new_tokens, None))
        rates["static"].append(tokens_per_second(model, enc, args.new_tokens, "static"))
    best = {k: max(v) for k, v in rates.items()}
    table = "\n".join(
        f"| {k} | {best[k]:,.0f} | {', '.join(f'{r:,.0f}' for r in v)} |" for k, v in rates.items()
    )
    text = (
        "# Static vs dynamic KV cache in HF generate\n\n"
        f"Command: `python benchmarks/sampling_cache/run.py --batch {args.batch} "
        f"--new-tokens {args.new_tokens} --rounds {args.rounds}`\n\n"
        f"Built-in model architecture (d=128, 4 layers), {args.batch} addition prompts "
        f"(1-5 digits), {args.new_tokens} new tokens each, greedy, torch threads: "
        f"{torch.get_num_threads()}.\n\n"
        "| cache | best tokens/s | every round |\n|---|---|---|\n" + table + "\n\n"
        f"**static / dynamic: {best['static'] / best['dynamic']:.2f}x**\n"
    )
    (HERE / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
