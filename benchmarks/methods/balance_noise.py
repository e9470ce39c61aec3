"""How far apart B-STaR's search puts the temperatures, against the noise of its sample.

    python benchmarks/methods/balance_noise.py runs/bench-methods-2048/exploration/bstar-seed*

For every round of every B-STaR run given, from the search's stored samples: each
temperature's balance score (at the round's chosen tau, as the search computed it), and
the chosen temperature's lead over Online RFT's fixed one (``--versus``, 0.8) with its
standard error over the search's queries (per-query contributions, paired: the same
queries are sampled at every temperature). A lead inside two standard errors means the
search cannot tell the two temperatures apart on that many queries.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from selftaught import bstar
from selftaught.report import table
from selftaught.store import SEARCH_SAMPLES, RunStore, read_jsonl
from selftaught.tasks import build_task
from selftaught.training_data import bstar_candidates


def per_query(config, candidates: list[dict], queries: list[str], tau: float) -> list[float]:
    """Each query's own balance score: the search's mean is their mean (every query keeps
    its reference, so none drops out)."""
    by_query: dict[str, list[dict]] = {q: [] for q in queries}
    for c in candidates:
        by_query[c["problem_id"]].append(c)
    b = config.bstar
    return [bstar.balance_score(by_query[q], tau, b.n_star, queries=[q]) for q in queries]


def round_rows(run: Path, versus: float) -> list[list]:
    store = RunStore(run)
    config = store.load_config()
    task = build_task(config.task)
    problems = {p.id: p for p in task.train_problems()}
    rows = []
    for metrics in store.metrics()[1:]:
        n = metrics["iteration"]
        samples = read_jsonl(store.iter_dir(n) / SEARCH_SAMPLES)
        queries = list(dict.fromkeys(s["problem_id"] for s in samples))
        subset = [problems[q] for q in queries]
        scores = {}
        for t in config.bstar.temperatures:
            at_t = [s for s in samples if s["temperature"] == t]
            candidates, _ = bstar_candidates(config, task, subset, at_t)
            scores[t] = per_query(config, candidates, queries, metrics["threshold"])
        chosen = metrics["temperature"]
        lead = [a - b for a, b in zip(scores[chosen], scores[versus], strict=True)]
        se = statistics.stdev(lead) / len(lead) ** 0.5
        means = {t: statistics.fmean(v) for t, v in scores.items()}
        rows.append(
            [
                run.name,
                n,
                f"{chosen:g}",
                " ".join(f"{means[t]:.3f}" for t in config.bstar.temperatures),
                f"{max(means.values()) - min(means.values()):.3f}",
                f"{statistics.fmean(lead):+.3f} ± {se:.3f}",
                len(queries),
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--versus", type=float, default=0.8)
    args = parser.parse_args()
    rows = [row for run in args.runs for row in round_rows(run, args.versus)]
    temps = RunStore(args.runs[0]).load_config().bstar.temperatures
    head = [
        "run",
        "round",
        "chosen T",
        "balance at T = " + ", ".join(f"{t:g}" for t in temps),
        "best - worst",
        f"chosen - T={args.versus:g} (± s.e.)",
        "queries",
    ]
    print(table(head, rows))


if __name__ == "__main__":
    main()
