"""A user's own data: any file or hub data set, with the fields and answer type in config.

``task.question_field`` (default ``question``) and ``task.answer_field`` (default
``answer``) name the fields; ``task.answer_type`` picks the checker:

- ``number``: as GSM8K (the gold may be a number or a solution ending ``#### N``);
- ``string``: exact match after ``normalize_string`` (case, spaces, quotes, final period);
  the model's answer is what follows ``The answer is``, else ``\\boxed{}``, else its last line;
- ``choice``: as CommonsenseQA/ARC; the choices come from a ``choices`` field when the rows
  have one, else the question is expected to list them as ``(A) ...`` lines;
- ``math``: as MATH (math-verify in worker processes).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from selftaught.tasks.answers import extract_string, normalize_label, normalize_string
from selftaught.tasks.base import Problem
from selftaught.tasks.choice import ChoiceTask
from selftaught.tasks.data import DataTask
from selftaught.tasks.gsm8k import GSM8KTask
from selftaught.tasks.math_task import MathTask
from selftaught.tasks.sources import Record

if TYPE_CHECKING:
    from selftaught.config import DataTaskConfig


class JsonlTask(DataTask):
    """The ``jsonl`` task: one class per ``task.answer_type``, all under this name;
    ``JsonlTask.from_config`` builds the one the config asks for."""

    name = "jsonl"

    @classmethod
    def from_config(cls, config: DataTaskConfig, base_dir: Path | None = None) -> DataTask:
        if cls is JsonlTask:
            return KINDS[config.answer_type].from_config(config, base_dir)
        return super().from_config(config, base_dir)


class JsonlNumberTask(JsonlTask, GSM8KTask):
    instruction = (
        'Solve the problem step by step. End with a line "The answer is N." where N is a number.'
    )


class JsonlMathTask(JsonlTask, MathTask):
    pass


class JsonlStringTask(JsonlTask):
    instruction = 'Answer the question step by step. End with a line "The answer is X."'

    def problem(self, record: Record, role: str) -> Problem:
        question = record.get(self.config.question_field or "question")
        gold = str(record.get(self.config.answer_field or "answer", kind=(str, int, float)))
        if not normalize_string(gold):
            raise record.fail(f"field {self.config.answer_field or 'answer'!r} is empty")
        return Problem(self.row_id(record, role), question.strip(), gold.strip(), "1")

    def extract_answer(self, completion: str) -> str | None:
        return extract_string(self.own_part(completion))

    def is_correct(self, answer: str | None, problem: Problem) -> bool:
        return answer is not None and normalize_string(answer) == normalize_string(problem.answer)


class JsonlChoiceTask(JsonlTask, ChoiceTask):
    """Choices from a ``choices`` field, or already listed in the question."""

    answer_fields = ("answer", "answerKey")

    def problem(self, record: Record, role: str) -> Problem:
        if "choices" in record.row or isinstance(record.row.get("question"), dict):
            return super().problem(record, role)
        question = record.get(self.config.question_field or "question")
        field = self.config.answer_field or "answer"
        key = record.get(field, kind=(str, int))
        try:
            answer = normalize_label(key)
        except ValueError as err:
            raise record.fail(f"field {field!r}: {err}") from None
        return Problem(self.row_id(record, role), question.strip(), answer, "1")

    def __init__(self, config, base=None):
        super().__init__(config, base)
        if not self._labels_seen():
            self.letters = "ABCDEFGHIJ"

    def _labels_seen(self) -> bool:
        return any(self._labels(p.question) for p in self._train + self._eval)


KINDS: dict[str, type[JsonlTask]] = {  # task.answer_type -> its class
    "number": JsonlNumberTask,
    "string": JsonlStringTask,
    "choice": JsonlChoiceTask,
    "math": JsonlMathTask,
}
