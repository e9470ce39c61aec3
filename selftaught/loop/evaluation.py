"""The eval phase, which closes every iteration (0: the base model M): greedy accuracy on
the held-out set, exploration (pass@k) when asked, and the iteration's metrics row."""

from __future__ import annotations

from selftaught import metrics
from selftaught.loop.context import RunContext
from selftaught.records import (
    EvalResult,
    EvalStats,
    MetricsRow,
    RationalizeStats,
    SampleStats,
    SearchStats,
    TrainStats,
)
from selftaught.rollout import evaluate_greedy, mark_valid
from selftaught.store import EVAL_RESULTS, EVAL_SAMPLES, write_jsonl


def evaluate(ctx: RunContext, n: int) -> None:
    model, e, task = ctx.model_for(n), ctx.config.eval, ctx.task_for(n)
    problems = task.eval_problems()
    with ctx.reporter.phase("eval", len(problems), "problems") as bar:
        sampler = ctx.samplers.get(model, e.batch_size)
        results, greedy = evaluate_greedy(task, problems, model, ctx.config, bar.advance, sampler)
    write_jsonl(ctx.store.iter_dir(n) / EVAL_RESULTS, results)
    stats = EvalStats(seconds=greedy.seconds, tokens=greedy.tokens, seed=ctx.seed(n, "eval"))
    if e.num_samples:
        samples, summary = ctx.rollout(n).sample(
            model,
            problems,
            phase="eval pass@k",
            seed=stats.seed,
            temperature=e.temperature,
            num_samples=e.num_samples,
        )
        write_jsonl(ctx.store.iter_dir(n) / EVAL_SAMPLES, samples)
        stats.seconds += summary.seconds
        stats.exploration = metrics.exploration(
            mark_valid(task, problems, samples), e.ks(), e.k_s_pairs()
        )
        if ctx.reward_model is not None:
            stats.exploration["best_of_k_accuracy"] = metrics.best_of_k_accuracy(samples)
    phases = {**ctx.store.stats(n), "eval": stats.to_json()}
    row = metrics_row(ctx, n, results, phases)
    ctx.store.write_metrics(n, row.to_json())
    ctx.store.complete(n, "eval", stats.to_json())


def metrics_row(ctx: RunContext, n: int, results: list[EvalResult], phases: dict) -> MetricsRow:
    """The iteration's row, from its evaluation and the figures its phases stored."""
    search = SearchStats.from_json(phases["search"]) if "search" in phases else None
    sample = SampleStats.from_json(phases["sample"]) if "sample" in phases else None
    rat = RationalizeStats.from_json(phases.get("rationalize", {}))
    train = TrainStats.from_json(phases["train"]) if "train" in phases else None
    evaluation = EvalStats.from_json(phases["eval"])
    greedy = metrics.greedy_accuracies(results)
    exploration = evaluation.exploration or {}

    def rate(stats) -> float:
        return stats.tokens / stats.seconds if stats is not None and stats.seconds else 0.0

    return MetricsRow(
        iteration=n,
        method=ctx.config.method,
        accuracy=greedy["accuracy"],
        accuracy_by_bucket=greedy["accuracy_by_bucket"],
        valid_accuracy=greedy.get("valid_accuracy"),
        valid_accuracy_by_bucket=greedy.get("valid_accuracy_by_bucket"),
        pass_at_1=greedy["accuracy"],
        pass_at_k=exploration.get("pass@k"),
        pass_at_k_s=exploration.get("pass@k-s"),
        valid_pass_at_k=exploration.get("valid_pass@k"),
        eval_distinct_correct=exploration.get("distinct_correct"),
        best_of_k_accuracy=exploration.get("best_of_k_accuracy"),
        problems=len(ctx.round_problems(n)) if n else 0,
        generated_correct=sample.correct if sample else 0,
        distinct_correct=sample.distinct_correct if sample else None,
        rationalization_attempts=rat.attempted,
        rationalized=train.rationalized if train else 0,
        train_examples=train.examples if train else 0,
        selected_accuracy=train.selected_accuracy if train else None,
        selected_valid_accuracy=train.selected_valid_accuracy if train else None,
        train_steps=train.steps if train else 0,
        train_loss=train.loss if train else None,
        temperature=sample.temperature if sample else None,
        threshold=train.threshold if train else None,
        balance_score=train.balance_score if train else None,
        search_balance_scores=search.scores if search else None,
        unparseable=sum(r["answer"] is None for r in results),
        seconds={
            "search": search.seconds if search else 0.0,
            "sample": sample.seconds if sample else 0.0,
            "rationalize": rat.seconds,
            "train": train.seconds if train else 0.0,
            "eval": evaluation.seconds,
        },
        tokens_per_second={"sample": rate(sample), "train": rate(train)},
    )


def summary_line(ctx: RunContext, n: int) -> str:
    """What a person watching sees once an iteration is done."""
    row = MetricsRow.from_json(next(r for r in ctx.store.metrics() if r["iteration"] == n))
    if n == 0:
        return f"base model M: {accuracy_line(row)}"
    chosen = ""
    if ctx.config.bstar.enabled:
        chosen = f"  T={row.temperature:g} tau={row.threshold:g}"
    return (
        f"iteration {n}/{ctx.config.iterations}: {accuracy_line(row)}"
        f"  kept {row.train_examples} ({row.rationalized} rationalized)"
        f"  steps {row.train_steps}{chosen}"
    )


def accuracy_line(row: MetricsRow) -> str:
    buckets = " ".join(f"{b}:{a:.0%}" for b, a in row.accuracy_by_bucket.items())
    return f"accuracy {row.accuracy:.1%} [{buckets}]"
