"""Programs judged by test cases: the output compared line by line, and the first failure
ends the judging."""

from __future__ import annotations

from selftaught.sandbox import judge as sandbox  # the module whose run_program is patched
from selftaught.sandbox import passes_tests, same_output


def test_passes_tests_compares_stripped_lines_and_stops_at_first_failure(monkeypatch):
    add = "a, b = map(int, input().split())\nprint(a + b, ' ')\n"
    tests = [("1 2\n", "3\n"), ("10 5", "  15")]
    assert passes_tests(add, tests)
    assert not passes_tests(add.replace("a + b", "a - b"), tests)
    assert not passes_tests("raise SystemExit(3)", tests)
    assert same_output("1\n 2 \n\n", "1\n2") and not same_output("1 2", "1\n2")
    calls, real = [], sandbox.run_program
    monkeypatch.setattr(sandbox, "run_program", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert not passes_tests(add, [("1 2", "4"), ("1 2", "3")])
    assert len(calls) == 1
