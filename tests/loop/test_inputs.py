"""A resume checks the run's inputs: other problems or another M refuse, naming them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from selftaught.config import DataTaskConfig, resolve
from selftaught.loop.inputs import INPUTS, fingerprint, record_or_check
from selftaught.progress import Reporter
from selftaught.store import RunDirError, RunStore
from selftaught.tasks import build_task

FIXTURES = Path(__file__).parent.parent / "fixtures" / "data"


def test_an_edited_data_file_is_refused_on_resume(tmp_path):
    data = tmp_path / "own.jsonl"
    shutil.copy(FIXTURES / "own.jsonl", data)
    config = DataTaskConfig(
        name="jsonl", path=str(data), eval_size=1, question_field="q", answer_field="a"
    )
    store = RunStore(tmp_path / "run")
    store.create(resolve({}))
    model = tmp_path / "model"
    record_or_check(store, fingerprint(build_task(config), model), Reporter(quiet=True))
    record_or_check(store, fingerprint(build_task(config), model), Reporter(quiet=True))

    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows[-1]["a"] = "12345"  # one answer edited between a kill and the resume
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(RunDirError, match="problems changed since"):
        record_or_check(store, fingerprint(build_task(config), model), Reporter(quiet=True))
    other_model = fingerprint(build_task(config), tmp_path / "other")
    with pytest.raises(RunDirError, match="M changed"):
        record_or_check(
            store,
            {**json.loads((store.root / INPUTS).read_text()), "model": other_model["model"]},
            Reporter(quiet=True),
        )
