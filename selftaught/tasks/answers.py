"""Answer extraction and checking for the data tasks: numbers, LaTeX answers, strings and
choice letters, as pure functions (math-verify's checker is ``math_verifier``).

Why pure: answers are where a run's numbers come from, so every rule here is a small
function tested on its own (and on every gold answer of the real GSM8K and MATH500 files).
"""

from __future__ import annotations

import re
from fractions import Fraction

# -- numbers ---------------------------------------------------------------------------
# thousands groups only where they are groups ("1,000" but not "1,00" or "3, 4"); a leading
# minus only when it is not a hyphen or a subtraction ("10-3" gives 10 and 3)
_NUMBER = re.compile(
    r"(?<![\w.])(?<!\d,)-?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:/\d+(?![\d,]))?"
)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?[\d.,]+)\s*\}\s*\{\s*(-?[\d.,]+)\s*\}")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")


def parse_number(token: str) -> Fraction | None:
    """One number as written: ``"1,000"``, ``"-3.50"``, ``".5"``, ``"3/4"`` -> a Fraction."""
    token = token.replace(",", "")
    try:
        if "/" in token:
            num, den = token.split("/")
            return Fraction(num) / Fraction(den) if Fraction(den) != 0 else None
        return Fraction(token)
    except (ValueError, ZeroDivisionError):
        return None


def format_number(value: Fraction) -> str:
    """The normal form: ``1000``, ``-2.5``, ``1/3`` (a decimal only where it is exact)."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    text = f"{value.numerator / value.denominator:.12f}".rstrip("0").rstrip(".")
    return text if Fraction(text) == value else f"{value.numerator}/{value.denominator}"


def _delatex(text: str) -> str:
    """LaTeX that hides a number: ``\\frac{3}{4}`` -> 3/4, ``\\text{ cm}``, ``\\$``, ``\\!``."""
    text = _LATEX_FRAC.sub(r"\1/\2", text)
    text = _LATEX_TEXT.sub(r" \1 ", text)
    for junk in ("\\!", "\\,", "\\;", "\\ ", "\\$", "\\%", "{,}"):
        text = text.replace(junk, "," if junk == "{,}" else "")
    text = re.sub(r"\\[A-Za-z]+", " ", text)  # \times, \cdot, \left(: not prose
    return text.replace("$", " ")


def first_number(text: str) -> Fraction | None:
    """The number ``text`` starts with: ``$1,080.`` is 1080, ``6 because 2*3 = 6`` is 6; in
    an equation before the prose starts, the number after its last ``=`` (``x = 5``,
    ``5 + 2 = 7 apples``: 7)."""
    text = _delatex(text)
    digit = re.search(r"\d", text)
    if digit:
        prose = re.compile(r"[A-Za-z]{3,}").search(text, digit.start())
        text = text[: prose.start() if prose else len(text)].rsplit("=", 1)[-1]
    for match in _NUMBER.finditer(text):
        value = parse_number(match.group())
        if value is not None:
            return value
    return None


def last_number(text: str) -> Fraction | None:
    values = [parse_number(m.group()) for m in _NUMBER.finditer(_delatex(text))]
    values = [v for v in values if v is not None]
    return values[-1] if values else None


def normalize_number(text: str) -> str | None:
    """A gold or model answer as a number in normal form, or None when it holds none."""
    value = first_number(text)
    return None if value is None else format_number(value)


def numbers_equal(a: str | None, b: str | None) -> bool:
    """Numeric equality of two normal forms: ``1,000 == 1000``, ``3.0 == 3``, ``0.5 == 1/2``."""
    if a is None or b is None:
        return False
    x, y = parse_number(a), parse_number(b)
    return x is not None and y is not None and x == y


def gsm8k_gold(solution: str) -> str:
    """The number after ``####`` in a GSM8K worked solution, in normal form."""
    _, sep, tail = solution.rpartition("####")
    if not sep:
        raise ValueError("no '####' line: expected a GSM8K solution ending '#### <number>'")
    value = first_number(tail)
    if value is None:
        raise ValueError(f"no number after '####' (got {tail.strip()[:40]!r})")
    return format_number(value)


# -- where the answer sits in a completion ------------------------------------------------
_ANSWER_IS = re.compile(r"answer\s+is\b\s*:?", re.IGNORECASE)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")


def boxed_all(text: str) -> list[str]:
    """The contents of every ``\\boxed{...}`` (nested braces balanced; ``\\boxed 5`` too)."""
    found = []
    for match in _BOXED.finditer(text):
        i = match.end()
        if i < len(text) and text[i] == "{":
            depth, j = 0, i
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        found.append(text[i + 1 : j])
                        break
                j += 1
        elif match.group().endswith(" "):  # \boxed 5: one token after a space
            token = re.match(r"[^\s$]+", text[i:])
            if token:
                found.append(token.group())
    return found


def last_boxed(text: str) -> str | None:
    boxes = boxed_all(text)
    return boxes[-1] if boxes else None


def after_answer_is(text: str) -> str | None:
    """What follows the last ``answer is`` on its line, or None."""
    matches = list(_ANSWER_IS.finditer(text))
    if not matches:
        return None
    return text[matches[-1].end() :].split("\n", 1)[0].strip()


def _strip_math(text: str) -> str:
    """``$x$.`` -> ``x``: the dollar signs, trailing period and space of a final answer."""
    text = text.strip().rstrip(".").strip()
    if text.startswith("$") and text.endswith("$") and len(text) > 1:
        text = text.strip("$").strip()
    elif text.startswith("\\(") and text.endswith("\\)"):
        text = text[2:-2].strip()
    return text.rstrip(".").strip()


def extract_number(completion: str) -> str | None:
    """A model's numeric answer, in normal form: the last ``#### X``, ``The answer is X`` or
    ``\\boxed{X}`` (whichever comes last in the text), else the last number anywhere."""
    candidates = []  # (position, text after the marker)
    for m in re.finditer(r"####", completion):
        candidates.append((m.start(), completion[m.end() :].split("\n", 1)[0]))
    for m in _ANSWER_IS.finditer(completion):
        candidates.append((m.start(), completion[m.end() :].split("\n", 1)[0]))
    for m in _BOXED.finditer(completion):
        boxes = boxed_all(completion[m.start() :])
        if boxes:
            candidates.append((m.start(), boxes[0]))
    for _, text in sorted(candidates, reverse=True):
        value = first_number(text)
        if value is not None:
            return format_number(value)
    value = last_number(completion)
    return None if value is None else format_number(value)


def without_full_stop(text: str) -> str:
    """``42.`` -> ``42``: a sentence's full stop written inside the box (``\\boxed{42.}``),
    which math-verify reads as no number and the official grader ignores; an ellipsis
    (``1, 2, ...``) keeps its dots."""
    text = text.strip()
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1].rstrip()
    return text


def extract_math(completion: str) -> str | None:
    """A model's final LaTeX answer: the last ``\\boxed{}``, else what follows the last
    ``The answer is``; None when neither is there (the prompt asks for one of them)."""
    boxed = last_boxed(completion)
    if boxed is not None and without_full_stop(boxed):
        return without_full_stop(boxed)
    tail = after_answer_is(completion)
    if tail:
        inner = last_boxed(tail)
        return _strip_math(inner if inner is not None else tail) or None
    return None


# -- strings ---------------------------------------------------------------------------
def normalize_string(text: str) -> str:
    """Case, surrounding quotes and punctuation, and runs of spaces do not matter."""
    text = _strip_math(text).strip().strip("\"'`*").strip()
    return " ".join(text.casefold().split()).rstrip(".!").strip()


def extract_string(completion: str) -> str | None:
    """``The answer is X.`` -> X, else ``\\boxed{X}``, else the last non-empty line."""
    tail = after_answer_is(completion)
    if tail:
        return normalize_string(tail) or None
    boxed = last_boxed(completion)
    if boxed is not None:
        return normalize_string(boxed) or None
    lines = [line for line in completion.split("\n") if line.strip()]
    return normalize_string(lines[-1]) or None if lines else None


# -- multiple choice ------------------------------------------------------------------------
LETTERS = "ABCDEFGHIJ"


def normalize_label(label: str | int) -> str:
    """A choice label as a capital letter: ``"b"``, ``"(B)"``, ``"2"`` and ``2`` -> ``"B"``."""
    text = str(label).strip().strip("().").strip()
    if text.isdigit() and 1 <= int(text) <= len(LETTERS):
        return LETTERS[int(text) - 1]
    if len(text) == 1 and text.upper() in LETTERS:
        return text.upper()
    raise ValueError(f"not a choice label: {label!r} (expected A-J or 1-10)")


def extract_choice(completion: str, letters: str = "ABCDE") -> str | None:
    """The chosen letter: ``The answer is (B)`` / ``answer is basket (b)`` / ``answer is B``,
    else ``\\boxed{B}``, else the last ``(B)``, else the last standalone capital letter that
    is not an article (``A dog`` is not a choice)."""
    allowed = letters.upper()
    paren = re.compile(rf"\(([{allowed}{allowed.lower()}])\)")
    tail = after_answer_is(completion)
    if tail is not None:
        found = paren.search(tail)
        if found:
            return found.group(1).upper()
        found = re.match(rf"[\s*$\\{{]*(?:\\text\{{)?\(?([{allowed}])\)?(?![\w'])", tail)
        if found:
            return found.group(1)
    boxed = last_boxed(completion)
    if boxed is not None:
        try:
            letter = normalize_label(re.sub(r"\\text\{([^{}]*)\}", r"\1", boxed))
        except ValueError:
            letter = None
        if letter and letter in allowed:
            return letter
    found = paren.findall(completion)
    if found:
        return found[-1].upper()
    bare = re.findall(rf"(?<![\w'])([{allowed}])(?![\w'])(?!\s+[a-z])", completion)
    return bare[-1] if bare else None
