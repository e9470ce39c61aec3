"""TensorBoard and W&B logging of metrics rows, read back with each tool's own format."""

import json
import struct
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from selftaught.tracking import STATE_FILE, Tracker, scalars
from tests.conftest import interrupt_before_training


def row(n: int, accuracy: float | None = None) -> dict:
    """A metrics row as the eval phase writes it (records.MetricsRow): a B-STaR round."""
    return {
        "iteration": n,
        "method": "bstar",
        "accuracy": 0.5 + n / 10 if accuracy is None else accuracy,
        "accuracy_by_bucket": {"1": 0.9, "2": 0.1 * n},
        "pass@1": 0.5,
        "pass@k": {"1": 0.5, "2": 0.6, "4": 0.7 + n / 100},
        "pass@k-s": {"4-1": 0.7},
        "problems": 12 if n else 0,
        "generated_correct": 7,
        "distinct_correct": None if n == 0 else 0.33,
        "train_examples": 4 * n,
        "train_loss": None if n == 0 else 0.1,
        "temperature": None if n == 0 else 0.6,
        "threshold": None if n == 0 else 0.0,
        "balance_score": None if n == 0 else 0.125,
        "search_balance_scores": None if n == 0 else {"0.6": 0.125, "1.2": 0.0},
        "seconds": {"search": 8.9, "sample": 2.0, "rationalize": 0.0, "train": 2.0, "eval": 9.5},
        "tokens_per_second": {"sample": 582.7, "train": 423.9},
    }


def config(toy_config, tensorboard=True, wandb=False):
    toy_config.log.tensorboard = tensorboard
    toy_config.log.wandb = wandb
    return toy_config


def events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    return acc


def raw_steps(run_dir: Path, tag: str) -> list[int]:
    """Every step written for ``tag`` across all event files, purged copies included."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps = []
    for path in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            steps += [event.step for v in event.summary.value if v.tag == tag]
    return steps


def test_rows_become_flat_scalar_tags():
    tags = scalars(row(1))
    assert tags["accuracy"] == pytest.approx(0.6)
    assert tags["accuracy_by_bucket/2"] == pytest.approx(0.1)
    assert tags["pass@k/4"] == pytest.approx(0.71)
    assert tags["pass@k-s/4-1"] == 0.7
    assert tags["seconds/train"] == 2.0 and tags["tokens_per_second/sample"] == 582.7
    assert tags["search_balance_scores/1.2"] == 0.0
    assert "iteration" not in tags and "method" not in tags  # the step; text
    assert "distinct_correct" not in scalars(row(0))  # None is not a value


def test_tensorboard_events_hold_every_tag_at_its_iteration(tmp_path, toy_config):
    with Tracker(config(toy_config), tmp_path) as tracker:
        tracker.log_rows([row(0), row(1), row(2)])
    acc = events(tmp_path)
    tags = set(acc.Tags()["scalars"])
    assert tags == set(scalars(row(1)))  # row 1 has every tag row 0 has, and more
    for tag in ("accuracy", "accuracy_by_bucket/2", "pass@k/4", "seconds/eval"):
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        want = [(n, scalars(row(n))[tag]) for n in (0, 1, 2)]
        assert [s for s, _ in got] == [s for s, _ in want]
        assert [v for _, v in got] == pytest.approx([v for _, v in want])
    assert [e.step for e in acc.Scalars("temperature")] == [1, 2]
    assert "config/text_summary" in acc.Tags()["tensors"]  # the resolved config, as text
    assert json.loads((tmp_path / STATE_FILE).read_text())["tensorboard"] == [0, 1, 2]


def test_a_resumed_run_never_logs_an_iteration_twice(tmp_path, toy_config):
    with Tracker(config(toy_config), tmp_path) as tracker:
        tracker.log_rows([row(0), row(1)])
    with Tracker(config(toy_config), tmp_path) as tracker:  # the resumed process
        tracker.log_rows([row(0), row(1), row(2)])
        tracker.log(row(2))
    assert raw_steps(tmp_path, "accuracy") == [0, 1, 2]  # not even a hidden copy
    assert [e.step for e in events(tmp_path).Scalars("pass@k/4")] == [0, 1, 2]
    with Tracker(config(toy_config), tmp_path) as tracker:
        tracker.log_rows([row(0), row(1), row(2)])  # all logged: not even a writer opens
        assert tracker._tb is None
    assert len(list((tmp_path / "tensorboard").glob("events.*"))) == 2


def test_a_kill_between_flush_and_record_leaves_one_value_per_step(tmp_path, toy_config):
    with Tracker(config(toy_config), tmp_path) as tracker:
        tracker.log_rows([row(0), row(1), row(2, accuracy=0.1)])
    state = json.loads((tmp_path / STATE_FILE).read_text())
    state["tensorboard"] = [0, 1]  # as if killed after writing iteration 2's events
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    with Tracker(config(toy_config), tmp_path) as tracker:
        tracker.log_rows([row(0), row(1), row(2, accuracy=0.9)])
    assert raw_steps(tmp_path, "accuracy") == [0, 1, 2, 2]  # on disk: the orphan and the new
    shown = [(e.step, e.value) for e in events(tmp_path).Scalars("accuracy")]
    assert shown == [(0, 0.5), (1, pytest.approx(0.6)), (2, pytest.approx(0.9))]


def test_nothing_is_written_when_logging_is_off(tmp_path, toy_config):
    with Tracker(config(toy_config, tensorboard=False), tmp_path) as tracker:
        tracker.log(row(0))
    assert list(tmp_path.iterdir()) == []


def test_wandb_without_the_package_fails_with_what_to_do(tmp_path, toy_config, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(ImportError, match=r"selftaught\[wandb\].*log.wandb=false"):
        Tracker(config(toy_config, wandb=True), tmp_path)


def wandb_history(run_dir: Path) -> list[tuple[str, int, dict]]:
    """(run id, step, {key: value}) of every history record in every .wandb file: these are
    LevelDB-log files of wandb's protobuf ``Record``s, the same bytes ``wandb sync`` sends."""
    from wandb.proto import wandb_internal_pb2

    out = []
    for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        data, pos, chunks = path.read_bytes(), 7, b""  # 7: the ':W&B' file header
        while pos + 7 <= len(data):
            if 32768 - pos % 32768 < 7:  # block trailer too small for a header
                pos += 32768 - pos % 32768
                continue
            _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
            if kind == 0:
                break
            chunks += data[pos + 7 : pos + 7 + length]
            pos += 7 + length
            if kind in (1, 4):  # a full record, or the last piece of one
                record = wandb_internal_pb2.Record()
                record.ParseFromString(chunks)
                chunks = b""
                if record.WhichOneof("record_type") == "history":
                    h = record.history
                    items = {
                        i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in h.item
                    }
                    out.append((path.stem.removeprefix("run-"), h.step.num, items))
    return out


def test_wandb_offline_logs_each_iteration_once_without_network(tmp_path, toy_config, monkeypatch):
    wandb = pytest.importorskip(
        "wandb", reason="W&B not installed: pip install 'selftaught[wandb]'"
    )
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    run_dir = tmp_path / "run"
    cfg = config(toy_config, tensorboard=False, wandb=True)
    assert cfg.log.wandb_mode == "offline"
    with Tracker(cfg, run_dir) as tracker:
        tracker.log_rows([row(0), row(1)])
    with Tracker(cfg, run_dir) as tracker:  # resumed
        tracker.log_rows([row(0), row(1), row(2)])
    wandb.teardown()  # waits for wandb's own process to have written everything
    history = wandb_history(run_dir)
    assert [step for _, step, _ in history] == [0, 1, 2]
    assert {run_id for run_id, _, _ in history} == {
        json.loads((run_dir / STATE_FILE).read_text())["wandb_id"]
    }
    for _, step, items in history:
        assert items["accuracy_by_bucket/2"] == pytest.approx(0.1 * step)
        assert items["pass@k/4"] == pytest.approx(0.7 + step / 100)
        assert items["seconds/train"] == 2.0
    assert not (run_dir / "tensorboard").exists()


def test_a_killed_and_resumed_run_logs_every_iteration_once(tmp_path, toy_config, monkeypatch):
    from selftaught.loop import run

    out = tmp_path / "run"
    interrupt_before_training(monkeypatch, toy_config, out, iteration=2)
    assert [e.step for e in events(out).Scalars("accuracy")] == [0, 1]  # live, per iteration
    rows = run(toy_config, out, resume=True)
    assert raw_steps(out, "accuracy") == [0, 1, 2]
    acc = events(out)
    assert [e.value for e in acc.Scalars("accuracy")] == pytest.approx(
        [r["accuracy"] for r in rows]
    )
    assert [e.step for e in acc.Scalars("accuracy_by_bucket/2")] == [0, 1, 2]
    assert [e.step for e in acc.Scalars("seconds/train")] == [0, 1, 2]
