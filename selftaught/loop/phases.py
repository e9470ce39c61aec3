"""The phase table: every phase once, with the files it leaves in its iteration's directory
(checked on resume), when it applies, and what runs it. An iteration is its phases in this
order; iteration 0 is the base model M's (the verifier, then M's evaluation).

Each phase writes its outputs, then is marked done in ``state.json``; on resume a finished
phase is skipped and an unfinished one runs again from its own derived seed, so the run
ends as an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from selftaught.config import RunConfig
from selftaught.loop.context import RunContext
from selftaught.loop.evaluation import evaluate, summary_line
from selftaught.loop.sampling import rationalize, sample, search, searches
from selftaught.loop.training import train, train_reward
from selftaught.store import (
    EVAL_RESULTS,
    METRICS,
    MODEL,
    RATIONALIZED,
    REWARD_SAMPLES,
    SAMPLES,
    SEARCH_SAMPLES,
    TRAIN_ROWS,
)


@dataclass(frozen=True)
class Phase:
    name: str
    outputs: tuple[str, ...]  # in ``iter_NNNN/``
    applies: Callable[[RunConfig, int], bool]  # (config, iteration)
    run: Callable[[RunContext, int], None]


PHASES: tuple[Phase, ...] = (
    Phase("reward", (REWARD_SAMPLES,), lambda c, n: n == 0 and c.reward.enabled, train_reward),
    Phase("search", (SEARCH_SAMPLES,), lambda c, n: n > 0 and searches(c), search),
    Phase("sample", (SAMPLES,), lambda c, n: n > 0, sample),
    Phase("rationalize", (RATIONALIZED,), lambda c, n: n > 0, rationalize),
    Phase("train", (TRAIN_ROWS, MODEL), lambda c, n: n > 0, train),
    Phase("eval", (EVAL_RESULTS, METRICS), lambda c, n: True, evaluate),
)


def phase_outputs() -> dict[str, tuple[str, ...]]:
    """What ``RunStore.verify`` checks a completed phase left behind."""
    return {p.name: p.outputs for p in PHASES}


def run_phases(ctx: RunContext) -> list[dict]:
    """Iterations 0..N, skipping the phases a stopped run had already completed."""
    for n in range(ctx.config.iterations + 1):
        for phase in PHASES:
            if phase.applies(ctx.config, n) and not ctx.store.done(n, phase.name):
                phase.run(ctx, n)
        ctx.reporter.line(summary_line(ctx, n))
        if ctx.tracker is not None:
            # every row not logged yet: after a resume, the iterations finished before it
            ctx.tracker.log_rows(ctx.store.metrics())
    return ctx.store.metrics()
