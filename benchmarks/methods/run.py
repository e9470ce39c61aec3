"""STaR, ReST-EM, Iterative RFT, Online RFT and B-STaR side by side, equal sample budgets.

    python benchmarks/methods/run.py [--config configs/methods-expression.yaml]
        [--seeds 0 1 2] [--methods star rest-em ... bstar+rm] [--budget 512] [--set KEY=VALUE ...]

``METHOD+rm`` is the method's "w/ RM" variant, ``METHOD+oracle`` the method with a perfect
process filter (``VARIANTS``), ``METHOD+KEY=VALUE`` the method with one key set (e.g.
``online-rft+sampling.temperature=0.4``, Online RFT at another fixed temperature).

Every method draws ``--budget`` responses per round: STaR one greedy rationale for each
of ``budget`` problems (plus its rationalization retries), the others ``num_samples`` (K)
for each of ``budget / K`` problems. All runs share the task's data and the base model M
(``task.seed``); ``--seeds`` vary sampling and training. Finished runs are reused, so an
interrupted benchmark continues. Writes ``results-NAME.md`` beside this file (for
``configs/methods-NAME.yaml``): a table like B-STaR's Table 1 (Pass@1, Pass@k, Pass@k-s
per method, mean and spread over seeds), exploration per round, B-STaR against each
method paired by seed (mean difference, 95% interval, p), and B-STaR's chosen
temperature, threshold and balance score per round (its Table 2).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from selftaught.config import load_config
from selftaught.loop import run
from selftaught.metrics import greedy_accuracies
from selftaught.progress import Reporter
from selftaught.report import table
from selftaught.rollout import mark_valid
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


def bench_name(config_path: Path) -> str:
    """``configs/methods-expression.yaml`` -> ``expression``: names the results and runs."""
    return config_path.stem.removeprefix("methods-")


def run_one(config_path: Path, name: str, seed: int, args) -> list[dict]:
    method, _, variant = name.partition("+")
    overrides = [f"method={method}", f"seed={seed}", *budget_overrides(method, args.budget, args.k)]
    if variant and variant not in VARIANTS and "=" not in variant:
        raise SystemExit(
            f"--methods {name}: unknown variant {variant!r}; expected METHOD+"
            + " or METHOD+".join(VARIANTS)
            + " or METHOD+KEY=VALUE"
        )
    overrides += VARIANTS.get(variant, [variant] if variant else [])
    config = load_config(config_path, [*args.overrides, *overrides])
    out = args.out / bench_name(config_path) / f"{name}-seed{seed}"
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
    task = build_task(config.task)
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
    vks = list(first.get("valid_pass@k") or {})
    valid = "valid_accuracy" in first
    head = ["method", "greedy (final)", "greedy (best round)"]
    head += ["greedy, valid steps (final)"] if valid else []
    head += [f"Pass@{k} (T={eval_temperature:g})" for k in ks] + [
        f"Pass@{k.replace('-', '-s')}" for k in kss
    ]
    head += [f"Pass@{k}, valid steps" for k in vks]
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
        cells += [spread([r["valid_pass@k"][k] for r in finals]) for k in vks]
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


def paired(results: dict[str, list[list[dict]]], metrics: dict, against: str) -> str:
    """``against`` minus every other method on each of ``metrics`` (name -> value of the
    final round's row), seed by seed: the mean difference, its 95% t-interval and the
    paired t-test's p. Runs of one seed pair up: they share M, the rounds' problems (where
    the budget is the same) and the evaluation set."""
    from scipy import stats  # the benchmark's own dependency (the dev extra), not the loop's

    body = []
    for name, value in metrics.items():
        mine = [value(rows[-1]) for rows in results[against]]
        for method, runs in results.items():
            other = [value(rows[-1]) for rows in runs]
            if method == against or len(other) != len(mine):
                continue
            test = stats.ttest_rel(mine, other)
            low, high = test.confidence_interval(0.95)
            diff = statistics.fmean(a - b for a, b in zip(mine, other, strict=True))
            interval = f"[{100 * low:+.1f}, {100 * high:+.1f}]"
            body.append([name, method, f"{100 * diff:+.1f}", interval, f"{test.pvalue:.3f}"])
    head = ["final round", f"{against} minus", "mean difference", "95% interval", "p (paired t)"]
    return table(head, body)


def rounds_mean(results: dict[str, list[list[dict]]], value) -> str:
    """``value(row)`` per round for every method, mean over seeds (percent)."""
    methods = list(results)
    rounds = len(results[methods[0]][0])
    body = [
        [
            n,
            *(
                f"{100 * statistics.fmean(value(rows[n]) for rows in results[m]):.1f}"
                for m in methods
            ),
        ]
        for n in range(rounds)
    ]
    return table(["round", *methods], body)


def loop_minutes(results: dict[str, list[list[dict]]]) -> float:
    """The phases' own time (metrics' ``seconds``), summed over every run."""
    seconds = [
        sum(r["seconds"].values()) for runs in results.values() for rows in runs for r in rows
    ]
    return sum(seconds) / 60


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


def followed(first: dict, eval_temperature: float) -> dict:
    """What the per-round means and the paired comparison follow, name -> value of a
    metrics row: greedy Pass@1 (and with valid steps), and Pass@k at the largest k (and with
    valid steps), where the run measured them."""
    metrics = {"greedy Pass@1": lambda r: r["accuracy"]}
    if "valid_accuracy" in first:
        metrics["greedy, every step valid"] = lambda r: r["valid_accuracy"]
    for key, what in (
        ("pass@k", f"Pass@{{k}} (T={eval_temperature:g})"),
        ("valid_pass@k", "Pass@{k}, every step valid"),
    ):
        if first.get(key):
            k = list(first[key])[-1]
            metrics[what.format(k=k)] = lambda r, key=key, k=k: r[key][k]
    return metrics


def exploration_sections(
    results: dict[str, list[list[dict]]], seeds: list[int], eval_temperature: float
) -> str:
    """Exploitation and exploration per round, mean over seeds (B-STaR's Fig. 2/3
    quantities), and B-STaR against each other method seed by seed."""
    metrics = followed(next(iter(results.values()))[0][0], eval_temperature)
    text = ""
    for name, value in metrics.items():
        text += (
            f"\n## Per round, mean over {len(seeds)} seeds: {name} (%)\n\n"
            f"{rounds_mean(results, value)}\n"
        )
    # B-STaR itself if it ran, else its first variant (bstar+rm against online-rft+rm)
    reference = next((m for m in results if m.startswith("bstar")), None)
    if reference and len(results) >= 2 and len(seeds) >= 2:
        text += (
            f"\n## {reference} against each method, paired by seed (points)\n\n"
            f"{paired(results, metrics, reference)}\n"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/methods-expression.yaml"))
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=512, help="responses sampled per round")
    parser.add_argument("--k", type=int, default=4, help="samples per problem (not STaR)")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-methods"))
    parser.add_argument(
        "--results", help="results-RESULTS.md; default: the config's NAME (methods-NAME.yaml)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    results = {m: [run_one(args.config, m, s, args) for s in args.seeds] for m in args.methods}
    config = load_config(args.config, args.overrides)
    command = "python benchmarks/methods/run.py " + " ".join(
        [f"--config {args.config}", "--seeds", *map(str, args.seeds), f"--budget {args.budget}"]
        + ([f"--k {args.k}"] if args.k != parser.get_default("k") else [])
        + (["--methods", *args.methods] if args.methods != METHODS else [])
        + [f"--set {o}" for o in args.overrides]
        + ([f"--out {args.out}"] if args.out != parser.get_default("out") else [])
        + ([f"--results {args.results}"] if args.results else [])
    )
    text = (
        f"# Methods on `{config.task.name}`: measured\n\n"
        f"Command: `{command}`\n\n"
        f"{len(args.seeds)} seeds, {config.iterations} rounds, {args.budget} responses sampled "
        f"per round per method; the runs' phases took {loop_minutes(results):.0f} min in all "
        f"(this invocation: {(time.perf_counter() - started) / 60:.0f} min, finished runs "
        "reused). What the figures show, and the machine's load: benchmarks/README.md.\n\n"
        "## Final round (mean ± std over seeds, %), like B-STaR's Table 1\n\n"
        f"{table1(results, config.eval.temperature)}\n"
    )
    text += exploration_sections(results, args.seeds, config.eval.temperature)
    for name, runs in results.items():
        if name.startswith("bstar"):
            text += (
                f"\n## `{name}`, seed {args.seeds[0]}: the choices per round, like B-STaR's "
                f"Table 2\n\n{choices(runs[0])}\n"
            )
    (HERE / f"results-{args.results or bench_name(args.config)}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
