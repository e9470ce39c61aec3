"""The ``selftaught`` command.

Each command imports what it needs inside its function, so that ``selftaught --help``,
``selftaught config`` and ``selftaught tasks`` answer without importing torch."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from selftaught.config import ConfigError, apply_overrides, dump_config, load_config, resolve
from selftaught.explain import explained as _explained
from selftaught.explain import fail as _fail
from selftaught.memory import keep_freed_memory

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
    from selftaught.stopping import stop_on_signals

    # from the first moment: the imports take seconds, and a SIGTERM or SIGHUP during them
    # would end the process without a word
    with stop_on_signals(), _explained(resume, starting=True):
        _run(config, out, resume, set_, quiet)


def _run(config, out, resume, set_, quiet) -> None:
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

    with _explained(out):
        try:
            return start()
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
    with _explained():
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

    Prompted as a fine-tuned model (task.exemplars_after_training) unless it is the
    config's model.name_or_path itself.

    On the synthetic tasks also valid_accuracy: the answer right and every step valid."""
    from selftaught import metrics
    from selftaught.models.check import check_checkpoint
    from selftaught.rollout import evaluate_greedy
    from selftaught.tasks import build_task

    cfg = _config(config, set_, quiet)
    with _explained():
        check_checkpoint(model)
        task = build_task(cfg.task)
        if str(model) != cfg.model.name_or_path:  # a fine-tuned checkpoint
            task = task.for_trained_model()
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
    from selftaught.loop.inputs import check_inputs, fingerprint
    from selftaught.store import RunStore, write_jsonl
    from selftaught.tasks import build_task
    from selftaught.training_data import training_set

    store = RunStore(run_dir)
    with _explained(reading=str(run_dir)):
        config = store.load_config()
        if not store.done(iteration, "rationalize"):
            _fail(f"{run_dir}: iteration {iteration} has no finished samples to refilter")
        raw = apply_overrides(
            config.model_dump(mode="json"),
            set_ or [],
            allowed=("selection", "bstar"),
            who="refilter",
        )
        config = resolve(raw, f"{store.root / 'config.yaml'} with --set {' '.join(set_ or [])}")
        task = build_task(config.task)
        check_inputs(store, fingerprint(task, config))  # selection needs the same problems
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

    with _explained(reading=", ".join(map(str, runs))):
        summaries = [summarize_run(path) for path in runs]
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

    with _explained(reading=str(run_dir)):
        written = write_report(run_dir)
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
    keep_freed_memory()
    app()


if __name__ == "__main__":
    main()
