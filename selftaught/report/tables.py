"""The report's markdown tables, each from metrics rows (and, for tokens trained, the
iterations' ``stats.json``); ``table`` is the one markdown writer, which benchmarks use too."""

from __future__ import annotations

from selftaught.records import MetricsRow, TrainStats
from selftaught.report.labels import (
    EXPLORATION,
    bstar_rounds,
    bucket_label,
    bucket_order,
    pass_ks,
    pass_label,
    phase_order,
    searched_temperatures,
)


def table(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_table(summaries: list[dict]) -> str:
    """One row per run; a column for every figure any run has (blank where it has none)."""
    columns = list(dict.fromkeys(k for s in summaries for k in s))
    return table(columns, [[s.get(c) for c in columns] for s in summaries])


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1 else f"{value:.1f}"
    return str(value)


def _pct(value) -> str | None:
    return None if value is None else f"{100 * value:.1f}"


def _fixed(value, digits: int) -> str | None:
    return None if value is None else f"{float(value):,.{digits}f}"


def accuracy_table(rows: list[MetricsRow], task: str) -> str:
    """Greedy held-out accuracy in %, overall (and with valid steps, where the task can tell)
    and per bucket, per iteration."""
    buckets = bucket_order(rows)
    valid = any(r.valid_accuracy is not None for r in rows)
    columns = ["iteration", "accuracy %", *(["valid steps %"] if valid else [])]
    columns += [f"{bucket_label(task, b)} %" for b in buckets]
    body = [
        [
            r.iteration,
            _pct(r.accuracy),
            *([_pct(r.valid_accuracy)] if valid else []),
            *(_pct((r.accuracy_by_bucket or {}).get(b)) for b in buckets),
        ]
        for r in rows
    ]
    return table(columns, body)


def passk_table(rows: list[MetricsRow]) -> str:
    keys = [(key, k) for key in EXPLORATION for k in pass_ks(rows, key)]
    columns = ["iteration", *(f"{pass_label(key, k)} %" for key, k in keys)]
    body = [[r.iteration, *(_pct(r.exploration(key).get(k)) for key, k in keys)] for r in rows]
    return table(columns, body)


def exploitation_table(rows: list[MetricsRow]) -> str:
    """Per iteration: distinct correct rationales per problem (held-out, and the round's),
    best-of-k %, and the share of the training data right (and right with valid steps) %."""
    columns = [
        "iteration",
        "distinct correct (held-out)",
        "distinct correct (round)",
        "best-of-k %",
        "trained on: right %",
        "trained on: right, valid steps %",
    ]
    body = [
        [
            r.iteration,
            _fixed(r.eval_distinct_correct, 2),
            _fixed(r.distinct_correct, 2),
            _pct(r.best_of_k_accuracy),
            _pct(r.selected_accuracy),
            _pct(r.selected_valid_accuracy),
        ]
        for r in rows
    ]
    return table(columns, body)


def bstar_table(rows: list[MetricsRow]) -> str:
    rounds = bstar_rounds(rows)
    temps = searched_temperatures(rounds)
    columns = ["round", "temperature", "threshold", "balance score"]
    columns += [f"score at T={t}" for t in temps]
    body = [
        [
            r.iteration,
            _fixed(r.temperature, 2),
            _fixed(r.threshold, 2),
            _fixed(r.balance_score, 3),
            *(_fixed((r.search_balance_scores or {}).get(t), 3) for t in temps),
        ]
        for r in rounds
    ]
    return table(columns, body)


def examples_table(rows: list[MetricsRow], stats: dict[int, dict]) -> str:
    columns = [
        "iteration",
        "problems",
        "generated correct",
        "rationalization attempts",
        "rationalized",
        "examples kept",
        "train steps",
        "tokens trained",
        "train loss",
    ]
    body = [
        [
            r.iteration,
            r.problems,
            r.generated_correct,
            r.rationalization_attempts,
            r.rationalized,
            r.train_examples,
            r.train_steps,
            _tokens_trained(stats.get(r.iteration, {})),
            _fixed(r.train_loss, 4),
        ]
        for r in rows
    ]
    return table(columns, body)


def _tokens_trained(stats: dict) -> int | None:
    """Blank, not 0, for an iteration that has not trained (the base model's)."""
    return TrainStats.from_json(stats["train"]).tokens if "train" in stats else None


def time_table(rows: list[MetricsRow]) -> str:
    """Seconds per phase, and the sampling and training throughput."""
    phases = phase_order(rows)
    columns = ["iteration", *(f"{p} s" for p in phases), "total s"]
    columns += ["sample tokens/s", "train tokens/s"]
    body = [
        [
            r.iteration,
            *(_fixed(r.seconds.get(p), 1) for p in phases),
            _fixed(sum(r.seconds.values()), 1),
            # 0 tokens/s: the phase did not run this iteration, so blank
            _fixed(r.tokens_per_second.get("sample") or None, 0),
            _fixed(r.tokens_per_second.get("train") or None, 0),
        ]
        for r in rows
    ]
    return table(columns, body)


def setup_table(environments: list[dict]) -> str:
    """Where the run started and each resume: what its float rounding depends on."""
    columns = ["from", "time", "selftaught", "torch", "transformers", "cpu", "threads", "gpus"]
    rows = [
        [
            "start" if e.get("after") is None else f"after {e['after']}",
            *(e.get(k) for k in columns[1:-1]),
            ", ".join(e.get("gpus") or []) or "none",
        ]
        for e in environments
    ]
    return table(columns, rows)
