"""What the loop needs from a task: problems, prompts (with and without the hint),
answer extraction and checking. Pure: no model, no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: str  # the gold answer, in the task's normal form
    bucket: str  # difficulty bucket for per-bucket metrics


@dataclass(frozen=True)
class Example:
    """One training pair; the loss covers ``completion`` only."""

    prompt: str
    completion: str


class Task(Protocol):
    name: str

    def train_problems(self) -> list[Problem]: ...

    def eval_problems(self) -> list[Problem]: ...

    def prompt(self, problem: Problem, hint: bool = False) -> str:
        """The model's input; with ``hint`` the gold answer is shown (STaR rationalization)."""

    def extract_answer(self, completion: str) -> str | None:
        """The answer in normal form, or None when the completion has no parseable answer."""

    def is_correct(self, answer: str | None, problem: Problem) -> bool: ...

    def leaks_hint(self, completion: str) -> bool:
        """True when a completion mentions the hint, which must never reach training."""
