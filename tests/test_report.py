"""`selftaught report` and `compare` on finished toy runs: the files, the images, the series
plotted, the tables; and the progress output a quiet run leaves (none)."""

import contextlib
import copy
import io
import re

import matplotlib.image
import pytest
from typer.testing import CliRunner

from selftaught.cli import app
from selftaught.config import resolve
from selftaught.loop import run
from selftaught.progress import Reporter
from selftaught.records import MetricsRow
from selftaught.report import plots
from selftaught.store import RunStore
from tests.conftest import TOY
from tests.test_methods import toy_method

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def star_run(tmp_path_factory):
    """A quiet STaR toy run, with everything it printed (progress goes to stderr)."""
    out = tmp_path_factory.mktemp("report") / "star"
    config = resolve(copy.deepcopy(TOY))
    assert config.quiet
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed), contextlib.redirect_stdout(printed):
        rows = run(config, out)
    return out, rows, printed.getvalue()


@pytest.fixture(scope="module")
def bstar_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "bstar"
    rows = run(resolve(toy_method(copy.deepcopy(TOY), "bstar")), out)
    return out, rows


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert height >= 200 and width >= 300, (path, image.shape)
    assert image.std() > 0.01, f"{path} is blank"


def lines(ax) -> dict[str, list[float]]:
    return {line.get_label(): [float(y) for y in line.get_ydata()] for line in ax.get_lines()}


def bars(ax) -> dict[str, list[float]]:
    return {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}


def nan_none(values: list) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values]


def typed(rows: list[dict]) -> list[MetricsRow]:
    """The rows as the figures take them; assertions read the JSON as written."""
    return [MetricsRow.from_json(r) for r in rows]


# -- progress ------------------------------------------------------------------------------


def test_a_quiet_run_prints_its_summary_lines_and_no_progress(star_run):
    _, rows, printed = star_run
    assert "base model M: accuracy" in printed
    assert "iteration 1/2: accuracy" in printed and "iteration 2/2: accuracy" in printed
    assert "━" not in printed and "%|" not in printed  # rich's bar; tqdm's
    phase_line = re.compile(r"^\s*(search|sample|rationalize|train|eval|base)\b\s{2,}", re.M)
    assert not phase_line.search(printed), printed


def test_progress_bars_show_unless_quiet():
    shown = {}
    for quiet in (False, True):
        printed = io.StringIO()
        with contextlib.redirect_stderr(printed):
            reporter = Reporter(quiet=quiet)
            with reporter.phase("sample", 4) as bar:
                bar.advance(4, "loss 0.1")
            reporter.line("iteration 1/1: done")
        shown[quiet] = printed.getvalue()
    assert "━" in shown[False] and "4/4" in shown[False] and "loss 0.1" in shown[False]
    assert shown[True] == "iteration 1/1: done\n"


# -- report --------------------------------------------------------------------------------


def test_report_writes_markdown_and_valid_pngs(star_run):
    out, rows, _ = star_run
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out / "report.md") in result.output
    names = {p.name for p in (out / "plots").glob("*.png")}
    # no pass@k, no B-STaR; the training data's valid share: addition has per-step gold
    assert names == {"accuracy_by_bucket.png", "exploration.png", "examples.png", "time.png"}
    for path in (out / "plots").glob("*.png"):
        assert_png(path)
    text = (out / "report.md").read_text()
    assert "| iteration | accuracy % | valid steps % | 1-digit % | 2-digit % |" in text
    for r in rows:
        buckets = " | ".join(f"{100 * a:.1f}" for a in r["accuracy_by_bucket"].values())
        overall = f"{100 * r['accuracy']:.1f} | {100 * r['valid_accuracy']:.1f}"
        assert f"| {r['iteration']} | {overall} | {buckets} |" in text
    assert "best pass@1" in text and "examples kept" in text and "train s" in text
    for name in names:
        assert f"(plots/{name})" in text
    assert "## B-STaR" not in text and "## pass@k" not in text
    assert "| iteration | distinct correct (held-out) | distinct correct (round) |" in text
    for r in rows[1:]:
        right, valid = r["selected_accuracy"], r["selected_valid_accuracy"]
        assert f" | {100 * right:.1f} | {100 * valid:.1f} |" in text
    threads = RunStore(out).environments()[0]["threads"]
    assert "## Setup" in text and "| start | " in text and f" | {threads} | none |" in text


def test_star_plots_show_the_metrics_series(star_run):
    out, rows, _ = star_run
    fig = plots.accuracy_by_bucket(typed(rows), "addition")
    series = lines(fig.axes[0])
    assert list(series) == ["1-digit", "2-digit", "overall"]
    assert series["1-digit"] == [r["accuracy_by_bucket"]["1"] for r in rows]
    assert series["2-digit"] == [r["accuracy_by_bucket"]["2"] for r in rows]
    assert series["overall"] == [r["accuracy"] for r in rows]
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [0, 1, 2]

    kept = bars(plots.examples(typed(rows)).axes[0])
    assert kept["kept (rationalized)"] == [r["rationalized"] for r in rows]
    total = [
        a + b for a, b in zip(kept["kept (unaided)"], kept["kept (rationalized)"], strict=True)
    ]
    assert total == [r["train_examples"] for r in rows]
    assert sum(r["rationalized"] for r in rows) > 0  # STaR's toy run rationalizes some

    times = bars(plots.phase_times(typed(rows)).axes[0])
    assert list(times) == ["sample", "rationalize", "train", "eval"]  # search: always 0
    for phase, heights in times.items():
        assert heights == pytest.approx([r["seconds"][phase] for r in rows])
    assert plots.pass_at_k(typed(rows)) is None and plots.bstar_choices(typed(rows)) is None

    left, right = plots.exploration_exploitation(typed(rows)).axes  # iteration 0: NaN
    assert lines(left)["round's problems"][1:] == [r["distinct_correct"] for r in rows[1:]]
    kept = lines(right)
    assert list(kept) == ["trained on: right", "trained on: right, valid steps"]  # no RM
    assert kept["trained on: right"][1:] == [r["selected_accuracy"] for r in rows[1:]]
    valid = [r["selected_valid_accuracy"] for r in rows[1:]]
    assert kept["trained on: right, valid steps"][1:] == valid
    assert 0 < valid[0] <= kept["trained on: right"][1]


def test_bstar_report_has_pass_at_k_and_the_chosen_configurations(bstar_run):
    out, rows = bstar_run
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    for name in ("accuracy_by_bucket", "pass_at_k", "exploration", "bstar", "examples", "time"):
        assert_png(out / "plots" / f"{name}.png")

    passk = lines(plots.pass_at_k(typed(rows)).axes[0])
    valid = ["valid pass@1", "valid pass@2", "valid pass@4"]
    assert list(passk) == ["pass@1", "pass@2", "pass@4", "pass@4-s1", *valid]
    for k in ("1", "2", "4"):
        assert passk[f"pass@{k}"] == [r["pass@k"][k] for r in rows]
        assert passk[f"valid pass@{k}"] == [r["valid_pass@k"][k] for r in rows]
        assert all(r["valid_pass@k"][k] <= r["pass@k"][k] for r in rows)
    assert passk["pass@4-s1"] == [r["pass@k-s"]["4-1"] for r in rows]
    fixed = lines(plots.exploration_exploitation(typed(rows)).axes[0])["held-out (fixed)"]
    assert fixed == [r["eval_distinct_correct"] for r in rows] and all(v >= 0 for v in fixed)

    fig = plots.bstar_choices(typed(rows))
    rounds = [r for r in rows if r["iteration"] > 0]
    for ax, key in zip(fig.axes, ("temperature", "threshold", "balance_score"), strict=False):
        assert list(lines(ax).values()) == [nan_none([r[key] for r in rounds])]
    searched = lines(fig.axes[3])
    assert list(searched) == ["T=0.6", "T=1.2"]
    assert searched["T=1.2"] == [r["search_balance_scores"]["1.2"] for r in rounds]

    text = (out / "report.md").read_text()
    assert "## B-STaR" in text and "## pass@k" in text
    header = "| round | temperature | threshold | balance score | score at T=0.6 | score at T=1.2 |"
    assert header in text
    for r in rounds:
        s = r["search_balance_scores"]
        assert (
            f"| {r['iteration']} | {r['temperature']:.2f} | {r['threshold']:.2f} | "
            f"{r['balance_score']:.3f} | {s['0.6']:.3f} | {s['1.2']:.3f} |"
        ) in text
    assert "| iteration | pass@1 % | pass@2 % | pass@4 % | pass@4-s1 % |" in text
    stats = RunStore(out).stats(1)
    assert f"| {stats['train']['tokens']} |" in text  # tokens trained, from stats.json


def test_compare_prints_its_table_and_writes_a_plot(star_run, bstar_run, tmp_path):
    star, bstar = star_run[0], bstar_run[0]
    result = runner.invoke(app, ["compare", str(star), str(bstar), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    header, _, first, second = result.output.strip().splitlines()
    assert "best pass@1" in header and "| star | star |" in first and "| bstar |" in second
    assert_png(tmp_path / "accuracy.png")
    assert result.output.strip() in (tmp_path / "compare.md").read_text()
    runs = {p.name: RunStore(p).metrics() for p in (star, bstar)}
    series = lines(plots.compare_accuracy({n: typed(rows) for n, rows in runs.items()}).axes[0])
    assert series == {name: [r["accuracy"] for r in rows] for name, rows in runs.items()}


def test_report_on_a_directory_that_is_not_a_run_fails_clearly(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "config.yaml" in result.output
    assert "Traceback" not in result.output
