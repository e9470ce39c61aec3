"""math-verify in worker processes: equivalent forms, any thread, a deadline per check."""

from __future__ import annotations

import threading

import pytest

from selftaught.tasks.math_verifier import MathVerifier


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(workers=1, timeout=20)
    yield v
    v.close()


def test_math_verifier_checks_equivalent_forms(verifier):
    pairs = [
        ("\\frac{1}{2}", "0.5"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)"),
        ("p - q", "-q + p"),
        ("\\frac{14}{3}", "4"),
        ("9", "10"),
    ]
    assert verifier.check_many(pairs) == [True, True, True, False, False]
    assert verifier.gold_parses(["\\frac{14}{3}", "???"]) == [True, False]


def test_math_verifier_works_from_another_thread(verifier):
    """math-verify's own alarms raise off the main thread; the workers make it irrelevant."""
    found = []
    worker = threading.Thread(target=lambda: found.append(verifier.check("x + 1", "1 + x")))
    worker.start()
    worker.join()
    assert found == [True]


def test_math_verifier_kills_a_check_past_its_deadline():
    v = MathVerifier(workers=1, timeout=0.5)
    try:
        # expanding (x+1)^3000 takes sympy many seconds: the worker is killed at 0.5 s
        assert v.check("(x+1)^{3000}", "x^{3000}+1") is False
        assert v.timeouts == 1
        v.timeout = 30  # a fresh worker takes over
        assert v.check("\\frac{1}{2}", "0.5") is True
    finally:
        v.close()


def test_math_verifier_rejects_bad_settings():
    with pytest.raises(ValueError, match="workers >= 1"):
        MathVerifier(workers=0)
