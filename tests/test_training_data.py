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
