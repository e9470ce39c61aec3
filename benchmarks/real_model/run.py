"""STaR on a real pretrained model (SmolLM2-135M-Instruct) from a few-shot prompt, with and
without rationalization, beside the same model answering directly: the paper's central
arithmetic experiment in this package's setting.

    nice -n 10 python benchmarks/real_model/run.py                  # writes results.md
    nice -n 10 python benchmarks/real_model/run.py --set iterations=1 --out /tmp/x

Runs configs/star-smollm2-addition.yaml as `star` and as `star-norat` (same seed, same
problems, same M), in run directories under --out, then tabulates greedy held-out accuracy
per digit count per iteration, seconds per phase, tokens/s and the train phase's peak RSS.
The direct-answer row: the same held-out sums, the `direct` format with as many exemplars.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from selftaught.config import load_config
from selftaught.loop import run
from selftaught.models.base_model import base_model_path
from selftaught.progress import Reporter
from selftaught.rollout import evaluate_greedy
from selftaught.store import RunStore
from selftaught.tasks import build_task

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
CONFIG = ROOT / "configs" / "star-smollm2-addition.yaml"


def direct_accuracy(overrides: list[str]) -> dict:
    config = load_config(CONFIG, [*overrides, "task.format=direct", "sampling.max_new_tokens=12"])
    task = build_task(config.task)
    began = time.perf_counter()
    results, stats = evaluate_greedy(task, task.eval_problems(), base_model_path(config), config)
    by = {}
    for r in results:
        by.setdefault(r["bucket"], []).append(r["correct"])
    return {
        "accuracy_by_bucket": {b: sum(v) / len(v) for b, v in sorted(by.items())},
        "seconds": round(time.perf_counter() - began, 1),
        "tokens": stats.tokens,
    }


def one_run(method: str, overrides: list[str], out: Path) -> list[dict]:
    config = load_config(CONFIG, [*overrides, f"method={method}"])
    began = time.perf_counter()
    rows = run(config, out, reporter=Reporter(quiet=False))
    store = RunStore(out)
    for row in rows:
        n = row["iteration"]
        train = store.stats(n).get("train", {})
        row["peak_rss_mb"] = train.get("peak_rss_mb")
    print(f"{method}: {time.perf_counter() - began:.0f} s", flush=True)
    return rows


def table(record: dict) -> str:
    buckets = list(record["direct"]["accuracy_by_bucket"])
    head = "| | " + " | ".join(f"{b}-digit" for b in buckets)
    head += " | kept (rationalized) | s sample | s rationalize | s train | s eval "
    head += "| sample tok/s | train tok/s | train peak RSS MB |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    direct = record["direct"]["accuracy_by_bucket"]
    lines.append(
        "| direct answer, few-shot | "
        + " | ".join(f"{100 * direct[b]:.1f}" for b in buckets)
        + " |" * 9
    )
    for method, rows in record["runs"].items():
        for row in rows:
            n = row["iteration"]
            name = "pretrained, few-shot" if n == 0 else f"{method}, iteration {n}"
            acc = " | ".join(f"{100 * row['accuracy_by_bucket'][b]:.1f}" for b in buckets)
            s, tps = row["seconds"], row["tokens_per_second"]
            kept = f"{row['train_examples']} ({row['rationalized']})" if n else ""
            cells = [
                kept,
                *(
                    f"{s[k]:.0f}" if n or k == "eval" else ""
                    for k in ("sample", "rationalize", "train", "eval")
                ),
                f"{tps['sample']:.0f}" if n else "",
                f"{tps['train']:.0f}" if n else "",
                f"{row['peak_rss_mb']:.0f}" if row.get("peak_rss_mb") else "",
            ]
            lines.append(f"| {name} | {acc} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", dest="overrides", nargs="*", default=[])
    parser.add_argument("--methods", nargs="+", default=["star", "star-norat"])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "real_model")
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    began, load = time.perf_counter(), [os.getloadavg()]
    record = {
        "command": "python benchmarks/real_model/run.py "
        + f"--methods {' '.join(args.methods)} "
        + " ".join(f"--set {o}" for o in args.overrides),
        "torch_threads": torch.get_num_threads(),
        "direct": direct_accuracy(args.overrides),
        "runs": {},
    }
    print("direct:", record["direct"], flush=True)
    for method in args.methods:
        record["runs"][method] = one_run(method, args.overrides, args.out / method)
        load.append(os.getloadavg())
    record["load"] = load
    record["minutes"] = round((time.perf_counter() - began) / 60, 1)
    args.results.write_text(json.dumps(record, indent=1) + "\n")
    print(table(record))


if __name__ == "__main__":
    main()
