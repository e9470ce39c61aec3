"""Tasks by name: a dict, not a registry."""

from __future__ import annotations

from selftaught.config import RunConfig
from selftaught.tasks.addition import AdditionTask
from selftaught.tasks.base import Example, Problem, Task
from selftaught.tasks.expression import ExpressionTask

__all__ = ["Example", "Problem", "Task", "AdditionTask", "ExpressionTask", "build_task", "TASKS"]

TASKS = {
    "addition": "n-digit addition with the STaR scratchpad; bucket = digit count",
    "expression": "+ and * of digits mod 10, reduced one pair per line in any valid order "
    "(many correct rationales); bucket = term count",
}


def build_task(config: RunConfig) -> Task:
    t = config.task
    if t.name == "addition":
        return AdditionTask(t.min_digits, t.max_digits, t.train_size, t.eval_size, t.seed)
    if t.name == "expression":
        return ExpressionTask(t.min_terms, t.max_terms, t.train_size, t.eval_size, t.seed)
    raise ValueError(f"task.name: unknown task {t.name!r}; expected one of {', '.join(TASKS)}")
