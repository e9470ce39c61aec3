"""Tasks by name: a dict, not a registry."""

from __future__ import annotations

from selftaught.config import RunConfig
from selftaught.tasks.addition import AdditionTask
from selftaught.tasks.base import Example, Problem, Task

__all__ = ["Example", "Problem", "Task", "AdditionTask", "build_task", "TASKS"]

TASKS = {"addition": "n-digit addition with the STaR scratchpad; bucket = digit count"}


def build_task(config: RunConfig) -> Task:
    t = config.task
    if t.name == "addition":
        return AdditionTask(t.min_digits, t.max_digits, t.train_size, t.eval_size, config.seed)
    raise ValueError(f"task.name: unknown task {t.name!r}; expected one of {', '.join(TASKS)}")
