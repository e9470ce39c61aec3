from selftaught import selection


def s(pid, completion, correct=True, **extra):
    return {"problem_id": pid, "completion": completion, "correct": correct, **extra}


def test_correct_only():
    rows = [s("a", "x"), s("a", "y", False), s("b", "z")]
    assert selection.correct_only(rows) == [rows[0], rows[2]]
    assert selection.correct_only([]) == []


def test_dedupe_is_per_problem_and_ignores_surrounding_whitespace():
    rows = [s("a", "x"), s("a", "x\n"), s("b", "x"), s("a", "y")]
    assert selection.dedupe(rows) == [rows[0], rows[2], rows[3]]


def test_cap_per_problem_keeps_the_first():
    rows = [s("a", "1"), s("a", "2"), s("b", "1"), s("a", "3")]
    assert selection.cap_per_problem(rows, 2) == rows[:3]
    assert selection.cap_per_problem(rows, None) == rows
    assert selection.cap_per_problem(rows, 0) == []


def test_without_drops_rejected_completions():
    rows = [s("a", "Hint: 3"), s("b", "fine")]
    assert selection.without(rows, lambda c: "Hint" in c) == [rows[1]]


def test_unsolved_keeps_order_and_counts_any_correct_sample():
    rows = [s("b", "x", False), s("b", "y", True), s("c", "z", False)]
    assert selection.unsolved(["a", "b", "c"], rows) == ["a", "c"]
