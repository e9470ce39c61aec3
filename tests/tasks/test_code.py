"""The code task: programs from completions, judged by test cases in the sandbox only.

The hostile completions at the end each try one escape and print the right output only if
the escape worked, so "counted incorrect" and "contained" are the same observation; each is
also checked from outside (no file left, no connection made, no process left). The last
test tallies them."""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from pathlib import Path
from unittest import mock

import pytest

from selftaught.config import ConfigError, DataTaskConfig, resolve
from selftaught.sandbox import SandboxError
from selftaught.tasks import code as code_module
from selftaught.tasks.base import Problem
from selftaught.tasks.code import CodeTask, Limits, SandboxUnavailable, extract_program
from selftaught.tasks.sources import DataError
from tests.sandbox.test_run import marked_processes

FIXTURE = Path(__file__).parent.parent / "fixtures" / "code_problems.jsonl"
FAST = Limits(cpu_seconds=1, wall_seconds=2, memory_mb=128, max_output_bytes=10_000)
MARKER = f"selftaught-code-{uuid.uuid4().hex}"

SOLUTIONS = {
    "sum": "a, b = map(int, input().split())\nprint(a + b)",
    "reverse": "print(input()[::-1])",
    "vowels": "print(sum(c in 'aeiou' for c in input()))",
    "max": "input()\nprint(max(map(int, input().split())))",
    "squares": "for i in range(1, int(input()) + 1):\n    print(i * i)",
}


GOOD = {"question": "q", "tests": [{"input": "", "output": "1"}]}  # a valid row


def config(path: Path = FIXTURE, **fields) -> DataTaskConfig:
    return DataTaskConfig(name="code", path=str(path), **fields)


@pytest.fixture(scope="module")
def task() -> CodeTask:
    return CodeTask(config(eval_size=1), limits=FAST)


@pytest.fixture(scope="module")
def problems(task) -> dict[str, Problem]:
    return {p.id: p for p in task.train_problems() + task.eval_problems()}


def fenced(code: str, before: str = "Let me think.\n") -> str:
    return f"{before}```python\n{code}\n```\n"


# -- rows ---------------------------------------------------------------------------------
def test_rows_become_problems_with_their_tests(task, problems):
    assert sorted(problems) == sorted(SOLUTIONS)
    assert CodeTask.tests(problems["sum"])[0] == {"input": "1 2\n", "output": "3\n"}
    # APPS's input_output, as a JSON string, with a list of lines as one output
    assert CodeTask.tests(problems["squares"]) == [
        {"input": "3\n", "output": "1\n4\n9"},
        {"input": "1\n", "output": "1\n"},
    ]
    assert problems["squares"].bucket == "introductory" and problems["sum"].bucket == "1"
    assert len(task.train_problems()) == 4 and len(task.eval_problems()) == 1


def test_a_rows_first_solution_is_its_reference(task, problems):
    """B-STaR counts it in its balance score; the gold here is tests, so no stand-in."""
    references = {pid: task.reference(p) for pid, p in problems.items()}
    assert {pid for pid, r in references.items() if r} == {"sum", "squares"}
    assert references["sum"] == fenced(SOLUTIONS["sum"], before="").rstrip("\n")
    for pid in ("sum", "squares"):  # a list, and APPS's JSON string
        assert task.is_correct(task.extract_answer(references[pid]), problems[pid]), pid


def test_one_file_holds_out_eval_size_rows():
    held = CodeTask(config(eval_size=2), limits=FAST)
    train, held_out = held.train_problems(), held.eval_problems()
    assert len(train) == 3 and len(held_out) == 2
    assert not {p.id for p in train} & {p.id for p in held_out}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"question": "q"}, "missing field 'tests'"),
        ({"question": "q", "tests": []}, "no test cases"),
        ({"question": "q", "tests": "1 2"}, "expected an array"),
        ({"question": "q", "tests": [{"input": "1"}]}, "item 0"),
        ({"question": "q", "tests": [{"input": 1, "output": "1"}]}, "expected a string"),
        ({"question": "q", "input_output": "{not json"}, "not valid JSON"),
        ({"question": "q", "input_output": {"inputs": ["1"], "outputs": []}}, "1 inputs but 0"),
        ({"question": "q", "input_output": {"inputs": ["1"]}}, "expected {"),
        ({"question": "q", "fn_name": "f", "input_output": "{}"}, "call-based"),
        ({"question": " ", "tests": [{"input": "", "output": "1"}]}, "'question' is empty"),
        ({"tests": [{"input": "", "output": "1"}]}, "missing field 'question'"),
        ({**GOOD, "solutions": "[not json"}, "'solutions' is not valid JSON"),
        ({**GOOD, "solutions": [1]}, "expected a list of programs"),
    ],
)
def test_bad_rows_fail_with_file_and_line(tmp_path, row, message):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: ") + ".*" + re.escape(message)):
        CodeTask(config(path, eval_size=1))


# -- programs out of completions ----------------------------------------------------------
@pytest.mark.parametrize(
    ("completion", "program"),
    [
        (fenced("print(1)"), "print(1)"),
        ("```py\nprint(1)\n```", "print(1)"),
        ("```Python3\nprint(1)\n```", "print(1)"),
        ("```\nprint(1)\n```", "print(1)"),
        # the last block wins, and a block's closing fence is not the next one's opening
        ("```python\nprint(1)\n```\nBetter:\n```python\nprint(2)\n```\ndone", "print(2)"),
        ("```python\nprint(1)\n```\n```\nprint(2)\n```", "print(2)"),
        ("print(3)\n", "print(3)"),  # no fence: the whole completion
        ("```python\nprint(4)\nprint(", None),  # cut at max length: does not compile
        ("```python\nprint(4)\n", "print(4)"),  # unclosed but complete
        ("```python\n```", None),
        ("", None),
        ("   \n\n", None),
        ("The answer is 42.", None),
        ("print(1)\x00", None),  # NUL byte
        ("(" * 10_000, None),  # absurd nesting
        ("```python\nx = 1\n```\nQuestion: next\n```python\nprint(2)\n```", "x = 1"),
    ],
)
def test_extract_program(task, completion, program):
    assert task.extract_answer(completion) == program


def test_extract_program_never_raises_on_garbage():
    import random

    rng = random.Random(0)
    alphabet = "```python\n\t (){}[]:=+-*/'\"\\#\x00\u2028é漢🙂" + "abcdefgh"
    tried = 0
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(200)))
        assert extract_program(text) is None or isinstance(extract_program(text), str)
        tried += 1
    raw = bytes(rng.randrange(256) for _ in range(5000)).decode("latin-1")
    assert extract_program(raw) is None
    assert extract_program("x = 1\n" * 100_000) is not None  # a huge but valid program
    assert tried == 300


# -- judging ------------------------------------------------------------------------------
def test_correct_solutions_pass_and_wrong_ones_fail(task, problems):
    for pid, code in SOLUTIONS.items():
        assert task.is_correct(task.extract_answer(fenced(code)), problems[pid]), pid
    wrong = {
        "sum": "a, b = map(int, input().split())\nprint(a - b)",  # right on one test only
        "reverse": "print(input())",  # right on the palindrome only
        "vowels": "print(2)",
        "max": "print(input())",
        "squares": "print(1)",
    }
    for pid, code in wrong.items():
        assert not task.is_correct(task.extract_answer(fenced(code)), problems[pid]), pid
    assert not task.is_correct(None, problems["sum"])
    raising = task.extract_answer(fenced("raise SystemExit(3)"))
    assert not task.is_correct(raising, problems["sum"])


def test_many_at_once_agree_with_one_at_a_time(task, problems):
    ids = list(SOLUTIONS)
    answers = [SOLUTIONS[i] for i in ids] + ["print(0)"] * len(ids)
    targets = [problems[i] for i in ids] * 2
    assert task.is_correct_many(answers, targets) == [True] * len(ids) + [False] * len(ids)


def test_any_program_or_input_is_a_verdict_never_an_exception(task, problems, monkeypatch):
    """A 5 MB program, a lone surrogate in the program or a test's input, a sandbox that
    fails: each is "incorrect", with the reason, and the run goes on."""
    p = problems["sum"]
    huge = SOLUTIONS["sum"] + "\n#" + "x" * (5 << 20)
    assert task.judge(huge, p) == (False, f"test 0: rejected: the program has {len(huge)} "
                                   "bytes, over the 4194304 a program may have")  # fmt: skip
    assert not task.is_correct('print("\ud800")', p)
    bad_input = Problem("s", "q", json.dumps([{"input": "\ud800", "output": "3"}]), "1")
    correct, reason = task.judge(SOLUTIONS["sum"], bad_input)
    assert not correct and reason.startswith("test 0: rejected: the input is not valid text")

    def broken(*args, **kwargs):
        raise SandboxError("supervisor: out of processes")

    monkeypatch.setattr("selftaught.sandbox.judge.run_program", broken)
    fresh = Problem("f", "q", json.dumps([{"input": "1 2", "output": "3"}]), "1")  # not cached
    assert task.judge(SOLUTIONS["sum"], fresh) == (
        False, "sandbox fault: SandboxError: supervisor: out of processes")  # fmt: skip
    assert task.is_correct_many([SOLUTIONS["sum"]], [fresh]) == [False]


def test_refuses_to_start_where_programs_cannot_be_isolated(monkeypatch, caplog):
    why = "This machine cannot isolate model-written programs: userns missing."
    monkeypatch.setattr(code_module, "isolation_problem", lambda: why)
    with pytest.raises(SandboxUnavailable, match="task.sandbox: unisolated") as err:
        CodeTask(config(eval_size=1))
    assert isinstance(err.value, ConfigError) and why in str(err.value)
    # the user's explicit opt-in: runs, says so, and the sandbox no longer requires isolation
    task = CodeTask(config(eval_size=1, sandbox="unisolated"), limits=FAST)
    assert task.limits.require_isolation is False
    assert "unisolated" in caplog.text
    with pytest.raises(ValueError, match="sandbox"):
        config(sandbox="none")
    # opted in, but the sandbox cannot run a program at all here: still refused
    monkeypatch.setattr(code_module, "cannot_run", lambda: "no sandbox: no interpreter")
    with pytest.raises(SandboxUnavailable, match="no sandbox: no interpreter"):
        CodeTask(config(eval_size=1, sandbox="unisolated"))


def test_steps_are_lines_and_labels_the_outcome(task, problems):
    good = fenced(SOLUTIONS["sum"])
    steps = task.steps(good)
    assert "".join(steps) == good and len(steps) == good.count("\n")
    assert task.step_labels(problems["sum"], good) == [True] * len(steps)
    bad = fenced("print(0)")
    assert task.step_labels(problems["sum"], bad) == [False] * len(task.steps(bad))
    assert task.steps("") == [""]


def test_prompt_and_hint(task, problems):
    p = problems["sum"]
    prompt = task.prompt(p)
    assert prompt.startswith("Write a Python 3 program") and prompt.endswith("Answer:")
    assert p.question in prompt and "Hint" not in prompt
    hinted = task.prompt(p, hint=True)
    assert "(Hint: input '1 2' gives '3'; input '-5 5' gives '0')" in hinted
    assert task.leaks_hint("# hint: 3") and not task.leaks_hint(SOLUTIONS["sum"])


def test_run_config_accepts_the_code_task():
    cfg = resolve(
        {"task": {"name": "code", "path": str(FIXTURE), "eval_size": 2}, "base": {"max_size": 1}}
    )
    assert cfg.task.name == "code"


def test_build_task_makes_a_code_task():
    from selftaught.tasks import build_task

    cfg = resolve(
        {"task": {"name": "code", "path": str(FIXTURE), "eval_size": 2}, "base": {"max_size": 1}}
    )
    assert isinstance(build_task(cfg.task), CodeTask)


# -- hostile completions ------------------------------------------------------------------
ANSWER = "3"  # the "sum" problem's first expected output: printed only by an escape
HOSTILE: dict[str, str] = {
    "infinite_loop": "while True:\n    pass",
    "sleep_forever": "import time\ntime.sleep(1000)",
    "fork_bomb": f"""import os, sys
if len(sys.argv) < 2:
    os.execv(sys.executable, [sys.executable, "-I", "-S", __file__, {MARKER!r}])
while True:
    try:
        os.fork()
    except OSError:
        pass""",
    "memory_bomb": "hoard = []\nwhile True:\n    hoard.append(bytearray(10**6))",
    "huge_output": "while True:\n    print('x' * 1000)",
    "read_environment": "import os\nprint(os.environ.get('SELFTAUGHT_CODE_SECRET', 'none'))",
    "write_outside_temp": f"""import os
wrote = 0
for folder in ["/tmp", "/var/tmp", "{Path.home()}", "{Path.cwd()}"]:
    path = folder + "/{MARKER}"
    try:
        open(path, "w").write("escaped")
        wrote += 1
    except OSError:
        pass
print({ANSWER} if wrote else "blocked")""",
    "socket": """import socket
try:
    socket.create_connection(("127.0.0.1", int(input().split()[2])), 1)
    print(3)
except OSError:
    print("blocked")""",
    "signal_the_judge": """import os
try:
    os.kill(int(input().split()[2]), 0)
    print(3)
except (OSError, IndexError, ValueError):
    print("blocked")""",
}
CONTAINED: dict[str, bool] = {}


def judge_hostile(task: CodeTask, name: str, problems) -> bool:
    """True when contained: counted incorrect, and nothing visible outside the sandbox."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    # the problem's stdin carries the listener's port / our pid for the hostile programs
    sum_problem = problems["sum"]
    tests = [{"input": f"1 2 {port if name == 'socket' else os.getpid()}\n", "output": "3\n"}]
    if name == "read_environment":
        tests = [{"input": "", "output": MARKER + "\n"}]
    target = Problem(sum_problem.id, sum_problem.question, json.dumps(tests), "1")
    completion = fenced(HOSTILE[name], before="Here is my program.\n")
    with mock.patch.dict(os.environ, {"SELFTAUGHT_CODE_SECRET": MARKER}):
        answer = task.extract_answer(completion)
        assert answer is not None, name  # every hostile program is a valid program
        correct = task.is_correct(answer, target)
    with listener:
        try:
            listener.accept()
            connected = True
        except BlockingIOError:
            connected = False
    escaped_files = [
        p
        for p in (Path("/tmp"), Path("/var/tmp"), Path.home(), Path.cwd())
        if (p / MARKER).exists()
    ]
    return not correct and not connected and not escaped_files and not marked_processes(MARKER)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_completion_is_contained_and_incorrect(task, problems, name):
    start = time.monotonic()
    CONTAINED[name] = judge_hostile(task, name, problems)
    assert CONTAINED[name], name
    assert time.monotonic() - start < 10
    task.is_correct(SOLUTIONS["sum"], problems["sum"])  # and the next judgement still works


def test_every_hostile_completion_was_contained(task, problems, capsys):
    for name in HOSTILE:
        if name not in CONTAINED:  # e.g. under -k
            CONTAINED[name] = judge_hostile(task, name, problems)
    contained = sorted(n for n, ok in CONTAINED.items() if ok)
    with capsys.disabled():
        print(f"\ncode task: {len(contained)}/{len(HOSTILE)} hostile completions contained")
    assert contained == sorted(HOSTILE)
    assert task.is_correct(SOLUTIONS["sum"], problems["sum"])
