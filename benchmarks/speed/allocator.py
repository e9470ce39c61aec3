"""glibc's malloc as it comes against told to keep what torch frees
(`selftaught.memory.keep_freed_memory`, which `selftaught` and its launched train phases
call at start), side by side: each workload in a fresh process per way and round,
alternating, best round reported.

    python benchmarks/speed/allocator.py [--rounds 2] [--lora-steps 12]

Workloads: SmolLM2-135M-Instruct's LoRA train phase as configs/star-smollm2-addition.yaml
trains it (r=16, batch 8, one micro-batch; from `benchmarks/real_model/lora_speed.py`) in
float32 and in its fastest way (bf16 autocast, padding-free, eager attention); the
built-in M sampling 256 addition prompts greedily (200 new tokens at most, after a
warm-up call); the built-in M trained 40 steps of batch 32 on worked sums. Writes
results-allocator.md beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
LORA_WAYS = ("float32", "autocast bf16, padding-free, eager attention")
WORKLOADS = (*(f"SmolLM2 LoRA phase, {way}" for way in LORA_WAYS), "M sampling", "M training")
sys.path.insert(0, str(HERE.parent / "real_model"))  # lora_speed's examples and phase


def lora_phase(way: str, steps: int) -> float:
    from lora_speed import examples, phase_trainer  # the same phase as its table's

    from selftaught.models.pretrained import resolve_model
    from selftaught.tasks.addition import AdditionTask

    task = AdditionTask(1, 2, 64, 4, few_shot=8, format="columns")
    train = examples(task, task.train_problems())
    with tempfile.TemporaryDirectory() as out:
        model = resolve_model("smollm2-135m-instruct")
        return phase_trainer(way).fit(model, train, steps, Path(out), 0).tokens_per_second


def m_sampling() -> float:
    from selftaught.models.base_model import shipped_path
    from selftaught.samplers.hf import HFSampler
    from selftaught.tasks import AdditionTask

    task = AdditionTask(1, 5, 256, 1, seed=0)
    prompts = [task.prompt(p) for p in task.train_problems()]
    sampler = HFSampler(shipped_path(), batch_size=256, max_new_tokens=200)
    sampler.generate(prompts[:16], 1, 0.0, 0)
    began = time.perf_counter()
    _, stats = sampler.generate(prompts, 1, 0.0, 0)
    return stats.tokens / (time.perf_counter() - began)


def m_training() -> float:
    from lora_speed import examples

    from selftaught.models.base_model import shipped_path
    from selftaught.models.training import HFTrainer
    from selftaught.tasks import AdditionTask

    task = AdditionTask(1, 5, 2048, 1, seed=0)
    train = examples(task, task.train_problems())
    with tempfile.TemporaryDirectory() as out:
        return HFTrainer().fit(shipped_path(), train, 40, Path(out), 0).tokens_per_second


def worker(workload: str, keep: bool, lora_steps: int) -> None:
    if keep:
        from selftaught.memory import keep_freed_memory

        assert keep_freed_memory(), "not glibc"
    if workload == "M sampling":
        rate = m_sampling()
    elif workload == "M training":
        rate = m_training()
    else:
        rate = lora_phase(workload.split(", ", 1)[1], lora_steps)
    print(json.dumps({"tokens_per_second": rate}))


def measure(workload: str, keep: bool, lora_steps: int) -> float:
    command = [sys.executable, __file__, "--worker", workload, "--lora-steps", str(lora_steps)]
    out = subprocess.run(
        [*command, *(["--keep"] if keep else [])], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["tokens_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lora-steps", type=int, default=12)
    parser.add_argument("--worker", choices=WORKLOADS)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.keep, args.lora_steps)
    load, began = os.getloadavg(), time.time()
    rates = {(w, keep): [] for w in WORKLOADS for keep in (False, True)}
    for _ in range(args.rounds):
        for workload in WORKLOADS:
            for keep in (False, True):
                rates[workload, keep].append(measure(workload, keep, args.lora_steps))
                print(workload, "kept" if keep else "default", f"{rates[workload, keep][-1]:,.1f}")
    lines = [
        "# glibc's malloc as it comes, and keeping what torch frees",
        "",
        "Command: `python benchmarks/speed/allocator.py"
        + (f" --rounds {args.rounds}" if args.rounds != 2 else "")
        + (f" --lora-steps {args.lora_steps}" if args.lora_steps != 12 else "")
        + f"`. {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(began))}, "
        f"{(time.time() - began) / 60:.1f} min, {os.cpu_count()} cores, load average before "
        f"{load[0]:.2f}, after {os.getloadavg()[0]:.2f}. Each workload in a fresh process per "
        f"way and round, {args.rounds} alternating rounds; LoRA phases of {args.lora_steps} "
        "steps.",
        "",
        "| workload | default: tokens/s (best) | every round | kept: tokens/s (best) "
        "| every round | kept / default |",
        "|---|---|---|---|---|---|",
    ]
    for workload in WORKLOADS:
        default, kept = rates[workload, False], rates[workload, True]
        lines.append(
            f"| {workload} | {max(default):,.1f} | {', '.join(f'{v:,.1f}' for v in default)} "
            f"| {max(kept):,.1f} | {', '.join(f'{v:,.1f}' for v in kept)} "
            f"| {max(kept) / max(default):.2f}x |"
        )
    fastest = f"SmolLM2 LoRA phase, {LORA_WAYS[1]}"
    baseline = f"SmolLM2 LoRA phase, {LORA_WAYS[0]}"
    lines += [
        "",
        f"LoRA phase, its fastest way with memory kept / float32 as glibc comes: "
        f"**{max(rates[fastest, True]) / max(rates[baseline, False]):.2f}x**; "
        f"both kept: {max(rates[fastest, True]) / max(rates[baseline, True]):.2f}x.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "results-allocator.md").write_text(text)


if __name__ == "__main__":
    main()
