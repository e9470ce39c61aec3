"""The expert-iteration loop: sample -> check -> rationalize -> select -> train -> evaluate.

Each phase of each iteration writes its outputs, then is marked done in ``state.json``;
on resume a finished phase is read back from disk and an unfinished one is run again
from its own derived seed, so the result equals an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from selftaught import bstar, environment, metrics, selection
from selftaught.config import ConfigError, RunConfig
from selftaught.models.base_model import base_model_path
from selftaught.models.reward import HFRewardModel, RewardExample, train_reward_model
from selftaught.models.sampling import HFSampler, Sampler, SamplingStats, make_sampler
from selftaught.models.train_phase import launch, write_spec
from selftaught.models.training import HFTrainer
from selftaught.progress import Reporter
from selftaught.store import RunStore, config_diff, read_jsonl, write_jsonl
from selftaught.tasks import Example, Problem, Task, build_task
from selftaught.tracking import Tracker
from selftaught.training_data import (
    reference_solutions,
    steps_valid,
    threshold_grid,
    training_set,
    valid_steps_only,
)


def derive_seed(seed: int, iteration: int, phase: str) -> int:
    digest = hashlib.sha256(f"{seed}/{iteration}/{phase}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def train_steps(config: RunConfig, iteration: int) -> int:
    """STaR's schedule: more steps each iteration (paper: +20%; its arithmetic run: +20 steps)."""
    t = config.train
    return round(t.steps * (1 + t.steps_growth) ** (iteration - 1)) + t.steps_increment * (
        iteration - 1
    )


def weights_checksum(path: Path) -> str | None:
    """Of the saved weights: proves which checkpoint an iteration trained from (None for
    a hub name, whose files live in the hub's cache)."""
    if not Path(path).is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(Path(path).glob("*.safetensors")):
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class Loop:
    config: RunConfig
    store: RunStore
    task: Task
    base_path: Path
    reporter: Reporter
    _engine: Sampler | None = None  # a vllm or ray sampler, kept across phases
    _engine_model: Path | None = None
    tracker: Tracker | None = None
    _said_no_references: bool = False  # once a run, not every round

    # -- driving ------------------------------------------------------------------
    def run(self) -> list[dict]:
        """Iterations 1..N, skipping the phases a killed run had already completed."""
        phases = {
            "search": self.search,
            "sample": self.sample,
            "rationalize": self.rationalize,
            "train": self.train,
            "eval": lambda n: self.evaluate(n, self.store.model_dir(n)),
        }
        if not self.config.bstar.enabled:
            del phases["search"]
        for n in range(1, self.config.iterations + 1):
            for name, phase in phases.items():
                if not self.store.done(n, name):
                    phase(n)
            self.summarize(n)
        return self.store.metrics()

    @cached_property
    def problems(self) -> list[Problem]:
        return self.task.train_problems()

    def round_problems(self, n: int) -> list[Problem]:
        """Iteration n's queries: every problem, or (Online RFT, B-STaR) the next
        ``queries_per_round`` of one seeded shuffle of them, wrapping around."""
        q = self.config.sampling.queries_per_round
        if q is None:
            return self.problems
        order, start = self._query_order, (n - 1) * q
        return [order[i % len(order)] for i in range(start, start + q)]

    @cached_property
    def _query_order(self) -> list[Problem]:
        order = list(self.problems)
        random.Random(derive_seed(self.config.seed, 0, "queries")).shuffle(order)
        return order

    def model_for(self, iteration: int) -> Path:
        return self.base_path if iteration == 0 else self.store.model_dir(iteration)

    def sampler(self, model: Path, batch_size: int | None = None) -> Sampler:
        """hf: a sampler per phase (loading the tiny model takes milliseconds); vllm and
        ray hold an engine or a cluster, so one is kept and pointed at each new model."""
        m = self.config.model
        if self.config.sampling.backend == "hf" or self._engine is None:
            sampler = make_sampler(
                self.config.sampling,
                model,
                batch_size=batch_size,
                dtype=m.dtype,
                chat_template=m.chat_template,
                lora_rank=m.lora.r if m.lora else None,
            )
            if self.config.sampling.backend != "hf":
                self._engine, self._engine_model = sampler, model
            return sampler
        if self._engine_model != model:
            self._engine.reload(model)
            self._engine_model = model
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    @cached_property
    def reward_model(self) -> HFRewardModel | None:
        return HFRewardModel(self.store.reward_model_dir) if self.config.reward.enabled else None

    # -- sampling and scoring -----------------------------------------------------
    def _sample(
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
    ) -> tuple[list[dict], dict]:
        """Sample, check and (with a reward model) score: one record per generation.
        ``sampler``: one already loaded with ``model``, to sample it several times."""
        prompts = [self.task.prompt(p, hint=hinted) for p in problems]
        generations, stats = [], SamplingStats()
        if prompts:  # loading a model to sample nothing would cost seconds
            with self.reporter.phase(phase, len(prompts) * num_samples, "samples") as bar:
                generations, stats = (sampler or self.sampler(model)).generate(
                    prompts, num_samples, temperature, seed, bar.advance
                )
        flat = [
            (problem, prompt, k, gen)
            for problem, prompt, gens in zip(problems, prompts, generations, strict=True)
            for k, gen in enumerate(gens)
        ]
        answers = [self.task.extract_answer(gen.text) for *_, gen in flat]
        # one call for the whole phase: math-verify and the sandbox check in parallel
        correct = self.task.is_correct_many(answers, [problem for problem, *_ in flat])
        records = [
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
            self._score(records, problems)
        summary = {
            "seconds": stats.seconds,
            "tokens": stats.tokens,
            "samples": len(records),
            "correct": sum(r["correct"] for r in records),
            "unparseable": sum(r["answer"] is None for r in records),
            "temperature": temperature,
            "seed": seed,
        }
        return records, summary

    def _score(self, records: list[dict], problems: list[Problem]) -> None:
        """``reward``: B-STaR's min(step scores)/5 + 1[correct] with a reward model, else
        1[correct]; the step scores are kept so selection can be redone without sampling."""
        if self.reward_model is None:
            for r in records:
                r["reward"] = float(r["correct"])
            return
        by_id = {p.id: p for p in problems}
        prompts = [self.task.prompt(by_id[r["problem_id"]]) for r in records]
        steps = [self._steps(r["completion"]) for r in records]
        for r, scores in zip(records, self.reward_model.score(prompts, steps), strict=True):
            r["step_scores"] = scores
            r["reward"] = bstar.reward_score(scores, r["correct"])

    def _steps(self, completion: str) -> list[str]:
        if self.config.reward.kind == "outcome":
            return [completion]
        return self.task.steps(completion)

    # -- phases -------------------------------------------------------------------
    def search(self, n: int) -> None:
        """B-STaR: on a subset of queries, the temperature whose best-over-tau balance
        score is highest; the threshold is re-chosen on the whole round in ``train``."""
        b = self.config.bstar
        seed = derive_seed(self.config.seed, n, "search")
        subset = random.Random(seed).sample(self.problems, min(b.queries, len(self.problems)))
        k = b.num_samples or self.config.sampling.num_samples
        by_temperature, records, seconds = {}, [], 0.0
        model = self.model_for(n - 1)
        sampler = self.sampler(model)  # loaded once for every temperature of the grid
        for i, t in enumerate(b.temperatures):
            rows, summary = self._sample(
                model,
                subset,
                phase=f"search T={t:g}",
                seed=seed + i,
                temperature=t,
                num_samples=k,
                sampler=sampler,
            )
            by_temperature[t], records, seconds = rows, records + rows, seconds + summary["seconds"]
        refs = reference_solutions(self.config, self.task, subset)
        if b.reference and not any(refs.values()) and not self._said_no_references:
            self._said_no_references = True
            self.reporter.line(
                f"bstar.reference: task {self.task.name!r} has no reference solutions; "
                "the balance score counts the model's samples only"
            )
        candidates = {
            t: bstar.with_references(valid_steps_only(self.config, self.task, subset, rows), refs)
            for t, rows in by_temperature.items()
        }
        choice = bstar.choose_configuration(candidates, b.n_star, threshold_grid(b))
        write_jsonl(self.store.iter_dir(n) / "search.jsonl.gz", records)
        choice["scores"] = {f"{t:g}": v for t, v in choice["scores"].items()}
        self.store.complete(n, "search", {**choice, "seconds": seconds, "seed": seed})

    def sample(self, n: int) -> None:
        s = self.config.sampling
        temperature = s.temperature
        if self.config.bstar.enabled:
            temperature = self.store.stats(n)["search"]["temperature"]
        records, summary = self._sample(
            self.model_for(n - 1),
            self.round_problems(n),
            phase="sample",
            seed=derive_seed(self.config.seed, n, "sample"),
            temperature=temperature,
            num_samples=s.num_samples,
        )
        summary["distinct_correct"] = metrics.distinct_correct(records)
        write_jsonl(self.store.iter_dir(n) / "samples.jsonl.gz", records)
        self.store.complete(n, "sample", summary)

    def rationalize(self, n: int) -> None:
        path = self.store.iter_dir(n) / "samples.jsonl.gz"
        # without hinted rows: a kill after this phase's write but before state.json
        # recorded it leaves them in the file, and the rerun must not count them twice
        records = [r for r in read_jsonl(path) if not r["hinted"]]
        problems = self.round_problems(n)
        failed = set(selection.unsolved([p.id for p in problems], records))
        problems = [p for p in problems if p.id in failed and self.config.rationalization]
        hinted, summary = self._sample(
            self.model_for(n - 1),
            problems,
            phase="rationalize",
            seed=derive_seed(self.config.seed, n, "rationalize"),
            temperature=self.config.sampling.temperature,
            num_samples=self.config.sampling.num_samples,
            hinted=True,
        )
        write_jsonl(path, records + hinted)
        summary["attempted"] = len(problems)
        self.store.complete(n, "rationalize", summary)

    def train(self, n: int) -> None:
        records = read_jsonl(self.store.iter_dir(n) / "samples.jsonl.gz")
        rows, chosen = training_set(self.config, self.task, self.problems, records)
        write_jsonl(self.store.iter_dir(n) / "train.jsonl", rows)
        examples = [Example(r["prompt"], r["completion"]) for r in rows]
        t = self.config.train
        init = self.base_path if t.init == "base" else self.model_for(n - 1)
        steps = train_steps(self.config, n)
        schedule = None
        if t.continuous:  # one LR schedule over every iteration's steps
            before = sum(train_steps(self.config, i) for i in range(1, n))
            total = sum(train_steps(self.config, i) for i in range(1, self.config.iterations + 1))
            schedule = (before, total)
        seed = derive_seed(self.config.seed, n, "train")
        trainer = self.trainer()
        if t.num_processes > 1 or t.accelerate_config:
            spec = write_spec(
                self.store.iter_dir(n) / "train_spec.json",
                trainer,
                init=init,
                examples=self.store.iter_dir(n) / "train.jsonl",
                steps=steps,
                out_dir=self.store.model_dir(n),
                seed=seed,
                schedule=schedule,
            )
            self.reporter.line(f"train: accelerate launch, {t.num_processes} processes")
            result = launch(spec, t.num_processes, t.accelerate_config)
        else:
            with self.reporter.phase("train", steps, "steps") as bar:
                result = trainer.fit(
                    init,
                    examples,
                    steps,
                    self.store.model_dir(n),
                    seed,
                    lambda step, loss: bar.advance(1, f"loss {loss:.4f}"),
                    schedule,
                )
        self.store.complete(
            n,
            "train",
            {
                "seconds": result.seconds,
                "tokens": result.tokens,
                "steps": result.steps,
                "loss": result.loss,
                "examples": len(rows),
                "rationalized": sum(r["rationalized"] for r in rows),
                "selected_accuracy": metrics.accuracy(rows),
                **chosen,
                "init": "base" if init == self.base_path else f"iteration {n - 1}",
                "init_checksum": weights_checksum(init),
                "seed": seed,
            },
        )

    def trainer(self) -> HFTrainer:
        return HFTrainer.from_config(self.config)

    def evaluate(self, n: int, model: Path) -> None:
        problems = self.task.eval_problems()
        with self.reporter.phase("eval", len(problems), "problems") as bar:
            sampler = self.sampler(model, self.config.eval.batch_size)
            results, stats = evaluate_greedy(
                self.task, problems, model, self.config, bar.advance, sampler
            )
        write_jsonl(self.store.iter_dir(n) / "eval.jsonl.gz", results)
        # the seed of the pass@k samples (greedy evaluation draws nothing)
        seed = derive_seed(self.config.seed, n, "eval")
        row = {"seconds": stats.seconds, "tokens": stats.tokens, "seed": seed}
        e = self.config.eval
        if e.num_samples:
            samples, summary = self._sample(
                model,
                problems,
                phase="eval pass@k",
                seed=seed,
                temperature=e.temperature,
                num_samples=e.num_samples,
            )
            write_jsonl(self.store.iter_dir(n) / "eval_samples.jsonl.gz", samples)
            row["seconds"] += summary["seconds"]
            row["exploration"] = metrics.exploration(samples, e.ks(), e.k_s_pairs())
            if self.reward_model is not None:
                row["exploration"]["best_of_k_accuracy"] = metrics.best_of_k_accuracy(samples)
        stats_by_phase = {**self.store.stats(n), "eval": row}
        self.store.write_metrics(n, self.metrics_row(n, results, stats_by_phase))
        self.store.complete(n, "eval", row)

    def train_reward_model(self) -> None:
        """Iteration 0: label M's own samples (per step, or per answer) and fit the verifier."""
        r = self.config.reward
        seed = derive_seed(self.config.seed, 0, "reward")
        problems = self.problems
        if r.problems is not None:
            problems = random.Random(seed).sample(problems, min(r.problems, len(problems)))
        records, summary = self._sample(
            self.base_path,
            problems,
            phase="reward samples",
            seed=seed,
            temperature=r.temperature,
            num_samples=r.num_samples,
            score=False,  # labelled, not scored: the verifier does not exist yet
        )
        by_id = {p.id: p for p in problems}
        examples = [self._reward_example(rec, by_id[rec["problem_id"]]) for rec in records]
        with self.reporter.phase("reward model", r.steps, "steps") as bar:
            result = train_reward_model(
                self.base_path,
                examples,
                r.steps,
                self.store.reward_model_dir,
                seed,
                r.batch_size,
                r.lr,
                lambda step, loss: bar.advance(1, f"loss {loss:.4f}"),
            )
        write_jsonl(self.store.iter_dir(0) / "reward_samples.jsonl.gz", records)
        self.store.complete(
            0,
            "reward",
            {
                "samples": summary,
                "examples": len(examples),
                "positive_share": metrics.accuracy(records),
                "steps": result.steps,
                "loss": result.loss,
                "seconds": result.seconds,
                "seed": seed,
            },
        )

    def _reward_example(self, record: dict, problem: Problem) -> RewardExample:
        prompt = self.task.prompt(problem)
        completion = record["completion"]
        if self.config.reward.kind == "outcome":
            return RewardExample(prompt, [completion], [record["correct"]])
        labels = self.task.step_labels(problem, completion)
        return RewardExample(prompt, self.task.steps(completion), labels)

    # -- reporting ----------------------------------------------------------------
    def metrics_row(self, n: int, results: list[dict], phases: dict) -> dict:
        sample = phases.get("sample", {})
        rat = phases.get("rationalize", {})
        train = phases.get("train", {})
        search = phases.get("search", {})
        evaluation = phases["eval"]

        def rate(p: dict) -> float:
            return p["tokens"] / p["seconds"] if p.get("seconds") else 0.0

        greedy = metrics.greedy_accuracies(results)
        return {
            "iteration": n,
            "method": self.config.method,
            **greedy,
            "pass@1": greedy["accuracy"],
            **evaluation.get("exploration", {}),
            "problems": len(self.round_problems(n)) if n else 0,
            "generated_correct": sample.get("correct", 0),
            "distinct_correct": sample.get("distinct_correct"),
            "rationalization_attempts": rat.get("attempted", 0),
            "rationalized": train.get("rationalized", 0),
            "train_examples": train.get("examples", 0),
            "selected_accuracy": train.get("selected_accuracy"),
            "train_steps": train.get("steps", 0),
            "train_loss": train.get("loss"),
            "temperature": sample.get("temperature"),
            "threshold": train.get("threshold"),
            "balance_score": train.get("balance_score"),
            "search_balance_scores": search.get("scores"),
            "unparseable": sum(r["answer"] is None for r in results),
            "seconds": {
                "search": search.get("seconds", 0.0),
                "sample": sample.get("seconds", 0.0),
                "rationalize": rat.get("seconds", 0.0),
                "train": train.get("seconds", 0.0),
                "eval": evaluation["seconds"],
            },
            "tokens_per_second": {"sample": rate(sample), "train": rate(train)},
        }

    def summarize(self, n: int) -> None:
        row = next(r for r in self.store.metrics() if r["iteration"] == n)
        if self.tracker is not None:
            self.tracker.log(row)
        chosen = ""
        if self.config.bstar.enabled:
            chosen = f"  T={row['temperature']:g} tau={row['threshold']:g}"
        self.reporter.line(
            f"iteration {n}/{self.config.iterations}: {_accuracy_line(row)}"
            f"  kept {row['train_examples']} ({row['rationalized']} rationalized)"
            f"  steps {row['train_steps']}{chosen}"
        )


def evaluate_greedy(
    task: Task,
    problems: list[Problem],
    model: Path,
    config: RunConfig,
    progress=None,
    sampler: Sampler | None = None,
) -> tuple[list[dict], SamplingStats]:
    """Greedy answers of ``model`` (by ``sampler``, else an HF one) to ``problems``."""
    m = config.model
    sampler = sampler or HFSampler(
        model,
        config.eval.batch_size,
        config.sampling.max_new_tokens,
        dtype=m.dtype,
        chat_template=m.chat_template,
    )
    prompts = [task.prompt(p) for p in problems]
    generations, stats = sampler.generate(prompts, 1, 0.0, 0, progress)
    answers = [task.extract_answer(gen.text) for (gen,) in generations]
    correct = task.is_correct_many(answers, problems)
    results = [
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


def mark_valid(task: Task, problems: list[Problem], results: list[dict]) -> list[dict]:
    """With per-step gold (``task.step_gold``), each result's ``valid``: the answer is right
    and every step is too. On the expression task a wrong chain often ends on the right
    digit (answers mod 10, zero factors), so ``correct`` alone overstates what is learnt."""
    if not task.step_gold:
        return results
    valid = steps_valid(task, problems, results)
    return [{**r, "valid": r["correct"] and ok} for r, ok in zip(results, valid, strict=True)]


def run(config: RunConfig, out: Path, resume: bool = False, reporter: Reporter | None = None):
    """Start a run in ``out`` (or continue the one there) and return its metrics rows."""
    store = RunStore(out)
    store.lock(create=not resume)  # one process per run directory, released however it ends
    try:
        return _run(store, config, resume, reporter)
    finally:
        store.unlock()


def _stored_config(store: RunStore, given: RunConfig) -> RunConfig:
    """The run's own config, refusing a ``given`` one with other settings: resuming with
    them silently would mix two configs in one run, unrecorded (``quiet`` only shows)."""
    stored = store.load_config()
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
    return stored


def _run(store: RunStore, config: RunConfig, resume: bool, reporter: Reporter | None):
    out = store.root
    if resume:
        # fails clearly when ``out`` is not a run or is damaged; finishes a settings
        # change a kill interrupted; clears the temp files of a killed writer
        store.prepare_resume()
        config = _stored_config(store, config)
    task = build_task(config)  # a bad data file fails here, before a new run is written
    if not resume:
        store.create(config)
    reporter = reporter or Reporter(quiet=config.quiet)
    _record_environment(store, reporter)
    torch.manual_seed(config.seed)
    loop = Loop(config, store, task, base_model_path(config, reporter), reporter)
    with Tracker(config, out) as tracker:
        loop.tracker = tracker
        try:
            if config.reward.enabled and not store.done(0, "reward"):
                loop.train_reward_model()  # first: iteration 0's evaluation already uses it
            if not store.done(0, "eval"):
                loop.evaluate(0, loop.base_path)
            reporter.line(f"base model M: {_accuracy_line(store.metrics()[0])}")
            tracker.log_rows(store.metrics())
            return loop.run()
        finally:
            loop.close()


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


def _accuracy_line(row: dict) -> str:
    buckets = " ".join(f"{b}:{a:.0%}" for b, a in row["accuracy_by_bucket"].items())
    return f"accuracy {row['accuracy']:.1%} [{buckets}]"


def default_run_dir(config: RunConfig) -> Path:
    return Path("runs") / f"{config.method}-{config.task.name}-{time.strftime('%Y%m%d-%H%M%S')}"
