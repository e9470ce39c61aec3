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
    "gsm8k": "grade-school word problems (hub name or local file); the gold after '####', "
    "answers compared as numbers",
    "math": "competition math (MATH, MATH500); answers checked with math-verify; bucket = level",
    "commonsenseqa": "multiple choice, STaR's format; the hint marks the right choice",
    "arc": "ARC multiple choice (labels 1-4 read as A-D); the hint marks the right choice",
    "jsonl": "your own data: task.question_field, task.answer_field, task.answer_type "
    "(number, string, choice, math)",
    "code": "programs judged by stdin/stdout test cases (APPS), run only in the sandbox; "
    "rows: question, tests [{input, output}] (or APPS's input_output)",
}


def build_task(config: RunConfig) -> Task:
    t = config.task
    if t.name == "addition":
        return AdditionTask(t.min_digits, t.max_digits, t.train_size, t.eval_size, t.seed)
    if t.name == "expression":
        return ExpressionTask(t.min_terms, t.max_terms, t.train_size, t.eval_size, t.seed)
    if t.name == "gsm8k":
        from selftaught.tasks.gsm8k import GSM8KTask

        return GSM8KTask(t)
    if t.name == "math":
        from selftaught.tasks.math_task import MathTask

        return MathTask(t)
    if t.name in ("commonsenseqa", "arc"):
        from selftaught.tasks.choice import ARCTask, CommonsenseQATask

        return (ARCTask if t.name == "arc" else CommonsenseQATask)(t)
    if t.name == "jsonl":
        from selftaught.tasks.jsonl import JsonlTask

        return JsonlTask(t)
    if t.name == "code":
        from selftaught.tasks.code import CodeTask

        return CodeTask(t)
    raise ValueError(f"task.name: unknown task {t.name!r}; expected one of {', '.join(TASKS)}")
