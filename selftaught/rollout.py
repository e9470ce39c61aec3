"""Task x sampler x checker x reward model -> records: what every sampling phase and every
evaluation does, usable without a run (``selftaught eval``, the methods benchmark, tests).

``Rollout.sample`` generates, extracts and checks answers and (with a reward model) scores
each generation; ``evaluate_greedy`` answers held-out problems greedily and marks which
answers have every step valid where the task can tell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from selftaught import bstar
from selftaught.config import RunConfig
from selftaught.models.reward import HFRewardModel
from selftaught.progress import Reporter
from selftaught.records import EvalResult, RolloutStats, SampleRecord
from selftaught.samplers import HFSampler, Sampler, SamplingStats
from selftaught.samplers.base import Generation, cut_at_stop
from selftaught.tasks import Problem, Task
from selftaught.training_data import steps_valid


@dataclass
class Rollout:
    task: Task
    reporter: Reporter
    # the sampler for a model; called only when there is something to sample, since loading
    # a model to sample nothing would cost seconds
    sampler_for: Callable[[Path], Sampler]
    reward_model: HFRewardModel | None = None
    reward_kind: str = "process"  # "outcome": the whole completion is one step

    def sample(
        self,
        model: Path,
        problems: list[Problem],
        *,
        phase: str,
        seed: int,
        temperature: float,
        num_samples: int,
        hinted: bool = False,
        score: bool = True,
        sampler: Sampler | None = None,
    ) -> tuple[list[SampleRecord], RolloutStats]:
        """Sample, check and (``score``, with a reward model) score: one record per
        generation. ``sampler``: one already loaded with ``model``, to sample it again."""
        prompts = [self.task.prompt(p, hint=hinted) for p in problems]
        generations, stats = [], SamplingStats()
        if prompts:
            with self.reporter.phase(phase, len(prompts) * num_samples, "samples") as bar:
                generations, stats = (sampler or self.sampler_for(model)).generate(
                    prompts, num_samples, temperature, seed, bar.advance
                )
        generations = [_cut(gens, self.task.stop) for gens in generations]
        flat = [
            (problem, prompt, k, gen)
            for problem, prompt, gens in zip(problems, prompts, generations, strict=True)
            for k, gen in enumerate(gens)
        ]
        answers = [self.task.extract_answer(gen.text) for *_, gen in flat]
        # one call for the whole phase: math-verify and the sandbox check in parallel
        correct = self.task.is_correct_many(answers, [problem for problem, *_ in flat])
        records: list[SampleRecord] = [
            {
                "problem_id": problem.id,
                "bucket": problem.bucket,
                "sample": k,
                "prompt": prompt,
                "completion": gen.text,
                "answer": answer,
                "correct": ok,
                "hinted": hinted,
                "temperature": temperature,
                "tokens": gen.tokens,
            }
            for (problem, prompt, k, gen), answer, ok in zip(flat, answers, correct, strict=True)
        ]
        if score:
            self.score(records, problems)
        summary = RolloutStats(
            seconds=stats.seconds,
            tokens=stats.tokens,
            samples=len(records),
            correct=sum(r["correct"] for r in records),
            unparseable=sum(r["answer"] is None for r in records),
            temperature=temperature,
            seed=seed,
        )
        return records, summary

    def score(self, records: list[SampleRecord], problems: list[Problem]) -> None:
        """``reward``: B-STaR's min(step scores)/5 + 1[correct] with a reward model, else
        1[correct]; the step scores are kept so selection can be redone without sampling."""
        if self.reward_model is None:
            for r in records:
                r["reward"] = float(r["correct"])
            return
        by_id = {p.id: p for p in problems}
        prompts = [self.task.prompt(by_id[r["problem_id"]]) for r in records]
        steps = [self.steps(r["completion"]) for r in records]
        for r, scores in zip(records, self.reward_model.score(prompts, steps), strict=True):
            r["step_scores"] = scores
            r["reward"] = bstar.reward_score(scores, r["correct"])

    def steps(self, completion: str) -> list[str]:
        """The units the reward model scores: the task's steps, or the whole completion."""
        if self.reward_kind == "outcome":
            return [completion]
        return self.task.steps(completion)


def evaluate_greedy(
    task: Task,
    problems: list[Problem],
    model: Path,
    config: RunConfig,
    progress=None,
    sampler: Sampler | None = None,
) -> tuple[list[EvalResult], SamplingStats]:
    """Greedy answers of ``model`` (by ``sampler``, else an HF one) to ``problems``."""
    m = config.model
    sampler = sampler or HFSampler(
        model,
        config.eval.batch_size,
        config.sampling.max_new_tokens,
        dtype=m.dtype,
        chat_template=m.chat_template,
        stop=task.stop,
    )
    prompts = [task.prompt(p) for p in problems]
    generations, stats = sampler.generate(prompts, 1, 0.0, 0, progress)
    generations = [_cut(gens, task.stop) for gens in generations]
    answers = [task.extract_answer(gen.text) for (gen,) in generations]
    correct = task.is_correct_many(answers, problems)
    results: list[EvalResult] = [
        {
            "problem_id": problem.id,
            "bucket": problem.bucket,
            "completion": gen.text,
            "answer": answer,
            "correct": ok,
        }
        for problem, (gen,), answer, ok in zip(problems, generations, answers, correct, strict=True)
    ]
    return mark_valid(task, problems, results), stats


def _cut(generations: list[Generation], stop: tuple[str, ...]) -> list[Generation]:
    """Each generation up to the task's first stop string. The samplers stop there already;
    cut again here because a sampler given other stops (or none) must not let a run-on
    reach the answer check, the stored samples or training."""
    if not stop:
        return generations
    return [Generation(cut_at_stop(g.text, stop), g.tokens) for g in generations]


def mark_valid(task: Task, problems: list[Problem], results: list[EvalResult]) -> list[EvalResult]:
    """With per-step gold (``task.step_gold``), each result's ``valid``: the answer is right
    and every step is too. On the expression task a wrong chain often ends on the right
    digit (answers mod 10, zero factors), so ``correct`` alone overstates what is learnt."""
    if not task.step_gold:
        return results
    valid = steps_valid(task, problems, results)
    return [{**r, "valid": r["correct"] and ok} for r, ok in zip(results, valid, strict=True)]
