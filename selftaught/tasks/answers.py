"""Answer extraction and checking for the data tasks: pure functions, plus math-verify run
in worker processes.

Why pure: answers are where a run's numbers come from, so every rule here is a small
function tested on its own (and on every gold answer of the real GSM8K and MATH500 files).

Why worker processes for math-verify: its timeouts use ``signal.alarm``, which works only
in the main thread of the main interpreter; called from any other thread ``parse`` and
``verify`` raise ``ValueError: signal only works in main thread`` (math-verify >= 0.8 can
turn the timeout off, ``parsing_timeout=None`` / ``timeout_seconds=None``, and then leaves
the caller to stop a runaway sympy call itself). :class:`MathVerifier` runs math-verify in
child processes, on *their* main thread, where its own alarms work, and kills and restarts
a child that misses the per-check deadline, so a check works from any thread and never
hangs. This module imports nothing outside the standard library; only the children import
math-verify (and sympy).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from fractions import Fraction

log = logging.getLogger(__name__)

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


def extract_math(completion: str) -> str | None:
    """A model's final LaTeX answer: the last ``\\boxed{}``, else what follows the last
    ``The answer is``; None when neither is there (the prompt asks for one of them)."""
    boxed = last_boxed(completion)
    if boxed is not None and boxed.strip():
        return boxed.strip()
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


# -- math-verify, off the caller's thread ---------------------------------------------------
def math_verify_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("math_verify") is not None


class MathVerifierError(RuntimeError):
    """The worker processes cannot run (math-verify missing, or they crash on start)."""


class MathVerifier:
    """``verify(parse(gold), parse(answer))`` in ``workers`` child processes.

    Each check has a hard deadline of ``timeout`` seconds (math-verify's own alarms, set to
    a third of it, fire first in the child's main thread); a child that misses it is killed
    and restarted, the check scores False and ``timeouts`` counts it. Calls are serialised
    by a lock, so any thread may call; :meth:`check_many` spreads a batch over the workers.
    Results are cached by ``(gold, answer)``.
    """

    def __init__(self, workers: int = 1, timeout: float = 10.0, start_timeout: float = 120.0):
        if workers < 1 or timeout <= 0:
            raise ValueError(f"need workers >= 1 and timeout > 0, got {workers}, {timeout}")
        self.workers = workers
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.timeouts = 0  # checks that missed the deadline (scored False)
        self.errors = 0  # checks whose worker crashed or raised (scored False)
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen | None] = [None] * workers
        self._generation = [0] * workers
        self._replies: queue.Queue = queue.Queue()
        self._cache: dict[tuple[str, str, str], bool] = {}
        self._next_id = 0
        atexit.register(self.close)

    # -- public ----------------------------------------------------------------------
    def check(self, gold: str, answer: str) -> bool:
        return self.check_many([(gold, answer)])[0]

    def check_many(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        return self._cached("check", [(g, a) for g, a in pairs])

    def gold_parses(self, golds: Sequence[str]) -> list[bool]:
        """True where math-verify turns the gold into a sympy object, not only a string."""
        return self._cached("parse", [(g, "") for g in golds])

    def close(self) -> None:
        for i, proc in enumerate(self._procs):
            if proc is not None:
                self._stop(i)

    # -- the pool ----------------------------------------------------------------------
    def _cached(self, op: str, pairs: list[tuple[str, str]]) -> list[bool]:
        with self._lock:
            todo = list(dict.fromkeys(p for p in pairs if (op, *p) not in self._cache))
            for pair, verdict in zip(todo, self._run(op, todo), strict=True):
                if len(self._cache) > 200_000:
                    self._cache.clear()
                self._cache[(op, *pair)] = verdict
            return [self._cache[(op, *p)] for p in pairs]

    def _run(self, op: str, pairs: list[tuple[str, str]]) -> list[bool]:
        results: list[bool] = [False] * len(pairs)
        pending = collections.deque(range(len(pairs)))
        busy: dict[int, tuple[int, int, float]] = {}  # worker -> (job, request id, deadline)
        while pending or busy:
            for w in range(self.workers):
                if pending and w not in busy:
                    job = pending.popleft()
                    request = self._send(w, op, *pairs[job])
                    busy[w] = (job, request, time.monotonic() + self.timeout)
            wait = max(0.0, min(d for _, _, d in busy.values()) - time.monotonic())
            try:
                w, generation, reply = self._replies.get(timeout=wait)
            except queue.Empty:
                now = time.monotonic()
                for w, (job, _, deadline) in list(busy.items()):
                    if deadline <= now:
                        del busy[w]
                        self.timeouts += 1
                        log.warning(
                            "math-verify: %s of %r vs %r took over %.1f s; scored False",
                            op,
                            *pairs[job],
                            self.timeout,
                        )
                        self._stop(w)
                continue
            if generation != self._generation[w] or w not in busy:
                continue  # a reply from a worker already killed
            job, request, _ = busy.pop(w)
            if reply is None or reply.get("id") != request or "error" in reply:
                self.errors += 1
                log.warning("math-verify: %s of %r vs %r failed: %s", op, *pairs[job], reply)
                if reply is None:
                    self._stop(w)
                continue
            results[job] = bool(reply["ok"])
            if reply.get("timeout"):  # math-verify's own alarm fired in the worker
                self.timeouts += 1
                log.warning(
                    "math-verify: %s of %r vs %r timed out in the worker; scored %s",
                    op,
                    *pairs[job],
                    results[job],
                )
        return results

    def _send(self, w: int, op: str, gold: str, answer: str) -> int:
        self._next_id += 1
        line = json.dumps({"id": self._next_id, "op": op, "gold": gold, "answer": answer})
        for attempt in range(2):
            proc = self._procs[w] or self._start(w)
            try:
                proc.stdin.write(line + "\n")
                proc.stdin.flush()
                return self._next_id
            except (BrokenPipeError, OSError):
                self._stop(w)
                if attempt:
                    raise MathVerifierError("math-verify worker died on start") from None
        raise AssertionError("unreachable")

    def _start(self, w: int) -> subprocess.Popen:
        # -P: the script's folder (selftaught/tasks, whose module names could shadow the
        # standard library's) is not put on sys.path
        inner = max(1, int(self.timeout // 3))
        proc = subprocess.Popen(
            [sys.executable, "-P", os.path.abspath(__file__), "--math-worker", str(inner)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._generation[w] += 1
        ready: queue.Queue = queue.Queue()
        generation = self._generation[w]

        def read() -> None:
            first = True
            for line in proc.stdout:
                try:
                    reply = json.loads(line)
                except json.JSONDecodeError:
                    continue
                (ready if first else self._replies).put((w, generation, reply))
                first = False
            (ready if first else self._replies).put((w, generation, None))
            proc.stdout.close()

        threading.Thread(target=read, daemon=True, name=f"math-verify-{w}").start()
        try:
            _, _, hello = ready.get(timeout=self.start_timeout)
        except queue.Empty:
            proc.kill()
            raise MathVerifierError(
                f"math-verify worker did not start in {self.start_timeout:.0f} s"
            ) from None
        if not hello or not hello.get("ready"):
            proc.kill()
            why = (hello or {}).get("fatal", "it exited")
            raise MathVerifierError(
                f"math-verify worker could not start: {why} (pip install math-verify)"
            )
        self._procs[w] = proc
        return proc

    def _stop(self, w: int) -> None:
        proc, self._procs[w] = self._procs[w], None
        self._generation[w] += 1
        if proc is None:
            return
        proc.kill()
        proc.wait()
        with contextlib.suppress(OSError):  # stdout is the reader thread's to close
            proc.stdin.close()


_shared: MathVerifier | None = None
_shared_lock = threading.Lock()


def shared_verifier() -> MathVerifier:
    """One verifier (one worker) for the whole process, started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MathVerifier()
        return _shared


# -- the worker: ``python -P answers.py --math-worker SECONDS`` ------------------------------
def _has_sympy(parsed: list) -> bool:
    return any(not isinstance(p, str) for p in parsed)


def _math_worker(inner_timeout: int) -> None:
    """Answer JSON lines on stdin; run in this process's main thread, where alarms work."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the replies
    sys.stdout = sys.stderr
    # math-verify logs its own (alarm) timeouts and scores them False: catch them to report
    notes: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            notes.append(record.getMessage())

    mv_log = logging.getLogger("math_verify")
    mv_log.addHandler(Collect(logging.WARNING))
    mv_log.propagate = False
    try:
        from functools import lru_cache

        from math_verify import parse, verify
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises
        out.write(json.dumps({"fatal": f"{type(err).__name__}: {err}"}) + "\n")
        return

    @lru_cache(maxsize=20_000)
    def parsed(text: str) -> list:
        return parse("\\boxed{" + text + "}", parsing_timeout=inner_timeout)

    out.write('{"ready": true}\n')
    for line in sys.stdin:
        job = json.loads(line)
        notes.clear()
        try:
            gold = parsed(job["gold"])
            if job["op"] == "parse":
                ok = _has_sympy(gold)
            else:
                answer = parsed(job["answer"])
                ok = bool(gold) and verify(gold, answer, timeout_seconds=inner_timeout)
            timed_out = any("timeout" in note.lower() for note in notes)
            out.write(json.dumps({"id": job["id"], "ok": bool(ok), "timeout": timed_out}) + "\n")
        except Exception as err:  # noqa: BLE001 - one bad check must not end the worker
            out.write(json.dumps({"id": job["id"], "error": f"{type(err).__name__}: {err}"}))
            out.write("\n")


if __name__ == "__main__" and sys.argv[1:2] == ["--math-worker"]:
    _math_worker(int(sys.argv[2]))
