"""Reading runs back: one summary per run, a side-by-side table, and ``selftaught
report``'s ``report.md`` with its plots.

Reads only the run directory (``metrics.jsonl``, ``config.yaml``, ``iter_*/stats.json``),
never a model, so reporting is instant, works on a run still going, and on runs copied
from another machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selftaught.config import RunConfig
from selftaught.store import RunStore, atomic_write_text

PHASES = ("search", "sample", "rationalize", "train", "eval")


def natural_key(key: str):
    """``"2" < "10"`` and ``"8-4" < "32-4"``; names that are not numbers after them."""
    try:
        return (0, tuple(int(p) for p in str(key).split("-")))
    except ValueError:
        return (1, str(key))


def bucket_label(task: str, bucket: str) -> str:
    """What a bucket is, in the task's words: a digit count, a number of terms."""
    if task == "addition":
        return f"{bucket}-digit"
    if task == "expression":
        return f"{bucket} terms"
    return f"bucket {bucket}"


def bucket_order(rows: list[dict]) -> list[str]:
    buckets = dict.fromkeys(b for r in rows for b in r.get("accuracy_by_bucket") or {})
    return sorted(buckets, key=natural_key)


def pass_label(key: str, k: str) -> str:
    """``pass@4``; ``pass@32-s4`` for at least 4 correct of 32 (B-STaR's Pass@32-4)."""
    if key == "pass@k":
        return f"pass@{k}"
    total, at_least = k.split("-")
    return f"pass@{total}-s{at_least}"


def bstar_rounds(rows: list[dict]) -> list[dict]:
    """The rounds that chose a configuration (iteration 0 is the base model: none)."""
    return [r for r in rows if r["iteration"] > 0]


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
        for k in sorted({k for r in rows for k in r.get(key) or {}}, key=natural_key):
            summary[pass_label(key, k)] = max(r[key][k] for r in rows if k in (r.get(key) or {}))
    summary["examples trained"] = sum(r["train_examples"] for r in trained)
    summary["minutes"] = sum(sum(r["seconds"].values()) for r in rows) / 60
    return summary


def summarize_run(path: Path) -> dict:
    store = RunStore(path)
    return summarize(Path(path).name, store.load_config().method, store.metrics())


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


# -- one run: report.md and plots/*.png ------------------------------------------------


@dataclass
class RunData:
    """Everything a report reads, all from the run directory."""

    root: Path
    config: RunConfig
    rows: list[dict]  # metrics.jsonl, in iteration order
    stats: dict[int, dict]  # iter_NNNN/stats.json: per-phase figures
    environments: list[dict]  # environment.json: the setup of each start and resume

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def task(self) -> str:
        return self.config.task.name


def load_run(path: Path) -> RunData:
    store = RunStore(path)
    config = store.load_config()
    rows = sorted(store.metrics(), key=lambda r: r["iteration"])
    if not rows:
        raise FileNotFoundError(f"{path}: no metrics.jsonl rows yet, so nothing to report")
    stats = {r["iteration"]: store.stats(r["iteration"]) for r in rows}
    return RunData(Path(path), config, rows, stats, store.environments())


def write_report(path: Path) -> dict[str, Path]:
    """RUN/report.md and RUN/plots/*.png; returns what was written, by name."""
    from selftaught import plots

    run = load_run(path)
    figures = {
        "accuracy_by_bucket": plots.accuracy_by_bucket(run.rows, run.task),
        "pass_at_k": plots.pass_at_k(run.rows),
        "bstar": plots.bstar_choices(run.rows),
        "examples": plots.examples(run.rows),
        "time": plots.phase_times(run.rows),
    }
    written = {
        name: plots.save(fig, run.root / "plots" / f"{name}.png")
        for name, fig in figures.items()
        if fig is not None
    }
    written["report"] = run.root / "report.md"
    atomic_write_text(written["report"], report_markdown(run, set(written)))
    return written


def report_markdown(run: RunData, plotted: set[str]) -> str:
    c = run.config
    summary = summarize(run.name, c.method, run.rows)
    parts = [
        f"# {run.name}",
        f"Method `{c.method}` on task `{c.task.name}`, {summary['iterations']} of {c.iterations} "
        f"iterations done. Best held-out greedy accuracy: {summary['best pass@1']:.1%} "
        f"at iteration {summary['best iteration']}.",
        markdown_table([summary]),
        "## Accuracy per difficulty",
        accuracy_table(run.rows, run.task),
        _image("accuracy_by_bucket", "accuracy per bucket", plotted),
    ]
    if "pass_at_k" in plotted:
        parts += ["## pass@k", passk_table(run.rows), _image("pass_at_k", "pass@k", plotted)]
    if "bstar" in plotted:
        parts += [
            "## B-STaR: configuration chosen each round",
            "The temperature and reward threshold chosen for each round, the balance score "
            "they reach, and each searched temperature's best balance score (as B-STaR's "
            "Table 2).",
            bstar_table(run.rows),
            _image("bstar", "B-STaR choices", plotted),
        ]
    parts += [
        "## Training data",
        examples_table(run.rows, run.stats),
        _image("examples", "examples kept", plotted),
        "## Time",
        time_table(run.rows, run.stats),
        _image("time", "time per phase", plotted),
    ]
    if run.environments:
        parts += ["## Setup", setup_table(run.environments)]
    return "\n\n".join(p for p in parts if p) + "\n"


def _image(name: str, alt: str, plotted: set[str]) -> str:
    return f"![{alt}](plots/{name}.png)" if name in plotted else ""


def table(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(value) -> str | None:
    return None if value is None else f"{100 * value:.1f}"


def accuracy_table(rows: list[dict], task: str) -> str:
    """Greedy held-out accuracy in %, overall (and with valid steps, where the task can tell)
    and per bucket, per iteration."""
    buckets = bucket_order(rows)
    valid = any("valid_accuracy" in r for r in rows)
    columns = ["iteration", "accuracy %", *(["valid steps %"] if valid else [])]
    columns += [f"{bucket_label(task, b)} %" for b in buckets]
    body = [
        [
            r["iteration"],
            _pct(r["accuracy"]),
            *([_pct(r.get("valid_accuracy"))] if valid else []),
            *(_pct((r.get("accuracy_by_bucket") or {}).get(b)) for b in buckets),
        ]
        for r in rows
    ]
    return table(columns, body)


def passk_table(rows: list[dict]) -> str:
    keys = [
        (key, k)
        for key in ("pass@k", "pass@k-s")
        for k in sorted({k for r in rows for k in r.get(key) or {}}, key=natural_key)
    ]
    columns = ["iteration", *(f"{pass_label(key, k)} %" for key, k in keys)]
    body = [[r["iteration"], *(_pct((r.get(key) or {}).get(k)) for key, k in keys)] for r in rows]
    return table(columns, body)


def bstar_table(rows: list[dict]) -> str:
    rounds = bstar_rounds(rows)
    temps = sorted({t for r in rounds for t in r.get("search_balance_scores") or {}}, key=float)
    columns = ["round", "temperature", "threshold", "balance score"]
    columns += [f"score at T={t}" for t in temps]
    body = [
        [
            r["iteration"],
            _fixed(r.get("temperature"), 2),
            _fixed(r.get("threshold"), 2),
            _fixed(r.get("balance_score"), 3),
            *(_fixed((r.get("search_balance_scores") or {}).get(t), 3) for t in temps),
        ]
        for r in rounds
    ]
    return table(columns, body)


def examples_table(rows: list[dict], stats: dict[int, dict]) -> str:
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
            r["iteration"],
            r.get("problems"),
            r.get("generated_correct"),
            r.get("rationalization_attempts"),
            r.get("rationalized"),
            r.get("train_examples"),
            r.get("train_steps"),
            stats.get(r["iteration"], {}).get("train", {}).get("tokens"),
            _fixed(r.get("train_loss"), 4),
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


def time_table(rows: list[dict], stats: dict[int, dict]) -> str:
    """Seconds per phase, and the sampling and training throughput."""
    columns = ["iteration", *(f"{p} s" for p in PHASES), "total s"]
    columns += ["sample tokens/s", "train tokens/s"]
    body = []
    for r in rows:
        seconds = r.get("seconds") or {}
        rate = r.get("tokens_per_second") or {}
        body.append(
            [
                r["iteration"],
                *(_fixed(seconds.get(p), 1) for p in PHASES),
                _fixed(sum(seconds.values()), 1),
                _fixed(rate.get("sample") or None, 0),
                _fixed(rate.get("train") or None, 0),
            ]
        )
    return table(columns, body)


def _fixed(value, digits: int) -> str | None:
    return None if value is None else f"{float(value):,.{digits}f}"


# -- several runs: compare ---------------------------------------------------------------


def write_compare(
    paths: list[Path], out: Path, summaries: list[dict] | None = None
) -> dict[str, Path]:
    """OUT/compare.md (the table ``selftaught compare`` prints) and OUT/accuracy.png."""
    from selftaught import plots

    runs = {}
    for path in paths:
        name = _unique(Path(path).name, runs)
        runs[name] = sorted(RunStore(path).metrics(), key=lambda r: r["iteration"])
    summaries = summaries or [summarize_run(p) for p in paths]
    out = Path(out)
    written = {"plot": plots.save(plots.compare_accuracy(runs), out / "accuracy.png")}
    written["table"] = out / "compare.md"
    text = (
        "# Runs compared\n\n"
        + "\n".join(f"- `{name}`: {Path(p)}" for name, p in zip(runs, paths, strict=True))
        + "\n\n"
        + markdown_table(summaries)
        + "\n\n![accuracy per run](accuracy.png)\n"
    )
    atomic_write_text(written["table"], text)
    return written


def _unique(name: str, taken: dict) -> str:
    """Two runs called alike (runs/a/x and runs/b/x) still get a line each."""
    candidate, i = name, 2
    while candidate in taken:
        candidate, i = f"{name} ({i})", i + 1
    return candidate
