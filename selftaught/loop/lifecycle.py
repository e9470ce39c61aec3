"""A run from start to end: the model checked before anything is written, one lock on the
run directory, the resume checks (the files against ``state.json``, the config against the
stored one, the data and model against ``inputs.json``, settings changed with ``--set``),
the environment record, then the phases, under handlers that turn SIGTERM, SIGHUP and
Ctrl-C into a clean stop. The CLI calls ``run`` once."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from selftaught import environment
from selftaught.config import ConfigError, RunConfig
from selftaught.loop.context import RunContext
from selftaught.loop.inputs import check_inputs, fingerprint
from selftaught.loop.phases import phase_outputs, run_phases
from selftaught.models.base_model import base_model_path
from selftaught.models.check import check_model, context_length
from selftaught.models.training import compile_problem
from selftaught.progress import Reporter
from selftaught.stopping import stop_on_signals
from selftaught.store import RunStore, config_diff
from selftaught.tasks import Task, build_task
from selftaught.tracking import Tracker


def run(
    config: RunConfig | None,
    out: Path,
    resume: bool = False,
    reporter: Reporter | None = None,
    overrides: list[str] = (),
    quiet: bool = False,
) -> list[dict]:
    """Start a run in ``out``, or (``resume``) continue the one there, and return its
    metrics rows. On resume, ``config`` None takes the run's own; a given one must equal
    it; ``overrides`` (``KEY=VALUE``) change the run's settings from the next phase on,
    recorded in ``state.json``. SIGTERM, SIGHUP and SIGINT raise ``stopping.Stopped``."""
    store = RunStore(out)
    with stop_on_signals():
        if not resume:  # a bad data file or model leaves no run directory behind
            task = build_task(config.task)
            check_model_settings(config)
        store.lock(create=not resume)  # one process per run directory, released however it ends
        try:
            if resume:
                config, task = _resume(store, config, overrides)
            else:
                store.create(config)
            reporter = reporter or Reporter(quiet=config.quiet or quiet)
            if resume:
                reporter.line(f"Resuming {out}")
            base_path = base_model_path(config, reporter)
            check_inputs(store, fingerprint(task, config, base_path), reporter)
            # applied only now that every check passed: a refused resume leaves the run as it was
            changes = store.change_config(list(overrides)) if resume and overrides else []
            for change in changes:
                reporter.line(f"  {change['key']}: {change['from']!r} -> {change['to']!r}")
            _record_environment(store, reporter)
            torch.manual_seed(config.seed)
            ctx = RunContext(config, store, task, base_path, reporter)
            with Tracker(config, out) as tracker:
                ctx.tracker = tracker
                try:
                    return run_phases(ctx)
                finally:
                    ctx.close()
        finally:
            store.unlock()


def check_model_settings(config: RunConfig) -> None:
    """The model can be loaded (``models/check.py``) and holds what the config asks of it,
    and its train phase can compile as asked."""
    problem = compile_problem(config.train.torch_compile, config.train.torch_compile_backend)
    if problem:
        raise ConfigError(problem)
    check_model(config.model.name_or_path)
    limit = context_length(config.model.name_or_path)
    if limit and config.sampling.max_new_tokens > limit[0]:
        raise ConfigError(
            f"sampling.max_new_tokens: {config.sampling.max_new_tokens} tokens are more than "
            f"the model attends to ({limit[0]}, {limit[1]}); expected at most {limit[0]} "
            "less the prompt's length"
        )


def _resume(
    store: RunStore, given: RunConfig | None, overrides: list[str]
) -> tuple[RunConfig, Task]:
    """Check the run directory (fails clearly when it is not a run or is damaged), finish a
    settings change a kill interrupted, clear a killed writer's temp files; return the
    run's config with ``overrides`` applied (written only once every check has passed) and
    its task."""
    store.prepare_resume(phase_outputs())
    config = store.preview_config(list(overrides)) if overrides else store.load_config()
    if given is not None:
        _check_same(store, config, given)
    task = build_task(config.task)
    check_model_settings(config)
    return config, task


def _check_same(store: RunStore, stored: RunConfig, given: RunConfig) -> None:
    """Resuming with other settings silently would mix two configs in one run,
    unrecorded (``quiet`` only shows, so it may differ)."""
    differ = config_diff(
        stored.model_dump(mode="json", exclude={"quiet"}),
        given.model_dump(mode="json", exclude={"quiet"}),
    )
    if differ:
        shown = "; ".join(
            f"{key}: {d['from']!r} in the run, {d['to']!r} given" for key, d in differ.items()
        )
        raise ConfigError(
            f"{store.root} is resumed with its own config.yaml, and the config given differs "
            f"({shown}). Change a started run's settings with `selftaught run --resume "
            f"{store.root} --set KEY=VALUE` (RunStore.change_config), which records the change"
        )


def _record_environment(store: RunStore, reporter: Reporter) -> None:
    """Add this process's setup to the run's list; on a resume, say what changed."""
    now = environment.describe()
    earlier = store.environments()
    last = store.state().get("last")
    at = f"{last['iteration']}/{last['phase']}" if last else None
    store.add_environment(
        {**now, "after": at, "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    )
    changed = environment.differences(earlier[-1], now) if earlier else {}
    if changed:
        shown = ", ".join(f"{key}: {was} -> {new}" for key, (was, new) in changed.items())
        reporter.line(
            f"Resumed on another setup ({shown}): what runs from here may differ in float "
            "rounding from an uninterrupted run (environment.json lists every setup)"
        )


def default_run_dir(config: RunConfig) -> Path:
    return Path("runs") / f"{config.method}-{config.task.name}-{time.strftime('%Y%m%d-%H%M%S')}"
