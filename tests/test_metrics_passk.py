"""pass@k, pass@k-s and the per-problem exploration/exploitation metrics."""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import combinations

import pytest

from selftaught import metrics


def _enumerate(n: int, c: int, k: int) -> list[int]:
    """Correct samples in every k-subset of n samples, the first c of which are correct."""
    return [sum(i < c for i in subset) for subset in combinations(range(n), k)]


def test_pass_at_k_matches_brute_force_enumeration():
    checked = 0
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                hits = _enumerate(n, c, k)
                expected = sum(h >= 1 for h in hits) / len(hits)
                assert metrics.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12), (n, c, k)
                checked += 1
    assert checked == sum(n * (n + 1) for n in range(1, 9))  # nothing skipped


def test_pass_at_k_s_matches_brute_force_enumeration_exactly():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                hits = _enumerate(n, c, k)
                for s in range(1, k + 1):
                    expected = float(Fraction(sum(h >= s for h in hits), len(hits)))
                    assert metrics.pass_at_k_s(n, c, k, s) == expected, (n, c, k, s)


def test_pass_at_k_s_with_s_1_is_pass_at_k():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert metrics.pass_at_k_s(n, c, k, 1) == pytest.approx(
                    metrics.pass_at_k(n, c, k), abs=1e-12
                )


def test_pass_at_k_known_values():
    assert metrics.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert metrics.pass_at_k(4, 2, 2) == pytest.approx(5 / 6)  # 1 - C(2,2)/C(4,2)
    assert metrics.pass_at_k(5, 0, 3) == 0.0
    assert metrics.pass_at_k(5, 3, 3) == 1.0  # n - c < k: every draw holds a correct one
    assert metrics.pass_at_k(5, 5, 1) == 1.0
    # B-STaR's Pass@32-4 from 64 samples, 8 correct: hypergeometric tail by hand
    tail = sum(math.comb(8, j) * math.comb(56, 32 - j) for j in range(4, 9))
    assert metrics.pass_at_k_s(64, 8, 32, 4) == tail / math.comb(64, 32)
    assert metrics.pass_at_k_s(10, 4, 5, 5) == 0.0  # only 4 correct exist
    assert metrics.pass_at_k_s(10, 10, 5, 5) == 1.0


def test_pass_at_k_is_stable_for_large_n():
    exact = 1 - Fraction(math.comb(1995, 100), math.comb(2000, 100))
    assert metrics.pass_at_k(2000, 5, 100) == pytest.approx(float(exact), rel=1e-12)
    small = metrics.pass_at_k(100_000, 1, 1)
    assert small == pytest.approx(1e-5, rel=1e-9)
    assert 0.0 < metrics.pass_at_k(100_000, 3, 50_000) < 1.0


@pytest.mark.parametrize(
    ("n", "c", "k", "message"),
    [
        (4, 2, 5, "k=5 is larger than the n=4"),
        (4, 5, 2, "c=5 correct cannot exceed n=4"),
        (-1, 0, 1, "non-negative"),
        (4, -1, 1, "non-negative"),
        (4, 1, -2, "non-negative"),
        (4, 1, 0, "k >= 1"),
    ],
)
def test_pass_at_k_rejects_impossible_counts(n, c, k, message):
    with pytest.raises(ValueError, match=message):
        metrics.pass_at_k(n, c, k)
    with pytest.raises(ValueError, match=message):
        metrics.pass_at_k_s(n, c, k, 1)


@pytest.mark.parametrize("s", [0, -1, 4])
def test_pass_at_k_s_rejects_s_outside_1_to_k(s):
    with pytest.raises(ValueError, match=f"1 <= s <= k, got s={s}, k=3"):
        metrics.pass_at_k_s(8, 4, 3, s)


def test_mean_pass_at_k_over_problems():
    by_problem = {
        "a": [True, False, False, False],  # pass@2 = 1 - C(3,2)/C(4,2) = 0.5
        "b": [False, False, False, False],  # 0
        "c": [True, True, True, True],  # 1
    }
    assert metrics.mean_pass_at_k(by_problem, 2) == pytest.approx(0.5)
    # pass@2-2: a needs both draws correct but has one correct sample -> 0
    assert metrics.mean_pass_at_k_s(by_problem, 2, 2) == pytest.approx(1 / 3)
    # problems may have different n
    assert metrics.mean_pass_at_k({"a": [True, False], "b": [True, False, False, False]}, 1) == (
        pytest.approx(0.375)
    )
    assert metrics.mean_pass_at_k({}, 4) == 0.0
    assert metrics.mean_pass_at_k_s({}, 4, 2) == 0.0


def test_mean_pass_at_k_names_a_problem_with_too_few_samples():
    by_problem = {"ok": [True] * 4, "short": [True, False]}
    with pytest.raises(ValueError, match="problem 'short' has 2 samples, fewer than k=4"):
        metrics.mean_pass_at_k(by_problem, 4)
    with pytest.raises(ValueError, match="problem 'short' has 2 samples, fewer than k=3"):
        metrics.mean_pass_at_k_s(by_problem, 3, 2)


def _s(pid, completion, correct, reward=None):
    out = {"problem_id": pid, "completion": completion, "correct": correct}
    if reward is not None:
        out["reward"] = reward
    return out


def test_distinct_correct_counts_stripped_completions_per_problem():
    samples = [
        _s("p1", "x", True),
        _s("p1", "  x\n", True),  # same as "x" once stripped
        _s("p1", "y", True),
        _s("p1", "z", False),  # wrong: not counted
        _s("p2", "q", False),  # no correct sample: counts 0
        _s("p2", "q", False),
        _s("p3", "a b", True),
        _s("p3", "a  b", True),  # inner whitespace differs: a different rationale
        _s("p3", "a b", True),
    ]
    assert metrics.distinct_correct(samples) == pytest.approx((2 + 0 + 2) / 3)
    assert metrics.distinct_correct([_s("p", "x", False)]) == 0.0
    assert metrics.distinct_correct([]) == 0.0


def test_best_of_k_accuracy_uses_the_highest_reward_first_on_ties():
    samples = [
        _s("p1", "a", False, 0.1),
        _s("p1", "b", True, 0.9),  # best: correct
        _s("p2", "c", False, 0.5),  # tie with the next one: the first wins, wrong
        _s("p2", "d", True, 0.5),
        _s("p3", "e", True, -1.0),  # alone: picked
        _s("p4", "f", True, 0.2),
        _s("p4", "g", False, 0.3),  # best: wrong
    ]
    assert metrics.best_of_k_accuracy(samples) == 0.5
    assert metrics.best_of_k_accuracy([]) == 0.0


def test_best_of_k_accuracy_names_a_problem_without_reward():
    with pytest.raises(ValueError, match="problem 'p9' has no 'reward'"):
        metrics.best_of_k_accuracy([_s("p1", "a", True, 0.3), _s("p9", "b", True)])


def test_exploration_groups_samples_by_problem():
    from selftaught.metrics import exploration

    rows = [("a", True), ("a", False), ("b", False), ("b", False), ("a", False), ("b", True)]
    samples = [{"problem_id": pid, "correct": c, "completion": "x"} for pid, c in rows]
    got = exploration(samples, [1, 3], [(3, 2)])
    assert got["pass@k"] == {"1": pytest.approx(1 / 3), "3": 1.0}
    assert got["pass@k-s"] == {"3-2": 0.0}
    assert got["distinct_correct"] == 1.0 and "valid_pass@k" not in got


def test_exploration_with_step_gold_counts_valid_answers_apart():
    from selftaught.metrics import exploration

    rows = [("a", True, True), ("a", True, False), ("a", False, False), ("b", True, False)]
    rows += [("b", False, False), ("b", True, False)]
    samples = [
        {"problem_id": pid, "correct": c, "valid": v, "completion": f"{pid}{i}"}
        for i, (pid, c, v) in enumerate(rows)
    ]
    got = exploration(samples, [1, 3], [])
    assert got["pass@k"] == {"1": pytest.approx(2 / 3), "3": 1.0}
    # b's right answers all came by invalid steps: only a counts
    assert got["valid_pass@k"] == {"1": pytest.approx(1 / 6), "3": 0.5}
    assert got["distinct_correct"] == 2.0
