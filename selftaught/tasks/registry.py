"""Every task by name: its class, its config class and one line for ``selftaught tasks``.

``build_task`` and the CLI read this table. ``selftaught.config`` cannot import it (the
task modules import config classes), so the config keeps the task names in its ``name``
Literals, from which the discriminated union and ``config.TASK_CONFIGS`` follow; a test
holds the two to the same names and config classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from selftaught.config import (
    AdditionTaskConfig,
    DataTaskConfig,
    ExpressionTaskConfig,
    TaskConfig,
)
from selftaught.tasks.addition import AdditionTask
from selftaught.tasks.base import Task
from selftaught.tasks.choice import ARCTask, CommonsenseQATask
from selftaught.tasks.code import CodeTask
from selftaught.tasks.expression import ExpressionTask
from selftaught.tasks.gsm8k import GSM8KTask
from selftaught.tasks.jsonl import JsonlTask
from selftaught.tasks.math_task import MathTask


@dataclass(frozen=True)
class TaskEntry:
    task: type[Task]  # built with task.from_config(config, base_dir)
    config: type[BaseModel]  # the config class of ``task:`` sections with this name
    about: str


TASKS: dict[str, TaskEntry] = {
    "addition": TaskEntry(
        AdditionTask,
        AdditionTaskConfig,
        "n-digit addition with the STaR scratchpad (or, for a pretrained model, worded "
        "rationales after task.few_shot exemplars); bucket = digit count",
    ),
    "expression": TaskEntry(
        ExpressionTask,
        ExpressionTaskConfig,
        "+ and * of digits mod 10, reduced one pair per line in any valid order "
        "(many correct rationales); bucket = term count",
    ),
    "gsm8k": TaskEntry(
        GSM8KTask,
        DataTaskConfig,
        "grade-school word problems (hub name or local file); the gold after '####', "
        "answers compared as numbers",
    ),
    "math": TaskEntry(
        MathTask,
        DataTaskConfig,
        "competition math (MATH, MATH500); answers checked with math-verify; bucket = level",
    ),
    "commonsenseqa": TaskEntry(
        CommonsenseQATask,
        DataTaskConfig,
        "multiple choice, STaR's format; the hint marks the right choice",
    ),
    "arc": TaskEntry(
        ARCTask,
        DataTaskConfig,
        "ARC multiple choice (labels 1-4 read as A-D); the hint marks the right choice",
    ),
    "jsonl": TaskEntry(
        JsonlTask,
        DataTaskConfig,
        "your own data: task.question_field, task.answer_field, task.answer_type "
        "(number, string, choice, math)",
    ),
    "code": TaskEntry(
        CodeTask,
        DataTaskConfig,
        "programs judged by stdin/stdout test cases (APPS), run only in the sandbox; "
        "rows: question, tests [{input, output}] (or APPS's input_output)",
    ),
}


def build_task(task_config: TaskConfig, base_dir: Path | None = None) -> Task:
    """The task of a ``task:`` config section. ``base_dir``: where relative data paths
    start; None, the working directory."""
    entry = TASKS.get(task_config.name)
    if entry is None:
        raise ValueError(
            f"task.name: unknown task {task_config.name!r}; expected one of {', '.join(TASKS)}"
        )
    if not isinstance(task_config, entry.config):
        raise TypeError(
            f"task {task_config.name!r} is configured by {entry.config.__name__}, "
            f"got {type(task_config).__name__}"
        )
    return entry.task.from_config(task_config, base_dir)
