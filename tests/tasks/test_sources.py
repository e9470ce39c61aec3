"""Reading rows: local JSONL / JSON / Parquet files and folders, hub names, and every bad
input failing with file, line and what was expected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selftaught.tasks.sources import (
    DataError,
    Record,
    Source,
    looks_like_hub_name,
    read_json,
    read_jsonl,
    read_local,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"
BAD = FIXTURES / "bad"
SHARED = Path(__file__).parents[2].parent / "shared" / "datasets"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"real data sets not present at {SHARED} (optional)"
)


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
        "from selftaught.tasks.sources import read_hub, DataError\n"
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
