"""Can SmolLM2-135M write a 2-digit rationale at all? K samples at temperature T for each
of 24 training sums of 2 digits, from the few-shot prompt of `--format`, and how many
problems get a rationale whose every step is right (the task's step labels).

    python benchmarks/real_model/valid_at_k.py --k 8 --temperature 0.7 --format columns

STaR needs some: greedily it keeps only right answers, and rationalization only helps
where the model, given the answer, writes the steps to it.
"""

from __future__ import annotations

import argparse
import time

from selftaught.models.pretrained import resolve_model
from selftaught.samplers.hf import HFSampler
from selftaught.tasks import AdditionTask


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--format", default="columns")
    parser.add_argument("--digits", type=int, default=2)
    args = parser.parse_args()
    task = AdditionTask(1, 2, 96, 16, few_shot=8, format=args.format, seed=0)
    problems = [p for p in task.train_problems() if p.bucket == str(args.digits)][:24]
    sampler = HFSampler(resolve_model("smollm2-135m-instruct"), 32, 64, stop=task.stop)
    began = time.perf_counter()
    out, _ = sampler.generate([task.prompt(p) for p in problems], args.k, args.temperature, 0)
    valid = [
        sum(all(task.step_labels(p, g.text)) for g in gens)
        for p, gens in zip(problems, out, strict=True)
    ]
    right = [
        sum(task.is_correct(task.extract_answer(g.text), p) for g in gens)
        for p, gens in zip(problems, out, strict=True)
    ]
    print(
        f"{args.format}, K={args.k}, T={args.temperature}, {len(problems)} sums of "
        f"{args.digits} digits: {sum(v > 0 for v in valid)} with a rationale right in every "
        f"step ({sum(valid)} of {len(problems) * args.k} samples), {sum(right)} samples with "
        f"the right answer; {time.perf_counter() - began:.0f} s"
    )
    print("first sum's samples:", [g.text for g in out[0][:4]])


if __name__ == "__main__":
    main()
