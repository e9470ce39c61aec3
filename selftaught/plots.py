"""The report's figures, each drawn from metrics rows alone (``metrics.jsonl``).

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

from selftaught.report import (
    PHASES,
    bstar_rounds,
    bucket_label,
    bucket_order,
    natural_key,
    pass_label,
)

BSTAR_KEYS = ("temperature", "threshold", "balance_score")


def _figure(rows: int = 1, cols: int = 1, size=(6.4, 4.0)) -> tuple[Figure, list]:
    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    return fig, axes


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _iterations(rows: list[dict]) -> list[int]:
    return [r["iteration"] for r in rows]


def accuracy_by_bucket(rows: list[dict], task: str = "") -> Figure:
    """STaR's Figure 4: greedy accuracy per difficulty bucket against iteration, and overall."""
    fig, (ax,) = _figure()
    x = _iterations(rows)
    for bucket in bucket_order(rows):
        y = [(r.get("accuracy_by_bucket") or {}).get(bucket, float("nan")) for r in rows]
        ax.plot(x, y, marker="o", label=bucket_label(task, bucket))
    ax.plot(x, [r["accuracy"] for r in rows], "k--", marker="s", label="overall")
    _axes(ax, "greedy accuracy (pass@1)", "Held-out accuracy per difficulty", unit=True)
    return fig


def pass_at_k(rows: list[dict]) -> Figure | None:
    """pass@k (solid) and pass@k-s (dashed) against iteration, one line per k."""
    ks = sorted({k for r in rows for k in r.get("pass@k") or {}}, key=natural_key)
    kss = sorted({k for r in rows for k in r.get("pass@k-s") or {}}, key=natural_key)
    if not ks and not kss:
        return None
    fig, (ax,) = _figure()
    x = _iterations(rows)
    for key, names, style in (("pass@k", ks, "-"), ("pass@k-s", kss, "--")):
        for k in names:
            y = [(r.get(key) or {}).get(k, float("nan")) for r in rows]
            ax.plot(x, y, style, marker="o", label=pass_label(key, k))
    _axes(ax, "share of held-out problems", "pass@k against iteration", unit=True)
    return fig


def has_bstar(rows: list[dict]) -> bool:
    return any(
        r.get("threshold") is not None
        or r.get("balance_score") is not None
        or r.get("search_balance_scores")
        for r in rows
    )


def bstar_choices(rows: list[dict]) -> Figure | None:
    """B-STaR's chosen temperature, threshold and balance score per round (its Table 2),
    and on the last panel every searched temperature's best balance score."""
    if not has_bstar(rows):
        return None
    rounds = bstar_rounds(rows)
    fig, axes = _figure(1, 4, size=(14, 3.6))
    x = _iterations(rounds)
    for ax, key in zip(axes, BSTAR_KEYS, strict=False):
        y = [_num(r.get(key)) for r in rounds]
        ax.plot(x, y, marker="o", label=key.replace("_", " "))
        _axes(ax, key.replace("_", " "), f"chosen {key.replace('_', ' ')}")
    ax = axes[3]
    temps = sorted({t for r in rounds for t in r.get("search_balance_scores") or {}}, key=float)
    for t in temps:
        y = [_num((r.get("search_balance_scores") or {}).get(t)) for r in rounds]
        ax.plot(x, y, marker="o", label=f"T={t}")
    _axes(ax, "best balance score", "search: score per temperature")
    return fig


def examples(rows: list[dict]) -> Figure:
    """Training examples kept per iteration: found unaided vs rationalized (stacked)."""
    fig, (ax,) = _figure()
    x = _iterations(rows)
    rationalized = [r.get("rationalized", 0) or 0 for r in rows]
    unaided = [
        (r.get("train_examples", 0) or 0) - k for r, k in zip(rows, rationalized, strict=True)
    ]
    ax.bar(x, unaided, label="kept (unaided)")
    ax.bar(x, rationalized, bottom=unaided, label="kept (rationalized)")
    _axes(ax, "training examples", "Examples kept per iteration")
    return fig


def phase_times(rows: list[dict]) -> Figure:
    """Wall-clock seconds per phase, stacked, per iteration."""
    fig, (ax,) = _figure()
    x = _iterations(rows)
    phases = [p for p in PHASES if any((r.get("seconds") or {}).get(p) for r in rows)]
    phases += sorted({p for r in rows for p in r.get("seconds") or {}} - set(PHASES))
    bottom = [0.0] * len(rows)
    for phase in phases:
        y = [float((r.get("seconds") or {}).get(phase) or 0.0) for r in rows]
        ax.bar(x, y, bottom=bottom, label=phase)
        bottom = [b + v for b, v in zip(bottom, y, strict=True)]
    _axes(ax, "seconds", "Time per phase")
    return fig


def compare_accuracy(runs: dict[str, list[dict]]) -> Figure:
    """Greedy held-out accuracy against iteration, one line per run."""
    fig, (ax,) = _figure()
    for name, rows in runs.items():
        ax.plot(_iterations(rows), [r["accuracy"] for r in rows], marker="o", label=name)
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
