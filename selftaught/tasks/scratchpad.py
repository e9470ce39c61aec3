"""What the built-in synthetic tasks (addition, expression) share: the STaR prompt with
its optional ``Hint:`` line, exact-match answers, and one reasoning step per scratchpad
line. Each task brings its own problems, rationales and answer format."""

from __future__ import annotations

from abc import abstractmethod

from selftaught.tasks.base import Problem, Task, split_steps

HINT_PREFIX = "Hint: "
DIGITS = "0123456789"  # str.isdigit would also accept "²" or "٣"


class ScratchpadTask(Task):
    """Subclasses set ``sizes``, ``train_size``, ``_eval`` and define ``_draw``."""

    step_gold = True

    @abstractmethod
    def _draw(self, split: str, count: int, sizes: list[int], salt: str) -> list[Problem]:
        """``count`` problems spread evenly over ``sizes``, none of them held out."""

    def train_problems(self) -> list[Problem]:
        return self._draw("train", self.train_size, self.sizes, "train")

    def eval_problems(self) -> list[Problem]:
        return list(self._eval)

    def prompt(self, problem: Problem, hint: bool = False) -> str:
        hint_line = f"{HINT_PREFIX}{problem.answer}\n" if hint else ""
        return f"Input:\n{problem.question}\n{hint_line}Target:\n"

    def is_correct(self, answer: str | None, problem: Problem) -> bool:
        return answer is not None and answer == problem.answer

    def leaks_hint(self, completion: str) -> bool:
        return HINT_PREFIX.strip() in completion

    def steps(self, completion: str) -> list[str]:
        """``<scratch>\\n`` alone, then one step per scratchpad line, then ``</scratch>``
        with the answer as the last step (see ``base.split_steps``)."""
        return split_steps(completion)
