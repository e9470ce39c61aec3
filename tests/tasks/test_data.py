"""Loaders: local JSONL / JSON / Parquet files and folders, subsets, hold-out, exemplars, and
every bad input failing with file, line and what was expected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selftaught.config import DataTaskConfig
from selftaught.tasks.data import (
    DataError,
    Record,
    Source,
    load_exemplars,
    load_splits,
    looks_like_hub_name,
    read_json,
    read_jsonl,
    read_local,
    split_lines,
    split_paragraphs,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"
BAD = FIXTURES / "bad"
SHARED = Path(__file__).parents[2].parent / "shared" / "datasets"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"real data sets not present at {SHARED} (optional)"
)


def config(**kw) -> DataTaskConfig:
    return DataTaskConfig(**{"name": "gsm8k", **kw})


# -- reading files --------------------------------------------------------------------------
def test_jsonl_rows_know_their_line():
    records = read_jsonl(FIXTURES / "gsm8k" / "train.jsonl")
    assert len(records) == 6
    assert records[2].where.endswith("train.jsonl:3") and records[2].index == 2
    assert set(records[0].row) == {"question", "answer"}


def test_json_array_and_json_lines(tmp_path):
    records = read_json(FIXTURES / "math500.json")
    assert len(records) == 8 and records[7].where.endswith("math500.json: item 7")
    lines = tmp_path / "rows.json"
    lines.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert [r.row["a"] for r in read_local(lines)] == [1, 2]


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = json.loads((FIXTURES / "math500.json").read_text())
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "math.parquet")
    records = read_local(tmp_path / "math.parquet")
    assert [r.row for r in records] == rows
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="broken.parquet: not a readable Parquet file"):
        read_local(tmp_path / "broken.parquet")


def test_utf8_bom_is_fine(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n')
    assert read_jsonl(path)[0].row == {"a": 1}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("truncated.jsonl", r"truncated\.jsonl:3: not valid JSON: .* \(the line ends early"),
        ("latin1.jsonl", r"latin1\.jsonl:2: not UTF-8 text \(byte 0xe9 at column 18\)"),
        ("empty.jsonl", r"empty\.jsonl: empty file; expected one JSON object per line"),
        ("not_object.jsonl", r"not_object\.jsonl:2: expected a JSON object .* got an array"),
        ("utf16.jsonl", r"utf16\.jsonl:1: the file is UTF-16 text; expected UTF-8"),
        ("bad_array.json", r"bad_array\.json:3: not valid JSON: Expecting ',' delimiter"),
        (
            "numbers_array.json",
            r"numbers_array\.json: item 0: expected a JSON object, got a number",
        ),
    ],
)
def test_bad_files_name_file_and_line(name, message):
    with pytest.raises(DataError, match=message):
        read_local(BAD / name)


def test_unknown_extension(tmp_path):
    (tmp_path / "rows.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"unknown file type '\.csv'"):
        read_local(tmp_path / "rows.csv")


def test_record_fields_are_checked():
    record = Record("f.jsonl:4", 3, {"question": "q", "answer": ["x"], "n": True})
    assert record.get("question") == "q"
    with pytest.raises(
        DataError,
        match=r"f\.jsonl:4: missing field 'problem' or 'input' "
        r"\(the row has 'question', 'answer', 'n'\)",
    ):
        record.get("problem", "input")
    with pytest.raises(DataError, match=r"f\.jsonl:4: field 'answer' is an array .* a string"):
        record.get("answer")
    with pytest.raises(DataError, match="field 'n' is a boolean"):
        record.get("n", kind=(str, int))
    assert record.get("missing", required=False) is None


# -- sources -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "hub"),
    [
        ("openai/gsm8k", True),
        ("gsm8k", True),
        ("HuggingFaceH4/MATH-500", True),
        ("data/train.jsonl", False),
        ("./gsm8k", False),
        ("/abs/gsm8k", False),
        ("a/b/c", False),
        ("~/gsm8k", False),
        ("rows.parquet", False),
    ],
)
def test_looks_like_hub_name(text, hub):
    assert looks_like_hub_name(text) is hub


def test_a_folder_reads_the_split_file():
    folder = FIXTURES / "gsm8k"
    assert Source(str(folder), split="test").resolve() == (
        "file",
        str((folder / "test.jsonl").resolve()),
    )
    with pytest.raises(DataError, match=r"no validation\.jsonl.*has test\.jsonl, train\.jsonl"):
        Source(str(folder), split="validation").resolve()


def test_a_missing_path_that_is_no_hub_name_fails_clearly():
    with pytest.raises(DataError, match=r"no_such\.jsonl: no such file or folder, and not a hub"):
        Source(str(FIXTURES / "no_such.jsonl")).resolve()


def test_a_hub_name_resolves_without_reading():
    assert Source("openai/gsm8k", "main", "test").resolve() == (
        "hub",
        "openai/gsm8k",
        "main",
        "test",
    )


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


# -- steps ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text", ["", "one line", "a\nb\n", "a\n\nb", "\nlead", "p1\n\np2\n\n\np3\n", "\n\n", "x\n"]
)
def test_steps_join_back(text):
    for split in (split_lines, split_paragraphs):
        steps = split(text)
        assert steps and "".join(steps) == text


def test_step_shapes():
    assert split_lines("a\nb\n\nc") == ["a\n", "b\n\n", "c"]
    assert split_paragraphs("a\nb\n\nc\n\n\nd") == ["a\nb\n\n", "c\n\n\n", "d"]


# -- the real files, when the shared folder is there --------------------------------------------
@needs_shared
def test_real_files_load():
    counts = {
        "gsm8k/train.jsonl": 7473,
        "gsm8k/test.jsonl": 1319,
        "math500/test.json": 500,
        "arc_challenge/train.jsonl": 1418,
        "arc_challenge/test.jsonl": 1172,
    }
    for name, rows in counts.items():
        assert len(read_local(SHARED / name)) == rows, name


def test_a_hub_failure_is_a_data_error(tmp_path):
    """The real ``datasets.load_dataset`` call, offline (a fresh process, so the offline
    switch is read before huggingface_hub is imported): its error names the data set."""
    pytest.importorskip("datasets")
    code = (
        "from selftaught.tasks.data import read_hub, DataError\n"
        "try:\n"
        "    read_hub('selftaught-test/no-such-dataset', 'main', 'train')\n"
        "except DataError as err:\n"
        "    print(err)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env["HF_HOME"] = str(tmp_path / "hf")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.startswith(
        "hub data set 'selftaught-test/no-such-dataset' (main) split 'train': "
    ), out.stderr[-2000:]
    assert "not a local file or folder either" in out.stdout
