"""What the loop needs from a task: problems, prompts (with and without the hint),
answer extraction and checking, and the completion cut into labelled reasoning steps
for process reward models. Pure: no model, no torch."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selftaught.config import TaskConfig

SCRATCH_OPEN = "<scratch>\n"
SCRATCH_CLOSE = "</scratch>"


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: str  # the gold answer, in the task's normal form
    bucket: str  # difficulty bucket for per-bucket metrics
    reference: str | None = None  # a worked solution from the data, if it has one


@dataclass(frozen=True)
class Example:
    """One training pair; the loss covers ``completion`` only."""

    prompt: str
    completion: str


class Task(ABC):
    """The interface of a task. What every task must define is abstract, so a task that
    forgets one fails when it is built, not by scoring every sample wrong; the defaults
    (``is_correct_many``, ``reference``) are here."""

    name: str
    sizes: list[int]  # the difficulty buckets' sizes (digits, terms), smallest first
    # step_labels judge each step by the task's own rules (synthetic tasks), rather than
    # give every step the outcome (data tasks): then a right answer can be told from a lucky one
    step_gold: bool = False
    # where a completion ends if the model does not end it: a few-shot prompt's exemplar
    # separator, at which a pretrained model starts the next exemplar of its own; the
    # sampler stops each row there and the text is cut there before anything reads it
    stop: tuple[str, ...] = ()
    exemplars: Sequence = ()  # few-shot exemplars, each in the task's own form
    # what a task with few-shot exemplars does with them once training starts (task.*)
    train_exemplars: bool = False
    exemplars_after_training: bool = True

    @classmethod
    @abstractmethod
    def from_config(cls, config: TaskConfig, base_dir: Path | None = None) -> Task:
        """The task of ``config`` (its section of the run config); ``base_dir``: where
        relative data paths start (None: the working directory)."""

    @abstractmethod
    def train_problems(self) -> list[Problem]: ...

    @abstractmethod
    def eval_problems(self) -> list[Problem]: ...

    @abstractmethod
    def seed_examples(
        self, count: int, sizes: list[int], hinted_fraction: float, salt: str = "seed"
    ) -> list[Example]:
        """Worked examples for the base model, never from the eval set. Only a synthetic
        task can write them; a data task raises NotImplementedError saying what to do."""

    @abstractmethod
    def prompt(self, problem: Problem, hint: bool = False) -> str:
        """The model's input; with ``hint`` the gold answer is shown (STaR rationalization)."""

    def without_exemplars(self) -> Task:
        """The same task (problems, stops) prompting with the bare question."""
        if not self.exemplars:
            return self
        bare = copy.copy(self)
        bare.exemplars = []
        return bare

    def for_trained_model(self) -> Task:
        """The task as a fine-tuned model is prompted: itself, or without its exemplars
        (``task.exemplars_after_training: false``, the official STaR code's ``--no_prompt``)."""
        return self if self.exemplars_after_training else self.without_exemplars()

    def train_prompt(self, problem: Problem) -> str:
        """The prompt a kept completion is trained under: the hint-free prompt, without the
        exemplars unless ``task.train_exemplars`` (the official code's ``--few_shot_train``)."""
        return (self if self.train_exemplars else self.without_exemplars()).prompt(problem)

    @abstractmethod
    def extract_answer(self, completion: str) -> str | None:
        """The answer in normal form, or None when the completion has no parseable answer."""

    @abstractmethod
    def is_correct(self, answer: str | None, problem: Problem) -> bool: ...

    def is_correct_many(self, answers: list[str | None], problems: list[Problem]) -> list[bool]:
        """Many checks at once, as the loop makes them; tasks whose checks are slow
        (math-verify, programs in the sandbox) spread them over worker processes."""
        return [self.is_correct(a, p) for a, p in zip(answers, problems, strict=True)]

    @abstractmethod
    def leaks_hint(self, completion: str) -> bool:
        """True when a completion mentions the hint, which must never reach training."""

    def reference(self, problem: Problem) -> str | None:
        """A correct response to ``problem``, or None when the task knows none. B-STaR's
        balance score counts it as one more correct candidate per query
        (``bstar.reference``), as the official code does with the data set's solution."""
        return problem.reference

    @abstractmethod
    def steps(self, completion: str) -> list[str]:
        """The completion as reasoning steps; ``"".join(steps) == completion``, never empty."""

    @abstractmethod
    def step_labels(self, problem: Problem, completion: str) -> list[bool]:
        """One label per step: True until the first invalid step, False from it on."""


# -- steps of a scratchpad completion, shared by the scratchpad tasks ---------------------
def split_steps(completion: str) -> list[str]:
    """Cut a completion into steps that join back to it exactly, whatever it holds.

    Step 0 is everything up to and including the first ``<scratch>\\n`` (so text before the
    marker spoils step 0, not a later one); then one step per scratchpad line with its
    newline; then one final step from the line starting with ``</scratch>`` to the end (the
    answer and anything after it). Without ``<scratch>\\n`` the whole completion is one step,
    so even ``""`` gives one step and a reward model's min over steps is always defined.
    """
    start = completion.find(SCRATCH_OPEN)
    if start < 0:
        return [completion]
    cut = start + len(SCRATCH_OPEN)
    # split on "\n" only: str.splitlines would also cut at \r, \x1c, \u2028, ...
    parts = completion[cut:].split("\n")
    lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    for k, line in enumerate(lines):
        if line.startswith(SCRATCH_CLOSE):
            lines = [*lines[:k], "".join(lines[k:])]
            break
    return [completion[:cut], *lines]


def label_steps(
    steps: list[str],
    line_ok: Callable[[list[str], str], bool],
    final_ok: Callable[[list[str], str], bool],
) -> list[bool]:
    """Math-Shepherd-style labels: True while every step so far is valid, then False.

    ``line_ok(previous_lines, line)`` judges one scratchpad line (without its newline) given
    the lines before it; ``final_ok(lines, step)`` judges the final step (which starts with
    ``</scratch>\\n``) given all scratchpad lines. Step 0 is valid only if it is exactly
    ``<scratch>\\n``. Once a step fails no later check runs, so checks never see garbage
    that an earlier step already condemned.
    """
    ok = steps[0] == SCRATCH_OPEN
    labels = [ok]
    lines: list[str] = []
    for step in steps[1:]:
        if step.startswith(SCRATCH_CLOSE):
            ok = ok and step.startswith(SCRATCH_CLOSE + "\n") and final_ok(lines, step)
        else:
            line = step.removesuffix("\n")
            ok = ok and line_ok(lines, line)
            lines.append(line)
        labels.append(ok)
    return labels
