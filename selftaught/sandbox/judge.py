"""A program judged by test cases, as APPS graders do: its output against the expected one,
line by line, on each test's stdin."""

from __future__ import annotations

from selftaught.sandbox.run import run_program


def verdict(source: str, tests: list[tuple[str, str]], **limits) -> tuple[bool, str]:
    """Whether the program prints the expected output for every (stdin, expected stdout)
    pair, and if not why (the first failing test and what happened); stops at the first
    failure, since one is enough to reject a sample."""
    for i, (stdin, expected) in enumerate(tests):
        result = run_program(source, stdin, **limits)
        if result.status != "ok":
            why = f": {result.reason}" if result.reason else ""
            return False, f"test {i}: {result.status}{why}"
        if not same_output(result.stdout, expected):
            return False, f"test {i}: wrong output"
    return True, ""


def passes_tests(source: str, tests: list[tuple[str, str]], **limits) -> bool:
    """``verdict`` without the reason."""
    return verdict(source, tests, **limits)[0]


def same_output(got: str, expected: str) -> bool:
    """Line by line with surrounding whitespace ignored, as APPS graders compare."""
    return _lines(got) == _lines(expected)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines()]
