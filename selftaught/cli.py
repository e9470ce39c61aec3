"""The ``selftaught`` command.

Each command imports what it needs inside its function, so that ``selftaught --help``,
``selftaught config`` and ``selftaught tasks`` answer without importing torch."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from selftaught.config import ConfigError, apply_overrides, dump_config, load_config, resolve

app = typer.Typer(
    help="A language model teaches itself to reason: STaR, B-STaR and their family.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config key, e.g. --set train.steps=200"),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars (CI logs)")]


@contextlib.contextmanager
def _interrupt_on(*signals: signal.Signals):
    """``kill`` and a closed terminal stop a run as Ctrl-C does, with the resume command
    printed (the run directory is consistent at any moment anyway); the handlers before
    are put back after."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers
        return
    before = {sig: signal.signal(sig, interrupt) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _config(path: Path | None, overrides: list[str] | None, quiet: bool):
    try:
        config = load_config(path, overrides or [])
    except ConfigError as err:
        _fail(str(err))
    if quiet:
        config.quiet = True
    return config


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config; default: star-addition")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory; default: runs/<name>")] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue the run in this directory; --set changes its settings"),
    ] = None,
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run a self-taught loop (STaR with rationalization on the built-in model by default)."""
    from selftaught.loop import default_run_dir
    from selftaught.loop import run as run_loop
    from selftaught.progress import Reporter

    if resume is not None:
        if config is not None:
            _fail(
                "--resume continues a run with its own config.yaml; drop CONFIG "
                "(change a setting with --set KEY=VALUE)"
            )
        out = resume
        rows = _run_or_explain(
            lambda: run_loop(None, out, resume=True, overrides=set_ or [], quiet=quiet), out
        )
        reporter = Reporter(quiet=quiet)
    else:
        cfg = _config(config, set_, quiet)
        out = out or default_run_dir(cfg)
        reporter = Reporter(quiet=cfg.quiet)
        reporter.line(f"Run directory: {out}")
        rows = _run_or_explain(lambda: run_loop(cfg, out, reporter=reporter), out)
    best = max(rows, key=lambda r: r["accuracy"])
    reporter.line(
        f"Best: iteration {best['iteration']}, accuracy {best['accuracy']:.1%}. "
        f"Metrics in {out / 'metrics.jsonl'}"
    )


def _run_or_explain(start, out: Path) -> list[dict]:
    """The loop's own failures are the user's to act on: a message, not a traceback."""
    from selftaught.models.train_loop import TrainingError
    from selftaught.store import RunDirError, RunStore
    from selftaught.tasks.sources import DataError

    try:
        with _interrupt_on(signal.SIGTERM, signal.SIGHUP):
            return start()
    except KeyboardInterrupt:
        last = None
        with contextlib.suppress(OSError, ValueError):  # a run stopped before it started
            last = RunStore(out).state().get("last")
        at = f"after {last['iteration']}/{last['phase']}" if last else "before its first phase"
        typer.secho(
            f"\nStopped {at}: every completed phase is kept in {out}; "
            f"`selftaught run --resume {out}` continues from there.",
            fg=typer.colors.YELLOW,
            err=True,
        )
        raise typer.Exit(130) from None
    except (FileExistsError, FileNotFoundError, ConfigError, RunDirError, DataError) as err:
        _fail(str(err))
    except TrainingError as err:
        _fail(
            f"{err}\nEverything completed so far is kept in {out}; "
            f"`selftaught run --resume {out}` continues from there, with changed settings "
            f"if need be (--set KEY=VALUE, e.g. --set train.lr=1e-4)."
        )


@app.command()
def base(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config; default: star-addition")
    ] = None,
    set_: SetOption = None,
    from_scratch: Annotated[
        bool,
        typer.Option(help="Train M now, even if it is cached or shipped with the package"),
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Find or train the built-in base model M, and print its path.

    M is looked up in the cache, else copied from the package, else trained."""
    from selftaught.models.base_model import base_model_path
    from selftaught.progress import Reporter

    cfg = _config(config, set_, quiet)
    if cfg.model.name_or_path != "builtin":
        _fail(f"model.name_or_path is {cfg.model.name_or_path!r}: only 'builtin' is trained here")
    print(base_model_path(cfg, Reporter(quiet=cfg.quiet), from_scratch))


@app.command("eval")
def evaluate(
    model: Annotated[
        Path, typer.Argument(help="A checkpoint directory, e.g. runs/x/iter_0003/model")
    ],
    config: Annotated[Path | None, typer.Option(help="Config naming the task")] = None,
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Greedy accuracy of a checkpoint on the task's held-out set, per bucket, as JSON.

    On the synthetic tasks also valid_accuracy: the answer right and every step valid."""
    from selftaught import metrics
    from selftaught.rollout import evaluate_greedy
    from selftaught.tasks import build_task

    cfg = _config(config, set_, quiet)
    if not (model / "config.json").exists():
        _fail(f"{model}: not a checkpoint directory (no config.json)")
    task = build_task(cfg.task)
    results, _ = evaluate_greedy(task, task.eval_problems(), model, cfg)
    json.dump(metrics.greedy_accuracies(results), sys.stdout, indent=1)
    print()


@app.command()
def refilter(
    run_dir: Annotated[Path, typer.Argument(help="A run directory")],
    iteration: Annotated[int, typer.Option(help="The finished iteration whose samples to use")],
    set_: SetOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write; default: RUN/iter_NNNN/refiltered.jsonl")
    ] = None,
) -> None:
    """Redo an iteration's selection on its stored samples with other selection.* keys."""
    from selftaught.store import RunStore, write_jsonl
    from selftaught.tasks import build_task
    from selftaught.training_data import training_set

    store = RunStore(run_dir)
    try:
        config = store.load_config()
        finished = store.done(iteration, "rationalize")
    except (FileNotFoundError, ConfigError) as err:
        _fail(str(err))
    if not finished:
        _fail(f"{run_dir}: iteration {iteration} has no finished samples to refilter")
    try:
        raw = apply_overrides(
            config.model_dump(mode="json"),
            set_ or [],
            allowed=("selection", "bstar"),
            who="refilter",
        )
        config = resolve(raw, f"{store.root / 'config.yaml'} with --set {' '.join(set_ or [])}")
    except ConfigError as err:
        _fail(str(err))
    task = build_task(config.task)
    searched = store.stats(iteration).get("search") or {}
    rows, chosen = training_set(
        config, task, task.train_problems(), store.samples(iteration), searched.get("threshold")
    )
    out = out or store.iter_dir(iteration) / "refiltered.jsonl"
    write_jsonl(out, rows)
    correct = sum(r["correct"] for r in rows)
    print(
        f"{len(rows)} examples ({correct} correct) written to {out}; "
        f"threshold {chosen['threshold']}, balance score {chosen['balance_score']}"
    )


CompareOutOption = Annotated[
    Path, typer.Option(help="Directory for compare.md and accuracy.png (default: ./compare)")
]


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run directories")],
    out: CompareOutOption = Path("compare"),
) -> None:
    """The runs side by side: method, best pass@1, pass@k, pass@k-s, examples, time.

    Prints the table, and writes it with a plot of accuracy per iteration (one line per
    run) to OUT/compare.md and OUT/accuracy.png."""
    from selftaught.report import markdown_table, summarize_run, write_compare

    summaries = []
    for path in runs:
        try:
            summaries.append(summarize_run(path))
        except (FileNotFoundError, ConfigError) as err:
            _fail(str(err))
    print(markdown_table(summaries))
    write_compare(runs, out, summaries)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (finished or not)")],
) -> None:
    """Write RUN/report.md and RUN/plots/*.png from the run directory alone.

    They show accuracy per difficulty, pass@k, B-STaR's choices, examples kept and time per
    phase."""
    from selftaught.report import write_report

    try:
        written = write_report(run_dir)
    except (FileNotFoundError, ConfigError) as err:
        _fail(str(err))
    print(written.pop("report"))
    for path in written.values():
        print(path)


@app.command()
def tasks() -> None:
    """List the tasks."""
    from selftaught.tasks import TASKS

    for name, entry in TASKS.items():
        print(f"{name:<12} {entry.about}")


@app.command()
def config(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config; default: star-addition")
    ] = None,
    set_: SetOption = None,
) -> None:
    """Print the fully resolved config (defaults, method preset, file and overrides)."""
    print(dump_config(_config(config, set_, False)), end="")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
