"""Training and held-out rows: subsets by seed, hold-out from one file, and exemplars."""

from __future__ import annotations

from pathlib import Path

import pytest

from selftaught.config import DataTaskConfig
from selftaught.tasks.sources import DataError
from selftaught.tasks.splits import load_exemplars, load_splits

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"
BAD = FIXTURES / "bad"


def config(**kw) -> DataTaskConfig:
    return DataTaskConfig(**{"name": "gsm8k", **kw})


# -- splits and subsets --------------------------------------------------------------------
def test_folder_splits_and_seeded_subsets():
    folder = str(FIXTURES / "gsm8k")
    train, held = load_splits(config(path=folder))
    assert (len(train), len(held)) == (6, 4)
    a, _ = load_splits(config(path=folder, train_size=3, seed=1))
    b, _ = load_splits(config(path=folder, train_size=3, seed=1))
    assert [r.index for r in a] == [r.index for r in b]
    assert [r.index for r in a] == sorted(r.index for r in a)  # file order kept
    seeds = {
        tuple(r.index for r in load_splits(config(path=folder, train_size=3, seed=s))[0])
        for s in range(6)
    }
    assert len(seeds) > 1
    with pytest.raises(DataError, match="task.train_size: 7 rows asked for, the data has only 6"):
        load_splits(config(path=folder, train_size=7))


def test_one_file_holds_out_eval_rows_disjoint_from_training():
    path = str(FIXTURES / "gsm8k" / "train.jsonl")
    train, held = load_splits(config(path=path, eval_size=2))
    assert len(held) == 2 and len(train) == 4
    assert not {r.index for r in train} & {r.index for r in held}
    with pytest.raises(DataError, match="task.eval_size: training and evaluation would both read"):
        load_splits(config(path=path))
    with pytest.raises(DataError, match="leave none of the 6"):
        load_splits(config(path=path, eval_size=6))


def test_eval_path_is_read_separately():
    train, held = load_splits(
        config(path=str(FIXTURES / "gsm8k" / "train.jsonl"), eval_path=str(FIXTURES / "gsm8k"))
    )
    assert (len(train), len(held)) == (6, 4)  # eval_path is a folder: its eval_split file


# -- exemplars ----------------------------------------------------------------------------
def test_exemplars():
    path = str(FIXTURES / "few_shot_gsm8k.jsonl")
    assert len(load_exemplars(path, 0)) == 2  # 0: all of them
    (first,) = load_exemplars(path, 1)
    assert first.answer == "6" and first.rationale.startswith("There are 15 trees")
    assert load_exemplars(path, 2)[1].answer == "5"  # a number in the file, a string here
    assert load_exemplars(None, 0) == []
    with pytest.raises(DataError, match="task.few_shot: 2 exemplars need task.few_shot_path"):
        load_exemplars(None, 2)
    with pytest.raises(DataError, match="task.few_shot: 3 exemplars asked for"):
        load_exemplars(path, 3)
    with pytest.raises(
        DataError,
        match=r"few_shot_missing_rationale\.jsonl:1: missing field "
        "'rationale'",
    ):
        load_exemplars(str(BAD / "few_shot_missing_rationale.jsonl"), 0)
