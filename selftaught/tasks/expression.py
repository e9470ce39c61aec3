"""Arithmetic expressions mod 10: a task whose problems have many correct rationales.

Why it exists: addition's scratchpad is deterministic, so B-STaR's exploration metrics
(distinct correct rationales, Pass@k) say little there. An expression such as
``3 + 5 * 2 + 7`` can be reduced in several orders, each a different valid rationale.

Semantics: terms are single digits 0-9, operators ``+`` and ``*`` with the usual precedence,
and every result is taken modulo 10, so each intermediate value is again one character
(learnable by a ~1M-parameter character-level model). The answer is the expression's value
mod 10: one digit. Bucket = number of terms.

Format, byte-exact (tokens separated by one space, no trailing newline)::

    Input:
    3 + 5 * 2 + 7
    Target:
    <scratch>
    3 + 0 + 7
    3 + 7
    0
    </scratch>
    0

Each scratchpad line is the line before it (for the first: the problem) with exactly one
adjacent pair ``a op b`` replaced by ``(a op b) mod 10``; the last scratchpad line is a
single digit and the answer line repeats it. With the hint, ``Hint: 0`` stands on its own
line before ``Target:``, as in addition.

Which pairs may be merged (a *valid reduction*): a ``*`` pair always (it binds tightest and
is associative); a ``+`` pair only when neither neighbouring operator is ``*``, i.e. both its
terms are whole summands. This is a rule of precedence, not of value, on purpose: "any merge
that keeps the value mod 10" would also accept precedence errors that are right by
coincidence (merging ``3 + 5`` in ``3 + 5 * 1``). Mod 10 that is about a quarter of all
precedence errors on 2-6 terms (measured), and a process label should catch exactly such
right-answer-wrong-reasoning steps. Every valid reduction keeps the value (taking residues
mod 10 commutes with + and *), so a chain of valid reductions always ends at the right answer.

Caveat: the answer has only ten values (``0`` is the most frequent: ~18% of 2-term problems,
~13% of 6-term ones), so a wrong rationale reaches the right answer about one time in ten
and answer-only Pass@k saturates at large k; ``step_labels`` and ``is_valid_solution``
judge the rationale itself.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

from selftaught.tasks.base import (
    SCRATCH_CLOSE,
    SCRATCH_OPEN,
    Example,
    Problem,
    label_steps,
    split_steps,
)
from selftaught.tasks.scratchpad import DIGITS, ScratchpadTask

if TYPE_CHECKING:
    from selftaught.config import ExpressionTaskConfig

OPERATORS = ("+", "*")


# -- expressions ----------------------------------------------------------------------
def parse(line: str) -> tuple[list[int], list[str]] | None:
    """``"3 + 5 * 2"`` -> ``([3, 5, 2], ["+", "*"])``; None unless exactly in that format."""
    tokens = line.split(" ")
    terms, ops = tokens[::2], tokens[1::2]
    if len(tokens) % 2 == 0 or not all(len(t) == 1 and t in DIGITS for t in terms):
        return None
    if not all(op in OPERATORS for op in ops):
        return None
    return [int(t) for t in terms], ops


def render(terms: list[int], ops: list[str]) -> str:
    tokens = [str(terms[0])]
    for op, term in zip(ops, terms[1:], strict=True):
        tokens += [op, str(term)]
    return " ".join(tokens)


def evaluate(line: str) -> int | None:
    """The value mod 10 with ``*`` before ``+``; None for a malformed line."""
    parsed = parse(line)
    if parsed is None:
        return None
    terms, ops = parsed
    total, product = 0, terms[0]
    for op, term in zip(ops, terms[1:], strict=True):
        if op == "*":
            product = product * term % 10
        else:
            total, product = total + product, term
    return (total + product) % 10


def _mergeable(ops: list[str], i: int) -> bool:
    """May the pair around operator ``i`` be merged? ``+`` only between whole summands."""
    if ops[i] == "*":
        return True
    return (i == 0 or ops[i - 1] != "*") and (i == len(ops) - 1 or ops[i + 1] != "*")


def reductions(line: str) -> list[str]:
    """Every line one valid reduction away from ``line``, left to right (texts may repeat:
    in ``2 + 0 + 2`` both merges give ``2 + 2``); empty for a single digit or garbage."""
    parsed = parse(line)
    if parsed is None:
        return []
    terms, ops = parsed
    out = []
    for i, op in enumerate(ops):
        if _mergeable(ops, i):
            a, b = terms[i], terms[i + 1]
            value = (a * b if op == "*" else a + b) % 10
            out.append(render([*terms[:i], value, *terms[i + 2 :]], ops[:i] + ops[i + 1 :]))
    return out


def is_reduction(before: str, after: str) -> bool:
    return after in reductions(before)


# -- rationales -----------------------------------------------------------------------
def rationale(question: str, rng: random.Random | None = None) -> list[str]:
    """The scratchpad lines reducing ``question`` to one digit. Without ``rng``: the
    canonical one, always merging the leftmost valid pair; with it, a valid pair chosen
    uniformly at each step, so different draws give different valid rationales."""
    lines, line = [], question
    while options := reductions(line):
        line = options[0] if rng is None else rng.choice(options)
        lines.append(line)
    return lines


def solution(question: str, rng: random.Random | None = None) -> str:
    """A whole completion: scratchpad (see ``rationale``) and answer."""
    lines = "".join(line + "\n" for line in rationale(question, rng))
    return f"{SCRATCH_OPEN}{lines}{SCRATCH_CLOSE}\n{evaluate(question)}"


def count_rationales(question: str) -> int:
    """How many distinct valid rationales (as texts) ``question`` has: the ceiling for the
    distinct-correct-rationales metric. Memoized by line, so cheap even at 12 terms,
    where the merge orders number up to 11!."""
    memo: dict[str, int] = {}

    def count(line: str) -> int:
        if line not in memo:
            successors = set(reductions(line))  # a set: equal texts are one rationale
            memo[line] = sum(count(s) for s in successors) if successors else 1
        return memo[line]

    return count(question)


def extract_answer(completion: str) -> str | None:
    """The digit on the line after ``</scratch>``, exactly; None for anything else."""
    _, sep, tail = completion.partition(SCRATCH_CLOSE + "\n")
    line = tail.split("\n", 1)[0]
    return line if sep and len(line) == 1 and line in DIGITS else None


def step_labels(question: str, completion: str) -> list[bool]:
    """Labels for ``split_steps(completion)``. ``<scratch>\\n`` is valid iff nothing precedes
    it; a scratchpad line iff it is a valid reduction of the line before it (the first: of
    the question); the final step iff the last scratchpad line is one digit (fully reduced,
    so no merges were skipped), the answer equals it and is the question's value."""
    gold = str(evaluate(question))

    def line_ok(previous: list[str], line: str) -> bool:
        return is_reduction(previous[-1] if previous else question, line)

    def final_ok(lines: list[str], step: str) -> bool:
        # the answer is one digit, so equal to the last line only if that is fully reduced
        return extract_answer(step) == (lines[-1] if lines else question) == gold

    return label_steps(split_steps(completion), line_ok, final_ok)


def is_valid_solution(question: str, completion: str) -> bool:
    """Complete (it reaches the answer line), every step valid and the answer right."""
    return split_steps(completion)[-1].startswith(SCRATCH_CLOSE) and all(
        step_labels(question, completion)
    )


# -- the task -------------------------------------------------------------------------
class ExpressionTask(ScratchpadTask):
    """Seeded expressions of ``min_terms``..``max_terms`` terms, operators drawn uniformly."""

    name = "expression"

    def __init__(
        self,
        min_terms: int = 2,
        max_terms: int = 6,
        train_size: int = 2000,
        eval_size: int = 100,
        seed: int = 0,
    ):
        if not 2 <= min_terms <= max_terms:  # one term has nothing to reason about
            raise ValueError(
                f"expression task: need 2 <= min_terms ({min_terms}) <= max_terms ({max_terms})"
            )
        self.sizes = list(range(min_terms, max_terms + 1))
        self.train_size = train_size
        self.eval_size = eval_size
        self.seed = seed
        self._eval = self._draw_eval()
        self._held_out = {p.question for p in self._eval}

    @classmethod
    def from_config(
        cls, config: ExpressionTaskConfig, base_dir: Path | None = None
    ) -> ExpressionTask:
        c = config
        return cls(c.min_terms, c.max_terms, c.train_size, c.eval_size, c.seed)

    # -- problems -----------------------------------------------------------------
    @staticmethod
    def _space(n: int) -> int:
        return 10**n * 2 ** (n - 1)

    @staticmethod
    def _random_question(rng: random.Random, n: int) -> str:
        terms = [rng.randrange(10) for _ in range(n)]
        return render(terms, [rng.choice(OPERATORS) for _ in range(n - 1)])

    @staticmethod
    def _problem(question: str, split: str, index: int) -> Problem:
        n = len(question.split(" ")) // 2 + 1
        answer = str(evaluate(question))
        return Problem(id=f"{split}-{n}-{index}", question=question, answer=answer, bucket=str(n))

    def _draw_eval(self) -> list[Problem]:
        rng = random.Random(f"expression-eval-{self.seed}")
        problems = []
        for n in self.sizes:
            # never hold out more than a third of a small space (2 terms: 200 expressions)
            size = min(self.eval_size, self._space(n) // 3)
            questions: set[str] = set()
            while len(questions) < size:
                questions.add(self._random_question(rng, n))
            problems += [self._problem(q, "eval", i) for i, q in enumerate(sorted(questions))]
        return problems

    def _draw(self, split: str, count: int, sizes: list[int], salt: str) -> list[Problem]:
        """``count`` problems spread evenly over the term counts ``sizes``, none held out."""
        rng = random.Random(f"expression-{salt}-{self.seed}")
        problems = []
        for i in range(count):
            question = self._random_question(rng, sizes[i % len(sizes)])
            while question in self._held_out:
                question = self._random_question(rng, sizes[i % len(sizes)])
            problems.append(self._problem(question, split, i))
        return problems

    def seed_examples(
        self, count: int, sizes: list[int], hinted_fraction: float, salt: str = "seed"
    ) -> list[Example]:
        """Worked examples for the base model, each reduced in a random order so the model
        learns that several orders are valid (B-STaR has diversity to explore), and some
        shown with the hint so it learns both prompt forms."""
        rng = random.Random(f"expression-{salt}-order-{self.seed}")
        examples = []
        for problem in self._draw("seed", count, sizes, salt):
            hint = rng.random() < hinted_fraction
            completion = solution(problem.question, rng)
            examples.append(Example(self.prompt(problem, hint=hint), completion))
        return examples

    # -- text ---------------------------------------------------------------------
    def reference(self, problem: Problem) -> str:
        return solution(problem.question)  # the canonical order: leftmost pair first

    def extract_answer(self, completion: str) -> str | None:
        return extract_answer(completion)

    def step_labels(self, problem: Problem, completion: str) -> list[bool]:
        return step_labels(problem.question, completion)
