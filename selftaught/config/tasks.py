"""The ``task:`` section: one config class per kind of task, told apart by ``name``.

The task classes and their table are in ``selftaught/tasks/registry.py``, which imports
these; they cannot import it back, so the names live here, in the ``name`` Literals, from
which the union and ``TASK_CONFIGS`` follow (a test holds the two tables to the same names).
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from selftaught.config.base import SEED_MAX, Count, _ordered, _Strict


class _TaskCommon(_Strict):
    seed: Count = Field(
        0,
        ge=0,
        le=SEED_MAX,
        description="draws the problems and the held-out set, and the base model M; the "
        "run's own seed varies only sampling and training, so seeds share data and M",
    )
    train_size: Count = Field(
        2000, ge=1, le=10**6, description="training problems, spread evenly over the sizes"
    )
    eval_size: Count = Field(100, ge=1, le=10**5, description="held-out problems per size")


# What a task with few-shot exemplars does with them once training starts: STaR's paper
# and official code differ (docs/star.md). Defined once, for the addition and data tasks.
TrainExemplars = Annotated[
    bool,
    Field(
        description="train on the prompt with its exemplars, as the official code's "
        "--few_shot_train; false: question, rationale and answer only, as the paper"
    ),
]
ExemplarsAfterTraining = Annotated[
    bool,
    Field(
        description="prompt a fine-tuned model (every sample and evaluation after iteration "
        "0's) with the exemplars too, as the official code by default; false: with the bare "
        "question, as the official code's --no_prompt"
    ),
]


class AdditionTaskConfig(_TaskCommon):
    name: Literal["addition"] = "addition"
    min_digits: Count = Field(1, ge=1, le=30)
    max_digits: Count = Field(5, ge=1, le=30)
    few_shot: Count = Field(
        0,
        ge=0,
        le=64,
        description="worked exemplars at the start of every prompt: a pretrained model's "
        "start, as in the paper (0: the built-in model, which was trained on the format)",
    )
    format: Literal["scratchpad", "columns", "place-value", "direct"] = Field(
        "scratchpad",
        description="how sums and rationales are written: the paper's scratchpad, column "
        "by column with carries in words, tens and ones added apart, or the answer alone",
    )
    train_exemplars: TrainExemplars = False
    exemplars_after_training: ExemplarsAfterTraining = True

    @model_validator(mode="after")
    def _digit_range(self) -> AdditionTaskConfig:
        _ordered(self, "min_digits", "max_digits")
        return self

    @property
    def sizes(self) -> list[int]:
        return list(range(self.min_digits, self.max_digits + 1))


class ExpressionTaskConfig(_TaskCommon):
    name: Literal["expression"] = "expression"
    min_terms: Count = Field(2, ge=2, le=12)
    max_terms: Count = Field(6, ge=2, le=12)

    @model_validator(mode="after")
    def _term_range(self) -> ExpressionTaskConfig:
        _ordered(self, "min_terms", "max_terms")
        return self

    @property
    def sizes(self) -> list[int]:
        return list(range(self.min_terms, self.max_terms + 1))


class DataTaskConfig(_Strict):
    """A task read from a data set: a hub name or a local JSONL / JSON / Parquet file."""

    name: Literal["gsm8k", "math", "commonsenseqa", "arc", "jsonl", "code"]
    seed: Count = Field(0, ge=0, le=SEED_MAX, description="draws train_size / eval_size subsets")
    path: str = Field(..., description="hub data set name, or a local .jsonl/.json/.parquet")
    subset: str | None = Field(None, description="hub configuration, e.g. 'main' for gsm8k")
    split: str = "train"
    eval_path: str | None = Field(None, description="held-out data; none: the same path")
    eval_split: str = "test"
    train_size: Count | None = Field(None, ge=1, le=10**8, description="none: every training row")
    eval_size: Count | None = Field(None, ge=1, le=10**8, description="none: every held-out row")
    question_field: str | None = Field(None, description="jsonl: the question's field")
    answer_field: str | None = Field(None, description="jsonl: the gold answer's field")
    answer_type: Literal["number", "string", "choice", "math"] = Field(
        "number", description="jsonl: how answers are compared"
    )
    few_shot_path: str | None = Field(
        None, description="JSONL of worked exemplars ({question, rationale, answer}) for the prompt"
    )
    few_shot: Count = Field(0, ge=0, le=64, description="exemplars put in every prompt")
    train_exemplars: TrainExemplars = False
    exemplars_after_training: ExemplarsAfterTraining = True
    sandbox: Literal["isolated", "unisolated"] = Field(
        "isolated",
        description="code: 'unisolated' runs the programs where this machine cannot isolate "
        "them (then they can read and change whatever you can); otherwise the task refuses",
    )

    @property
    def sizes(self) -> list[int]:
        return [1]  # one difficulty bucket unless the task defines its own


TaskConfig = Annotated[
    AdditionTaskConfig | ExpressionTaskConfig | DataTaskConfig, Field(discriminator="name")
]
# task name -> config class, read off the `name` Literals; the task table
# (selftaught.tasks.registry) must name the same tasks, which its test checks
TASK_CONFIGS = {
    name: model
    for model in get_args(get_args(TaskConfig)[0])
    for name in get_args(model.model_fields["name"].annotation)
}
