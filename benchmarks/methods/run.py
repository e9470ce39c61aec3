"""STaR, ReST-EM, Iterative RFT, Online RFT and B-STaR side by side, equal sample budgets.

    python benchmarks/methods/run.py [--config configs/methods-expression.yaml]
        [--seeds 0 1 2] [--methods star rest-em ... bstar+rm] [--budget 512] [--set KEY=VALUE ...]

``METHOD+rm`` is the method's "w/ RM" variant, ``METHOD+oracle`` the method with a perfect
process filter (``VARIANTS``).

Every method draws ``--budget`` responses per round: STaR one greedy rationale for each
of ``budget`` problems (plus its rationalization retries), the others ``num_samples`` (K)
for each of ``budget / K`` problems. All runs share the task's data and the base model M
(``task.seed``); ``--seeds`` vary sampling and training. Finished runs are reused, so an
interrupted benchmark continues. Writes ``results-<task>.md`` beside this file: a table
like B-STaR's Table 1 (Pass@1, Pass@k, Pass@k-s per method, mean and spread over seeds)
and B-STaR's chosen temperature, threshold and balance score per round (its Table 2).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from selftaught.config_files import load_config
from selftaught.loop import mark_valid, run
from selftaught.metrics import greedy_accuracies
from selftaught.progress import Reporter
from selftaught.report import table
from selftaught.store import RunStore, config_diff, read_jsonl
from selftaught.tasks import build_task
from selftaught.tasks.expression import is_valid_solution

HERE = Path(__file__).parent
METHODS = ["star", "rest-em", "iterative-rft", "online-rft", "bstar", "bstar+rm"]


def budget_overrides(method: str, budget: int, k: int) -> list[str]:
    if method in ("star", "star-norat"):
        return [f"sampling.queries_per_round={budget}"]
    return [f"sampling.num_samples={k}", f"sampling.queries_per_round={budget // k}"]


# "METHOD+rm": the method's "w/ RM" variant, a process reward model trained on M's samples
# of this many problems scoring every sample (B-STaR then thresholds on that score);
# "METHOD+oracle": the task's own step labels drop every invalid rationale, a perfect
# process filter that bounds what exploitation can give
VARIANTS = {
    "rm": ["reward.enabled=true", "reward.kind=process", "reward.problems=256"],
    "oracle": ["selection.valid_steps=true"],
}


def run_one(config_path: Path, name: str, seed: int, args) -> list[dict]:
    method, _, variant = name.partition("+")
    overrides = [f"method={method}", f"seed={seed}", *budget_overrides(method, args.budget, args.k)]
    if variant and variant not in VARIANTS:
        raise SystemExit(
            f"--methods {name}: unknown variant {variant!r}; expected METHOD+"
            + " or METHOD+".join(VARIANTS)
        )
    overrides += VARIANTS.get(variant, [])
    config = load_config(config_path, [*args.overrides, *overrides])
    out = args.out / config.task.name / f"{name}-seed{seed}"
    store = RunStore(out)
    resume = (out / "state.json").exists()
    if resume:  # a finished run is reused by its directory: only if it is this very run
        differ = config_diff(
            store.load_config().model_dump(mode="json"), config.model_dump(mode="json")
        )
        if differ:
            raise SystemExit(
                f"{out} holds a run with other settings ({', '.join(differ)}); "
                "give another --out, or remove it"
            )
    if resume and store.done(config.iterations, "eval"):
        rows = store.metrics()
    else:
        start = time.perf_counter()
        rows = run(config, out, resume=resume, reporter=Reporter(quiet=True))
        print(f"{name} seed {seed}: {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    task = build_task(config)
    if config.task.name == "expression":
        questions = {p.id: p.question for p in task.train_problems()}
        for row in rows[1:]:
            train = read_jsonl(store.iter_dir(row["iteration"]) / "train.jsonl")
            row["kept_valid"] = valid_examples(train, questions)
    for row in rows:
        if task.step_gold and "valid_accuracy" not in row:  # a run from before the metric
            results = read_jsonl(store.iter_dir(row["iteration"]) / "eval.jsonl.gz")
            row.update(greedy_accuracies(mark_valid(task, task.eval_problems(), results)))
    return rows


def valid_examples(train: list[dict], questions: dict[str, str]) -> int:
    """How many trained-on expression rationales are valid step by step: a right answer is
    not enough (a zero factor makes many wrong chains end right), and B-STaR's process
    reward is meant to catch exactly those."""
    return sum(is_valid_solution(questions[r["problem_id"]], r["completion"]) for r in train)


def spread(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {100 * statistics.stdev(values):.1f}"


def table1(results: dict[str, list[list[dict]]], eval_temperature: float) -> str:
    """Final-round figures per method; each cell mean ± std over seeds (percent)."""
    first = next(iter(results.values()))[0][-1]
    ks = list(first.get("pass@k", {}))
    kss = list(first.get("pass@k-s", {}))
    valid = "valid_accuracy" in first
    head = ["method", "greedy (final)", "greedy (best round)"]
    head += ["greedy, valid steps (final)"] if valid else []
    head += [f"Pass@{k} (T={eval_temperature:g})" for k in ks] + [
        f"Pass@{k.replace('-', '-s')}" for k in kss
    ]
    head += ["examples trained", "valid rationales %", "minutes"]
    body = []
    for method, runs in results.items():
        finals = [rows[-1] for rows in runs]
        cells = [
            method,
            spread([r["accuracy"] for r in finals]),
            spread([max(x["accuracy"] for x in rows[1:]) for rows in runs]),
        ]
        cells += [spread([r["valid_accuracy"] for r in finals])] if valid else []
        cells += [spread([r["pass@k"][k] for r in finals]) for k in ks]
        cells += [spread([r["pass@k-s"][k] for r in finals]) for k in kss]
        trained = [sum(x["train_examples"] for x in rows[1:]) for rows in runs]
        cells.append(f"{statistics.fmean(trained):.0f}")
        kept_valid = [sum(x.get("kept_valid", 0) for x in rows[1:]) for rows in runs]
        has_valid = "kept_valid" in runs[0][-1]
        cells.append(
            spread([v / max(t, 1) for v, t in zip(kept_valid, trained, strict=True)])
            if has_valid
            else ""
        )
        minutes = [sum(sum(x["seconds"].values()) for x in rows) / 60 for rows in runs]
        cells.append(f"{statistics.fmean(minutes):.1f}")
        body.append(cells)
    return table(head, body)


def loop_minutes(results: dict[str, list[list[dict]]]) -> float:
    """The phases' own time (metrics' ``seconds``), summed over every run."""
    seconds = [
        sum(r["seconds"].values()) for runs in results.values() for rows in runs for r in rows
    ]
    return sum(seconds) / 60


def per_round(results: dict[str, list[list[dict]]], key: str = "accuracy") -> str:
    """Every method's held-out greedy ``key`` per round, on the first seed."""
    methods = list(results)
    rounds = len(results[methods[0]][0])
    body = [[n, *(f"{100 * results[m][0][n][key]:.1f}" for m in methods)] for n in range(rounds)]
    return table(["round", *methods], body)


def choices(rows: list[dict]) -> str:
    """One B-STaR run's chosen temperature and threshold per round (its Table 2), with
    the balance score they reach and what was kept (size and share correct)."""
    head = ["round", "T", "tau", "balance score", "kept (correct %)", "Pass@1"]
    body = [
        [
            r["iteration"],
            f"{r['temperature']:g}",
            f"{r['threshold']:g}",
            f"{r['balance_score']:.3f}",
            f"{r['train_examples']} ({100 * r['selected_accuracy']:.0f}%)",
            f"{100 * r['accuracy']:.1f}",
        ]
        for r in rows[1:]
    ]
    return table(head, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/methods-expression.yaml"))
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=512, help="responses sampled per round")
    parser.add_argument("--k", type=int, default=4, help="samples per problem (not STaR)")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-methods"))
    args = parser.parse_args()
    started = time.perf_counter()
    results = {m: [run_one(args.config, m, s, args) for s in args.seeds] for m in args.methods}
    config = load_config(args.config, args.overrides)
    command = "python benchmarks/methods/run.py " + " ".join(
        [f"--config {args.config}", "--seeds", *map(str, args.seeds), f"--budget {args.budget}"]
        + ([f"--k {args.k}"] if args.k != parser.get_default("k") else [])
        + (["--methods", *args.methods] if args.methods != METHODS else [])
        + [f"--set {o}" for o in args.overrides]
    )
    text = (
        f"# Methods on `{config.task.name}`: measured\n\n"
        f"Command: `{command}`\n\n"
        f"{len(args.seeds)} seeds, {config.iterations} rounds, {args.budget} responses sampled "
        f"per round per method; the runs' phases took {loop_minutes(results):.0f} min in all "
        f"(this invocation: {(time.perf_counter() - started) / 60:.0f} min, finished runs "
        "reused). What the figures show, and the machine's load: benchmarks/README.md.\n\n"
        "## Final round (mean ± std over seeds, %), like B-STaR's Table 1\n\n"
        f"{table1(results, config.eval.temperature)}\n\n"
        f"## Per round, seed {args.seeds[0]}: Pass@1 (%)\n\n"
        f"{per_round(results)}\n"
    )
    if "valid_accuracy" in next(iter(results.values()))[0][0]:
        text += (
            f"\n## Per round, seed {args.seeds[0]}: greedy answers right with every step valid "
            f"(%)\n\n{per_round(results, 'valid_accuracy')}\n"
        )
    for name, runs in results.items():
        if name.startswith("bstar"):
            text += (
                f"\n## `{name}`, seed {args.seeds[0]}: the choices per round, like B-STaR's "
                f"Table 2\n\n{choices(runs[0])}\n"
            )
    (HERE / f"results-{config.task.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
