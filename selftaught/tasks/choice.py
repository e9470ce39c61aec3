"""Multiple choice: CommonsenseQA and ARC, in STaR's format.

Rows (the hub formats of ``tau/commonsense_qa`` and ``allenai/ai2_arc``, and the ARC JSONL
in ``shared/datasets/arc_challenge``): ``question``, ``choices: {label: [...], text: [...]}``,
``answerKey``. ARC's older format (``question: {stem, choices: [{label, text}]}``) and a
plain list of choice texts (labelled A, B, ...) are read too. Labels ``1``-``4`` (a few ARC
rows) become ``A``-``D``, for the choices and the answer alike, so the answer is always a
capital letter.

The question the model sees lists the choices, one per line, ``(A) text``; it is asked to
end with ``The answer is (X).``. Its answer: ``The answer is (B)`` / ``... basket (b)`` /
``answer is B``, else ``\\boxed{B}``, else the last ``(B)``, else the last standalone
capital letter that is not an article. STaR's rationalization hint marks the right choice,
``(B) text (CORRECT)``; a completion that writes ``(CORRECT)`` leaks it. One bucket; steps
are lines.
"""

from __future__ import annotations

from typing import Any

from selftaught.tasks.answers import LETTERS, extract_choice, normalize_label
from selftaught.tasks.base import Problem
from selftaught.tasks.data import DataTask
from selftaught.tasks.sources import Record

INSTRUCTION = (
    "Answer the multiple-choice question step by step. "
    'End with "The answer is (X)." where X is the letter of the correct choice.'
)
CHOICES_HEADER = "Answer Choices:"
MARK = " (CORRECT)"


def choice_list(choices: Any, where: str = "choices") -> list[tuple[str, str]]:
    """``(label, text)`` pairs, labels normalised to capital letters, from
    ``{label: [...], text: [...]}``, ``[{label, text}]`` or ``[text, ...]``."""
    if isinstance(choices, dict):
        labels, texts = choices.get("label"), choices.get("text")
        if not isinstance(labels, list) or not isinstance(texts, list):
            raise ValueError(f"{where}: expected {{'label': [...], 'text': [...]}}")
        if len(labels) != len(texts):
            raise ValueError(f"{where}: {len(labels)} labels for {len(texts)} texts")
        pairs = list(zip(labels, texts, strict=True))
    elif isinstance(choices, list) and all(isinstance(c, dict) for c in choices):
        try:
            pairs = [(c["label"], c["text"]) for c in choices]
        except KeyError as err:
            raise ValueError(f"{where}: a choice has no {err.args[0]!r}") from None
    elif isinstance(choices, list) and all(isinstance(c, str) for c in choices):
        pairs = list(zip(LETTERS, choices, strict=False))
        if len(choices) > len(LETTERS):
            raise ValueError(f"{where}: {len(choices)} choices; at most {len(LETTERS)}")
    else:
        raise ValueError(
            f"{where}: expected {{'label': [...], 'text': [...]}}, a list of "
            "{'label', 'text'} objects, or a list of strings"
        )
    if len(pairs) < 2:
        raise ValueError(f"{where}: {len(pairs)} choice(s); expected at least 2")
    out = [(normalize_label(label), str(text).strip()) for label, text in pairs]
    if len({label for label, _ in out}) != len(out):
        raise ValueError(f"{where}: repeated labels {[label for label, _ in out]}")
    return out


def render_choices(question: str, choices: list[tuple[str, str]]) -> str:
    lines = [f"({label}) {text}" for label, text in choices]
    return "\n".join([question.strip(), CHOICES_HEADER, *lines])


class ChoiceTask(DataTask):
    name = "choice"
    instruction = INSTRUCTION
    answer_fields: tuple[str, ...] = ("answerKey", "answer")

    def __init__(self, config, base=None):
        self.letters = ""
        super().__init__(config, base)
        seen = {label for p in self._train + self._eval for label in self._labels(p.question)}
        self.letters = "".join(sorted(seen)) or "ABCDE"

    @staticmethod
    def _labels(question: str) -> list[str]:
        _, sep, listing = question.partition(CHOICES_HEADER + "\n")
        return [line[1] for line in listing.split("\n") if sep and line[:1] == "("]

    def problem(self, record: Record, role: str) -> Problem:
        field = self.config.question_field or "question"
        question = record.get(field, kind=(str, dict))
        choices = record.row.get("choices")
        if isinstance(question, dict):  # ARC's older format: {stem, choices}
            choices = question.get("choices", choices)
            question = question.get("stem")
            if not isinstance(question, str):
                raise record.fail(f"field {field!r}: expected a string, or an object with 'stem'")
        if choices is None:
            raise record.fail(f"missing field 'choices' (the row has {', '.join(record.row)})")
        try:
            pairs = choice_list(choices, "field 'choices'")
        except ValueError as err:
            raise record.fail(str(err)) from None
        fields = (self.config.answer_field,) if self.config.answer_field else self.answer_fields
        key = record.get(*fields, kind=(str, int))
        if isinstance(key, str) and not key.strip():
            raise record.fail(self._empty_key_message())
        try:
            answer = normalize_label(key)
        except ValueError as err:
            raise record.fail(f"field {fields[0]!r}: {err}") from None
        labels = [label for label, _ in pairs]
        if answer not in labels:
            raise record.fail(f"the answer {key!r} is not one of the choices {labels}")
        return Problem(self.row_id(record, role), render_choices(question, pairs), answer, "1")

    def _empty_key_message(self) -> str:
        return "the answer key is empty: this split has no answers"

    # -- text -------------------------------------------------------------------------------
    def render_question(self, question: str, choices: Any = None) -> str:
        if choices is None:
            return question.strip()
        return render_choices(question, choice_list(choices, "a few-shot exemplar's choices"))

    def answer_text(self, answer: str) -> str:
        return f"The answer is ({answer})."

    def hinted_question(self, problem: Problem) -> str:
        """STaR: the right choice marked ``(CORRECT)``; without a choice list, a hint line."""
        lines = problem.question.split("\n")
        head = f"({problem.answer}) "
        start = lines.index(CHOICES_HEADER) + 1 if CHOICES_HEADER in lines else 1
        for i in range(start, len(lines)):
            if lines[i].startswith(head):
                lines[i] += MARK
                return "\n".join(lines)
        return f"{problem.question}\n(Hint: the answer is ({problem.answer}))"

    def leaks_hint(self, completion: str) -> bool:
        return MARK.strip().lower() in completion.lower() or super().leaks_hint(completion)

    # -- answers ------------------------------------------------------------------------------
    def extract_answer(self, completion: str) -> str | None:
        return extract_choice(self.own_part(completion), self.letters or "ABCDE")

    def is_correct(self, answer: str | None, problem: Problem) -> bool:
        return answer is not None and answer == problem.answer


class CommonsenseQATask(ChoiceTask):
    name = "commonsenseqa"

    def _empty_key_message(self) -> str:
        return (
            "the answer key is empty: CommonsenseQA's test split has no answers; evaluate on "
            "eval_split: validation"
        )


class ARCTask(ChoiceTask):
    name = "arc"
