"""The training set an iteration's samples give under the run's selection settings."""

import pytest

from selftaught.config import RunConfig
from selftaught.tasks.expression import ExpressionTask
from selftaught.training_data import training_set


def _record(problem, completion, task):
    correct = task.is_correct(task.extract_answer(completion), problem)
    return {
        "problem_id": problem.id,
        "completion": completion,
        "correct": correct,
        "reward": float(correct),
        "hinted": False,
    }


@pytest.mark.parametrize("method", ["rest-em", "bstar"])
def test_the_oracle_filter_drops_right_answers_reached_by_wrong_steps(method):
    task = ExpressionTask(4, 4)
    problem = next(p for p in task.train_problems() if p.question == "1 * 2 + 7 * 1")
    valid = task.reference(problem)  # 2 + 7 * 1 / 2 + 7 / 9
    lucky = "<scratch>\n1 * 9 * 1\n9 * 1\n9\n</scratch>\n9"  # + before *, yet 9
    wrong = "<scratch>\n2 + 7 * 1\n9 * 1\n8\n</scratch>\n8"
    records = [_record(problem, c, task) for c in (valid, lucky, wrong)]
    assert [r["correct"] for r in records] == [True, True, False]

    def kept(valid_steps):
        raw = {"method": method, "task": {"name": "expression"}}
        config = RunConfig(**raw, selection={"valid_steps": valid_steps})
        rows, _ = training_set(config, task, [problem], records)
        return {r["completion"] for r in rows}

    assert kept(False) == {valid, lucky}
    assert kept(True) == {valid}


@pytest.mark.parametrize("method", ["star", "bstar"])
def test_min_steps_drops_a_rationalization_that_only_copies_the_hint(method):
    """What SmolLM2 wrote for 57 of 58 hinted GSM8K problems: the answer, no steps."""
    task = ExpressionTask(3, 3)
    problem = task.train_problems()[0]
    reasoned = _record(problem, task.reference(problem), task)  # 5 steps
    copied = {**_record(problem, f"</scratch>\n{problem.answer}", task), "hinted": True}
    assert reasoned["correct"] and copied["correct"] and len(task.steps(copied["completion"])) == 1

    def kept(min_steps):
        raw = {"method": method, "task": {"name": "expression"}}
        config = RunConfig(**raw, selection={"min_steps": min_steps})
        rows, _ = training_set(config, task, [problem], [reasoned, copied])
        return [r["completion"] for r in rows]

    assert kept(0) == [reasoned["completion"], copied["completion"]]
    assert kept(2) == [reasoned["completion"]]
    assert kept(len(task.steps(reasoned["completion"])) + 1) == []


# -- B-STaR's candidates and round selection ---------------------------------------------------
class _Task:
    """Two-query stand-in: references, prompts, no hint leaks."""

    step_gold = False

    def reference(self, problem):
        return f"reference {problem.id}"

    def prompt(self, problem, hint=False):
        return problem.id

    def train_prompt(self, problem):
        return problem.id

    def leaks_hint(self, completion):
        return False


def _bstar(**keys):
    from selftaught.config import resolve

    return resolve({"method": "bstar", **keys})


def _rec(pid, completion, correct, reward, answer="x"):
    return {
        "problem_id": pid,
        "completion": completion,
        "answer": answer,
        "correct": correct,
        "reward": reward,
        "hinted": False,
    }


def _problems():
    from selftaught.tasks import Problem

    return [Problem(pid, pid, "1", "1") for pid in ("a", "b")]


def test_unparseable_responses_are_no_candidates_unless_asked():
    from selftaught.training_data import bstar_candidates

    records = [_rec("a", "right", True, 1.1), _rec("a", "rambles", False, 0.19, answer=None)]
    records.append(_rec("b", "rambles too", False, 0.1, answer=None))
    cands, asked = bstar_candidates(_bstar(), _Task(), _problems(), records)
    # b had only an unparseable response: it is still asked, and keeps its reference
    assert asked == ["a", "b"]
    assert [c["completion"] for c in cands] == ["right", "reference a", "reference b"]
    kept, _ = bstar_candidates(
        _bstar(bstar={"drop_unparseable": False}), _Task(), _problems(), records
    )
    assert [c["completion"] for c in kept][:3] == ["right", "rambles", "rambles too"]
    # and never trained on: tau = -1.0 keeps everything else
    rows, _ = training_set(
        _bstar(bstar={"adjust": "temperature"}, selection={"threshold": -1.0}),
        _Task(),
        _problems(),
        records,
    )
    assert [r["completion"] for r in rows] == ["right"]


def test_adjusting_the_temperature_only_keeps_selection_threshold():
    records = [_rec("a", f"right {i}", True, 1.1) for i in range(3)]
    records += [_rec("a", "wrong", False, 0.15)]
    config = _bstar(bstar={"adjust": "temperature"}, selection={"threshold": 0.1})
    rows, chosen = training_set(config, _Task(), _problems(), records)
    # 0.1 keeps the wrong one: 4 right (with the reference) of 5, 4/8 * 4/5
    assert chosen == {"threshold": 0.1, "balance_score": pytest.approx(0.4)}
    assert len(rows) == 4
    swept = training_set(_bstar(), _Task(), _problems(), records)[1]
    assert swept == {"threshold": 0.15, "balance_score": 0.5}


def test_the_threshold_can_be_the_searchs():
    records = [_rec("a", "right", True, 1.1), _rec("a", "wrong", False, 0.15)]
    config = _bstar(bstar={"threshold_from": "search"})
    rows, chosen = training_set(config, _Task(), _problems(), records, search_threshold=-0.5)
    assert chosen["threshold"] == -0.5 and len(rows) == 2
    with pytest.raises(ValueError, match="no search threshold"):
        training_set(config, _Task(), _problems(), records)


def test_the_round_cap_limits_what_is_trained_on():
    # a: 3 right (1.3, 1.2, 1.1) and the reference (1.0); b: 1 right and its reference
    records = [_rec("a", f"right {i}", True, 1.3 - i / 10) for i in range(3)]
    records.append(_rec("b", "right", True, 1.5))
    config = _bstar(bstar={"train_target": 4})
    rows, chosen = training_set(config, _Task(), _problems(), records)
    # cap 2: a keeps 1.3 and 1.2, b its sample and reference: 4 responses reach the target
    assert sorted(r["completion"] for r in rows) == ["right", "right 0", "right 1"]
    assert chosen["balance_score"] == pytest.approx((2 / 8 + 2 / 8) / 2)
    uncapped = training_set(_bstar(bstar={"train_target": None}), _Task(), _problems(), records)
    assert len(uncapped[0]) == 4
