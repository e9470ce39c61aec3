"""Where the base model M's frontier lies: per size (term count, digits), how often M's
samples solve a held-out problem with every step valid, and on what share of problems
some but not all of K samples do (the problems exploration can win).

    python benchmarks/methods/frontier.py --config configs/methods-exploration.yaml --k 16

A testbed for B-STaR needs that share to be useful: problems M always solves teach
nothing, problems it never solves give nothing to keep. Only for tasks whose steps the
task can check (addition, expression).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from selftaught.config import load_config
from selftaught.metrics import pass_at_k
from selftaught.models.base_model import base_model_path
from selftaught.progress import Reporter
from selftaught.report import table
from selftaught.rollout import Rollout, mark_valid
from selftaught.samplers import HFSampler
from selftaught.tasks import build_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/methods-exploration.yaml"))
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    task = build_task(config.task)
    if not task.step_gold:
        raise SystemExit(f"task {task.name!r} cannot check steps: no frontier to measure")
    model = base_model_path(config)
    s = config.sampling

    def sampler(path: Path) -> HFSampler:
        return HFSampler(path, s.batch_size, s.max_new_tokens, stop=task.stop)

    problems = task.eval_problems()
    began = time.perf_counter()
    rollout = Rollout(task, Reporter(quiet=True), sampler)
    records, _ = rollout.sample(
        model, problems, phase="frontier", seed=0, temperature=args.temperature, num_samples=args.k
    )
    records = mark_valid(task, problems, records)
    counts = {p.id: [0, 0] for p in problems}  # (valid, correct) samples per problem
    for r in records:
        counts[r["problem_id"]][0] += r["valid"]
        counts[r["problem_id"]][1] += r["correct"]
    by_size: dict[str, list[list[int]]] = {}
    for p in problems:
        by_size.setdefault(p.bucket, []).append(counts[p.id])
    k = args.k
    body = [
        [
            size,
            len(rows),
            f"{100 * statistics.fmean(pass_at_k(k, v, 1) for v, _ in rows):.1f}",
            f"{100 * statistics.fmean(v > 0 for v, _ in rows):.1f}",
            f"{100 * statistics.fmean(0 < v < k for v, _ in rows):.1f}",
            f"{100 * statistics.fmean(pass_at_k(k, c, 1) for _, c in rows):.1f}",
            f"{100 * statistics.fmean(c > 0 for _, c in rows):.1f}",
        ]
        for size, rows in by_size.items()
    ]
    head = [
        "size",
        "problems",
        "Pass@1, valid steps",
        f"Pass@{k}, valid steps",
        f"some but not all of {k} valid",
        "Pass@1, answer",
        f"Pass@{k}, answer",
    ]
    print(
        f"M = {model}, {k} samples at T={args.temperature:g}, {time.perf_counter() - began:.0f} s"
    )
    print(table(head, body))


if __name__ == "__main__":
    main()
