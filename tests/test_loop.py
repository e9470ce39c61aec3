import json
import shutil
from io import StringIO

import pytest
import torch
from rich.console import Console

from selftaught.loop import run
from selftaught.loop.schedule import derive_seed, train_steps
from selftaught.loop.training import weights_checksum
from selftaught.models.base_model import base_model_path
from selftaught.progress import Reporter
from selftaught.rollout import mark_valid
from selftaught.store import RunStore, read_jsonl
from tests.conftest import interrupt_before_training

METRIC_KEYS = {
    "iteration",
    "method",
    "accuracy",
    "accuracy_by_bucket",
    "problems",
    "generated_correct",
    "rationalized",
    "train_examples",
    "train_steps",
    "seconds",
    "tokens_per_second",
}


def comparable(rows):
    """Metrics without wall-clock figures, which differ between any two runs."""
    return [{k: v for k, v in r.items() if k not in ("seconds", "tokens_per_second")} for r in rows]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from selftaught.config import resolve
    from tests.conftest import TOY

    out = tmp_path_factory.mktemp("runs") / "toy"
    config = resolve(TOY)
    rows = run(config, out)
    return config, out, rows


def test_run_writes_every_file_and_metric_key(finished_run):
    config, out, rows = finished_run
    assert (out / "config.yaml").exists() and (out / "state.json").exists()
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert row.keys() >= METRIC_KEYS
        assert set(row["seconds"]) == {"search", "sample", "rationalize", "train", "eval"}
        assert set(row["tokens_per_second"]) == {"sample", "train"}
        assert list(row["accuracy_by_bucket"]) == ["1", "2"]
        assert list(row["valid_accuracy_by_bucket"]) == ["1", "2"]
        assert row["valid_accuracy"] <= row["accuracy"]
    for n in (1, 2):
        it = out / f"iter_{n:04d}"
        samples = RunStore(out).samples(n)
        assert {"problem_id", "prompt", "completion", "answer", "correct", "hinted"} <= samples[
            0
        ].keys()
        assert sum(not s["hinted"] for s in samples) == config.task.train_size
        train = read_jsonl(it / "train.jsonl")
        assert rows[n]["train_examples"] == len(train)
        assert rows[n]["rationalized"] == sum(r["rationalized"] for r in train)
        assert rows[n]["train_steps"] == train_steps(config, n)
        assert (it / "model" / "model.safetensors").exists()
    state = json.loads((out / "state.json").read_text())
    assert state["last"] == {"iteration": 2, "phase": "eval"}


def test_rationalization_retries_exactly_the_failures_with_the_hint(finished_run):
    _, out, rows = finished_run
    for n in (1, 2):
        samples = RunStore(out).samples(n)
        failed = {s["problem_id"] for s in samples if not s["hinted"] and not s["correct"]}
        hinted = [s for s in samples if s["hinted"]]
        assert {s["problem_id"] for s in hinted} == failed
        assert all("Hint: " in s["prompt"] for s in hinted)
        assert rows[n]["rationalization_attempts"] == len(failed)


def test_no_hint_ever_reaches_training_data(finished_run):
    _, out, _ = finished_run
    trained = 0
    for n in (1, 2):
        for row in read_jsonl(out / f"iter_{n:04d}" / "train.jsonl"):
            assert "Hint" not in row["prompt"] and "Hint" not in row["completion"]
            assert row["prompt"].startswith("Input:\n") and row["prompt"].endswith("Target:\n")
            trained += 1
    assert trained > 0


def test_every_iteration_trains_from_the_base_model(finished_run):
    config, out, _ = finished_run
    base = weights_checksum(base_model_path(config))
    store = RunStore(out)
    for n in (1, 2):
        assert store.stats(n)["train"]["init_checksum"] == base
        assert store.stats(n)["train"]["mixed_precision"] == "no"  # the toy config's default
    assert weights_checksum(store.model_dir(1)) != base


def test_iterative_init_continues_from_the_previous_model(tmp_path, toy_raw):
    from selftaught.config import resolve

    toy_raw["train"]["init"] = "previous"
    out = tmp_path / "run"
    run(resolve(toy_raw), out)
    store = RunStore(out)
    assert store.stats(2)["train"]["init_checksum"] == weights_checksum(store.model_dir(1))


def test_a_trained_model_is_prompted_without_exemplars_when_asked(tmp_path, toy_raw, monkeypatch):
    """task.exemplars_after_training: false (the official code's --no_prompt): M samples
    from the few-shot prompt, every fine-tuned model (samples, hints and evaluations) from
    the bare question it was trained on."""
    from selftaught import rollout
    from selftaught.config import resolve

    toy_raw["task"] |= {"few_shot": 1, "exemplars_after_training": False}
    # the toy M was trained on bare questions and fails under an exemplar: keep what it writes
    toy_raw["selection"] = {"require_correct": False}
    evaluated = []

    def recording(task, problems, *args, **kwargs):
        evaluated.append(task.prompt(problems[0]).count("Input:"))
        return evaluate_greedy(task, problems, *args, **kwargs)

    evaluate_greedy = rollout.evaluate_greedy
    monkeypatch.setattr("selftaught.loop.evaluation.evaluate_greedy", recording)
    out = tmp_path / "run"
    run(resolve(toy_raw), out)
    store = RunStore(out)
    exemplars = {n: {s["prompt"].count("Input:") for s in store.samples(n)} for n in (1, 2)}
    assert exemplars == {1: {2}, 2: {1}}  # iteration 2 samples the model trained in 1
    assert any(s["hinted"] for s in store.samples(2))
    assert evaluated == [2, 1, 1]  # M, then the two fine-tuned models


def test_resume_after_an_interruption_matches_an_uninterrupted_run(
    finished_run, tmp_path, monkeypatch
):
    config, _, rows = finished_run
    out = tmp_path / "run"
    interrupt_before_training(monkeypatch, config, out, iteration=2)
    assert RunStore(out).state()["last"] == {"iteration": 2, "phase": "rationalize"}
    resumed = run(config, out, resume=True)
    assert comparable(resumed) == comparable(rows)


def test_resume_refuses_a_config_with_other_settings(finished_run, tmp_path):
    from selftaught.config import ConfigError

    config, done, rows = finished_run
    out = tmp_path / "run"
    shutil.copytree(done, out)
    state = (out / "state.json").read_text()
    other = config.model_copy(deep=True)
    other.train.lr, other.quiet = 1e-4, not config.quiet  # quiet only shows: not a setting
    with pytest.raises(ConfigError, match=r"train\.lr: 0\.0002 in the run, 0\.0001 given") as err:
        run(other, out, resume=True)
    assert "--set KEY=VALUE" in str(err.value) and "quiet" not in str(err.value)
    assert (out / "state.json").read_text() == state  # nothing recorded, nothing run
    other.train.lr = config.train.lr
    assert run(other, out, resume=True) == rows  # finished: the same rows, nothing redone


def test_a_resume_on_another_setup_is_recorded_and_said(finished_run, tmp_path):
    config, done, rows = finished_run
    out = tmp_path / "run"
    shutil.copytree(done, out)
    [started] = RunStore(out).environments()
    assert started["after"] is None and started["threads"] == torch.get_num_threads()
    shown = StringIO()
    before = torch.get_num_threads()
    torch.set_num_threads(before + 1)
    try:
        run(config, out, resume=True, reporter=Reporter(console=Console(file=shown, width=300)))
    finally:
        torch.set_num_threads(before)
    assert f"Resumed on another setup (threads: {before} -> {before + 1})" in shown.getvalue()
    resumed = RunStore(out).environments()[1]
    assert resumed["after"] == "2/eval" and resumed["threads"] == before + 1


def test_a_lucky_answer_is_correct_but_not_valid():
    from selftaught.tasks.expression import ExpressionTask

    task = ExpressionTask(4, 4)
    problem = next(p for p in task.train_problems() if p.question == "1 * 2 + 7 * 1")
    lucky = "<scratch>\n1 * 9 * 1\n9 * 1\n9\n</scratch>\n9"  # + before *, yet 9
    completions = [task.reference(problem), lucky, "<scratch>\n2 + 7\n8\n</scratch>\n8"]
    results = [
        {"problem_id": problem.id, "bucket": problem.bucket, "completion": c, "correct": ok}
        for c, ok in zip(completions, [True, True, False], strict=True)
    ]
    assert [r["valid"] for r in mark_valid(task, [problem], results)] == [True, False, False]


def test_derived_seeds_differ_by_iteration_and_phase():
    seeds = {derive_seed(0, n, p) for n in range(3) for p in ("sample", "rationalize", "train")}
    assert len(seeds) == 9
    assert derive_seed(0, 1, "sample") == derive_seed(0, 1, "sample")


def test_train_steps_grow_as_configured(toy_config):
    toy_config.train.steps, toy_config.train.steps_increment = 300, 20
    assert [train_steps(toy_config, n) for n in (1, 2, 3)] == [300, 320, 340]
    toy_config.train.steps_increment, toy_config.train.steps_growth = 0, 0.2
    assert [train_steps(toy_config, n) for n in (1, 2, 3)] == [300, 360, 432]
