"""Reading finished runs back: one summary per run and a side-by-side table.

Reads only the run directory (``metrics.jsonl``, ``config.yaml``), never a model, so
comparing runs is instant and works on runs copied from another machine."""

from __future__ import annotations

from pathlib import Path

from selftaught.store import RunStore


def summarize(name: str, method: str, rows: list[dict]) -> dict:
    """The figures B-STaR's Table 1 compares, each the best over the run's iterations
    (pass@k of an iteration that logged it), plus what the run cost."""
    trained = [r for r in rows if r["iteration"] > 0]
    best = max(rows, key=lambda r: r["accuracy"]) if rows else None
    summary = {
        "run": name,
        "method": method,
        "iterations": len(trained),
        "best pass@1": best["accuracy"] if best else None,
        "best iteration": best["iteration"] if best else None,
    }
    for key in ("pass@k", "pass@k-s"):
        for k in sorted({k for r in rows for k in r.get(key) or {}}, key=_natural):
            label = f"pass@{k}" if key == "pass@k" else f"pass@{k.replace('-', '-s')}"
            summary[label] = max(r[key][k] for r in rows if k in (r.get(key) or {}))
    summary["examples trained"] = sum(r["train_examples"] for r in trained)
    summary["minutes"] = sum(sum(r["seconds"].values()) for r in rows) / 60
    return summary


def _natural(k: str) -> tuple[int, ...]:
    return tuple(int(part) for part in k.split("-"))


def summarize_run(path: Path) -> dict:
    store = RunStore(path)
    return summarize(Path(path).name, store.load_config().method, store.metrics())


def markdown_table(summaries: list[dict]) -> str:
    """One row per run; a column for every figure any run has (blank where it has none)."""
    columns = list(dict.fromkeys(k for s in summaries for k in s))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for s in summaries:
        lines.append("| " + " | ".join(_cell(s.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1 else f"{value:.1f}"
    return str(value)
