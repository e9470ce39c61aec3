"""What ``selftaught report`` and ``selftaught compare`` write: one run's ``report.md`` with
its figures, and several runs' ``compare.md`` with theirs."""

from __future__ import annotations

from pathlib import Path

import selftaught.report.plots as plots
from selftaught.report.runs import RunData, load_run, metrics_rows, summarize, summarize_run
from selftaught.report.tables import (
    accuracy_table,
    bstar_table,
    examples_table,
    exploitation_table,
    markdown_table,
    passk_table,
    setup_table,
    time_table,
)
from selftaught.store import RunStore, atomic_write_text


def write_report(path: Path) -> dict[str, Path]:
    """RUN/report.md and RUN/plots/*.png; returns what was written, by name."""
    run = load_run(path)
    figures = {
        "accuracy_by_bucket": plots.accuracy_by_bucket(run.rows, run.task),
        "pass_at_k": plots.pass_at_k(run.rows),
        "exploration": plots.exploration_exploitation(run.rows),
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
    if "exploration" in plotted:
        parts += [
            "## Exploration and exploitation",
            "Distinct correct rationales per problem, on the held-out problems (the same every "
            "round) and on the round's; the reward model's best-of-k on the held-out problems; "
            "the share of what was trained on that is right, and right with every step valid "
            "(B-STaR's Fig. 2 and 3).",
            exploitation_table(run.rows),
            _image("exploration", "exploration and exploitation", plotted),
        ]
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
        time_table(run.rows),
        _image("time", "time per phase", plotted),
    ]
    if run.environments:
        parts += ["## Setup", setup_table(run.environments)]
    return "\n\n".join(p for p in parts if p) + "\n"


def _image(name: str, alt: str, plotted: set[str]) -> str:
    return f"![{alt}](plots/{name}.png)" if name in plotted else ""


def write_compare(
    paths: list[Path], out: Path, summaries: list[dict] | None = None
) -> dict[str, Path]:
    """OUT/compare.md (the table ``selftaught compare`` prints) and OUT/accuracy.png."""
    runs = {}
    for path in paths:
        runs[_unique(Path(path).name, runs)] = metrics_rows(RunStore(path))
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
