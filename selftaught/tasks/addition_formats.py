"""How the addition task writes a sum, its rationale and its answer for a pretrained
model prompted with worked exemplars (``task.few_shot``), one class per ``task.format``.

``scratchpad`` is the STaR paper's, byte for byte (the built-in model's, shown as
exemplars); the others are written in words and plain numbers, which a pretrained
language model has read far more of. Which one SmolLM2-135M-Instruct follows best was
measured (benchmarks/real_model/README.md). Answers are always returned in the task's normal form
(digits separated by spaces), so every format is checked against the same gold.
"""

from __future__ import annotations

import re

from selftaught.tasks.base import label_steps, split_steps
from selftaught.tasks.scratchpad import DIGITS, HINT_PREFIX


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


class AdditionFormat:
    """A prompt for ``a + b`` (with the answer as a hint for rationalization), the worked
    completion the exemplars show, and reading the answer back from a completion."""

    name: str
    stop: tuple[str, ...]  # the exemplar separator: where a completion has ended
    separator = "\n\n"  # between exemplars

    def prompt(self, a: int, b: int, hint: bool) -> str:
        raise NotImplementedError

    def solution(self, a: int, b: int) -> str:
        raise NotImplementedError

    def extract(self, completion: str) -> str | None:
        raise NotImplementedError

    def split(self, completion: str) -> list[str]:
        """A completion cut into the steps its labels judge; they join back to it."""
        raise NotImplementedError

    def step_labels(self, a: int, b: int, completion: str) -> list[bool]:
        """Per step of ``split(completion)``: valid, and every step before it too. Each
        format's rationale is deterministic, so a step is judged against the worked one."""
        raise NotImplementedError

    def exemplar(self, a: int, b: int, hint: bool) -> str:
        return self.prompt(a, b, hint) + self.solution(a, b) + self.separator


class Scratchpad(AdditionFormat):
    """The paper's ``Input: / Target: / <scratch>`` layout (tasks/addition.py writes it)."""

    name = "scratchpad"
    stop = ("\n\n",)  # the scratchpad has no blank line; the next exemplar follows one

    def prompt(self, a: int, b: int, hint: bool) -> str:
        hint_line = f"{HINT_PREFIX}{spaced(a + b)}\n" if hint else ""
        return f"Input:\n{spaced(a)} + {spaced(b)}\n{hint_line}Target:\n"

    def solution(self, a: int, b: int) -> str:
        return scratchpad(a, b) + spaced(a + b)

    def extract(self, completion: str) -> str | None:
        _, sep, tail = completion.partition("</scratch>\n")
        if not sep:
            return None
        parts = tail.split("\n", 1)[0].strip().split(" ")
        if not all(len(p) == 1 and p in DIGITS for p in parts):
            return None
        return " ".join(parts)

    def split(self, completion: str) -> list[str]:
        return split_steps(completion)

    def step_labels(self, a: int, b: int, completion: str) -> list[bool]:
        """Scratchpad line i is valid iff it equals the worked scratchpad's line i;
        ``<scratch>\\n`` is valid iff nothing precedes it. The final step is valid iff every
        worked line was written (none skipped) and the answer is right."""
        gold = scratchpad(a, b).split("\n")[1:-2]

        def line_ok(previous: list[str], line: str) -> bool:
            return len(previous) < len(gold) and line == gold[len(previous)]

        def final_ok(lines: list[str], step: str) -> bool:
            return len(lines) == len(gold) and self.extract(step) == spaced(a + b)

        return label_steps(self.split(completion), line_ok, final_ok)


_ANSWER = re.compile(r"The answer is (\d+)")
_SENTENCE_END = re.compile(r"(?<=\. )")  # numbers here never hold a period


def sentences(text: str) -> list[str]:
    """``text`` cut after each ". ", so the pieces join back to it exactly (at least one)."""
    return [part for part in _SENTENCE_END.split(text) if part] or [text]


class _Worded(AdditionFormat):
    """``Question: What is 45 + 38?`` / ``Answer: <steps>. The answer is 83.`` on one line."""

    stop = ("\n",)  # the rationale is one line: anything after it is the next exemplar

    def prompt(self, a: int, b: int, hint: bool) -> str:
        hint_text = f" (Hint: the answer is {a + b}.)" if hint else ""
        return f"Question: What is {a} + {b}?{hint_text}\nAnswer:"

    def solution(self, a: int, b: int) -> str:
        return f" {self.steps(a, b)}The answer is {a + b}."

    def steps(self, a: int, b: int) -> str:
        raise NotImplementedError

    def extract(self, completion: str) -> str | None:
        found = _ANSWER.search(completion)
        return spaced(int(found.group(1))) if found else None

    def split(self, completion: str) -> list[str]:
        return sentences(completion)

    def step_labels(self, a: int, b: int, completion: str) -> list[bool]:
        """One step per sentence: sentence i is valid iff every sentence up to it is the
        worked solution's (only trailing blanks may differ), and a sentence past the
        solution's end (a repeated answer) is not."""
        gold = sentences(self.solution(a, b))
        labels, ok = [], True
        for i, step in enumerate(self.split(completion)):
            ok = ok and i < len(gold) and step.rstrip() == gold[i].rstrip()
            labels.append(ok)
        return labels


class Columns(_Worded):
    """Column by column from the ones, with the carry said aloud:
    ``Ones: 5 + 8 = 13, write 3 carry 1. Tens: 4 + 3 + 1 = 8, write 8.``"""

    name = "columns"
    PLACES = ("Ones", "Tens", "Hundreds", "Thousands", "Ten-thousands")

    def steps(self, a: int, b: int) -> str:
        da, db = str(a)[::-1], str(b)[::-1]
        carry, parts = 0, []
        for col in range(max(len(da), len(db))):
            x = int(da[col]) if col < len(da) else 0
            y = int(db[col]) if col < len(db) else 0
            total = x + y + carry
            place = self.PLACES[col] if col < len(self.PLACES) else f"Column {col + 1}"
            terms = f"{x} + {y}" + (f" + {carry}" if carry else "")
            carried = f" carry {total // 10}" if total >= 10 else ""
            parts.append(f"{place}: {terms} = {total}, write {total % 10}{carried}.")
            carry = total // 10
        if carry:
            parts.append(f"Write the carry {carry}.")
        return " ".join(parts) + " "


class PlaceValue(_Worded):
    """Split into tens and ones, add each, then together:
    ``40 + 30 = 70. 5 + 8 = 13. 70 + 13 = 83.`` (one step for 1-digit sums)."""

    name = "place-value"

    def steps(self, a: int, b: int) -> str:
        if a < 10 and b < 10:
            return f"{a} + {b} = {a + b}. "
        parts = []
        width = max(len(str(a)), len(str(b)))
        sums = []
        for power in reversed(range(width)):
            unit = 10**power
            x, y = a // unit % 10 * unit, b // unit % 10 * unit
            parts.append(f"{x} + {y} = {x + y}.")
            sums.append(x + y)
        running = sums[0]
        for s in sums[1:]:
            parts.append(f"{running} + {s} = {running + s}.")
            running += s
        return " ".join(parts) + " "


class Direct(_Worded):
    """The answer alone, no rationale: the comparison the paper draws (a model that
    answers directly), not a format STaR can learn rationales in."""

    name = "direct"

    def steps(self, a: int, b: int) -> str:
        return ""


FORMATS: dict[str, AdditionFormat] = {
    f.name: f for f in (Scratchpad(), Columns(), PlaceValue(), Direct())
}
