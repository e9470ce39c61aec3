"""A program judged by test cases, as APPS graders do: its output against the expected one,
line by line, on each test's stdin."""

from __future__ import annotations

from selftaught.sandbox.run import run_program


def passes_tests(source: str, tests: list[tuple[str, str]], **limits) -> bool:
    """True when the program prints the expected output for every (stdin, expected stdout)
    pair; stops at the first failure, since one is enough to reject a sample."""
    for stdin, expected in tests:
        result = run_program(source, stdin, **limits)
        if result.status != "ok" or not same_output(result.stdout, expected):
            return False
    return True


def same_output(got: str, expected: str) -> bool:
    """Line by line with surrounding whitespace ignored, as APPS graders compare."""
    return _lines(got) == _lines(expected)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines()]
