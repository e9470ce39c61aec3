"""B-STaR's configuration search (Zeng et al., 2024): pure functions, no torch.

Each round B-STaR re-chooses the sampling temperature (exploration) and the reward
threshold (exploitation) by maximising the *balance score* of what the filter would keep.
Samples are dicts with ``problem_id``, ``completion``, ``correct`` and ``reward``, the
response's score ``s`` (see :func:`reward_score`).

Checked against the official code (hkust-nlp/B-STaR, ``train_code/determine_hyper.py``
and ``metric_modiacc_auto.py``). Followed here:

- ``s = min(step rewards) / 5 + 1[answer correct]``; a response is kept when ``s > tau``
  (strict).
- Balance score per query over its kept, de-duplicated responses:
  ``min(c/8, 1) * c/n`` (``cal_modi_acc_soft``: ``ratio`` if ``c >= 8`` else
  ``c * ratio / 8``), averaged over the queries that kept at least one response.
- De-duplication happens after selection, per query; when copies differ, the one that
  counts is the highest-scored (the official code sorts by score before de-duplicating).
- tau sweeps upward from -1.0 in steps of 0.01 and only a strictly better score replaces
  the best, so ties go to the lowest tau; temperatures 0.50..1.20 in steps of 0.05, best
  picked with ``list.index(max(...))`` over an ascending list, so ties go to the lowest T.

Where this module differs from the official code:

- The official selection also caps the responses kept per query at ``m`` (highest score
  first), with ``m`` the smallest cap for which the total kept reaches a target size
  (``--valid_sample_size 3550`` on the 1k-query dev set), and de-duplicates after the cap.
  Here there is no cap: every response above tau counts.
- The official code adds the reference solution to every query as a correct candidate
  with ``s = 1.0``, so for tau < 1 no query is ever empty (:func:`with_references`, config
  key ``bstar.reference``). Officially it is the data set's human-written solution, which in
  practice never equals a sample; here it may be in the model's own format (the synthetic
  tasks), so it is kept apart from the samples when de-duplicating. Otherwise, on a task
  with one correct rationale per query, a solved query would score like an unsolved one and
  coverage would not count at all. Its text matters nowhere else, so a data task whose rows
  have no worked solution gives the gold answer in the asked format (``DataTask.reference``).
  The official code also trains on the reference; here it is only scored, so B-STaR sees no
  more supervision than the methods it is compared with.
- Duplicates are matched on the whitespace-stripped completion (official: exact text).
- A tau that keeps nothing scores 0.0 here; officially ``np.mean([])`` is NaN, which never
  wins the ``>`` comparison. The chosen tau only differs when every tau scores 0.
- The official tau loop adds 0.01 to a float, drifts, and stops at ~0.99 (200 values,
  1.0 never tried); :func:`thresholds` gives the 201 exact values -1.00..1.00.
- Official ``correct`` is string equality of the text after ``# Answer``; here it is
  whatever the task's checker put in ``correct``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from itertools import accumulate

N_STAR = 8  # official: a query with 8 correct kept responses has explored enough (bstar.n_star)


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


def with_references(samples: list[dict], references: dict[str, str | None]) -> list[dict]:
    """``samples`` plus, for each query among them with a reference solution, that solution
    as a correct candidate scored 1.0 (official: ``prm_score = 0``, answer correct).

    With it every query keeps at least one response for tau < 1, so there the mean runs over
    all queries: a query none of whose samples is correct scores ``1/n_star`` at best, one whose
    samples are correct more. Without it, unsolved queries drop out of the mean and coverage
    never counts.
    """
    queries = dict.fromkeys(s["problem_id"] for s in samples)
    extra = [
        {"problem_id": pid, "completion": ref, "correct": True, "reward": 1.0, "reference": True}
        for pid in queries
        if (ref := references.get(pid)) is not None
    ]
    return [*samples, *extra]


def _grid(lo: float, hi: float, step: float) -> list[float]:
    """lo, lo+step, ... <= hi, each computed from lo (not accumulated) and rounded.

    Rounding to 10 decimals turns 0.7000000000000001 back into 0.7, so grid values are
    the numbers a user would type (config keys, logs, equality in tests).
    """
    if not step > 0:
        raise ValueError(f"grid step must be positive, got {step}")
    if hi < lo:
        raise ValueError(f"grid needs lo <= hi, got lo={lo}, hi={hi}")
    count = math.floor((hi - lo) / step + 1e-9) + 1
    return [round(lo + i * step, 10) + 0.0 for i in range(count)]  # + 0.0: no -0.0


def thresholds(lo: float = -1.0, hi: float = 1.0, step: float = 0.01) -> list[float]:
    """The reward thresholds tau to sweep: -1.00, -0.99, ..., 1.00 (201 values) by default."""
    return _grid(lo, hi, step)


# Per query: rewards of its distinct responses, negated and ascending, and the running count
# of correct ones in that order. "Kept at tau" is then a prefix, found by bisection, so the
# 201-threshold sweep costs a bisection per query rather than a pass over every sample.
_Index = list[tuple[list[float], list[int]]]


def _index(samples: list[dict]) -> _Index:
    best: dict[str, dict[tuple[bool, str], tuple[float, bool]]] = {}
    for s in samples:
        pid = s["problem_id"]
        reward = s.get("reward")
        if reward is None or math.isnan(reward):
            raise ValueError(f"a sample of problem {pid!r} has no usable 'reward': {reward!r}")
        distinct = best.setdefault(pid, {})
        key = (s.get("reference", False), s["completion"].strip())  # see with_references
        if key not in distinct or reward > distinct[key][0]:  # highest-scored copy; ties: first
            distinct[key] = (float(reward), bool(s["correct"]))
    out = []
    for distinct in best.values():
        ranked = sorted(distinct.values(), key=lambda rc: -rc[0])
        correct_upto = list(accumulate((int(c) for _, c in ranked), initial=0))
        out.append(([-r for r, _ in ranked], correct_upto))
    return out


def _score(index: _Index, threshold: float, n_star: int) -> float:
    per_query = []
    for neg_rewards, correct_upto in index:
        n = bisect_left(neg_rewards, -threshold)  # count of rewards > threshold
        if n:
            c = correct_upto[n]
            per_query.append(min(c / n_star, 1.0) * (c / n))
    return math.fsum(per_query) / len(per_query) if per_query else 0.0


def _check_n_star(n_star: int) -> None:
    if n_star < 1:
        raise ValueError(f"n_star must be >= 1, got {n_star}")


def balance_score(samples: list[dict], threshold: float, n_star: int = N_STAR) -> float:
    """Mean over queries of ``min(c_i / n_star, 1) * c_i / n_i`` for the responses kept.

    ``n_i``: distinct responses of query i with reward > ``threshold``; ``c_i``: those that
    are correct. The first factor rewards keeping enough correct answers (exploration: a
    query with fewer than ``n_star`` contributes little data), the second the purity of what
    is kept (exploitation: a wrong answer trained on costs). Duplicates count once, because
    n copies of one rationale are no more exploration than one. Queries that keep nothing
    are left out of the mean (they contribute no training data, good or bad); if none keeps
    anything the score is 0.0.
    """
    _check_n_star(n_star)
    return _score(_index(samples), threshold, n_star)


def best_threshold(
    samples: list[dict], n_star: int = N_STAR, grid: list[float] | None = None
) -> tuple[float, float]:
    """``(tau, score)`` maximising the balance score over ``grid`` (default: :func:`thresholds`).

    Ties go to the lowest tau, as in the official sweep (upward, strict ``>``): among
    equally balanced choices it keeps the most data, and it makes the answer deterministic.
    """
    _check_n_star(n_star)
    grid = thresholds() if grid is None else sorted(grid)
    if not grid:
        raise ValueError("best_threshold needs at least one threshold in the grid")
    index = _index(samples)
    best_tau, best = grid[0], _score(index, grid[0], n_star)
    for tau in grid[1:]:
        score = _score(index, tau, n_star)
        if score > best:
            best_tau, best = tau, score
    return best_tau, best


def choose_configuration(
    samples_by_temperature: dict[float, list[dict]],
    n_star: int = N_STAR,
    grid: list[float] | None = None,
) -> dict:
    """Pick the temperature whose best-over-tau balance score is highest, and that tau.

    Returns ``{"temperature", "threshold", "balance_score", "scores": {T: best score}}``.
    Ties go to the lower temperature (official: first maximum over an ascending list): the
    less random sampler, for the same balance. The tau returned is the one found on these
    (dev) samples; B-STaR then re-sweeps tau with :func:`best_threshold` on the full round's
    samples drawn at the chosen temperature.
    """
    if not samples_by_temperature:
        raise ValueError("choose_configuration needs samples for at least one temperature")
    found = {
        t: best_threshold(samples_by_temperature[t], n_star, grid)
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
