"""The report's figures, each drawn from metrics rows alone (``MetricsRow``s of
``metrics.jsonl``).

Every function returns a ``matplotlib.figure.Figure`` on the Agg canvas (no pyplot, no
display, no global figure list), so callers save it and tests read its lines back:
each line's label names its series and its y-data is the metric, iteration by iteration.
A function returns ``None`` when the run has nothing to draw (no pass@k, not B-STaR).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from selftaught.records import MetricsRow
from selftaught.report.labels import (
    EXPLORATION,
    bstar_rounds,
    bucket_label,
    bucket_order,
    has_bstar,
    has_exploitation,
    pass_ks,
    pass_label,
    phase_order,
    searched_temperatures,
)


def _figure(rows: int = 1, cols: int = 1, size=(6.4, 4.0)) -> tuple[Figure, list]:
    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    return fig, axes


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _iterations(rows: list[MetricsRow]) -> list[int]:
    return [r.iteration for r in rows]


def accuracy_by_bucket(rows: list[MetricsRow], task: str = "") -> Figure:
    """STaR's Figure 4: greedy accuracy per difficulty bucket against iteration, and overall."""
    fig, (ax,) = _figure()
    x = _iterations(rows)
    for bucket in bucket_order(rows):
        y = [(r.accuracy_by_bucket or {}).get(bucket, float("nan")) for r in rows]
        ax.plot(x, y, marker="o", label=bucket_label(task, bucket))
    ax.plot(x, [r.accuracy for r in rows], "k--", marker="s", label="overall")
    _axes(ax, "greedy accuracy (pass@1)", "Held-out accuracy per difficulty", unit=True)
    return fig


def pass_at_k(rows: list[MetricsRow]) -> Figure | None:
    """pass@k (solid) and pass@k-s (dashed) against iteration, one line per k."""
    ks = {key: pass_ks(rows, key) for key in EXPLORATION}
    if not any(ks.values()):
        return None
    fig, (ax,) = _figure()
    x = _iterations(rows)
    for key, style in zip(EXPLORATION, ("-", "--", ":"), strict=True):
        for k in ks[key]:
            y = [r.exploration(key).get(k, float("nan")) for r in rows]
            ax.plot(x, y, style, marker="o", label=pass_label(key, k))
    _axes(ax, "share of held-out problems", "pass@k against iteration", unit=True)
    return fig


def bstar_choices(rows: list[MetricsRow]) -> Figure | None:
    """B-STaR's chosen temperature, threshold and balance score per round (its Table 2),
    and on the last panel every searched temperature's best balance score."""
    if not has_bstar(rows):
        return None
    rounds = bstar_rounds(rows)
    fig, axes = _figure(1, 4, size=(14, 3.6))
    x = _iterations(rounds)
    chosen = {
        "temperature": [r.temperature for r in rounds],
        "threshold": [r.threshold for r in rounds],
        "balance score": [r.balance_score for r in rounds],
    }
    for ax, (name, values) in zip(axes, chosen.items(), strict=False):
        ax.plot(x, [_num(v) for v in values], marker="o", label=name)
        _axes(ax, name, f"chosen {name}")
    ax = axes[3]
    for t in searched_temperatures(rounds):
        y = [_num((r.search_balance_scores or {}).get(t)) for r in rounds]
        ax.plot(x, y, marker="o", label=f"T={t}")
    _axes(ax, "best balance score", "search: score per temperature")
    return fig


def exploration_exploitation(rows: list[MetricsRow]) -> Figure | None:
    """B-STaR's Fig. 2/3 beside pass@k: distinct correct rationales per problem (left), and
    how well what is kept is picked (right): the reward model's best-of-k on the held-out
    problems, the share of the training data that is right, and right with valid steps."""
    if not has_exploitation(rows):
        return None
    fig, (left, right) = _figure(1, 2, size=(11, 4.0))
    x = _iterations(rows)
    series = {"held-out (fixed)": "eval_distinct_correct", "round's problems": "distinct_correct"}
    for label, name in series.items():
        left.plot(x, [_num(getattr(r, name)) for r in rows], marker="o", label=label)
    _axes(left, "distinct correct per problem", "exploration: distinct correct rationales")
    series = {
        "best-of-k (reward model)": "best_of_k_accuracy",
        "trained on: right": "selected_accuracy",
        "trained on: right, valid steps": "selected_valid_accuracy",
    }
    for label, name in series.items():
        y = [_num(getattr(r, name)) for r in rows]
        if any(v == v for v in y):  # NaN != NaN: a series never measured is not drawn
            right.plot(x, y, marker="o", label=label)
    _axes(right, "share", "exploitation", unit=True)
    return fig


def examples(rows: list[MetricsRow]) -> Figure:
    """Training examples kept per iteration: found unaided vs rationalized (stacked)."""
    fig, (ax,) = _figure()
    x = _iterations(rows)
    rationalized = [r.rationalized for r in rows]
    unaided = [r.train_examples - r.rationalized for r in rows]
    ax.bar(x, unaided, label="kept (unaided)")
    ax.bar(x, rationalized, bottom=unaided, label="kept (rationalized)")
    _axes(ax, "training examples", "Examples kept per iteration")
    return fig


def phase_times(rows: list[MetricsRow]) -> Figure:
    """Wall-clock seconds per phase, stacked, per iteration."""
    fig, (ax,) = _figure()
    x = _iterations(rows)
    # a phase this method never runs (STaR's search) is timed at 0: no bar, no legend entry
    phases = [p for p in phase_order(rows) if any(r.seconds.get(p) for r in rows)]
    bottom = [0.0] * len(rows)
    for phase in phases:
        y = [float(r.seconds.get(phase) or 0.0) for r in rows]
        ax.bar(x, y, bottom=bottom, label=phase)
        bottom = [b + v for b, v in zip(bottom, y, strict=True)]
    _axes(ax, "seconds", "Time per phase")
    return fig


def compare_accuracy(runs: dict[str, list[MetricsRow]]) -> Figure:
    """Greedy held-out accuracy against iteration, one line per run."""
    fig, (ax,) = _figure()
    for name, rows in runs.items():
        ax.plot(_iterations(rows), [r.accuracy for r in rows], marker="o", label=name)
    _axes(ax, "greedy accuracy (pass@1)", "Accuracy per run", unit=True)
    return fig


def _num(value) -> float:
    return float("nan") if value is None else float(value)


def _axes(ax, ylabel: str, title: str, unit: bool = False) -> None:
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # iterations, never 1.5
    if unit:
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if len(ax.get_legend_handles_labels()[0]) > 1:  # one series: the title names it
        ax.legend(fontsize="small")
