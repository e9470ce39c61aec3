"""The expert-iteration loop: sample -> check -> rationalize -> select -> train -> evaluate.

Each phase of each iteration writes its outputs, then is marked done in ``state.json``;
on resume a finished phase is read back from disk and an unfinished one is run again
from its own derived seed, so the result equals an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from selftaught import metrics, selection
from selftaught.config import RunConfig
from selftaught.models.base_model import base_model_path
from selftaught.models.sampling import HFSampler, SamplingStats
from selftaught.models.training import HFTrainer
from selftaught.progress import Reporter
from selftaught.store import RunStore, read_jsonl, write_jsonl
from selftaught.tasks import Example, Problem, Task, build_task


def derive_seed(seed: int, iteration: int, phase: str) -> int:
    digest = hashlib.sha256(f"{seed}/{iteration}/{phase}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def train_steps(config: RunConfig, iteration: int) -> int:
    """STaR's schedule: more steps each iteration (paper: +20%; its arithmetic run: +20 steps)."""
    t = config.train
    return round(t.steps * (1 + t.steps_growth) ** (iteration - 1)) + t.steps_increment * (
        iteration - 1
    )


def weights_checksum(path: Path) -> str:
    """Of the saved weights: proves which checkpoint an iteration trained from."""
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

    # -- driving ------------------------------------------------------------------
    def run(self) -> list[dict]:
        """Iterations 1..N, skipping the phases a killed run had already completed."""
        phases = {
            "sample": self.sample,
            "rationalize": self.rationalize,
            "train": self.train,
            "eval": lambda n: self.evaluate(n, self.store.model_dir(n)),
        }
        for n in range(1, self.config.iterations + 1):
            for name, phase in phases.items():
                if not self.store.done(n, name):
                    phase(n)
            self.summarize(n)
        return self.store.metrics()

    @cached_property
    def problems(self) -> list[Problem]:
        return self.task.train_problems()

    def model_for(self, iteration: int) -> Path:
        return self.base_path if iteration == 0 else self.store.model_dir(iteration)

    def sampler(self, model: Path) -> HFSampler:
        s = self.config.sampling
        return HFSampler(model, s.batch_size, s.max_new_tokens, s.top_p)

    # -- phases -------------------------------------------------------------------
    def _sample(
        self, n: int, problems: list[Problem], hinted: bool, phase: str
    ) -> tuple[list, dict]:
        s = self.config.sampling
        seed = derive_seed(self.config.seed, n, phase)
        prompts = [self.task.prompt(p, hint=hinted) for p in problems]
        generations, stats = [], SamplingStats()
        if prompts:  # loading a model to sample nothing would cost seconds
            with self.reporter.phase(phase, len(prompts) * s.num_samples) as bar:
                generations, stats = self.sampler(self.model_for(n - 1)).generate(
                    prompts, s.num_samples, s.temperature, seed, bar.advance
                )
        records = []
        for problem, prompt, gens in zip(problems, prompts, generations, strict=True):
            for k, gen in enumerate(gens):
                answer = self.task.extract_answer(gen.text)
                records.append(
                    {
                        "problem_id": problem.id,
                        "bucket": problem.bucket,
                        "sample": k,
                        "prompt": prompt,
                        "completion": gen.text,
                        "answer": answer,
                        "correct": self.task.is_correct(answer, problem),
                        "hinted": hinted,
                        "temperature": s.temperature,
                        "tokens": gen.tokens,
                    }
                )
        summary = {
            "seconds": stats.seconds,
            "tokens": stats.tokens,
            "samples": len(records),
            "correct": sum(r["correct"] for r in records),
            "unparseable": sum(r["answer"] is None for r in records),
            "seed": seed,
        }
        return records, summary

    def sample(self, n: int) -> None:
        records, summary = self._sample(n, self.problems, False, "sample")
        write_jsonl(self.store.iter_dir(n) / "samples.jsonl.gz", records)
        self.store.complete(n, "sample", summary)

    def rationalize(self, n: int) -> None:
        path = self.store.iter_dir(n) / "samples.jsonl.gz"
        records = read_jsonl(path)
        failed = set(selection.unsolved([p.id for p in self.problems], records))
        problems = [p for p in self.problems if p.id in failed and self.config.rationalization]
        hinted, summary = self._sample(n, problems, True, "rationalize")
        write_jsonl(path, records + hinted)
        summary["attempted"] = len(problems)
        self.store.complete(n, "rationalize", summary)

    def train(self, n: int) -> None:
        records = read_jsonl(self.store.iter_dir(n) / "samples.jsonl.gz")
        kept = selection.correct_only(records)
        kept = selection.without(kept, self.task.leaks_hint)
        kept = selection.dedupe(kept)
        by_id = {p.id: p for p in self.problems}
        # the hint is dropped here: the example is written as if the model reasoned unaided
        rows = [
            {
                "prompt": self.task.prompt(by_id[r["problem_id"]]),
                "completion": r["completion"],
                "problem_id": r["problem_id"],
                "rationalized": r["hinted"],
            }
            for r in kept
        ]
        write_jsonl(self.store.iter_dir(n) / "train.jsonl", rows)
        examples = [Example(r["prompt"], r["completion"]) for r in rows]
        init = self.base_path if self.config.train.init == "base" else self.model_for(n - 1)
        steps = train_steps(self.config, n)
        t = self.config.train
        trainer = HFTrainer(t.batch_size, t.lr, t.warmup_ratio, t.weight_decay, t.max_grad_norm)
        seed = derive_seed(self.config.seed, n, "train")
        with self.reporter.phase("train", steps) as bar:
            result = trainer.fit(
                init,
                examples,
                steps,
                self.store.model_dir(n),
                seed,
                lambda step, loss: bar.advance(1, f"loss {loss:.4f}"),
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
                "init": "base" if init == self.base_path else f"iteration {n - 1}",
                "init_checksum": weights_checksum(init),
                "seed": seed,
            },
        )

    def evaluate(self, n: int, model: Path) -> None:
        problems = self.task.eval_problems()
        with self.reporter.phase("eval", len(problems)) as bar:
            results, stats = evaluate_greedy(self.task, problems, model, self.config, bar.advance)
        write_jsonl(self.store.iter_dir(n) / "eval.jsonl.gz", results)
        stats_by_phase = self.store.stats(n)
        self.store.write_metrics(n, self.metrics_row(n, results, stats_by_phase, stats.seconds))
        self.store.complete(n, "eval", {"seconds": stats.seconds, "tokens": stats.tokens})

    # -- reporting ----------------------------------------------------------------
    def metrics_row(self, n: int, results: list[dict], phases: dict, eval_seconds: float) -> dict:
        sample = phases.get("sample", {})
        rat = phases.get("rationalize", {})
        train = phases.get("train", {})

        def rate(p: dict) -> float:
            return p["tokens"] / p["seconds"] if p.get("seconds") else 0.0

        return {
            "iteration": n,
            "method": self.config.method,
            "accuracy": metrics.accuracy(results),
            "accuracy_by_bucket": metrics.accuracy_by_bucket(results),
            "problems": len(self.problems) if n else 0,
            "generated_correct": sample.get("correct", 0),
            "rationalization_attempts": rat.get("attempted", 0),
            "rationalized": train.get("rationalized", 0),
            "train_examples": train.get("examples", 0),
            "train_steps": train.get("steps", 0),
            "train_loss": train.get("loss"),
            "unparseable": sum(r["answer"] is None for r in results),
            "seconds": {
                "sample": sample.get("seconds", 0.0),
                "rationalize": rat.get("seconds", 0.0),
                "train": train.get("seconds", 0.0),
                "eval": eval_seconds,
            },
            "tokens_per_second": {"sample": rate(sample), "train": rate(train)},
        }

    def summarize(self, n: int) -> None:
        row = next(r for r in self.store.metrics() if r["iteration"] == n)
        self.reporter.line(
            f"iteration {n}/{self.config.iterations}: {_accuracy_line(row)}"
            f"  kept {row['train_examples']} ({row['rationalized']} rationalized)"
            f"  steps {row['train_steps']}"
        )


def evaluate_greedy(
    task: Task, problems: list[Problem], model: Path, config: RunConfig, progress=None
) -> tuple[list[dict], SamplingStats]:
    """Greedy answers of ``model`` to ``problems``, one result dict per problem."""
    sampler = HFSampler(model, config.eval.batch_size, config.sampling.max_new_tokens)
    prompts = [task.prompt(p) for p in problems]
    generations, stats = sampler.generate(prompts, 1, 0.0, 0, progress)
    results = []
    for problem, (gen,) in zip(problems, generations, strict=True):
        answer = task.extract_answer(gen.text)
        results.append(
            {
                "problem_id": problem.id,
                "bucket": problem.bucket,
                "completion": gen.text,
                "answer": answer,
                "correct": task.is_correct(answer, problem),
            }
        )
    return results, stats


def run(config: RunConfig, out: Path, resume: bool = False, reporter: Reporter | None = None):
    """Start a run in ``out`` (or continue the one there) and return its metrics rows."""
    store = RunStore(out)
    if resume:
        config = store.load_config()
        store.state()  # fails clearly when ``out`` is not a run
    else:
        store.create(config)
    reporter = reporter or Reporter(quiet=config.quiet)
    torch.manual_seed(config.seed)
    task = build_task(config)
    loop = Loop(config, store, task, base_model_path(config, reporter), reporter)
    if not store.done(0, "eval"):
        loop.evaluate(0, loop.base_path)
    reporter.line(f"base model M: {_accuracy_line(store.metrics()[0])}")
    return loop.run()


def _accuracy_line(row: dict) -> str:
    buckets = " ".join(f"{b}:{a:.0%}" for b, a in row["accuracy_by_bucket"].items())
    return f"accuracy {row['accuracy']:.1%} [{buckets}]"


def default_run_dir(config: RunConfig) -> Path:
    return Path("runs") / f"{config.method}-{config.task.name}-{time.strftime('%Y%m%d-%H%M%S')}"
