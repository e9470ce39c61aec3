"""Where the built-in model's train phase spends its time, in float32, under bfloat16
autocast, and under bfloat16 autocast with eager attention: torch's profiler over the
same steps of the shipped M on the same worked sums, each way after a warm-up call.

    python benchmarks/speed/train_profile.py [--steps 10]  # writes results-train-profile.txt

Found: under autocast the products run ~2x faster, but sdpa's flash-attention kernel
backward in bfloat16 runs ~2x slower than in float32 and takes what they gained;
transformers' eager attention (two batched products and a softmax) does not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from selftaught.memory import keep_freed_memory
from selftaught.models.base_model import shipped_path
from selftaught.models.training import HFTrainer
from selftaught.tasks.addition import AdditionTask

HERE = Path(__file__).parent

# each way's HFTrainer settings over the main command's (batch 32, 4 micro-batches)
WAYS = {
    "float32": {},
    "bf16 autocast": {"mixed_precision": "bf16"},
    "bf16 autocast, eager attention": {"mixed_precision": "bf16", "attn_implementation": "eager"},
}


def profile_way(model: Path, examples, steps: int, settings: dict) -> str:
    trainer = HFTrainer(batch_size=32, lr=2e-4, **settings)
    with tempfile.TemporaryDirectory() as out:
        trainer.fit(model, examples, 2, Path(out), seed=0)  # warm-up: first calls, allocations
        with torch.autograd.profiler.profile() as profile:
            result = trainer.fit(model, examples, steps, Path(out), seed=0)
    table = profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)
    return f"{result.tokens_per_second:,.0f} tokens/s with the profiler on\n{table}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", default=str(HERE / "results-train-profile.txt"), help="'-': print")
    args = parser.parse_args()
    keep_freed_memory()
    task = AdditionTask(1, 5, train_size=256, seed=0)
    examples = task.seed_examples(2048, task.sizes, 0.0, salt="speed-train")
    model = shipped_path()
    text = []
    for way, settings in WAYS.items():
        table = profile_way(model, examples, args.steps, settings)
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        text.append(f"# {way}: {args.steps} steps of 32 ({stamp}), {table}")
        print(text[-1], flush=True)
    command = "python benchmarks/speed/train_profile.py " + " ".join(sys.argv[1:])
    if args.out != "-":
        Path(args.out).write_text(f"# {command}\n\n" + "\n".join(text))


if __name__ == "__main__":
    main()
