"""What every config section shares: strict models, the error users see, range checks."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Strict
from pydantic_core import PydanticCustomError


class ConfigError(ValueError):
    """A user's config is wrong; the message says where and what was expected."""


class _Strict(BaseModel):
    # allow_inf_nan=False: `lr: .inf` or `temperatures: [.nan]` is a mistake, not a setting
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


SEED_MAX = 2**32 - 1  # torch.manual_seed overflows past 2**64; numpy's seeds stop here

# A count: an integer only. Lax pydantic reads `iterations: true` as 1 and `steps: 2.0e+3`
# as 2000; in a config each is a slip (a flag in the wrong place, a float for a count).
# Every count also has an upper bound (a test holds them to it): `train_size: 1000000000`
# would sample for minutes before anything failed, `max_new_tokens` allocate gigabytes.
Count = Annotated[int, Strict()]

MAX_TRAIN_STEPS = 10_000_000  # in one iteration: days for the built-in model


def bounded_schedule(train: Any, iterations: int) -> None:
    """Each bound holds alone, but the steps compound (loop/schedule.py's train_steps):
    +20% an iteration for 1000 iterations is 10^79 steps, a run that never ends."""
    n = iterations - 1
    try:
        last = train.steps * (1 + train.steps_growth) ** n + train.steps_increment * n
    except OverflowError:
        last = float("inf")
    if last > MAX_TRAIN_STEPS:
        raise PydanticCustomError(
            "schedule",
            f"iteration {iterations} would train {min(last, 1e308):.3g} steps (train.steps "
            f"{train.steps}, steps_growth {train.steps_growth}, steps_increment "
            f"{train.steps_increment}); at most {MAX_TRAIN_STEPS:,}: lower one, or iterations",
            {"config_key": "train"},
        )


def _ordered(section: BaseModel, low: str, high: str) -> None:
    """A range's two ends in order, or the error that names both keys and values."""
    lo, hi = getattr(section, low), getattr(section, high)
    if lo > hi:
        raise ValueError(f"{low} ({lo}) must be <= {high} ({hi})")
