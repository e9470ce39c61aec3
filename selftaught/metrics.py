"""Evaluation metrics: pure functions, no torch."""

from __future__ import annotations

import math
from collections import defaultdict


def accuracy(results: list[dict], key: str = "correct") -> float:
    """The share of ``results`` whose ``key`` is true (``valid``: right with valid steps)."""
    return sum(bool(r[key]) for r in results) / len(results) if results else 0.0


def accuracy_by_bucket(results: list[dict], key: str = "correct") -> dict[str, float]:
    """``accuracy`` per bucket, buckets in natural order ("2" before "10")."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        groups[r["bucket"]].append(bool(r[key]))
    order = lambda b: (0, int(b)) if b.isdigit() else (1, b)  # noqa: E731
    return {b: sum(groups[b]) / len(groups[b]) for b in sorted(groups, key=order)}


def greedy_accuracies(results: list[dict]) -> dict:
    """``accuracy`` and ``accuracy_by_bucket``; with per-step gold (results that carry
    ``valid``), ``valid_accuracy`` and ``valid_accuracy_by_bucket`` too."""
    out = {"accuracy": accuracy(results), "accuracy_by_bucket": accuracy_by_bucket(results)}
    if results and "valid" in results[0]:
        out["valid_accuracy"] = accuracy(results, "valid")
        out["valid_accuracy_by_bucket"] = accuracy_by_bucket(results, "valid")
    return out


# --- exploration: pass@k, pass@k-s, distinct correct rationales ---------------------------


def _check_counts(n: int, c: int, k: int) -> None:
    """Fail early: a k larger than the samples drawn means the run sampled too few, not 'pass'."""
    if n < 0 or c < 0 or k < 0:
        raise ValueError(f"pass@k needs non-negative counts, got n={n}, c={c}, k={k}")
    if k < 1:
        raise ValueError(f"pass@k needs k >= 1, got k={k}")
    if c > n:
        raise ValueError(f"pass@k: c={c} correct cannot exceed n={n} samples")
    if k > n:
        raise ValueError(f"pass@k: k={k} is larger than the n={n} samples drawn")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: ``1 - C(n-c, k) / C(n, k)``.

    Chen et al. (2021). Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, the same ratio
    without the huge binomials, so n in the thousands neither overflows nor loses precision.
    """
    _check_counts(n, c, k)
    if n - c < k:  # every k-subset must contain a correct sample
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def pass_at_k_s(n: int, c: int, k: int, s: int) -> float:
    """Probability that at least ``s`` of ``k`` samples drawn without replacement are correct.

    The hypergeometric tail ``sum_{j>=s} C(c, j) C(n-c, k-j) / C(n, k)``, exact in integers
    (math.comb) and divided once, so it is the correctly rounded value. B-STaR reports
    Pass@32-4: it rewards a model that finds the answer *repeatedly*, which is what the
    filter needs to keep enough data. ``pass_at_k_s(n, c, k, 1) == pass_at_k(n, c, k)``.
    """
    _check_counts(n, c, k)
    if not 1 <= s <= k:
        raise ValueError(f"pass@k-s needs 1 <= s <= k, got s={s}, k={k}")
    hits = sum(math.comb(c, j) * math.comb(n - c, k - j) for j in range(s, min(c, k) + 1))
    return hits / math.comb(n, k)


def _mean_over_problems(samples_by_problem: dict[str, list[bool]], k: int, score) -> float:
    """Mean of ``score(n, c)`` over problems; one with too few samples is named, not skipped."""
    if not samples_by_problem:
        return 0.0
    total = []
    for pid, outcomes in samples_by_problem.items():
        if len(outcomes) < k:
            raise ValueError(f"problem {pid!r} has {len(outcomes)} samples, fewer than k={k}")
        total.append(score(len(outcomes), sum(bool(o) for o in outcomes)))
    return math.fsum(total) / len(total)


def mean_pass_at_k(samples_by_problem: dict[str, list[bool]], k: int) -> float:
    """Mean pass@k over problems, each from its own correctness list (n may differ)."""
    return _mean_over_problems(samples_by_problem, k, lambda n, c: pass_at_k(n, c, k))


def mean_pass_at_k_s(samples_by_problem: dict[str, list[bool]], k: int, s: int) -> float:
    """Mean pass@k-s over problems (see :func:`pass_at_k_s`)."""
    return _mean_over_problems(samples_by_problem, k, lambda n, c: pass_at_k_s(n, c, k, s))


def exploration(samples: list[dict], ks: list[int], k_s_pairs: list[tuple[int, int]]) -> dict:
    """pass@k and pass@k-s of samples, keyed as B-STaR's tables name them, and the distinct
    correct rationales per problem; with per-step gold (samples that carry ``valid``), pass@k
    counting only answers reached by valid steps too."""
    outcomes = _outcomes(samples)
    out = {
        "pass@k": {str(k): mean_pass_at_k(outcomes, k) for k in ks},
        "pass@k-s": {f"{k}-{s}": mean_pass_at_k_s(outcomes, k, s) for k, s in k_s_pairs},
        "distinct_correct": distinct_correct(samples),
    }
    if samples and "valid" in samples[0]:
        valid = _outcomes(samples, "valid")
        out["valid_pass@k"] = {str(k): mean_pass_at_k(valid, k) for k in ks}
    return out


def _outcomes(samples: list[dict], key: str = "correct") -> dict[str, list[bool]]:
    return {pid: [bool(s[key]) for s in g] for pid, g in _by_problem(samples).items()}


def _by_problem(samples: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for s in samples:
        groups[s["problem_id"]].append(s)
    return groups


def distinct_correct(samples: list[dict]) -> float:
    """Mean number of distinct correct completions per problem (whitespace-stripped).

    Pass@k says whether a model *can* solve a problem; this says how many different
    rationales it offers the filter, the diversity that self-training feeds on. A problem
    with samples but no correct one counts 0: it is exactly where exploration failed.
    """
    groups = _by_problem(samples)
    if not groups:
        return 0.0
    counts = [len({s["completion"].strip() for s in g if s["correct"]}) for g in groups.values()]
    return sum(counts) / len(counts)


def best_of_k_accuracy(samples: list[dict]) -> float:
    """Share of problems whose highest-reward sample (ties: the first) is correct.

    This measures exploitation: how well the reward model picks a right answer out of
    the k a model offers. A sample without a reward is an error, not a reward of 0.
    """
    groups = _by_problem(samples)
    if not groups:
        return 0.0
    hits = 0
    for pid, group in groups.items():
        if any("reward" not in s for s in group):
            raise ValueError(f"best-of-k: a sample of problem {pid!r} has no 'reward'")
        best = max(group, key=lambda s: s["reward"])  # max keeps the first of equal rewards
        hits += bool(best["correct"])
    return hits / len(groups)
