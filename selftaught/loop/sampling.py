"""The phases that sample the policy: B-STaR's configuration search, the round's samples,
and STaR's rationalization of the problems those samples failed."""

from __future__ import annotations

import random

from selftaught import bstar, metrics, selection
from selftaught.config import RunConfig
from selftaught.loop.context import RunContext
from selftaught.records import RationalizeStats, SampleStats, SearchStats
from selftaught.store import RATIONALIZED, SAMPLES, SEARCH_SAMPLES, read_jsonl, write_jsonl
from selftaught.tasks import Problem
from selftaught.training_data import bstar_candidates, reference_solutions, search_grid


def searches(config: RunConfig) -> bool:
    """Whether a round starts with B-STaR's search: not when only tau is re-chosen."""
    return config.bstar.enabled and config.bstar.adjust != "threshold"


def search(ctx: RunContext, n: int) -> None:
    """B-STaR: on a subset of queries, the temperature whose best-over-tau balance score is
    highest; the threshold is re-chosen on the whole round in the train phase (unless
    ``bstar.threshold_from: search``)."""
    config, b = ctx.config, ctx.config.bstar
    seed = ctx.seed(n, "search")
    subset = random.Random(seed).sample(ctx.problems, min(b.queries, len(ctx.problems)))
    k = b.num_samples or config.sampling.num_samples
    model = ctx.model_for(n - 1)
    sampler = ctx.samplers.get(model)  # loaded once for every temperature of the grid
    rollout = ctx.rollout(n - 1)
    candidates, records, seconds = {}, [], 0.0
    for i, t in enumerate(b.temperatures):
        rows, summary = rollout.sample(
            model,
            subset,
            phase=f"search T={t:g}",
            seed=seed + i,
            temperature=t,
            num_samples=k,
            sampler=sampler,
        )
        candidates[t], _ = bstar_candidates(config, ctx.task, subset, rows)
        records, seconds = records + rows, seconds + summary.seconds
    _say_once_without_references(ctx, subset)
    choice = bstar.choose_configuration(
        candidates,
        b.n_star,
        search_grid(config),
        target=b.search_target,
        empty=b.empty_queries,
        queries=[p.id for p in subset],
    )
    write_jsonl(ctx.store.iter_dir(n) / SEARCH_SAMPLES, records)
    stats = SearchStats(
        temperature=choice["temperature"],
        threshold=choice["threshold"],
        balance_score=choice["balance_score"],
        scores={f"{t:g}": v for t, v in choice["scores"].items()},
        seconds=seconds,
        seed=seed,
    )
    ctx.store.complete(n, "search", stats.to_json())


def _say_once_without_references(ctx: RunContext, subset: list[Problem]) -> None:
    if not ctx.config.bstar.reference or ctx.said_no_references:
        return
    if not any(reference_solutions(ctx.config, ctx.task, subset).values()):
        ctx.said_no_references = True
        ctx.reporter.line(
            f"bstar.reference: task {ctx.task.name!r} has no reference solutions; "
            "the balance score counts the model's samples only"
        )


def sample(ctx: RunContext, n: int) -> None:
    s = ctx.config.sampling
    temperature = s.temperature
    if searches(ctx.config):
        temperature = SearchStats.from_json(ctx.store.stats(n)["search"]).temperature
    records, summary = ctx.rollout(n - 1).sample(
        ctx.model_for(n - 1),
        ctx.round_problems(n),
        phase="sample",
        seed=ctx.seed(n, "sample"),
        temperature=temperature,
        num_samples=s.num_samples,
    )
    write_jsonl(ctx.store.iter_dir(n) / SAMPLES, records)
    stats = SampleStats(**summary.to_json(), distinct_correct=metrics.distinct_correct(records))
    ctx.store.complete(n, "sample", stats.to_json())


def rationalize(ctx: RunContext, n: int) -> None:
    """STaR's rationalization: each problem the round's samples failed is sampled again
    with its answer as a hint (none with ``rationalization: false``)."""
    s = ctx.config.sampling
    records = read_jsonl(ctx.store.iter_dir(n) / SAMPLES)
    problems = ctx.round_problems(n)
    failed = set(selection.unsolved([p.id for p in problems], records))
    problems = [p for p in problems if p.id in failed and ctx.config.rationalization]
    hinted, summary = ctx.rollout(n - 1).sample(
        ctx.model_for(n - 1),
        problems,
        phase="rationalize",
        seed=ctx.seed(n, "rationalize"),
        temperature=s.temperature,
        num_samples=s.num_samples,
        hinted=True,
    )
    write_jsonl(ctx.store.iter_dir(n) / RATIONALIZED, hinted)
    stats = RationalizeStats(**summary.to_json(), attempted=len(problems))
    ctx.store.complete(n, "rationalize", stats.to_json())
