"""The tasks: the interface (``base``), and every task by name (``registry``)."""

from __future__ import annotations

from selftaught.tasks.addition import AdditionTask
from selftaught.tasks.base import Example, Problem, Task
from selftaught.tasks.expression import ExpressionTask
from selftaught.tasks.registry import TASKS, TaskEntry, build_task

__all__ = [
    "Example",
    "Problem",
    "Task",
    "AdditionTask",
    "ExpressionTask",
    "build_task",
    "TASKS",
    "TaskEntry",
]
