"""B-STaR's configuration search (Zeng et al., 2024): pure functions, no torch.

Each round B-STaR re-chooses the sampling temperature (exploration) and the reward
threshold (exploitation) by maximising the *balance score* of what the filter would keep.
Samples are dicts with ``problem_id``, ``completion``, ``correct`` and ``reward``, the
response's score ``s`` (see :func:`reward_score`).

This is the official code's arithmetic (hkust-nlp/B-STaR, ``train_code/determine_hyper.py``
and ``metric_modiacc_auto.py``), checked against a re-implementation of it in
``tests/test_bstar_official.py``:

- ``s = min(step rewards) / 5 + 1[answer correct]``; a response is kept when ``s > tau``
  (strict). Each query's reference solution is one more correct candidate, ``s = 1.0``
  (:func:`with_references`).
- Per query, the candidates above tau, best score first, at most ``cap`` of them, then
  de-duplicated; the cap is the smallest of 1..64 for which the kept responses of all
  queries reach ``target`` (the official ``--valid_sample_size``; None: no cap).
- Balance score per query: ``min(c/n_star, 1) * c/n`` over its kept responses, averaged
  over the queries that keep at least one (``empty="zero"``: over every asked query).
- tau sweeps -1.00, -0.99, ..., 0.99 (:func:`thresholds`: the official float loop stops
  there); the lowest tau and the lowest temperature win ties.

Every difference from the paper and from the official code, and the config key of each,
is in ``docs/bstar.md``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from typing import Literal

N_STAR = 8  # official: a query with 8 correct kept responses has explored enough (bstar.n_star)
# the official tau loop (-1.0, += 0.01 while <= 1.0) ends at 0.99 in floats: tau = 1.0 would
# drop the reference (s = 1.0 is not > 1.0) and with it every unsolved query from the mean
THRESHOLD_MAX = 0.99
MAX_CAP = 64  # official find_rewardbase tries per-query caps 1..64, then settles for 64
# the official sample files: 0.50, 0.55, ..., 1.20 (bstar.temperatures)
TEMPERATURES = tuple(round(0.5 + 0.05 * i, 2) for i in range(15))

Empty = Literal["skip", "zero"]


def reward_score(step_scores: list[float], correct: bool) -> float:
    """``min(step_scores) / 5 + 1[correct]``: the official combined score.

    The weakest step bounds a rationale's quality (a process reward model's usual
    aggregate); /5 shrinks that term so the verified answer dominates and the process
    reward mostly ranks responses within the correct (or the wrong) ones. With no step
    scores there is no process evidence, so the term is 0 and the score is ``1[correct]``,
    the same value the official code gives the reference solution (``prm_score = 0.0``,
    score 1.0).
    """
    prm = min(step_scores) / 5.0 if step_scores else 0.0
    return prm + (1.0 if correct else 0.0)


def with_references(
    samples: list[dict], references: dict[str, str | None], queries: Iterable[str] | None = None
) -> list[dict]:
    """``samples`` plus, for each asked query with a reference solution, that solution as a
    correct candidate scored 1.0 (official: ``prm_score = 0``, answer correct).

    ``queries``: the asked ones (default: those ``samples`` has); a query all of whose
    samples were filtered out still gets its reference, as officially every query in the
    file does. With it every query keeps at least one response for tau < 1, so the mean runs
    over all queries: a query none of whose samples is correct scores ``1/n_star`` at best,
    one whose samples are correct more. Without it, unsolved queries drop out of the mean
    and coverage never counts.
    """
    if queries is None:
        queries = (s["problem_id"] for s in samples)
    extra = [
        {"problem_id": pid, "completion": ref, "correct": True, "reward": 1.0, "reference": True}
        for pid in dict.fromkeys(queries)
        if (ref := references.get(pid)) is not None
    ]
    return [*samples, *extra]


def _grid(lo: float, hi: float, step: float) -> list[float]:
    """lo, lo+step, ... <= hi, each computed from lo (not accumulated) and rounded.

    Rounding to 10 decimals turns 0.7000000000000001 back into 0.7, so grid values are
    the numbers a user would type (config keys, logs, equality in tests). The official loop
    accumulates, so its values sit up to 1.5e-15 above these; only a reward inside that
    sliver above a grid value is kept differently.
    """
    if not step > 0:
        raise ValueError(f"grid step must be positive, got {step}")
    if hi < lo:
        raise ValueError(f"grid needs lo <= hi, got lo={lo}, hi={hi}")
    count = math.floor((hi - lo) / step + 1e-9) + 1
    return [round(lo + i * step, 10) + 0.0 for i in range(count)]  # + 0.0: no -0.0


def thresholds(lo: float = -1.0, hi: float = THRESHOLD_MAX, step: float = 0.01) -> list[float]:
    """The reward thresholds tau to sweep: -1.00, -0.99, ..., 0.99 (200 values) by default,
    the values the official loop tries."""
    return _grid(lo, hi, step)


class _Query:
    """One query's candidates, best score first (ties: input order), copies included, with
    running counts of distinct and distinct-correct responses: kept at tau under cap m is
    the first ``min(count above tau, m)`` of them, so a sweep is a bisection per query.
    A copy counts where its best-scored instance stands, as the official code, which sorts
    by score and de-duplicates after the cap, keeps it."""

    __slots__ = ("neg_rewards", "distinct", "correct")

    def __init__(self, candidates: list[tuple[float, tuple, bool]]):
        ranked = sorted(candidates, key=lambda c: -c[0])
        self.neg_rewards = [-r for r, _, _ in ranked]
        self.distinct, self.correct = [0], [0]
        seen: set[tuple] = set()
        for _, key, ok in ranked:
            new = key not in seen
            seen.add(key)
            self.distinct.append(self.distinct[-1] + new)
            self.correct.append(self.correct[-1] + (new and ok))

    def above(self, threshold: float) -> int:
        return bisect_left(self.neg_rewards, -threshold)


def _index(samples: list[dict], queries: Iterable[str] = ()) -> list[_Query]:
    groups: dict[str, list] = {pid: [] for pid in queries}
    for s in samples:
        pid = s["problem_id"]
        reward = s.get("reward")
        if reward is None or math.isnan(reward):
            raise ValueError(f"a sample of problem {pid!r} has no usable 'reward': {reward!r}")
        key = (s.get("reference", False), s["completion"].strip())  # see with_references
        groups.setdefault(pid, []).append((float(reward), key, bool(s["correct"])))
    return [_Query(c) for c in groups.values()]


def _cap(index: list[_Query], kept: list[int], target: int | None) -> int | None:
    """The smallest per-query cap (1..MAX_CAP) whose distinct kept responses, all queries
    together, reach ``target``; MAX_CAP if none does; None (no cap) without a target."""
    if target is None:
        return None

    def total(m: int) -> int:
        return sum(q.distinct[min(k, m)] for q, k in zip(index, kept, strict=True))

    lo, hi = 1, MAX_CAP
    while lo < hi:  # total(m) never falls as m grows
        mid = (lo + hi) // 2
        if total(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _score(
    index: list[_Query], threshold: float, n_star: int, target: int | None, empty: Empty
) -> float:
    kept = [q.above(threshold) for q in index]
    cap = _cap(index, kept, target)
    per_query = []
    for q, k in zip(index, kept, strict=True):
        j = k if cap is None else min(k, cap)
        n, c = q.distinct[j], q.correct[j]
        if n:
            per_query.append(min(c / n_star, 1.0) * (c / n))
        elif empty == "zero":
            per_query.append(0.0)
    return math.fsum(per_query) / len(per_query) if per_query else 0.0


def _check(n_star: int, empty: str) -> None:
    if n_star < 1:
        raise ValueError(f"n_star must be >= 1, got {n_star}")
    if empty not in ("skip", "zero"):
        raise ValueError(f"empty must be 'skip' or 'zero', got {empty!r}")


def balance_score(
    samples: list[dict],
    threshold: float,
    n_star: int = N_STAR,
    *,
    target: int | None = None,
    empty: Empty = "skip",
    queries: Iterable[str] = (),
) -> float:
    """Mean over queries of ``min(c_i / n_star, 1) * c_i / n_i`` for the responses kept.

    ``n_i``: distinct responses of query i with reward > ``threshold`` (at most the per-query
    cap ``target`` sets, best first); ``c_i``: those that are correct. The first factor
    rewards keeping enough correct answers (exploration: a query with fewer than ``n_star``
    contributes little data), the second the purity of what is kept (exploitation: a wrong
    answer trained on costs). Duplicates count once, because n copies of one rationale are
    no more exploration than one. Queries that keep nothing are left out of the mean, as
    officially (they contribute no training data, good or bad); ``empty="zero"`` counts them
    as 0, every query in ``samples`` or ``queries``. If none counts the score is 0.0.
    """
    _check(n_star, empty)
    return _score(_index(samples, queries), threshold, n_star, target, empty)


def best_threshold(
    samples: list[dict],
    n_star: int = N_STAR,
    grid: list[float] | None = None,
    *,
    target: int | None = None,
    empty: Empty = "skip",
    queries: Iterable[str] = (),
) -> tuple[float, float]:
    """``(tau, score)`` maximising the balance score over ``grid`` (default: :func:`thresholds`).

    Ties go to the lowest tau, as in the official sweep (upward, strict ``>``): among
    equally balanced choices it keeps the most data, and it makes the answer deterministic.
    A tau that keeps nothing scores 0.0 (officially ``np.mean([])``, NaN, which never wins).
    """
    _check(n_star, empty)
    grid = thresholds() if grid is None else sorted(grid)
    if not grid:
        raise ValueError("best_threshold needs at least one threshold in the grid")
    index = _index(samples, queries)
    best_tau, best = grid[0], _score(index, grid[0], n_star, target, empty)
    for tau in grid[1:]:
        score = _score(index, tau, n_star, target, empty)
        if score > best:
            best_tau, best = tau, score
    return best_tau, best


def cap_at(
    samples: list[dict], threshold: float, target: int | None, queries: Iterable[str] = ()
) -> int | None:
    """The per-query cap the official selection uses at ``threshold`` (None: no target)."""
    index = _index(samples, queries)
    return _cap(index, [q.above(threshold) for q in index], target)


def capped(samples: list[dict], threshold: float, cap: int | None) -> list[dict]:
    """The samples (not the references) among each query's ``cap`` best-scored candidates
    above ``threshold``, references included in the count, as officially; copies included,
    since the official cap comes before de-duplication. Best first within a query."""
    by_query: dict[str, list[dict]] = {}
    for s in samples:
        if s["reward"] > threshold:
            by_query.setdefault(s["problem_id"], []).append(s)
    out = []
    for group in by_query.values():
        ranked = sorted(group, key=lambda s: -s["reward"])
        out += [s for s in ranked[:cap] if not s.get("reference", False)]
    return out


def choose_configuration(
    samples_by_temperature: dict[float, list[dict]],
    n_star: int = N_STAR,
    grid: list[float] | None = None,
    *,
    target: int | None = None,
    empty: Empty = "skip",
    queries: Iterable[str] = (),
) -> dict:
    """Pick the temperature whose best-over-tau balance score is highest, and that tau.

    Returns ``{"temperature", "threshold", "balance_score", "scores": {T: best score}}``.
    Ties go to the lower temperature (official: first maximum over an ascending list): the
    less random sampler, for the same balance. The tau returned is the one found on these
    (search) samples; officially only the temperature is kept, and tau is swept again with
    :func:`best_threshold` on the full round's samples drawn at it.
    """
    if not samples_by_temperature:
        raise ValueError("choose_configuration needs samples for at least one temperature")
    queries = list(queries)
    found = {
        t: best_threshold(
            samples_by_temperature[t], n_star, grid, target=target, empty=empty, queries=queries
        )
        for t in sorted(samples_by_temperature)
    }
    best_t = None
    for t, (_, score) in found.items():
        if best_t is None or score > found[best_t][1]:
            best_t = t
    tau, score = found[best_t]
    return {
        "temperature": best_t,
        "threshold": tau,
        "balance_score": score,
        "scores": {t: s for t, (_, s) in found.items()},
    }
