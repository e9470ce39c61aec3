"""Every preset runs on the toy config, and each does what makes it that method."""

import pytest

from selftaught import bstar
from selftaught.config import resolve
from selftaught.loop import run
from selftaught.methods import PRESETS
from selftaught.models.train_loop import OPTIMIZER_FILE
from selftaught.store import RunStore, read_jsonl
from selftaught.tasks import build_task


def toy_method(toy_raw: dict, method: str, **sections) -> dict:
    raw = {**toy_raw, "method": method, "iterations": 2}
    raw["sampling"] = {**raw["sampling"], "num_samples": 2, "queries_per_round": 12}
    raw["train"] = {**raw["train"], "steps": 3, "steps_increment": 0}
    raw["bstar"] = {"temperatures": [0.6, 1.2], "queries": 6}
    raw["eval"] = {**raw["eval"], "num_samples": 4}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return raw


@pytest.mark.parametrize("method", sorted(PRESETS))
def test_every_preset_runs_two_rounds_and_logs_its_metrics(tmp_path, toy_raw, method):
    config = resolve(toy_method(toy_raw, method))
    rows = run(config, tmp_path / method)
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert row["method"] == method
        assert set(row["pass@k"]) == {"1", "2", "4"} and set(row["pass@k-s"]) == {"4-1"}
        assert 0 <= row["pass@k"]["1"] <= row["pass@k"]["4"] <= 1
    store = RunStore(tmp_path / method)
    for n in (1, 2):
        samples = store.samples(n)
        unhinted = [s for s in samples if not s["hinted"]]
        assert len(unhinted) == rows[n]["problems"] * config.sampling.num_samples
        assert all(s["reward"] == float(s["correct"]) for s in samples)  # no reward model
        train = read_jsonl(store.iter_dir(n) / "train.jsonl")
        assert rows[n]["train_examples"] == len(train)
        if config.selection.require_correct:
            assert all(r["correct"] for r in train)
        # the Table 3 ablations: what is not adjusted stays as configured
        b, searched = config.bstar, "search" in store.stats(n)
        assert searched == (b.enabled and b.adjust != "threshold")
        if b.enabled and b.adjust == "threshold":
            assert rows[n]["temperature"] == config.sampling.temperature == 0.8
        if b.enabled and b.adjust == "temperature":
            assert rows[n]["temperature"] in (0.6, 1.2) and rows[n]["threshold"] == 0.5
            assert all(r["reward"] > 0.5 for r in train)


def test_presets_differ_exactly_where_the_methods_do(toy_raw):
    configs = {m: resolve(toy_method(toy_raw, m)) for m in PRESETS}
    assert configs["rest-em"].train.init == "base"
    assert configs["iterative-rft"].train.init == "previous"
    assert configs["online-rft"].train.continuous and not configs["iterative-rft"].train.continuous
    assert configs["bstar"].bstar.enabled and not configs["online-rft"].bstar.enabled
    assert not configs["bstar"].selection.require_correct
    assert configs["star"].rationalization and not configs["rest-em"].rationalization


def test_a_user_key_beats_the_preset(toy_raw):
    raw = toy_method(toy_raw, "rest-em", sampling={"temperature": 0.3})
    assert resolve(raw).sampling.temperature == 0.3
    assert (
        resolve(raw).selection.max_per_problem == PRESETS["rest-em"]["selection"]["max_per_problem"]
    )


def test_online_rounds_take_fresh_queries_and_continue_one_optimizer(tmp_path, toy_raw):
    config = resolve(toy_method(toy_raw, "online-rft"))
    run(config, tmp_path / "online")
    store = RunStore(tmp_path / "online")
    ids = [
        {s["problem_id"] for s in read_jsonl(store.iter_dir(n) / "samples.jsonl.gz")}
        for n in (1, 2)
    ]
    assert len(ids[0]) == len(ids[1]) == 12 and not ids[0] & ids[1]
    assert store.stats(2)["train"]["init"] == "iteration 1"
    assert (store.model_dir(1) / OPTIMIZER_FILE).exists()


@pytest.mark.parametrize("reference", [True, False])
def test_bstar_logs_its_choice_of_temperature_and_threshold(tmp_path, toy_raw, reference):
    config = resolve(toy_method(toy_raw, "bstar", bstar={"reference": reference}))
    rows = run(config, tmp_path / "bstar")
    store = RunStore(tmp_path / "bstar")
    task = build_task(config.task)
    for n in (1, 2):
        search = store.stats(n)["search"]
        assert search["temperature"] in (0.6, 1.2)
        assert set(search["scores"]) == {"0.6", "1.2"}
        assert rows[n]["temperature"] == search["temperature"]
        assert rows[n]["threshold"] is not None and rows[n]["balance_score"] is not None
        searched = read_jsonl(store.iter_dir(n) / "search.jsonl.gz")
        assert len(searched) == 2 * 6 * config.sampling.num_samples
        # the choice is the balance score's, on the samples with an answer plus (if on) the
        # references
        asked = list(dict.fromkeys(s["problem_id"] for s in searched))
        refs = {p.id: task.reference(p) for p in task.train_problems() if p.id in asked}
        by_t = {
            t: bstar.with_references(
                [s for s in searched if s["temperature"] == t and s["answer"] is not None],
                refs if reference else {},
                asked,
            )
            for t in (0.6, 1.2)
        }
        again = bstar.choose_configuration(by_t, grid=bstar.thresholds(), target=3550)
        assert {f"{t:g}": v for t, v in again["scores"].items()} == search["scores"]
        assert again["temperature"] == search["temperature"]
        train = read_jsonl(store.iter_dir(n) / "train.jsonl")
        assert all(r["reward"] > rows[n]["threshold"] for r in train)


def test_a_task_without_references_is_told_once_a_run(tmp_path, toy_raw, monkeypatch):
    from io import StringIO

    from rich.console import Console

    from selftaught.progress import Reporter
    from selftaught.tasks.addition import AdditionTask

    monkeypatch.setattr(AdditionTask, "reference", lambda self, problem: None)
    shown = StringIO()
    reporter = Reporter(console=Console(file=shown, width=200))
    run(resolve(toy_method(toy_raw, "bstar")), tmp_path / "bstar", reporter=reporter)
    assert shown.getvalue().count("has no reference solutions") == 1


@pytest.mark.parametrize("kind", ["process", "outcome"])
def test_with_a_reward_model_samples_carry_its_scores(tmp_path, toy_raw, kind):
    reward = {"enabled": True, "kind": kind, "steps": 5, "num_samples": 2}
    config = resolve(toy_method(toy_raw, "bstar", reward=reward))
    rows = run(config, tmp_path / kind)
    store = RunStore(tmp_path / kind)
    assert (store.reward_model_dir / "model.safetensors").exists()
    assert store.stats(0)["reward"]["examples"] == config.task.train_size * 2
    for n in (1, 2):
        for s in store.samples(n):
            expected_steps = 1 if kind == "outcome" else len(s["step_scores"])
            assert len(s["step_scores"]) == expected_steps >= 1
            assert all(0 <= x <= 1 for x in s["step_scores"])
            assert s["reward"] == pytest.approx(min(s["step_scores"]) / 5 + s["correct"])
        assert 0 <= rows[n]["best_of_k_accuracy"] <= 1
