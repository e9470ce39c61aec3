"""What every data task shares: problems from rows, the few-shot prompt, the hint, steps.

Every data task's prompt is plain text (a chat template, if any, is the sampler's job)::

    <instruction>

    Question: <exemplar question>
    Answer: <exemplar rationale>
    The answer is <exemplar answer>.

    Question: <question>
    [(Hint: the answer is <gold>)]
    Answer:

A kept rationale is trained under the instruction and the question alone, as STaR's paper
(``task.train_exemplars: true`` keeps the exemplars); a fine-tuned model is asked after the
exemplars unless ``task.exemplars_after_training: false`` (``Task.for_trained_model``).
"""

from __future__ import annotations

import logging
import re
from abc import abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selftaught.tasks.base import Example, Problem, Task
from selftaught.tasks.sources import Record
from selftaught.tasks.splits import load_exemplars, load_splits

if TYPE_CHECKING:
    from selftaught.config import DataTaskConfig

log = logging.getLogger(__name__)

QUESTION = "Question: "
ANSWER = "Answer:"
RUN_ON = "\n" + QUESTION.strip()  # a completion that runs on into the next question


# -- steps -----------------------------------------------------------------------------------
def split_lines(completion: str) -> list[str]:
    """One step per line, each with its newline (blank lines stay with the line before);
    ``"".join(steps) == completion``; ``""`` is one empty step."""
    return re.findall(r"[^\n]*\n+|[^\n]+$", completion) or [completion]


def split_paragraphs(completion: str) -> list[str]:
    """One step per paragraph (cut after each run of two or more newlines)."""
    return re.findall(r"(?s).+?(?:\n\n+|\Z)|\n\n+", completion) or [completion]


# -- what the data tasks share ---------------------------------------------------------------
class DataTask(Task):
    """A task read from a data set; subclasses say how a row becomes a Problem and how an
    answer is read and checked.

    ``step_labels``: real data has no per-step gold, so every step gets the outcome label
    (the completion's answer is right or not), as an outcome-supervised reward model would
    see it; a process reward model trained on these learns outcome prediction per prefix.
    """

    name = "data"
    instruction = ""
    hint_word = "hint"  # leaks_hint: a completion that mentions it is never trained on
    stop = (RUN_ON,)  # the next exemplar's "Question:", which a model left to run writes

    def __init__(self, config: DataTaskConfig, base: Path | None = None):
        self.config = config
        train, held_out = load_splits(config, base)
        self._train = self._problems(train, "train")
        self._eval = self._problems(held_out, "eval")
        if {p.id for p in self._train} & {p.id for p in self._eval}:  # two files' own ids
            self._eval = [replace(p, id=f"eval-{p.id}") for p in self._eval]
        self.exemplars = load_exemplars(config.few_shot_path, config.few_shot, base)
        self._prefix = self._render_prefix()
        self.train_exemplars = config.train_exemplars
        self.exemplars_after_training = config.exemplars_after_training
        buckets = {p.bucket for p in self._train + self._eval}
        self.sizes = sorted(int(b) for b in buckets if b.isdigit()) or [1]
        questions = {e.question.strip() for e in self.exemplars}
        shared = [p.id for p in self._eval if p.question.strip() in questions]
        if shared:
            log.warning("%s: few-shot exemplars repeat held-out problems %s", self.name, shared)

    @classmethod
    def from_config(cls, config: DataTaskConfig, base_dir: Path | None = None) -> DataTask:
        return cls(config, base_dir)

    # -- rows -> problems ------------------------------------------------------------------
    @abstractmethod
    def problem(self, record: Record, role: str) -> Problem:
        """The problem of one row; ``role`` (``train``/``eval``) makes positional ids."""

    def _problems(self, records: list[Record], role: str) -> list[Problem]:
        problems = [self.problem(r, role) for r in records]
        ids = [p.id for p in problems]
        if len(set(ids)) != len(ids):  # the rows' own ids repeat: fall back to positions
            problems = [
                replace(p, id=f"{role}-{r.index}") for r, p in zip(records, problems, strict=True)
            ]
        return problems

    @staticmethod
    def row_id(record: Record, role: str) -> str:
        for key in ("id", "unique_id"):
            value = record.row.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
        return f"{role}-{record.index}"

    def train_problems(self) -> list[Problem]:
        return list(self._train)

    def eval_problems(self) -> list[Problem]:
        return list(self._eval)

    def seed_examples(
        self, count: int, sizes: list[int], hinted_fraction: float, salt: str = "seed"
    ) -> list[Example]:
        raise NotImplementedError(
            f"task {self.name!r}: seed examples exist only to train the built-in tiny model; "
            "a data task needs a pretrained model (model.name_or_path) and, if it helps, "
            "few-shot exemplars (task.few_shot_path, task.few_shot)"
        )

    def reference(self, problem: Problem) -> str | None:
        """The row's worked solution, else its gold answer in the asked format: B-STaR's
        balance score needs only a known-correct response per query, and never trains on it
        or merges it with a sample, so its text does not matter (``bstar.with_references``)."""
        return problem.reference or self.answer_text(problem.answer)

    # -- text -----------------------------------------------------------------------------
    def answer_text(self, answer: str) -> str:
        """The final line of a rationale: what the prompt asks the model to end with."""
        return f"The answer is {answer}."

    def render_question(self, question: str, choices: Any = None) -> str:
        return question.strip()

    def completion(self, rationale: str, answer: str) -> str:
        """A worked answer in the format the prompt asks for (exemplars, references)."""
        return f" {rationale.strip()}\n{self.answer_text(answer)}"

    def _render_prefix(self) -> str:
        parts = [self.instruction + "\n\n"] if self.instruction else []
        for e in self.exemplars:
            question = self.render_question(e.question, e.choices)
            parts.append(
                f"{QUESTION}{question}\n{ANSWER}{self.completion(e.rationale, e.answer)}\n\n"
            )
        return "".join(parts)

    def without_exemplars(self) -> DataTask:
        bare = super().without_exemplars()
        if bare is not self:  # the instruction stays; the rendered exemplars go
            bare._prefix = bare._render_prefix()
        return bare

    def hinted_question(self, problem: Problem) -> str:
        return f"{problem.question}\n(Hint: the answer is {problem.answer})"

    def prompt(self, problem: Problem, hint: bool = False) -> str:
        question = self.hinted_question(problem) if hint else problem.question
        return f"{self._prefix}{QUESTION}{question}\n{ANSWER}"

    def leaks_hint(self, completion: str) -> bool:
        return re.search(rf"\b{re.escape(self.hint_word)}", completion, re.IGNORECASE) is not None

    # -- answers ------------------------------------------------------------------------------
    @staticmethod
    def own_part(completion: str) -> str:
        """The completion up to where it runs on into a new ``Question:`` of its own."""
        return completion.split(RUN_ON, 1)[0]

    # -- steps --------------------------------------------------------------------------------
    def steps(self, completion: str) -> list[str]:
        """One step per line (see ``split_lines``)."""
        return split_lines(completion)

    def step_labels(self, problem: Problem, completion: str) -> list[bool]:
        """The outcome label for every step: real data has no per-step gold."""
        correct = self.is_correct(self.extract_answer(completion), problem)
        return [correct] * len(self.steps(completion))
