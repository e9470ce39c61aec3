import json

import pytest
import yaml

from selftaught.config import resolve
from selftaught.models.base_model import base_key
from selftaught.store import RunStore, atomic_write_text, config_diff, read_jsonl, write_jsonl


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    assert (tmp_path / "a.txt").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_jsonl_round_trip_plain_and_gzip(tmp_path):
    rows = [{"a": 1, "text": "é\n"}, {"a": 2}]
    for name in ("x.jsonl", "x.jsonl.gz"):
        write_jsonl(tmp_path / name, rows)
        assert read_jsonl(tmp_path / name) == rows
    write_jsonl(tmp_path / "y.jsonl.gz", rows)
    assert (tmp_path / "y.jsonl.gz").read_bytes() == (tmp_path / "x.jsonl.gz").read_bytes()


def test_phases_and_metrics_are_idempotent(tmp_path, toy_config):
    store = RunStore(tmp_path / "run")
    store.create(toy_config)
    assert not store.done(1, "sample")
    store.complete(1, "sample", {"seconds": 1.0})
    assert store.done(1, "sample") and store.stats(1) == {"sample": {"seconds": 1.0}}
    store.write_metrics(1, {"iteration": 1})
    store.write_metrics(0, {"iteration": 0})
    store.write_metrics(1, {"iteration": 1, "again": True})  # a phase repeated after a kill
    assert store.metrics() == [{"iteration": 0}, {"iteration": 1, "again": True}]
    assert json.loads((tmp_path / "run" / "state.json").read_text())["last"] == {
        "iteration": 1,
        "phase": "sample",
    }
    assert store.load_config() == toy_config


def test_refuses_to_overwrite_a_run(tmp_path, toy_config):
    RunStore(tmp_path).create(toy_config)
    with pytest.raises(FileExistsError, match="--resume"):
        RunStore(tmp_path).create(toy_config)
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        RunStore(tmp_path / "nothing").state()


def test_config_diff_names_every_differing_leaf_by_its_dotted_path():
    old = {"train": {"lr": 1e-3, "steps": 100}, "bstar": {"temperatures": [0.5, 1.0]}, "seed": 0}
    new = {"train": {"lr": 2e-4, "steps": 100}, "bstar": {"temperatures": [0.5]}, "x": 1, "seed": 0}
    assert config_diff(old, new) == {
        "train.lr": {"from": 1e-3, "to": 2e-4},
        "bstar.temperatures": {"from": [0.5, 1.0], "to": [0.5]},
        "x": {"from": None, "to": 1},
    }
    assert config_diff(old, old) == {}


def _old_layout(path) -> None:
    """Rewrite a stored config.yaml as runs stored it before the built-in model's
    architecture moved from ``model`` to ``base``: under model, and base always shown."""
    raw = yaml.safe_load(path.read_text())
    base = raw.get("base") or {"examples": 64000, "max_size": 3, "steps": 2000}
    shape = {k: base.pop(k, 4) for k in ("hidden_size", "layers", "heads")}
    model = raw["model"]
    raw["model"] = {"name_or_path": model.pop("name_or_path"), **shape, **model}
    raw["base"] = base
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_a_run_stored_with_the_old_model_keys_loads(tmp_path, toy_config):
    store = RunStore(tmp_path / "builtin")
    store.create(toy_config)
    _old_layout(tmp_path / "builtin" / "config.yaml")
    assert (
        "hidden_size" in yaml.safe_load((tmp_path / "builtin" / "config.yaml").read_text())["model"]
    )
    assert store.load_config() == toy_config
    assert base_key(store.load_config()) == base_key(toy_config)  # the same M
    store.change_config(["train.lr=1e-4"])  # rewritten in today's layout
    stored = yaml.safe_load((tmp_path / "builtin" / "config.yaml").read_text())
    assert "hidden_size" not in stored["model"] and stored["base"]["hidden_size"] == 64
    # a real model's run: the architecture it never used is dropped, as is its base section
    real = resolve({"model": {"name_or_path": "gpt2"}, "iterations": 1})
    store = RunStore(tmp_path / "real")
    store.create(real)
    _old_layout(tmp_path / "real" / "config.yaml")
    assert store.load_config() == real and store.load_config().base is None
