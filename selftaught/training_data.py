"""An iteration's training set from its stored samples and the run's config: the step
filters (enough steps; the oracle's valid steps), B-STaR's threshold (chosen with the
reference solutions), then ``selection.select``. Pure over the sample records, so
``selftaught refilter`` redoes it with other selection settings without sampling again."""

from __future__ import annotations

from selftaught import bstar, selection
from selftaught.config import BStarConfig, RunConfig
from selftaught.tasks import Problem, Task


def threshold_grid(b: BStarConfig) -> list[float]:
    return bstar.thresholds(b.threshold_min, b.threshold_max, b.threshold_step)


def steps_valid(task: Task, problems: list[Problem], records: list[dict]) -> list[bool]:
    """For each record, whether the task's step labels accept every step of its completion."""
    by_id = {p.id: p for p in problems}
    return [all(task.step_labels(by_id[r["problem_id"]], r["completion"])) for r in records]


def step_filter(
    config: RunConfig, task: Task, problems: list[Problem], records: list[dict]
) -> list[dict]:
    """The records with at least ``selection.min_steps`` steps and, with
    ``selection.valid_steps``, every step accepted by the task's labels."""
    sel = config.selection
    if sel.min_steps:
        records = [r for r in records if len(task.steps(r["completion"])) >= sel.min_steps]
    if not sel.valid_steps:
        return records
    return [r for r, ok in zip(records, steps_valid(task, problems, records), strict=True) if ok]


def reference_solutions(
    config: RunConfig, task: Task, problems: list[Problem]
) -> dict[str, str | None]:
    """The problems' reference solutions for B-STaR's balance score; none when
    ``bstar.reference`` is off."""
    if not config.bstar.reference:
        return {}
    return {p.id: task.reference(p) for p in problems}


def answered(config: RunConfig, records: list[dict]) -> list[dict]:
    """With ``bstar.drop_unparseable``, the records with an answer to extract: the official
    code never considers a response without its answer marker."""
    if not config.bstar.drop_unparseable:
        return records
    return [r for r in records if r.get("answer", "") is not None]


def bstar_candidates(
    config: RunConfig, task: Task, problems: list[Problem], records: list[dict]
) -> tuple[list[dict], list[str]]:
    """What B-STaR's balance score is computed over, and the queries asked: the samples
    drawn without a hint that pass the step filters and have an answer (when those are
    asked for), and each asked query's reference solution (``bstar.with_references``)."""
    unhinted = [r for r in records if not r["hinted"]]
    asked = list(dict.fromkeys(r["problem_id"] for r in unhinted))
    kept = answered(config, step_filter(config, task, problems, unhinted))
    ids = set(asked)
    refs = reference_solutions(config, task, [p for p in problems if p.id in ids])
    return bstar.with_references(kept, refs, asked), asked


def search_grid(config: RunConfig) -> list[float]:
    """The taus the search tries: the sweep, or only the fixed one when the temperature
    alone is adjusted."""
    if config.bstar.adjust == "temperature":
        return [config.selection.threshold]
    return threshold_grid(config.bstar)


def _bstar_threshold(
    config: RunConfig, records: list[dict], candidates: list[dict], asked: list[str], searched
) -> tuple[float, float, list[dict]]:
    """The round's tau, its balance score, and the records the official cap leaves."""
    b = config.bstar
    grid = search_grid(config)
    if b.threshold_from == "search":
        if searched is None:
            raise ValueError("bstar.threshold_from: search, but the round has no search threshold")
        grid = [searched]
    common = {"target": b.train_target, "empty": b.empty_queries, "queries": asked}
    tau, balance = bstar.best_threshold(candidates, b.n_star, grid, **common)
    cap = bstar.cap_at(candidates, tau, b.train_target, asked)
    if cap is not None:
        inside = {id(s) for s in bstar.capped(candidates, tau, cap)}
        records = [r for r in records if r["hinted"] or id(r) in inside]
    return tau, balance, records


def training_set(
    config: RunConfig,
    task: Task,
    problems: list[Problem],
    records: list[dict],
    search_threshold: float | None = None,
) -> tuple[list[dict], dict]:
    """An iteration's training rows and the threshold chosen: a pure function of the stored
    samples, so ``selftaught refilter`` can redo it with other selection settings.
    ``search_threshold``: the search phase's tau, for ``bstar.threshold_from: search``."""
    sel = config.selection
    threshold, balance = sel.threshold, None
    if config.bstar.enabled:
        candidates, asked = bstar_candidates(config, task, problems, records)
        records = answered(config, records)
        threshold, balance, records = _bstar_threshold(
            config, records, candidates, asked, search_threshold
        )
    records = step_filter(config, task, problems, records)
    kept = selection.select(
        records,
        leaks_hint=task.leaks_hint,
        require_correct=sel.require_correct,
        threshold=threshold,
        max_per_problem=sel.max_per_problem,
        dedupe_copies=sel.dedupe,
    )
    by_id = {p.id: p for p in problems}
    # the hint is dropped here: the example is written as if the model reasoned unaided
    rows = [
        {
            "prompt": task.train_prompt(by_id[r["problem_id"]]),
            "completion": r["completion"],
            "problem_id": r["problem_id"],
            "rationalized": r["hinted"],
            "correct": r["correct"],
            "reward": r["reward"],
        }
        for r in kept
    ]
    return rows, {"threshold": threshold, "balance_score": balance}
