"""The main command's STaR run at smaller training budgets: how few steps still teach it.

    python benchmarks/star_addition/budget.py [--budgets 1:0 150:10 200:20 250:20 300:20]

Runs `configs/star-addition.yaml` (3 iterations, method star) once per budget
`STEPS:INCREMENT[:LR[:BATCH]]` (`train.steps`, `train.steps_increment` and, where given,
`train.lr` and `train.batch_size`; everything else as the config),
one after another in this process, and writes `results-budget.md` beside this file: the
greedy held-out accuracy per digit count per iteration, and the seconds of the loop's
phases. Training is most of the main command's time (benchmarks/speed/results.md); this
measures what a smaller budget would cost in accuracy. `1:0` (one step, no more each
iteration) leaves M all but unchanged: what the phases other than training cost.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from run import table  # benchmarks/star_addition/run.py, beside this file

from selftaught.config import load_config
from selftaught.loop import run
from selftaught.progress import Reporter

HERE = Path(__file__).parent
CONFIG = Path("configs/star-addition.yaml")


def overrides(budget: str) -> list[str]:
    """``STEPS:INCREMENT[:LR[:BATCH]]`` as config overrides."""
    keys = ["train.steps", "train.steps_increment", "train.lr", "train.batch_size"]
    values = budget.split(":")
    return [f"{key}={value}" for key, value in zip(keys, values, strict=False)]


def budget_run(budget: str, out: Path) -> tuple[list[dict], float]:
    config = load_config(CONFIG, overrides(budget))
    start = time.perf_counter()
    name = "steps-" + budget.replace(":", "-")
    rows = run(config, out / name, reporter=Reporter(quiet=True))
    return rows, time.perf_counter() - start


def label(budget: str) -> str:
    steps, increment, *rest = budget.split(":")
    named = (f"{k} {v}" for k, v in zip(("lr", "batch"), rest, strict=False))
    return ", ".join([f"{steps}, +{increment}", *named])


def summary_line(budget: str, rows: list[dict], seconds: float) -> str:
    phases = sum(sum(r["seconds"].values()) for r in rows)
    train = sum(r["seconds"]["train"] for r in rows)
    accuracies = " -> ".join(f"{100 * r['accuracy']:.1f}" for r in rows)
    return (
        f"| {label(budget)} | {accuracies} | {100 * rows[-1]['accuracy']:.1f} | "
        f"{phases:.0f} | {train:.0f} | {seconds:.0f} |"
    )


def own(path: Path) -> str:
    """The config's own budget and the training settings a row may change or depends on."""
    t = load_config(path).train
    return (
        f"{t.steps}, +{t.steps_increment}, lr {t.lr:g}, batch {t.batch_size}, "
        f"mixed_precision {t.mixed_precision}, attn_implementation {t.attn_implementation}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--budgets", nargs="+", default=["1:0", "150:10", "200:20", "250:20", "300:20"]
    )
    parser.add_argument("--out", type=Path, default=Path("runs/bench-star-budget"))
    parser.add_argument("--results", type=Path, default=HERE / "results-budget.md")
    args = parser.parse_args()
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines, sections = [], []
    for budget in args.budgets:
        rows, seconds = budget_run(budget, args.out)
        lines.append(summary_line(budget, rows, seconds))
        sections.append(f"### {', '.join(overrides(budget))}\n\n{table(rows)}\n")
        print(lines[-1], flush=True)
    command = "python benchmarks/star_addition/budget.py"
    if args.budgets != parser.get_default("budgets"):
        command += " --budgets " + " ".join(args.budgets)
    if args.results != parser.get_default("results"):
        command += f" --results {args.results}"
    args.results.write_text(
        "# STaR on addition at smaller training budgets\n\n"
        f"Command: `{command}`, started {began}.\n\n"
        f"Config: `{CONFIG}` (3 iterations, one greedy sample per problem, rationalization), "
        "with the settings each row gives (`train.steps`, `train.steps_increment`, and where "
        f"given `train.lr` and `train.batch_size`); the config's own: {own(CONFIG)}. "
        "Greedy held-out accuracy (%), iteration 0 (M) first; seconds are the "
        "loop's phases (sampling, rationalization, training, evaluation), and the run's "
        "wall-clock in this process (the model cached, no install).\n\n"
        "| budget (steps, increment[, lr, batch]) | overall accuracy by iteration | final | "
        "phases s | train s | wall s |\n|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n\n"
        "## Per digit count\n\n" + "\n".join(sections)
    )


if __name__ == "__main__":
    main()
