"""n-digit addition with the STaR scratchpad of the paper's arithmetic runs, byte-exact.

``Input:\\n6 2 4 + 2 5 9\\nTarget:\\n<scratch>\\n6 2 4 + 2 5 9 , C: 0\\n2 + 5 , 3 C: 1\\n
6 + 2 , 8 3 C: 0\\n, 8 8 3 C: 0\\n0 8 8 3\\n</scratch>\\n8 8 3``
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

from selftaught.tasks.base import Example, Problem, label_steps
from selftaught.tasks.scratchpad import DIGITS, ScratchpadTask

if TYPE_CHECKING:
    from selftaught.config import AdditionTaskConfig


def spaced(number: int | str) -> str:
    return " ".join(str(number))


def scratchpad(a: int, b: int) -> str:
    """The worked rationale for ``a + b``, from ``<scratch>`` to ``</scratch>``."""
    da, db = str(a), str(b)
    width = max(len(da), len(db))
    da, db = da.zfill(width), db.zfill(width)
    lines = [f"{spaced(a)} + {spaced(b)} , C: 0"]
    digits: list[str] = []
    carry = 0
    for col in range(width):  # col 0 is the lowest digit
        x, y = da[width - 1 - col], db[width - 1 - col]
        if (
            col > 0
        ):  # one line per column from the second-lowest up: its digits, results so far, carry in
            lines.append(f"{x} + {y} , {' '.join(digits)} C: {carry}")
        total = int(x) + int(y) + carry
        digits.insert(0, str(total % 10))
        carry = total // 10
    lines.append(f", {' '.join(digits)} C: {carry}")
    lines.append(f"{carry} {' '.join(digits)}")
    return "<scratch>\n" + "\n".join(lines) + "\n</scratch>\n"


def operands(question: str) -> tuple[int, int]:
    """``"6 2 4 + 2 5 9"`` -> ``(624, 259)``."""
    a, b = (int(x.replace(" ", "")) for x in question.split(" + "))
    return a, b


class AdditionTask(ScratchpadTask):
    """Seeded sums of ``min_digits``..``max_digits`` digits; both operands have exactly n digits."""

    name = "addition"

    def __init__(
        self,
        min_digits: int = 1,
        max_digits: int = 5,
        train_size: int = 2000,
        eval_size: int = 100,
        seed: int = 0,
    ):
        self.sizes = list(range(min_digits, max_digits + 1))
        self.digit_counts = self.sizes  # the older name, still used by callers
        self.train_size = train_size
        self.eval_size = eval_size
        self.seed = seed
        self._eval = self._draw_eval()
        self._held_out = {(p.question) for p in self._eval}

    @classmethod
    def from_config(cls, config: AdditionTaskConfig, base_dir: Path | None = None) -> AdditionTask:
        c = config
        return cls(c.min_digits, c.max_digits, c.train_size, c.eval_size, c.seed)

    # -- problems -----------------------------------------------------------------
    def _pair_space(self, n: int) -> int:
        return (9 * 10 ** (n - 1)) ** 2

    def _random_pair(self, rng: random.Random, n: int) -> tuple[int, int]:
        lo, hi = 10 ** (n - 1), 10**n - 1
        return rng.randint(lo, hi), rng.randint(lo, hi)

    def _problem(self, a: int, b: int, split: str, index: int) -> Problem:
        n = len(str(a))
        return Problem(
            id=f"{split}-{n}-{index}",
            question=f"{spaced(a)} + {spaced(b)}",
            answer=spaced(a + b),
            bucket=str(n),
        )

    def _draw_eval(self) -> list[Problem]:
        rng = random.Random(f"addition-eval-{self.seed}")
        problems = []
        for n in self.digit_counts:
            # never hold out more than a third of a small space (1-digit sums are only 81 pairs)
            size = min(self.eval_size, self._pair_space(n) // 3)
            pairs: set[tuple[int, int]] = set()
            while len(pairs) < size:
                pairs.add(self._random_pair(rng, n))
            problems += [self._problem(a, b, "eval", i) for i, (a, b) in enumerate(sorted(pairs))]
        return problems

    def _draw(self, split: str, count: int, sizes: list[int], salt: str) -> list[Problem]:
        """``count`` problems spread evenly over the digit counts ``sizes``, none held out."""
        rng = random.Random(f"addition-{salt}-{self.seed}")
        problems = []
        for i in range(count):
            n = sizes[i % len(sizes)]
            while True:
                a, b = self._random_pair(rng, n)
                if f"{spaced(a)} + {spaced(b)}" not in self._held_out:
                    break
            problems.append(self._problem(a, b, split, i))
        return problems

    def seed_examples(
        self, count: int, sizes: list[int], hinted_fraction: float, salt: str = "seed"
    ) -> list[Example]:
        """Worked examples for the base model, some with the hint shown, so M learns both forms."""
        rng = random.Random(f"addition-{salt}-hint-{self.seed}")
        examples = []
        for problem in self._draw("seed", count, sizes, salt):
            a, b = operands(problem.question)
            hint = rng.random() < hinted_fraction
            examples.append(Example(self.prompt(problem, hint=hint), self.solution(a, b)))
        return examples

    # -- text ---------------------------------------------------------------------
    @staticmethod
    def solution(a: int, b: int) -> str:
        return scratchpad(a, b) + spaced(a + b)

    def reference(self, problem: Problem) -> str:
        return self.solution(*operands(problem.question))

    def extract_answer(self, completion: str) -> str | None:
        _, sep, tail = completion.partition("</scratch>\n")
        if not sep:
            return None
        line = tail.split("\n", 1)[0].strip()
        parts = line.split(" ")
        if not all(len(p) == 1 and p in DIGITS for p in parts):
            return None
        return " ".join(parts)

    # -- steps for process reward models ----------------------------------------------
    def step_labels(self, problem: Problem, completion: str) -> list[bool]:
        """The scratchpad is deterministic, so scratchpad line i is valid iff it equals the
        gold scratchpad's line i; ``<scratch>\\n`` is valid iff nothing precedes it. The final
        step is valid iff every gold line was written (none skipped) and the answer is right.
        """
        gold = scratchpad(*operands(problem.question)).split("\n")[1:-2]

        def line_ok(previous: list[str], line: str) -> bool:
            return len(previous) < len(gold) and line == gold[len(previous)]

        def final_ok(lines: list[str], step: str) -> bool:
            return len(lines) == len(gold) and self.is_correct(self.extract_answer(step), problem)

        return label_steps(self.steps(completion), line_ok, final_ok)
