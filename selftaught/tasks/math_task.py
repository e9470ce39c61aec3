"""MATH (competition mathematics), checked with math-verify.

Rows, in any of the usual formats:

- the MATH500 file B-STaR used: ``input`` (``# Question\\n\\n...\\n\\n# Solution\\n\\n``),
  ``gt_answer`` (LaTeX), ``answer`` (the same, or ``Unavailable``), ``subject``, ``level``;
- HuggingFaceH4/MATH-500 and the original MATH: ``problem``, ``solution`` (with a
  ``\\boxed{}`` answer), ``answer`` (MATH-500), ``level`` (``3`` or ``"Level 3"``), ``type``.

The gold is ``gt_answer``, else ``answer``, else the last ``\\boxed{}`` of ``solution``;
``task.question_field`` / ``task.answer_field`` name other fields. The bucket is the level
(``"?"`` where it is unknown), so accuracy is reported per level.

The model is asked to end with ``The answer is $\\boxed{X}$.``; its answer is the last
``\\boxed{}`` (else what follows ``The answer is``), compared with the gold by math-verify in
worker processes (see ``math_verifier.MathVerifier``: safe from any thread, with a deadline per
check). Every gold is parsed once at load time: a gold math-verify cannot turn into a sympy
expression is *reported* (a warning with the problem ids, ``gold_unparseable``, and
``unparseable_checks`` counting the checks against it), and is still compared, as a
string, by math-verify and after ``normalize_string``, never scored 0 by default.
Steps are paragraphs (cut at blank lines).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from selftaught.tasks.answers import extract_math, last_boxed, normalize_string
from selftaught.tasks.base import Problem
from selftaught.tasks.data import DataTask, split_paragraphs
from selftaught.tasks.math_verifier import MathVerifier, math_verify_installed, shared_verifier
from selftaught.tasks.sources import DataError, Record

if TYPE_CHECKING:
    from selftaught.config import DataTaskConfig

log = logging.getLogger(__name__)

INSTRUCTION = (
    "Solve the problem step by step. "
    'End with "The answer is $\\boxed{X}$." where X is the final answer in LaTeX.'
)
_WRAPPED = re.compile(r"(?s)\A\s*#\s*Question\s*\n(.*?)(?:\n\s*#\s*Solution\s*)?\Z")


def question_of(text: str) -> str:
    """MATH500's ``# Question\\n\\n...\\n\\n# Solution\\n\\n`` wrapper removed."""
    match = _WRAPPED.match(text)
    return (match.group(1) if match else text).strip()


def level_of(value: object) -> str:
    """``3``, ``"3"`` or ``"Level 3"`` -> ``"3"``; anything else (``"Level ?"``) -> ``"?"``."""
    match = re.fullmatch(r"\s*(?:level\s*)?(\d+)\s*", str(value), re.IGNORECASE)
    return match.group(1) if match and not isinstance(value, bool) else "?"


class MathTask(DataTask):
    name = "math"
    instruction = INSTRUCTION

    def __init__(
        self,
        config: DataTaskConfig,
        base: Path | None = None,
        verifier: MathVerifier | None = None,
        unparseable_gold: str = "warn",
    ):
        """``unparseable_gold``: ``"warn"`` (report, and compare those as strings) or
        ``"error"`` (refuse to start)."""
        if not math_verify_installed():
            raise DataError(
                f"task {config.name!r} checks answers with math-verify: pip install math-verify"
            )
        self.verifier = verifier or shared_verifier()
        self.unparseable_checks = 0
        self.gold_unparseable: dict[str, str] = {}  # problem id -> gold
        self._bad_golds: set[str] = set()
        super().__init__(config, base)
        problems = self._train + self._eval
        parsed = self.verifier.gold_parses([p.answer for p in problems])
        self.gold_unparseable = {
            p.id: p.answer for p, ok in zip(problems, parsed, strict=True) if not ok
        }
        self._bad_golds = set(self.gold_unparseable.values())
        if self.gold_unparseable:
            shown = ", ".join(f"{i}: {g!r}" for i, g in list(self.gold_unparseable.items())[:10])
            message = (
                f"task {self.name}: math-verify cannot parse {len(self.gold_unparseable)} of "
                f"{len(problems)} gold answers ({shown}); they are compared as strings"
            )
            if unparseable_gold == "error":
                raise DataError(message)
            log.warning(message)

    def problem(self, record: Record, role: str) -> Problem:
        question = record.get(
            *([self.config.question_field] if self.config.question_field else []),
            "problem",
            "question",
            "input",
        )
        gold = self._gold(record)
        level = record.row.get("level")
        bucket = level_of(level) if level is not None else "1"
        solution = record.row.get("solution")
        reference = solution.strip() if isinstance(solution, str) and last_boxed(solution) else None
        return Problem(self.row_id(record, role), question_of(question), gold, bucket, reference)

    def _gold(self, record: Record) -> str:
        if self.config.answer_field:
            gold = str(record.get(self.config.answer_field, kind=(str, int, float)))
        else:
            gold = None
            for key in ("gt_answer", "answer"):
                value = record.row.get(key)
                if value is not None and str(value).strip() not in ("", "Unavailable"):
                    gold = str(record.get(key, kind=(str, int, float)))
                    break
            if gold is None and isinstance(record.row.get("solution"), str):
                gold = last_boxed(record.row["solution"])
            if gold is None:
                has = ", ".join(repr(k) for k in record.row)
                raise record.fail(
                    "no gold answer: expected 'gt_answer', 'answer', or a 'solution' with "
                    f"\\boxed{{}} (the row has {has})"
                )
        if not gold.strip():
            raise record.fail("the gold answer is empty")
        return gold.strip()

    # -- text -----------------------------------------------------------------------------
    def answer_text(self, answer: str) -> str:
        return f"The answer is $\\boxed{{{answer}}}$."

    def hinted_question(self, problem: Problem) -> str:
        return f"{problem.question}\n(Hint: the answer is ${problem.answer}$)"

    # -- answers ----------------------------------------------------------------------------
    def extract_answer(self, completion: str) -> str | None:
        return extract_math(self.own_part(completion))

    def is_correct(self, answer: str | None, problem: Problem) -> bool:
        return self.is_correct_many([answer], [problem])[0]

    def is_correct_many(self, answers: list[str | None], problems: list[Problem]) -> list[bool]:
        """One batch for the verifier's workers; an unparseable gold also counts as right
        when the strings agree after ``normalize_string``."""
        pairs = [(p.answer, a) for a, p in zip(answers, problems, strict=True) if a is not None]
        verdicts = iter(self.verifier.check_many(pairs))
        out = []
        for answer, problem in zip(answers, problems, strict=True):
            if answer is None:
                out.append(False)
                continue
            ok = next(verdicts)
            if problem.answer in self._bad_golds:
                self.unparseable_checks += 1
                ok = ok or normalize_string(answer) == normalize_string(problem.answer)
            out.append(ok)
        return out

    def steps(self, completion: str) -> list[str]:
        """One step per paragraph (see ``split_paragraphs``)."""
        return split_paragraphs(completion)
