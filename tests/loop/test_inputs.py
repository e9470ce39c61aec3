"""loop/inputs.py: a resume checks the run's inputs; other problems refuse, naming them.
(Through the CLI, with a changed model too: tests/test_user_errors.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from selftaught.config import DataTaskConfig, resolve
from selftaught.loop.inputs import INPUTS, InputsChanged, check_inputs, fingerprint
from selftaught.progress import Reporter
from selftaught.store import RunStore
from selftaught.tasks import build_task

FIXTURES = Path(__file__).parent.parent / "fixtures" / "data"


def _started_run(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path / "run")
    store.create(resolve({}))
    store.complete(0, "reward", {})  # a phase used the inputs: from now on they are fixed
    return store


def _config(data: Path) -> DataTaskConfig:
    return DataTaskConfig(
        name="jsonl", path=str(data), eval_size=1, question_field="q", answer_field="a"
    )


def test_an_edited_data_file_is_refused_once_a_phase_completed(tmp_path):
    data = tmp_path / "own.jsonl"
    shutil.copy(FIXTURES / "own.jsonl", data)
    store = _started_run(tmp_path)
    config, task = store.load_config(), build_task(_config(data))
    check_inputs(store, fingerprint(task, config, tmp_path), Reporter(quiet=True))
    check_inputs(store, fingerprint(task, config, tmp_path), Reporter(quiet=True))

    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows[-1]["a"] = "12345"  # one answer edited between a kill and the resume
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = build_task(_config(data))
    with pytest.raises(
        InputsChanged, match=r"the run.s inputs changed since it started: (train|held-out) set"
    ):
        check_inputs(store, fingerprint(task, config, tmp_path), Reporter(quiet=True))


def test_a_record_in_the_first_format_is_replaced_with_a_note(tmp_path, capsys):
    data = tmp_path / "own.jsonl"
    shutil.copy(FIXTURES / "own.jsonl", data)
    store = _started_run(tmp_path)
    first = {"train": "0123456789abcdef", "held_out": "0123456789abcdef", "model": "builtin"}
    (store.root / INPUTS).write_text(json.dumps(first))
    config, task = store.load_config(), build_task(_config(data))
    now = fingerprint(task, config, tmp_path)
    check_inputs(store, now, Reporter())
    assert "cannot be told" in capsys.readouterr().err
    assert json.loads((store.root / INPUTS).read_text()) == now
