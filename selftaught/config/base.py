"""What every config section shares: strict models, the error users see, range checks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    """A user's config is wrong; the message says where and what was expected."""


class _Strict(BaseModel):
    # allow_inf_nan=False: `lr: .inf` or `temperatures: [.nan]` is a mistake, not a setting
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


SEED_MAX = 2**32 - 1  # torch.manual_seed overflows past 2**64; numpy's seeds stop here


def _ordered(section: BaseModel, low: str, high: str) -> None:
    """A range's two ends in order, or the error that names both keys and values."""
    lo, hi = getattr(section, low), getattr(section, high)
    if lo > hi:
        raise ValueError(f"{low} ({lo}) must be <= {high} ({hi})")
