"""B-STaR's configuration search: reward, grids, balance score, threshold and temperature."""

from __future__ import annotations

import math
import random

import pytest

from selftaught import bstar, selection


def _s(pid, completion, correct, reward):
    return {"problem_id": pid, "completion": completion, "correct": correct, "reward": reward}


def _query(pid, n_correct, n_wrong, reward_correct=1.5, reward_wrong=0.5):
    """A query with distinct correct and wrong responses at the given rewards."""
    return [_s(pid, f"{pid} right {i}", True, reward_correct) for i in range(n_correct)] + [
        _s(pid, f"{pid} wrong {i}", False, reward_wrong) for i in range(n_wrong)
    ]


# --- reward_score and select ---------------------------------------------------------------


def test_reward_score_is_min_step_over_5_plus_correct():
    assert bstar.reward_score([3.0, 1.0, 4.0], True) == pytest.approx(1.2)
    assert bstar.reward_score([5.0], False) == pytest.approx(1.0)
    assert bstar.reward_score([-2.5, 0.5], False) == pytest.approx(-0.5)
    assert bstar.reward_score([0.25, -1.0], True) == pytest.approx(0.8)


def test_reward_score_without_step_scores_is_correctness_alone():
    assert bstar.reward_score([], True) == 1.0
    assert bstar.reward_score([], False) == 0.0


def test_select_is_strict_and_keeps_order():
    samples = [_s("p", "a", True, 0.5), _s("p", "b", True, 0.2), _s("q", "c", False, 0.7)]
    samples.append(_s("q", "d", True, 0.5))
    assert [s["completion"] for s in selection.above(samples, 0.5)] == ["c"]
    assert [s["completion"] for s in selection.above(samples, 0.2)] == ["a", "c", "d"]
    assert selection.above(samples, 0.7) == []
    assert selection.above(samples, -1.0) == samples
    assert selection.above(samples, -1.0) is not samples  # a new list: the input is untouched


# --- grids --------------------------------------------------------------------------------


def test_threshold_grid_is_the_official_loops_200_values_as_exact_decimals():
    official, tau = [], -1.0
    while True:  # train_code/determine_hyper.py, find_strategy
        official.append(tau)
        tau += 0.01
        if tau > 1.0:
            break
    grid = bstar.thresholds()
    assert len(grid) == len(official) == 200
    assert grid == [round(v, 2) + 0.0 for v in official]
    assert all(0 <= o - g < 2e-15 for o, g in zip(official, grid, strict=True))  # drift: above
    assert grid[0] == -1.0 and grid[-1] == 0.99 and 1.0 not in grid
    assert grid[100] == 0.0 and math.copysign(1.0, grid[100]) == 1.0  # not -0.0
    assert grid[170] == 0.7 and grid[130] == 0.3 and grid[1] == -0.99
    assert all(v == round(v, 2) for v in grid)
    assert all(b > a for a, b in zip(grid, grid[1:], strict=False))


def test_grids_with_custom_bounds():
    assert bstar.thresholds(0.0, 1.0, 0.3) == [0.0, 0.3, 0.6, 0.9]  # never past hi
    assert bstar.thresholds(0.5, 0.5, 0.1) == [0.5]
    assert bstar.thresholds(0.1, 0.3, 0.1) == [0.1, 0.2, 0.3]  # 0.1*3 drifts; this doesn't
    assert len(bstar.thresholds(0.0, 2.0, 0.05)) == 41


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bstar.thresholds(0.0, 1.0, 0.0), "step must be positive"),
        (lambda: bstar.thresholds(0.0, 1.0, -0.1), "step must be positive"),
        (lambda: bstar.thresholds(1.0, 0.0, 0.1), "lo <= hi"),
    ],
)
def test_grids_reject_bad_bounds(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- balance score ------------------------------------------------------------------------


def test_balance_all_correct_fewer_than_n_star():
    assert bstar.balance_score(_query("q", 4, 0), 0.0) == 0.5  # min(4/8, 1) * 4/4


def test_balance_exactly_and_more_than_n_star_correct():
    assert bstar.balance_score(_query("q", 8, 0), 0.0) == 1.0
    # 10 correct of 12: exploration capped at 1, score is the purity
    assert bstar.balance_score(_query("q", 10, 2), 0.0) == pytest.approx(10 / 12)


def test_balance_none_correct_is_zero():
    assert bstar.balance_score(_query("q", 0, 3), 0.0) == 0.0


def test_balance_counts_duplicates_once():
    samples = [_s("q", "a", True, 1.5)] * 3 + [_s("q", "a\n", True, 1.5), _s("q", " b", True, 1.2)]
    assert bstar.balance_score(samples, 0.0) == 0.25  # c = n = 2, not 5
    wrong_copies = [_s("q", "w", False, 0.5)] * 5 + _query("q", 2, 0)
    assert bstar.balance_score(wrong_copies, 0.0) == pytest.approx(2 / 8 * 2 / 3)  # not 2/8 * 2/7


def test_balance_dedupes_within_a_query_only():
    samples = [_s("q1", "same", True, 1.5), _s("q2", "same", True, 1.5)]
    assert bstar.balance_score(samples, 0.0) == 0.125  # each query keeps its copy: 1/8 each


def test_balance_duplicate_that_counts_is_the_highest_scored_copy():
    # same text, conflicting verdicts (a flaky checker): the best-scored copy decides
    low_right_first = [_s("q", "a", True, 0.3), _s("q", "a", False, 0.9)]
    assert bstar.balance_score(low_right_first, 0.0) == 0.0
    tie = [_s("q", "a", True, 0.5), _s("q", "a", False, 0.5)]  # tie: the first copy
    assert bstar.balance_score(tie, 0.0) == 0.125


def test_balance_excludes_queries_with_nothing_selected():
    samples = _query("kept", 4, 0, reward_correct=0.9) + _query("empty", 2, 2, -0.5, -0.5)
    assert bstar.balance_score(samples, 0.0) == 0.5  # (0.5) / 1 query, not (0.5 + 0) / 2


def test_balance_is_zero_when_nothing_is_selected():
    assert bstar.balance_score(_query("q", 3, 3, reward_correct=0.2, reward_wrong=0.1), 0.2) == 0.0
    assert bstar.balance_score([], 0.0) == 0.0


def test_balance_threshold_is_strict():
    samples = _query("q", 4, 4, reward_correct=1.0, reward_wrong=0.5)
    assert bstar.balance_score(samples, 0.49) == pytest.approx(0.5 * 0.5)  # all 8 kept
    assert bstar.balance_score(samples, 0.5) == 0.5  # the wrong ones sit exactly at tau
    assert bstar.balance_score(samples, 1.0) == 0.0


def test_balance_mixed_queries():
    samples = (
        _query("a", 4, 0)  # 4/8 * 1 = 0.5
        + _query("b", 2, 2)  # 2/8 * 2/4 = 0.125
        + [_s("b", "b below", False, -0.3)]  # not selected at tau = 0
        + _query("c", 16, 0)  # 1 * 1 = 1
        + _query("d", 0, 5, reward_wrong=-0.2)  # nothing selected: excluded
    )
    assert bstar.balance_score(samples, 0.0) == pytest.approx((0.5 + 0.125 + 1.0) / 3)


def test_balance_n_star():
    samples = _query("q", 4, 0)
    assert bstar.balance_score(samples, 0.0, n_star=4) == 1.0
    assert bstar.balance_score(samples, 0.0, n_star=2) == 1.0
    assert bstar.balance_score(samples, 0.0, n_star=16) == 0.25
    with pytest.raises(ValueError, match="n_star must be >= 1"):
        bstar.balance_score(samples, 0.0, n_star=0)


@pytest.mark.parametrize("reward", [None, float("nan")])
def test_balance_names_a_problem_without_a_usable_reward(reward):
    samples = _query("ok", 2, 0) + [{"problem_id": "bad", "completion": "x", "correct": True}]
    if reward is not None:
        samples[-1]["reward"] = reward
    with pytest.raises(ValueError, match="problem 'bad' has no usable 'reward'"):
        bstar.balance_score(samples, 0.0)


def _naive_balance(samples, threshold, n_star):
    """The definition, written out directly: select, sort best-first, de-duplicate, count."""
    by_query: dict[str, list[dict]] = {}
    for s in samples:
        by_query.setdefault(s["problem_id"], []).append(s)
    terms = []
    for group in by_query.values():
        kept = sorted((s for s in group if s["reward"] > threshold), key=lambda s: -s["reward"])
        seen, distinct = set(), []
        for s in kept:
            if s["completion"].strip() not in seen:
                seen.add(s["completion"].strip())
                distinct.append(s)
        if distinct:
            c, n = sum(s["correct"] for s in distinct), len(distinct)
            terms.append(min(c / n_star, 1.0) * (c / n))
    return math.fsum(terms) / len(terms) if terms else 0.0


def test_balance_agrees_with_the_direct_definition_on_random_runs():
    rng = random.Random(0)
    for trial in range(40):
        samples = []
        for q in range(rng.randint(1, 6)):
            for _ in range(rng.randint(1, 24)):
                correct = rng.random() < 0.5
                text = f"r{rng.randint(0, 9)}" + (" " if rng.random() < 0.3 else "")
                steps = [rng.uniform(-5, 5) for _ in range(rng.randint(0, 3))]
                samples.append(_s(f"q{q}", text, correct, bstar.reward_score(steps, correct)))
        n_star = rng.choice([1, 2, 8])
        for tau in bstar.thresholds(-1.0, 1.0, 0.1):
            expected = _naive_balance(samples, tau, n_star)
            assert bstar.balance_score(samples, tau, n_star) == expected, (trial, tau)


# --- best threshold and configuration ------------------------------------------------------


def _eight_right_four_wrong(pid="q"):
    """Correct rewards 1.1..1.8, wrong 0.1..0.4: the score is 1.0 for tau in [0.4, 1.1)."""
    right = [_s(pid, f"right {i}", True, round(1.1 + i / 10, 1)) for i in range(8)]
    return right + [_s(pid, f"wrong {i}", False, round(0.1 * (i + 1), 1)) for i in range(4)]


def test_best_threshold_takes_the_lowest_of_tied_thresholds():
    samples = _eight_right_four_wrong()
    assert bstar.balance_score(samples, 0.39) == pytest.approx(8 / 9)  # 0.4 still kept
    assert bstar.balance_score(samples, 1.1) == pytest.approx(7 / 8 * 1.0)  # a right one lost
    assert bstar.best_threshold(samples) == (0.4, 1.0)
    assert bstar.best_threshold(samples, grid=[0.9, 0.5, 0.45, 1.5]) == (0.45, 1.0)


def test_best_threshold_when_nothing_can_be_selected():
    samples = _query("q", 2, 2, reward_correct=-2.0, reward_wrong=-3.0)
    assert bstar.best_threshold(samples) == (-1.0, 0.0)


def test_best_threshold_n_star_changes_the_choice():
    samples = [_s("q", f"sure {i}", True, 1.5) for i in range(4)]
    samples += [_s("q", f"shaky {i}", True, 0.5) for i in range(4)]
    samples.append(_s("q", "wrong", False, 0.6))
    # tau < 0.5 keeps 8 right + 1 wrong; tau in [0.6, 1.5) keeps only the 4 sure ones
    assert bstar.best_threshold(samples, n_star=8) == (-1.0, pytest.approx(8 / 9))  # > 4/8 * 1
    assert bstar.best_threshold(samples, n_star=4) == (0.6, 1.0)  # > 1 * 8/9


def test_best_threshold_rejects_an_empty_grid():
    with pytest.raises(ValueError, match="at least one threshold"):
        bstar.best_threshold(_query("q", 1, 0), grid=[])


def test_choose_configuration_picks_best_temperature_then_its_threshold():
    by_t = {
        1.1: _query("q", 8, 2, reward_correct=1.2, reward_wrong=0.7),  # 1.0 at tau = 0.7
        0.5: _query("q", 3, 0),  # 3/8 at every tau below 1.5: -1.0
        0.8: _eight_right_four_wrong(),  # 1.0 at tau = 0.4
    }
    chosen = bstar.choose_configuration(by_t)
    # 0.8 and 1.1 tie at 1.0: the lower temperature wins, whatever the dict order
    assert chosen == {
        "temperature": 0.8,
        "threshold": 0.4,
        "balance_score": 1.0,
        "scores": {0.5: 0.375, 0.8: 1.0, 1.1: 1.0},
    }
    assert list(chosen["scores"]) == [0.5, 0.8, 1.1]


def test_choose_configuration_prefers_a_strictly_better_higher_temperature():
    by_t = {0.5: _query("q", 3, 0), 1.2: _query("q", 6, 1, reward_wrong=-2.0)}
    chosen = bstar.choose_configuration(by_t, n_star=8)
    assert (chosen["temperature"], chosen["threshold"]) == (1.2, -1.0)
    assert chosen["balance_score"] == 0.75
    # with n_star = 3, 0.5 already has enough correct answers: tie at 1.0 -> lower T
    assert bstar.choose_configuration(by_t, n_star=3)["temperature"] == 0.5


def test_choose_configuration_uses_the_given_grid():
    by_t = {0.7: _eight_right_four_wrong()}
    chosen = bstar.choose_configuration(by_t, grid=[0.0, -1.0])  # tied: the lower one
    assert (chosen["threshold"], chosen["balance_score"]) == (-1.0, pytest.approx(8 / 12))
    chosen = bstar.choose_configuration(by_t, grid=[0.0, 1.2, 0.5])  # 8/12, 6/8, 1.0
    assert (chosen["threshold"], chosen["balance_score"]) == (0.5, 1.0)


def test_choose_configuration_rejects_no_temperatures():
    with pytest.raises(ValueError, match="at least one temperature"):
        bstar.choose_configuration({})


# --- the reference candidate -----------------------------------------------------------------


def test_with_references_adds_one_correct_candidate_per_asked_query():
    samples = [_s("p", "a", False, 0.0), _s("p", "b", True, 1.0), _s("q", "c", False, 0.0)]
    out = bstar.with_references(samples, {"p": "ref p", "q": None, "r": "ref r"})
    assert out[:3] == samples and len(out) == 4  # q has none, r was not asked
    assert out[3] == {
        "problem_id": "p",
        "completion": "ref p",
        "correct": True,
        "reward": 1.0,
        "reference": True,
    }
    assert bstar.with_references(samples, {}) == samples


def test_the_reference_makes_coverage_count_where_each_query_has_one_rationale():
    # addition-like: a query's only correct rationale is the reference's very text
    def round_(solved):
        return [
            _s(
                pid,
                f"{pid} sum" if pid in solved else f"{pid} slip",
                pid in solved,
                1.0 * (pid in solved),
            )
            for pid in "abcd"
        ]

    refs = {pid: f"{pid} sum" for pid in "abcd"}
    by_t = {0.4: round_("a"), 1.0: round_("abc")}
    # without it both temperatures score 1/8 (unsolved queries drop out): the lower T wins
    plain = bstar.choose_configuration(by_t)
    assert plain["scores"] == {0.4: 0.125, 1.0: 0.125} and plain["temperature"] == 0.4
    # with it, a solved query keeps its sample and the reference (never merged): 2/8; an
    # unsolved one the reference alone: 1/8
    with_ref = {t: bstar.with_references(rows, refs) for t, rows in by_t.items()}
    chosen = bstar.choose_configuration(with_ref)
    assert chosen["scores"] == {0.4: (2 + 1 * 3) / 8 / 4, 1.0: (2 * 3 + 1) / 8 / 4}
    assert (chosen["temperature"], chosen["threshold"]) == (1.0, 0.0)  # wrong ones are out


def test_the_reference_scores_below_a_rewarded_correct_sample():
    # a process reward lifts correct samples above 1.0; tau = 1.0 drops the reference (strict)
    samples = bstar.with_references(
        _query("q", 8, 2, reward_correct=1.1, reward_wrong=0.1), {"q": "r"}
    )
    assert bstar.balance_score(samples, 0.5) == pytest.approx(1.0)  # 9 correct of 9
    assert bstar.balance_score(samples, 1.0) == pytest.approx(1.0)  # the 8 samples alone
    assert bstar.balance_score(samples, -1.0) == pytest.approx(9 / 11)


def test_with_references_covers_asked_queries_that_lost_every_sample():
    samples = [_s("p", "a", True, 1.2)]
    out = bstar.with_references(samples, {"p": "ref p", "q": "ref q"}, ["p", "q"])
    assert [(s["problem_id"], s["completion"]) for s in out] == [
        ("p", "a"),
        ("p", "ref p"),
        ("q", "ref q"),
    ]


# --- queries that keep nothing, and the per-query cap -------------------------------------------


def test_empty_queries_zero_counts_every_asked_query():
    samples = _query("kept", 4, 0, reward_correct=0.9) + _query("empty", 2, 2, -0.5, -0.5)
    assert bstar.balance_score(samples, 0.0, empty="zero") == 0.25  # (0.5 + 0) / 2
    # a query asked but with no candidate at all counts too
    assert bstar.balance_score(samples, 0.0, empty="zero", queries=["none"]) == pytest.approx(
        0.5 / 3
    )
    assert bstar.balance_score(samples, 0.0, queries=["none"]) == 0.5  # skip: as officially
    with pytest.raises(ValueError, match="'skip' or 'zero'"):
        bstar.balance_score(samples, 0.0, empty="drop")


def test_the_cap_is_the_smallest_that_reaches_the_target():
    # a: 4 right (1.4..1.1), b: 1 right; no cap: a 4/8, b 1/8
    samples = [_s("a", f"r{i}", True, 1.4 - i / 10) for i in range(4)] + _query("b", 1, 0)
    assert bstar.cap_at(samples, 0.0, None) is None
    assert bstar.cap_at(samples, 0.0, 2) == 1  # 1 + 1
    assert bstar.cap_at(samples, 0.0, 4) == 3  # 3 + 1
    assert bstar.cap_at(samples, 0.0, 99) == bstar.MAX_CAP  # never reached
    assert bstar.balance_score(samples, 0.0, target=4) == pytest.approx((3 / 8 + 1 / 8) / 2)
    assert bstar.balance_score(samples, 0.0) == pytest.approx((4 / 8 + 1 / 8) / 2)
    kept = bstar.capped(bstar.with_references(samples, {"a": "ref"}), 0.0, 3)
    assert [s["completion"] for s in kept] == ["r0", "r1", "r2", "b right 0"]
    kept = bstar.capped(bstar.with_references(samples, {"a": "ref"}), 1.15, 3)
    assert [s["completion"] for s in kept] == ["r0", "r1", "r2", "b right 0"]
    # the reference (1.0) takes a slot like any candidate, and is never returned
    kept = bstar.capped(bstar.with_references(samples[:2], {"a": "ref"}), 0.0, 3)
    assert [s["completion"] for s in kept] == ["r0", "r1"]
