"""What a run's results depend on besides its config: the problems it trains and is
evaluated on, and the base model's weights. Recorded when the run starts
(``inputs.json``) and checked at every resume, so an edited data file or a replaced
checkpoint cannot silently mix into a run that started without it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from selftaught.models.loading import weights_checksum
from selftaught.progress import Reporter
from selftaught.store import RunDirError, RunStore, atomic_write_text, read_json
from selftaught.tasks import Problem, Task

INPUTS = "inputs.json"
WHAT = {"train": "the training problems", "held_out": "the held-out problems", "model": "M"}


def fingerprint(task: Task, base_model: Path) -> dict[str, str]:
    return {
        "train": _digest(task.train_problems()),
        "held_out": _digest(task.eval_problems()),
        # a hub name's files live in the hub's cache: its name is what the run can know
        "model": weights_checksum(base_model) or str(base_model),
    }


def _digest(problems: list[Problem]) -> str:
    rows = [dataclasses.astuple(p) for p in problems]
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()[:16]


def record_or_check(store: RunStore, now: dict[str, str], reporter: Reporter) -> None:
    """Write the fingerprint of a new run; on a resume, refuse other inputs, naming them."""
    path = store.root / INPUTS
    if not path.exists():
        if store.state().get("last"):  # a run started before this file existed
            reporter.line(f"{store.root} has no {INPUTS}: its inputs are recorded from now on")
        atomic_write_text(path, json.dumps(now, indent=1) + "\n")
        return
    recorded = read_json(path)
    changed = [WHAT.get(k, k) for k in now if recorded.get(k) != now[k]]
    if changed:
        raise RunDirError(
            f"{store.root} started with other inputs: {', '.join(changed)} changed since "
            f"(a data file edited or a checkpoint replaced). Resuming would mix them into one "
            f"run; restore them as they were ({path} has their fingerprints), or start a new "
            "run with --out"
        )
