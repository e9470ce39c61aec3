"""What every phase of one run works with: its config, run directory, task, base model,
samplers and reward model, and which problems each iteration asks."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from selftaught.config import RunConfig
from selftaught.loop.schedule import derive_seed
from selftaught.models.reward import HFRewardModel
from selftaught.progress import Reporter
from selftaught.rollout import Rollout
from selftaught.samplers.pool import SamplerPool
from selftaught.store import RunStore
from selftaught.tasks import Problem, Task
from selftaught.tracking import Tracker


@dataclass
class RunContext:
    config: RunConfig
    store: RunStore
    task: Task
    base_path: Path  # the base model M
    reporter: Reporter
    tracker: Tracker | None = None
    samplers: SamplerPool = field(init=False)
    said_no_references: bool = False  # B-STaR's note, once a run rather than every round

    def __post_init__(self) -> None:
        self.samplers = SamplerPool(self.config, self.task.stop)

    @cached_property
    def reward_model(self) -> HFRewardModel | None:
        """Loaded on first use: iteration 0 trains it before anything scores with it."""
        if not self.config.reward.enabled:
            return None
        return HFRewardModel(self.store.reward_model_dir)

    def rollout(self, iteration: int, scored: bool = True) -> Rollout:
        """Sampling the model after ``iteration``, prompted as ``task_for`` says.
        ``scored``: with the reward model, when there is one (iteration 0's samples, on
        which it is trained, are labelled instead)."""
        reward_model = self.reward_model if scored else None
        return Rollout(
            self.task_for(iteration),
            self.reporter,
            self.samplers.get,
            reward_model,
            self.config.reward.kind,
        )

    def task_for(self, iteration: int) -> Task:
        """The task as the model after ``iteration`` is prompted (0: M, few-shot)."""
        return self.task if iteration == 0 else self._trained_task

    @cached_property
    def _trained_task(self) -> Task:
        return self.task.for_trained_model()

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
        """The checkpoint after ``iteration`` (0: M)."""
        return self.base_path if iteration == 0 else self.store.model_dir(iteration)

    def seed(self, iteration: int, phase: str) -> int:
        return derive_seed(self.config.seed, iteration, phase)

    def close(self) -> None:
        self.samplers.close()
