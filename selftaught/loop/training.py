"""The phases that train: the policy on an iteration's selected samples, and (iteration 0,
with ``reward.enabled``) the verifier on M's own labelled samples."""

from __future__ import annotations

import random
from pathlib import Path

from selftaught import metrics
from selftaught.loop.context import RunContext
from selftaught.loop.schedule import lr_window, train_steps
from selftaught.models.loading import weights_checksum
from selftaught.models.reward import RewardExample, train_reward_model
from selftaught.models.train_loop import TrainResult
from selftaught.models.train_phase import launch, write_spec
from selftaught.models.training import HFTrainer
from selftaught.records import RewardStats, SampleRecord, SearchStats, TrainStats
from selftaught.rollout import mark_valid
from selftaught.store import REWARD_SAMPLES, TRAIN_ROWS, write_jsonl
from selftaught.tasks import Example, Problem
from selftaught.training_data import training_set


def train(ctx: RunContext, n: int) -> None:
    config, store = ctx.config, ctx.store
    searched = store.stats(n).get("search")
    tau = SearchStats.from_json(searched).threshold if searched else None
    rows, chosen = training_set(config, ctx.task, ctx.problems, store.samples(n), tau)
    write_jsonl(store.iter_dir(n) / TRAIN_ROWS, rows)
    init = ctx.base_path if config.train.init == "base" else ctx.model_for(n - 1)
    seed = ctx.seed(n, "train")
    result = _fit(ctx, n, init, [Example(r["prompt"], r["completion"]) for r in rows], seed)
    stats = TrainStats(
        seconds=result.seconds,
        tokens=result.tokens,
        steps=result.steps,
        loss=result.loss,
        examples=len(rows),
        rationalized=sum(r["rationalized"] for r in rows),
        selected_accuracy=metrics.accuracy(rows),
        selected_valid_accuracy=_valid_share(ctx, rows),
        threshold=chosen["threshold"],
        balance_score=chosen["balance_score"],
        init="base" if init == ctx.base_path else f"iteration {n - 1}",
        init_checksum=weights_checksum(init),
        seed=seed,
        peak_rss_mb=result.peak_rss_mb,
        mixed_precision=result.mixed_precision,
    )
    store.complete(n, "train", stats.to_json())


def _valid_share(ctx: RunContext, rows: list[dict]) -> float | None:
    """Of what is trained on, the share right with every step valid (per-step gold only):
    B-STaR's exploitation, the filter's precision where a lucky answer can pass it."""
    if not ctx.task.step_gold:
        return None
    return metrics.accuracy(mark_valid(ctx.task, ctx.problems, rows), "valid")


def _fit(ctx: RunContext, n: int, init: Path, examples: list[Example], seed: int) -> TrainResult:
    """In this process, or under ``accelerate launch`` for several processes."""
    t = ctx.config.train
    trainer = HFTrainer.from_config(ctx.config)
    steps, schedule, out = train_steps(ctx.config, n), lr_window(ctx.config, n), ctx.store
    if t.num_processes > 1 or t.accelerate_config:
        spec = write_spec(
            out.iter_dir(n) / "train_spec.json",
            trainer,
            init=init,
            examples=out.iter_dir(n) / TRAIN_ROWS,
            steps=steps,
            out_dir=out.model_dir(n),
            seed=seed,
            schedule=schedule,
        )
        ctx.reporter.line(f"train: accelerate launch, {t.num_processes} processes")
        return launch(spec, t.num_processes, t.accelerate_config)
    with ctx.reporter.phase("train", steps, "steps") as bar:
        return trainer.fit(
            init,
            examples,
            steps,
            out.model_dir(n),
            seed,
            lambda step, loss: bar.advance(1, f"loss {loss:.4f}"),
            schedule,
        )


def train_reward(ctx: RunContext, n: int) -> None:
    """Iteration 0: label M's own samples (per step, or per answer) and fit the verifier."""
    r = ctx.config.reward
    seed = ctx.seed(n, "reward")
    problems = ctx.problems
    if r.problems is not None:
        problems = random.Random(seed).sample(problems, min(r.problems, len(problems)))
    records, summary = ctx.rollout(0, scored=False).sample(  # the verifier does not exist yet
        ctx.base_path,
        problems,
        phase="reward samples",
        seed=seed,
        temperature=r.temperature,
        num_samples=r.num_samples,
        score=False,
    )
    by_id = {p.id: p for p in problems}
    examples = [_reward_example(ctx, rec, by_id[rec["problem_id"]]) for rec in records]
    with ctx.reporter.phase("reward model", r.steps, "steps") as bar:
        result = train_reward_model(
            ctx.base_path,
            examples,
            r.steps,
            ctx.store.reward_model_dir,
            seed,
            r.batch_size,
            r.lr,
            lambda step, loss: bar.advance(1, f"loss {loss:.4f}"),
        )
    write_jsonl(ctx.store.iter_dir(n) / REWARD_SAMPLES, records)
    stats = RewardStats(
        samples=summary.to_json(),
        examples=len(examples),
        positive_share=metrics.accuracy(records),
        steps=result.steps,
        loss=result.loss,
        seconds=result.seconds,
        seed=seed,
    )
    ctx.store.complete(n, "reward", stats.to_json())


def _reward_example(ctx: RunContext, record: SampleRecord, problem: Problem) -> RewardExample:
    """Outcome: the whole completion labelled by its answer; process: each step labelled
    by the task's own rules (synthetic tasks) or by the answer (data tasks)."""
    prompt, completion = ctx.task.prompt(problem), record["completion"]
    if ctx.config.reward.kind == "outcome":
        return RewardExample(prompt, [completion], [record["correct"]])
    labels = ctx.task.step_labels(problem, completion)
    return RewardExample(prompt, ctx.task.steps(completion), labels)
