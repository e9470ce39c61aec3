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
