"""The phase table: which phases each iteration runs, for each kind of run."""

from __future__ import annotations

from selftaught.config import resolve
from selftaught.loop.phases import PHASES, phase_outputs


def names(raw: dict, iteration: int) -> list[str]:
    config = resolve(raw)
    return [p.name for p in PHASES if p.applies(config, iteration)]


def test_iteration_zero_is_the_base_models_and_later_ones_the_loops():
    assert names({}, 0) == ["eval"]
    assert names({}, 1) == ["sample", "rationalize", "train", "eval"]
    bstar = {"method": "bstar", "reward": {"enabled": True}}
    assert names(bstar, 0) == ["reward", "eval"]
    assert names(bstar, 3) == ["search", "sample", "rationalize", "train", "eval"]


def test_each_phase_is_listed_once_with_its_outputs():
    assert len({p.name for p in PHASES}) == len(PHASES)
    assert phase_outputs()["rationalize"] == ("rationalized.jsonl.gz",)
    assert all(outputs for outputs in phase_outputs().values())
