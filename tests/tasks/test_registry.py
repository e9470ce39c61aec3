"""The task table: the same names and config classes as the config, and build_task."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter

from selftaught.config import TASK_CONFIGS, DataTaskConfig, RunConfig, TaskConfig
from selftaught.tasks import TASKS, AdditionTask, build_task
from selftaught.tasks.jsonl import KINDS, JsonlTask

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"


def test_the_table_and_the_config_name_the_same_tasks():
    assert list(TASKS) == list(TASK_CONFIGS)
    for name, entry in TASKS.items():
        assert entry.config is TASK_CONFIGS[name], name
        assert entry.task.name == name, name
        assert entry.about.strip(), name


def test_every_name_parses_to_its_config_class():
    adapter = TypeAdapter(TaskConfig)
    for name, entry in TASKS.items():
        fields = {"path": "x.jsonl"} if entry.config is DataTaskConfig else {}
        assert type(adapter.validate_python({"name": name, **fields})) is entry.config, name


def test_build_task_takes_the_task_section():
    run = RunConfig(task={"name": "addition", "max_digits": 3, "train_size": 4, "eval_size": 3})
    task = build_task(run.task)
    assert isinstance(task, AdditionTask) and task.sizes == [1, 2, 3]
    assert len(task.train_problems()) == 4


def test_build_task_relative_paths_start_at_base_dir():
    config = DataTaskConfig(name="gsm8k", path="gsm8k", eval_size=2)
    task = build_task(config, base_dir=FIXTURES)
    assert len(task.train_problems()) == 6 and len(task.eval_problems()) == 2


@pytest.mark.parametrize("answer_type", ["number", "string", "choice"])
def test_jsonl_builds_the_class_of_its_answer_type(answer_type):
    path = {"number": "own.jsonl", "string": "own_string.jsonl", "choice": "own_choice.jsonl"}
    fields = {"number": ("q", "a"), "string": ("prompt", "target"), "choice": (None, None)}
    question, answer = fields[answer_type]
    config = DataTaskConfig(
        name="jsonl",
        path=str(FIXTURES / path[answer_type]),
        eval_size=1,
        answer_type=answer_type,
        question_field=question,
        answer_field=answer,
    )
    task = build_task(config)
    assert type(task) is KINDS[answer_type] and isinstance(task, JsonlTask)
    assert task.name == "jsonl"


def test_build_task_refuses_a_config_of_another_task():
    with pytest.raises(TypeError, match="configured by DataTaskConfig"):
        build_task(RunConfig().task.model_copy(update={"name": "gsm8k"}))
