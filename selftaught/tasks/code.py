"""Programming problems judged by test cases: B-STaR's APPS setting.

A problem is a statement plus test cases, each a ``(stdin, expected stdout)`` pair; a
sample is correct when the program taken from its completion prints the expected output
for every test. Model-written programs run ONLY through ``selftaught.sandbox``, never in
this process: ``extract_answer`` only compiles the code (no execution) to tell a program
from text that is not one. The sandbox gives each program its own network, mount, PID and
IPC namespaces (through a user namespace where the caller is not root), a read-only
filesystem holding only the interpreter and the system's libraries plus a small writable
work directory (so not your home, your data, the run directory or the expected outputs),
no capabilities, a seccomp filter, an empty environment, CPU-time, memory (the process
tree's total), process and output limits, and its whole process tree killed at the end.
Where this machine cannot give that, the task refuses to start and says what is missing,
unless ``task.sandbox: unisolated`` (then the programs run with what the machine allows,
and can read what you can). Whatever a program or a test input is, the verdict is an
outcome (incorrect, with the reason logged), never an exception.

Rows (``task.path`` / ``task.eval_path``: JSONL, JSON or Parquet, read by ``tasks.sources``):

- ``question``: the statement;
- ``tests``: a list of ``{"input": str, "output": str}``; or, as APPS ships it,
  ``input_output``: ``{"inputs": [...], "outputs": [...]}`` (an object or a JSON string;
  an entry that is a list of lines is joined with newlines). APPS's call-based problems
  (``fn_name``) are refused: they test a function, not a program's stdin/stdout;
- optional ``id`` (else the row's position) and ``difficulty`` (the bucket; else ``1``);
- optional ``solutions``: programs that pass (a list, or APPS's JSON string of one); the
  first is the reference solution B-STaR's balance score counts (``bstar.reference``).

The gold ``Problem.answer`` is the test cases as canonical JSON, so ``is_correct`` depends
on the problem alone. The answer extracted from a completion is the program: the last
complete fenced block (```python, ```py, ```python3 or a bare ```), else an unclosed last
block (a completion cut at ``max_new_tokens``), else the whole completion; it is ``None``
(counted "unparseable") when that is empty or does not compile.

Steps (for process reward models): one step per line of the completion (``split_lines``),
code lines included. Labels: every step gets the outcome (the program passes or not),
since which line of a failing program is wrong is unknown, as for every data task.

The hint (STaR's rationalization) shows the expected output of the first test cases; the
statement's own examples usually show as much, so it helps little, but a code task has no
short answer to hint at.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from selftaught.config import ConfigError
from selftaught.sandbox import cannot_run, isolation_problem
from selftaught.sandbox.judge import verdict
from selftaught.tasks.base import Problem
from selftaught.tasks.data import DataTask
from selftaught.tasks.sources import Record, excerpt

if TYPE_CHECKING:
    from selftaught.config import DataTaskConfig

INSTRUCTION = (
    "Write a Python 3 program that solves the problem. It reads the input from standard "
    "input and prints the answer to standard output. Put the whole program in one "
    "```python code block."
)
# ```python / ```py / ```python3 / a bare ```, at the start of a line
_FENCE_OPEN = re.compile(r"^```[ \t]*(?:python3?|py)?[ \t]*\n", re.IGNORECASE | re.MULTILINE)
_FENCE_CLOSE = re.compile(r"^[ \t]*```[ \t]*$", re.MULTILINE)
HINT_TESTS = 2  # test cases shown in the hint
log = logging.getLogger(__name__)


class SandboxUnavailable(ConfigError):
    """This machine cannot isolate the programs and the config did not opt out."""


@dataclass(frozen=True)
class Limits:
    """Per test case, passed to ``sandbox.run_program``."""

    cpu_seconds: float = 2
    wall_seconds: float = 5
    memory_mb: int = 256
    max_output_bytes: int = 64_000
    max_processes: int = 16
    require_isolation: bool = True  # False only with ``task.sandbox: unisolated``


def extract_program(completion: str) -> str | None:
    """The program in a completion (see the module doc), or None. Pure: nothing runs."""
    try:
        return _extract(completion)
    except Exception:  # noqa: BLE001 - whatever a model writes is an outcome, not a crash
        return None


def _extract(completion: str) -> str | None:
    code, last_end = completion, None
    for opening in _FENCE_OPEN.finditer(completion):
        if last_end is not None and opening.start() < last_end:
            continue  # inside a block already taken (a ``` line opening the next one)
        closing = _FENCE_CLOSE.search(completion, opening.end())
        if closing is None:  # an unclosed last block: the completion was cut short
            code = completion[opening.end() :]
            break
        code, last_end = completion[opening.end() : closing.start()], closing.end()
    code = code.strip("\n")
    if not code.strip():
        return None
    try:
        with warnings.catch_warnings():  # a model's invalid escape is no warning of ours
            warnings.simplefilter("ignore")
            compile(code, "<completion>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None  # ValueError: a NUL byte; RecursionError/MemoryError: absurd nesting
    return code


def parse_tests(record: Record) -> list[dict]:
    """The row's test cases as ``[{"input": str, "output": str}, ...]``; a clear error for
    anything else, naming the file and line."""
    if record.row.get("fn_name"):
        raise record.fail(
            "a call-based problem (field 'fn_name'): only stdin/stdout programs are supported"
        )
    if "tests" in record.row:
        tests = record.get("tests", kind=list)
        out = []
        for i, test in enumerate(tests):
            if not isinstance(test, dict) or not {"input", "output"} <= set(test):
                raise record.fail(
                    f"field 'tests': item {i} is {excerpt(test)}; expected an object "
                    '{"input": "...", "output": "..."}'
                )
            out.append(
                {"input": _text(record, test["input"]), "output": _text(record, test["output"])}
            )
    elif "input_output" in record.row:
        raw = record.get("input_output", kind=(str, dict))
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as err:
                raise record.fail(f"field 'input_output' is not valid JSON: {err.msg}") from None
        if not isinstance(raw, dict):
            raw = {}
        inputs, outputs = raw.get("inputs"), raw.get("outputs")
        if not isinstance(inputs, list) or not isinstance(outputs, list):
            raise record.fail(
                'field \'input_output\': expected {"inputs": [...], "outputs": [...]}'
            )
        if len(inputs) != len(outputs):
            raise record.fail(
                f"field 'input_output': {len(inputs)} inputs but {len(outputs)} outputs"
            )
        out = [
            {"input": _text(record, i), "output": _text(record, o)}
            for i, o in zip(inputs, outputs, strict=True)
        ]
    else:
        has = ", ".join(repr(k) for k in record.row) or "no fields"
        raise record.fail(f"missing field 'tests' (or APPS's 'input_output'); the row has {has}")
    if not out:
        raise record.fail("no test cases: a program could not be judged")
    return out


def first_solution(record: Record) -> str | None:
    """The first program of the row's ``solutions`` (a list, or APPS's JSON string of one),
    else None: the reference solution B-STaR's balance score counts."""
    raw = record.row.get("solutions")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as err:
            raise record.fail(f"field 'solutions' is not valid JSON: {err.msg}") from None
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise record.fail(f"field 'solutions' is {excerpt(raw)}; expected a list of programs")
    return next((p for p in raw if p.strip()), None)


def _text(record: Record, value) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    if not isinstance(value, str):
        raise record.fail(f"a test's input or output is {excerpt(value)}; expected a string")
    return value


@lru_cache(maxsize=4096)
def _verdict(program: str, tests_json: str, limits: Limits) -> tuple[bool, str]:
    """Cached: a process reward model's labels judge the same samples again. A fault of
    the sandbox raises, and is not cached."""
    tests = [(t["input"], t["output"]) for t in json.loads(tests_json)]
    return verdict(program, tests, **vars(limits))


_FAULTS_LOGGED: set[str] = set()


def _fault(err: Exception) -> tuple[bool, str]:
    """A judgement that could not be made (the sandbox failed, not the program): scored
    incorrect rather than ending the run, and logged, once per kind of fault."""
    reason = f"sandbox fault: {type(err).__name__}: {err}"
    kind = reason[:120]
    if kind not in _FAULTS_LOGGED:
        _FAULTS_LOGGED.add(kind)
        log.warning("code: a program was scored incorrect because %s", reason, exc_info=err)
    return False, reason


class CodeTask(DataTask):
    """Stdin/stdout programming problems; correct = the program passes every test case."""

    name = "code"
    instruction = INSTRUCTION
    hint_word = "hint"

    def __init__(
        self,
        config: DataTaskConfig,
        base: Path | None = None,
        limits: Limits | None = None,
        workers: int = 2,
    ):
        unisolated = getattr(config, "sandbox", "isolated") == "unisolated"
        self.limits = replace(limits or Limits(), require_isolation=not unisolated)
        self.workers = workers  # sandboxed programs judged at once by is_correct_many
        super().__init__(config, base)
        # before a run starts: a refusal, not a run of wrong verdicts
        if unisolated:
            log.warning(
                "code: task.sandbox is 'unisolated': the programs run with what isolation "
                "this machine allows, which may be none (they can read your files)"
            )
            problem = cannot_run()
            if problem:  # not even unisolated: every program would be scored incorrect
                raise SandboxUnavailable(f"task.name 'code': {problem}")
        else:
            problem = isolation_problem()
            if problem:
                raise SandboxUnavailable(
                    f"task.name 'code': {problem} Or, to run the programs without "
                    "isolation, where they can read and change whatever this user can "
                    "(your keys and data included), set task.sandbox: unisolated."
                )

    # -- rows -> problems ----------------------------------------------------------------
    def problem(self, record: Record, role: str) -> Problem:
        question = record.get(self.config.question_field or "question")
        if not question.strip():
            raise record.fail("field 'question' is empty")
        tests = parse_tests(record)
        difficulty = record.row.get("difficulty")
        bucket = str(difficulty) if isinstance(difficulty, str | int) and str(difficulty) else "1"
        program = first_solution(record)
        reference = self.answer_text(program) if program else None
        return Problem(
            self.row_id(record, role), question.strip(), json.dumps(tests), bucket, reference
        )

    def reference(self, problem: Problem) -> str | None:
        """APPS's first solution; None without one (the gold here is test cases, not a
        program, so the other data tasks' stand-in does not apply)."""
        return problem.reference

    @staticmethod
    def tests(problem: Problem) -> list[dict]:
        return json.loads(problem.answer)

    # -- text ------------------------------------------------------------------------------
    def answer_text(self, answer: str) -> str:
        return f"```python\n{answer.strip()}\n```"

    def completion(self, rationale: str, answer: str) -> str:
        """An exemplar: its reasoning, then the program (the exemplar's ``answer``)."""
        return f" {rationale.strip()}\n{self.answer_text(answer)}"

    def hinted_question(self, problem: Problem) -> str:
        shown = self.tests(problem)[:HINT_TESTS]
        cases = "; ".join(
            f"input {t['input'].strip()!r} gives {t['output'].strip()!r}" for t in shown
        )
        return f"{problem.question}\n(Hint: {cases})"

    # -- answers ---------------------------------------------------------------------------
    def extract_answer(self, completion: str) -> str | None:
        return extract_program(self.own_part(completion))

    def is_correct(self, answer: str | None, problem: Problem) -> bool:
        """Runs the program in the sandbox on every test (stopping at the first failure);
        never raises (``judge``)."""
        return self.judge(answer, problem)[0]

    def judge(self, answer: str | None, problem: Problem) -> tuple[bool, str]:
        """The verdict and, when incorrect, why: no program, the first failing test and
        what happened (wrong output, timeout, a program or input that cannot be run at
        all), or a fault of the sandbox, which is logged. Never raises: whatever a model
        writes, and whatever a data file holds, is a verdict, not the end of the run."""
        if answer is None:
            return False, "no program"
        try:
            return _verdict(answer, problem.answer, self.limits)
        except Exception as err:  # noqa: BLE001 - see the docstring
            return _fault(err)

    def is_correct_many(self, answers: list[str | None], problems: list[Problem]) -> list[bool]:
        """Several sandboxes at once: each is a process, so threads suffice."""
        pairs = list(zip(answers, problems, strict=True))
        with ThreadPoolExecutor(max(1, self.workers)) as pool:
            return list(pool.map(lambda pair: self.is_correct(*pair), pairs))
