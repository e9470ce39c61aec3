"""Shared fixtures: a toy-sized run config whose whole loop takes seconds on a CPU."""

from __future__ import annotations

import contextlib
import signal

import pytest
import torch

from selftaught.config import RunConfig, resolve

TOY = {
    "method": "star",
    "iterations": 2,
    "seed": 0,
    "task": {"min_digits": 1, "max_digits": 2, "train_size": 40, "eval_size": 6},
    # a base that learns most 1-digit sums, so every toy iteration keeps some examples
    "base": {
        "hidden_size": 64,
        "layers": 2,
        "heads": 2,
        "examples": 54,
        "max_size": 1,
        "long_fraction": 0.0,
        "steps": 400,
        "batch_size": 32,
        "lr": 0.003,
    },
    "sampling": {"max_new_tokens": 64, "batch_size": 32},
    "train": {"steps": 4, "steps_increment": 2, "batch_size": 8},
    "eval": {"batch_size": 32},
    "quiet": True,
}


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """torch on one thread in this process, for the whole session. A run's numbers depend
    on the thread count, and with two threads the CI machine once trained the toy M to other
    weights the first time in a session than the second (this machine never did); with one,
    no count is left to vary. It costs ~20% on an idle machine (the suite: 3 min 51 s against
    3 min 13 s) and saves more on a busy one, where two OpenMP threads that spin-wait for each
    other made the tiny model's sampling 10-30x slower (16 samples of 64 tokens: 0.25 s on
    one thread, 2-9 s on two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def _model_cache(tmp_path_factory):
    """Every test shares one base-model cache, away from the user's own."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SELFTAUGHT_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A real checkpoint directory in a moment: the built-in model's architecture, untrained,
    small enough that a run of a data task on it takes a second."""
    from selftaught.models.tiny import save_new_tiny

    return save_new_tiny(tmp_path_factory.mktemp("models") / "tiny", 32, 1, 2, seed=0)


@pytest.fixture
def toy_raw() -> dict:
    import copy

    return copy.deepcopy(TOY)


@pytest.fixture
def toy_config(toy_raw) -> RunConfig:
    return resolve(toy_raw, "toy")


def interrupt_before_training(monkeypatch, config: RunConfig, out, iteration: int = 2) -> None:
    """Run ``config`` in ``out`` until the loop reaches ``iteration``'s training phase and
    stop it there (as Ctrl-C would); the loop is itself again afterwards."""
    import dataclasses

    from selftaught.loop import phases, run

    def train_or_stop(phase):
        def run_or_stop(ctx, n):
            if n == iteration:
                raise KeyboardInterrupt
            phase.run(ctx, n)

        return dataclasses.replace(phase, run=run_or_stop) if phase.name == "train" else phase

    with monkeypatch.context() as patch:
        patch.setattr(phases, "PHASES", tuple(map(train_or_stop, phases.PHASES)))
        with pytest.raises(KeyboardInterrupt):
            run(config, out)


@contextlib.contextmanager
def stop_signals_delivered():
    """SIGTERM, SIGHUP and SIGINT at their defaults while the tests that send them run: a
    suite started under ``nohup`` (or as a background job) ignores SIGHUP (or SIGINT), and
    a run then keeps ignoring it, by design (tests/test_user_errors.py)."""
    ignored = [s for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
               if signal.getsignal(s) is signal.SIG_IGN]  # fmt: skip
    for sig in ignored:
        signal.signal(sig, signal.SIG_DFL if sig != signal.SIGINT else signal.default_int_handler)
    try:
        yield
    finally:
        for sig in ignored:
            signal.signal(sig, signal.SIG_IGN)
