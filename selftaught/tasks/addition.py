"""n-digit addition with the STaR scratchpad of the paper's arithmetic runs, byte-exact.

``Input:\\n6 2 4 + 2 5 9\\nTarget:\\n<scratch>\\n6 2 4 + 2 5 9 , C: 0\\n2 + 5 , 3 C: 1\\n
6 + 2 , 8 3 C: 0\\n, 8 8 3 C: 0\\n0 8 8 3\\n</scratch>\\n8 8 3``

For a pretrained model, as in the paper, the prompt starts with ``task.few_shot`` worked
exemplars, in the scratchpad or another ``task.format`` (``addition_formats.py``), and a
completion ends at the exemplar separator (``stop``). Kept completions are trained under
the prompt without the exemplars, as the paper trains on question, rationale and answer
(``task.train_exemplars`` keeps them): sequences several times shorter. The fine-tuned
model is still prompted with the exemplars, as the official code by default;
``task.exemplars_after_training: false`` asks it the bare question it was trained on
(the official ``--no_prompt``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

from selftaught.tasks.addition_formats import FORMATS, scratchpad, spaced
from selftaught.tasks.base import Example, Problem
from selftaught.tasks.scratchpad import ScratchpadTask

__all__ = ["AdditionTask", "operands", "scratchpad", "spaced"]

if TYPE_CHECKING:
    from selftaught.config import AdditionTaskConfig


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
        *,
        few_shot: int = 0,
        format: str = "scratchpad",
        train_exemplars: bool = False,
        exemplars_after_training: bool = True,
    ):
        self.sizes = list(range(min_digits, max_digits + 1))
        self.digit_counts = self.sizes  # the older name, still used by callers
        self.train_size = train_size
        self.eval_size = eval_size
        self.seed = seed
        self.format = FORMATS[format]
        self.train_exemplars = train_exemplars
        self.exemplars_after_training = exemplars_after_training
        self.step_gold = True  # every format's rationale is deterministic
        self.stop = self.format.stop if few_shot else ()
        self._eval = self._draw_eval()
        self._held_out = {(p.question) for p in self._eval}
        # drawn like training problems (never held out), from their own stream
        shown = self._draw("exemplar", few_shot, self.sizes, "exemplar") if few_shot else []
        self.exemplars = [operands(p.question) for p in shown]

    @classmethod
    def from_config(cls, config: AdditionTaskConfig, base_dir: Path | None = None) -> AdditionTask:
        c = config
        return cls(
            c.min_digits,
            c.max_digits,
            c.train_size,
            c.eval_size,
            c.seed,
            few_shot=c.few_shot,
            format=c.format,
            train_exemplars=c.train_exemplars,
            exemplars_after_training=c.exemplars_after_training,
        )

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
            examples.append(Example(self._question(problem, hint), self.format.solution(a, b)))
        return examples

    # -- text ---------------------------------------------------------------------
    @staticmethod
    def solution(a: int, b: int) -> str:
        return scratchpad(a, b) + spaced(a + b)

    def reference(self, problem: Problem) -> str:
        return self.format.solution(*operands(problem.question))

    def prompt(self, problem: Problem, hint: bool = False) -> str:
        """The exemplars (hinted too when the question is: the paper's rationalization
        prompt), then the question."""
        shown = "".join(self.format.exemplar(a, b, hint) for a, b in self.exemplars)
        return shown + self._question(problem, hint)

    def _question(self, problem: Problem, hint: bool) -> str:
        return self.format.prompt(*operands(problem.question), hint)

    def extract_answer(self, completion: str) -> str | None:
        return self.format.extract(completion)

    # -- steps for process reward models: every format judges its own (addition_formats)
    def steps(self, completion: str) -> list[str]:
        return self.format.split(completion)

    def step_labels(self, problem: Problem, completion: str) -> list[bool]:
        return self.format.step_labels(*operands(problem.question), completion)
