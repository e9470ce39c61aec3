"""What a run's numbers depend on besides its config and seed: the package versions, the
torch thread count and the hardware. Float rounding differs with each (the same recipe
trained the toy M to other weights on one and two threads), so a resumed run matches an
uninterrupted one bit for bit only on the same setup. The run directory keeps one entry per
start and resume (``environment.json``), and a resume on another setup says so."""

from __future__ import annotations

import platform
from pathlib import Path

import torch
import transformers

from selftaught import __version__

# what can change the numbers; the rest of an entry (when, at which phase) only locates it
NUMERIC_KEYS = ("selftaught", "python", "torch", "transformers", "cpu", "threads", "gpus")


def describe() -> dict:
    """This process's setup, as JSON-ready values."""
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "selftaught": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "gpus": gpus,
    }


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def differences(before: dict, now: dict) -> dict[str, tuple]:
    """``{key: (before, now)}`` for each numeric key whose value changed."""
    return {
        key: (before.get(key), now.get(key))
        for key in NUMERIC_KEYS
        if before.get(key) != now.get(key)
    }
