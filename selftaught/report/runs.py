"""A run read back from its directory, and its one-line summary (a row of ``compare``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selftaught.config import RunConfig
from selftaught.records import MetricsRow
from selftaught.report.labels import EXPLORATION, pass_ks, pass_label
from selftaught.store import RunDirError, RunStore


@dataclass
class RunData:
    """Everything a report reads, all from the run directory."""

    root: Path
    config: RunConfig
    rows: list[MetricsRow]  # metrics.jsonl, in iteration order
    stats: dict[int, dict]  # iter_NNNN/stats.json: per-phase figures, by phase name
    environments: list[dict]  # environment.json: the setup of each start and resume

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def task(self) -> str:
        return self.config.task.name


def metrics_rows(store: RunStore) -> list[MetricsRow]:
    """``metrics.jsonl``, in iteration order; a row that is not one fails naming its line."""
    rows = []
    for number, raw in enumerate(store.metrics(), 1):
        try:
            row = MetricsRow.from_json(raw)
        except TypeError as err:  # a key missing
            row, why = None, str(err).split("__init__() ")[-1]
        else:
            wrong = [k for k, kind in _KINDS.items() if not isinstance(getattr(row, k), kind)]
            why = f"{', '.join(wrong)} of the wrong type" if wrong else ""
        if why:
            raise RunDirError(f"{store.root / 'metrics.jsonl'}:{number}: damaged: {why}")
        rows.append(row)
    return sorted(rows, key=lambda r: r.iteration)


# what every report reads of each row: the rest is optional, and checked where it is used
_KINDS = {"iteration": int, "accuracy": int | float, "accuracy_by_bucket": dict, "seconds": dict}


def load_run(path: Path) -> RunData:
    store = RunStore(path)
    config = store.load_config()
    rows = metrics_rows(store)
    if not rows and any(Path(path).glob("iter_*/metrics.json")):
        raise FileNotFoundError(
            f"{path}: metrics.jsonl is missing or empty; `selftaught run --resume {path}` "
            "rebuilds it from iter_*/metrics.json"
        )
    if not rows:
        raise FileNotFoundError(f"{path}: no metrics.jsonl rows yet, so nothing to report")
    stats = {r.iteration: store.stats(r.iteration) for r in rows}
    return RunData(Path(path), config, rows, stats, store.environments())


def summarize(name: str, method: str, rows: list[MetricsRow]) -> dict:
    """The figures B-STaR's Table 1 compares, each the best over the run's iterations
    (pass@k of an iteration that logged it), plus what the run cost."""
    trained = [r for r in rows if r.iteration > 0]
    best = max(rows, key=lambda r: r.accuracy) if rows else None
    summary = {
        "run": name,
        "method": method,
        "iterations": len(trained),
        "best pass@1": best.accuracy if best else None,
        "best iteration": best.iteration if best else None,
    }
    for key in EXPLORATION:
        for k in pass_ks(rows, key):
            summary[pass_label(key, k)] = max(
                r.exploration(key)[k] for r in rows if k in r.exploration(key)
            )
    summary["examples trained"] = sum(r.train_examples for r in trained)
    summary["minutes"] = sum(sum(r.seconds.values()) for r in rows) / 60
    return summary


def summarize_run(path: Path) -> dict:
    store = RunStore(path)
    return summarize(Path(path).name, store.load_config().method, metrics_rows(store))
