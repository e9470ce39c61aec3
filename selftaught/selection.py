"""Which samples become training data: pure functions over sample records (dicts with
at least ``problem_id``, ``completion``, ``correct``)."""

from __future__ import annotations

from collections.abc import Callable


def correct_only(samples: list[dict]) -> list[dict]:
    return [s for s in samples if s["correct"]]


def without(samples: list[dict], rejects: Callable[[str], bool]) -> list[dict]:
    """Drop samples whose completion ``rejects`` (e.g. one that mentions the hint)."""
    return [s for s in samples if not rejects(s["completion"])]


def dedupe(samples: list[dict]) -> list[dict]:
    """One copy of each (problem, completion), the first: a duplicate would weigh twice."""
    seen, out = set(), []
    for s in samples:
        key = (s["problem_id"], s["completion"].strip())
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def cap_per_problem(samples: list[dict], cap: int | None) -> list[dict]:
    """At most ``cap`` samples per problem, the first ones kept (None: no cap)."""
    if cap is None:
        return list(samples)
    counts: dict[str, int] = {}
    out = []
    for s in samples:
        if counts.get(s["problem_id"], 0) < cap:
            counts[s["problem_id"]] = counts.get(s["problem_id"], 0) + 1
            out.append(s)
    return out


def unsolved(problem_ids: list[str], samples: list[dict]) -> list[str]:
    """Problems with no correct sample, in the given order: STaR's rationalization set."""
    solved = {s["problem_id"] for s in samples if s["correct"]}
    return [pid for pid in problem_ids if pid not in solved]


def above(samples: list[dict], threshold: float | None) -> list[dict]:
    """Samples whose ``reward`` is strictly above ``threshold`` (None: all).

    Strict, as B-STaR's ``s > tau``: at tau = 1.0 a correct answer with no process
    evidence (reward exactly 1.0) is not kept."""
    if threshold is None:
        return list(samples)
    return [s for s in samples if s["reward"] > threshold]


def best_first(samples: list[dict]) -> list[dict]:
    """Highest reward first (stable), so de-duplication and the cap keep the best copies."""
    return sorted(samples, key=lambda s: -s.get("reward", 0.0))


def select(
    samples: list[dict],
    *,
    leaks_hint: Callable[[str], bool],
    require_correct: bool = True,
    threshold: float | None = None,
    max_per_problem: int | None = None,
    dedupe_copies: bool = True,
) -> list[dict]:
    """The training set of one iteration: every filter the config names, in one order.

    Correct answers (unless B-STaR lets its threshold decide), never a hint leak, reward
    above the threshold, then de-duplicated and capped per problem, best reward first.
    """
    kept = correct_only(samples) if require_correct else list(samples)
    kept = best_first(above(without(kept, leaks_hint), threshold))
    if dedupe_copies:
        kept = dedupe(kept)
    return cap_per_problem(kept, max_per_problem)
