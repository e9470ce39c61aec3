"""What the tables and the figures both name and order: buckets, pass@k columns, B-STaR's
rounds and searched temperatures, phases. One definition each, so a table's columns and a
figure's series come in the same order under the same names."""

from __future__ import annotations

from selftaught.records import MetricsRow

# MetricsRow.exploration's keys, in column order
EXPLORATION = ("pass@k", "pass@k-s", "valid_pass@k")


def natural_key(key: str):
    """``"2" < "10"`` and ``"8-4" < "32-4"``; names that are not numbers after them."""
    try:
        return (0, tuple(int(p) for p in str(key).split("-")))
    except ValueError:
        return (1, str(key))


def bucket_label(task: str, bucket: str) -> str:
    """What a bucket is, in the task's words: a digit count, a number of terms."""
    if task == "addition":
        return f"{bucket}-digit"
    if task == "expression":
        return f"{bucket} terms"
    return f"bucket {bucket}"


def bucket_order(rows: list[MetricsRow]) -> list[str]:
    buckets = dict.fromkeys(b for r in rows for b in r.accuracy_by_bucket or {})
    return sorted(buckets, key=natural_key)


def pass_label(key: str, k: str) -> str:
    """``pass@4``; ``pass@32-s4`` for at least 4 correct of 32 (B-STaR's Pass@32-4);
    ``valid pass@4`` counting only answers reached by valid steps."""
    if key == "pass@k":
        return f"pass@{k}"
    if key == "valid_pass@k":
        return f"valid pass@{k}"
    total, at_least = k.split("-")
    return f"pass@{total}-s{at_least}"


def pass_ks(rows: list[MetricsRow], key: str) -> list[str]:
    """Every k any row measured ``key`` (``pass@k`` or ``pass@k-s``) at, smallest first."""
    return sorted({k for r in rows for k in r.exploration(key)}, key=natural_key)


def bstar_rounds(rows: list[MetricsRow]) -> list[MetricsRow]:
    """The rounds that chose a configuration (iteration 0 is the base model: none)."""
    return [r for r in rows if r.iteration > 0]


def has_bstar(rows: list[MetricsRow]) -> bool:
    return any(
        r.threshold is not None or r.balance_score is not None or r.search_balance_scores
        for r in rows
    )


def searched_temperatures(rows: list[MetricsRow]) -> list[str]:
    """The temperatures B-STaR's search scored, as the rows key them (``f"{T:g}"``)."""
    return sorted({t for r in rows for t in r.search_balance_scores or {}}, key=float)


def phase_order(rows: list[MetricsRow]) -> list[str]:
    """The phases timed, in the order the loop ran them (it writes ``seconds`` that way)."""
    return list(dict.fromkeys(p for r in rows for p in r.seconds))


def has_exploitation(rows: list[MetricsRow]) -> bool:
    """Whether any row measured what the exploration/exploitation figure draws."""
    return any(
        v is not None
        for r in rows
        for v in (r.eval_distinct_correct, r.best_of_k_accuracy, r.selected_valid_accuracy)
    )
