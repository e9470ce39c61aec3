"""The run's schedules: a seed per phase, and training steps per iteration. Pure."""

from __future__ import annotations

import hashlib

from selftaught.config import RunConfig


def derive_seed(seed: int, iteration: int, phase: str) -> int:
    """Each phase's own seed: a resumed phase draws what an uninterrupted one would."""
    digest = hashlib.sha256(f"{seed}/{iteration}/{phase}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def train_steps(config: RunConfig, iteration: int) -> int:
    """STaR's schedule: more steps each iteration (paper: +20%; its arithmetic run: +20 steps)."""
    t = config.train
    return round(t.steps * (1 + t.steps_growth) ** (iteration - 1)) + t.steps_increment * (
        iteration - 1
    )


def lr_window(config: RunConfig, iteration: int) -> tuple[int, int] | None:
    """With ``train.continuous`` (one LR schedule over every iteration's steps): the steps
    before this iteration and the total; None: each iteration schedules its own steps."""
    if not config.train.continuous:
        return None
    before = sum(train_steps(config, i) for i in range(1, iteration))
    total = sum(train_steps(config, i) for i in range(1, config.iterations + 1))
    return before, total
