"""The Task interface: a task that leaves out a method it must define cannot be built."""

from __future__ import annotations

import pytest

from selftaught.config import DataTaskConfig
from selftaught.tasks.base import Problem, Task
from selftaught.tasks.data import DataTask


class WithoutExtractAnswer(Task):
    """Every abstract method but ``extract_answer``."""

    name = "incomplete"
    sizes = [1]

    @classmethod
    def from_config(cls, config, base_dir=None):
        return cls()

    def train_problems(self) -> list[Problem]:
        return []

    def eval_problems(self) -> list[Problem]:
        return []

    def seed_examples(self, count, sizes, hinted_fraction, salt="seed"):
        return []

    def prompt(self, problem: Problem, hint: bool = False) -> str:
        return problem.question

    def is_correct(self, answer: str | None, problem: Problem) -> bool:
        return answer == problem.answer

    def leaks_hint(self, completion: str) -> bool:
        return False

    def steps(self, completion: str) -> list[str]:
        return [completion]

    def step_labels(self, problem: Problem, completion: str) -> list[bool]:
        return [True]


def test_a_task_without_extract_answer_cannot_be_built():
    with pytest.raises(TypeError, match="extract_answer"):
        WithoutExtractAnswer()


def test_a_task_with_every_method_can_be_built():
    class Complete(WithoutExtractAnswer):
        def extract_answer(self, completion: str) -> str | None:
            return completion

    task = Complete()
    problem = Problem("p", "q", "a", "1")
    assert task.is_correct_many([task.extract_answer("a")], [problem]) == [True]
    assert task.reference(problem) is None


def test_a_data_task_without_its_answer_methods_cannot_be_built():
    class Incomplete(DataTask):  # rows, prompts and steps, but no answers
        def problem(self, record, role):
            raise AssertionError("never reached: the class is abstract")

    config = DataTaskConfig(name="gsm8k", path="unused.jsonl")
    with pytest.raises(TypeError, match="extract_answer"):
        Incomplete(config)
