"""GSM8K: grade-school word problems with a number for an answer.

Rows: ``question`` and ``answer``, the worked solution whose last line is ``#### <number>``
(``task.question_field`` / ``task.answer_field`` rename them). The gold is that number in
normal form (``1,080`` -> ``1080``). The model is asked to end with ``The answer is N.``;
its answer is read from the last ``The answer is``, ``#### N`` or ``\\boxed{N}``, else the
last number, and compared as a number (``1,000 == 1000``, ``3.0 == 3``, ``1/2 == 0.5``).
The hint (STaR's rationalization) is a line ``(Hint: the answer is N)`` under the question.
One difficulty bucket; steps are lines.
"""

from __future__ import annotations

import re

from selftaught.tasks.answers import extract_number, gsm8k_gold, normalize_number, numbers_equal
from selftaught.tasks.base import Problem
from selftaught.tasks.data import DataTask
from selftaught.tasks.sources import Record

INSTRUCTION = (
    "Solve the math word problem step by step. "
    'End with a line "The answer is N." where N is the final number.'
)
_CALCULATOR = re.compile(r"<<[^<>]*>>")


def rationale_of(solution: str) -> tuple[str, str]:
    """A GSM8K worked solution as ``(rationale, gold)``: the ``<<48/2=24>>`` calculator
    notes and the ``#### N`` line removed, so it reads as the model is asked to write."""
    body = solution.rpartition("####")[0]
    return _CALCULATOR.sub("", body).strip(), gsm8k_gold(solution)


class GSM8KTask(DataTask):
    name = "gsm8k"
    instruction = INSTRUCTION

    def problem(self, record: Record, role: str) -> Problem:
        question = record.get(self.config.question_field or "question")
        raw = record.get(self.config.answer_field or "answer", kind=(str, int, float))
        reference = None
        if isinstance(raw, str) and "####" in raw:
            try:
                rationale, gold = rationale_of(raw)
            except ValueError as err:
                raise record.fail(f"field 'answer': {err}") from None
            reference = f"{rationale}\nThe answer is {gold}."
        else:
            gold = normalize_number(str(raw))
            if gold is None:
                raise record.fail(
                    f"field 'answer' has no number ({str(raw)[:40]!r}); expected a worked "
                    "solution ending '#### <number>', or a number"
                )
        return Problem(self.row_id(record, role), question.strip(), gold, "1", reference)

    def extract_answer(self, completion: str) -> str | None:
        return extract_number(self.own_part(completion))

    def is_correct(self, answer: str | None, problem: Problem) -> bool:
        return numbers_equal(answer, problem.answer)
