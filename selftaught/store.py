"""The run directory. Every file is written atomically (``runfiles.py``: temp file,
fsync, rename), and ``state.json`` moves on only after a phase's outputs are on disk, so a
run killed at any moment resumes from the last completed phase.

A killed writer can leave only its temp files behind (``.NAME.*.tmp``, ``model.tmp/``),
never half a file under a real name; ``remove_temp_files`` clears them on resume. What
``state.json`` says is checked against the files (``verify``), so a run directory damaged
by hand or by a full disk fails with the file to look at, not with a traceback.

Settings may change when a run is resumed (``change_config``): ``config.yaml`` is
rewritten and ``state.json`` records each change in ``config_changes`` with the phase it
took effect at, so the run's history stays readable from its directory alone.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from selftaught.config import (
    RunConfig,
    apply_overrides,
    dump_config,
    read_yaml,
    resolve,
    set_dotted,
    upgrade_stored,
)
from selftaught.runfiles import (  # imported from here by the rest of the package too
    RunDirError,
    atomic_write_text,
    read_json,
    read_jsonl,
    write_jsonl,
)

# An iteration's files (``iter_NNNN/``), named once; the phase table (``loop/phases.py``)
# says which phase writes which.
SEARCH_SAMPLES = "search.jsonl.gz"
SAMPLES = "samples.jsonl.gz"
RATIONALIZED = "rationalized.jsonl.gz"
TRAIN_ROWS = "train.jsonl"
MODEL = "model"
EVAL_RESULTS = "eval.jsonl.gz"
EVAL_SAMPLES = "eval_samples.jsonl.gz"
METRICS = "metrics.json"
REWARD_SAMPLES = "reward_samples.jsonl.gz"
SAMPLE_KEYS = ("problem_id", "completion", "correct", "hinted", "reward")  # what selection reads

# Changing these mid-run would make the finished phases describe another run: the
# problems (task), the base model M (model, base), the preset under the config (method),
# and the verifier already trained on M's samples (reward).
FROZEN_SECTIONS = ("method", "task", "model", "base", "reward")


class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock_fd: int | None = None

    # -- whole run ----------------------------------------------------------------
    def create(self, config: RunConfig) -> None:
        if (self.root / "state.json").exists():
            raise FileExistsError(
                f"{self.root} already holds a run; continue it with "
                f"`selftaught run --resume {self.root}` or choose another --out"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.root / "config.yaml", dump_config(config))
        self._write_state({"completed": []})

    def environments(self) -> list[dict]:
        """The setups the run was started and resumed on, oldest first (``environment.py``)."""
        path = self.root / "environment.json"
        if not path.exists():  # a run started before this file existed
            return []
        entries = read_json(path)
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise RunDirError(f"{path}: damaged: expected a list of objects")
        return entries

    def add_environment(self, entry: dict) -> None:
        entries = [*self.environments(), entry]
        atomic_write_text(self.root / "environment.json", json.dumps(entries, indent=1) + "\n")

    def load_config(self) -> RunConfig:
        path = self.root / "config.yaml"
        if not path.exists():
            raise FileNotFoundError(f"{self.root}: no config.yaml, so not a run directory")
        return resolve(upgrade_stored(read_yaml(path)), str(path))

    def state(self) -> dict:
        path = self.root / "state.json"
        if not path.exists():
            if (self.root / "config.yaml").exists():
                raise FileNotFoundError(
                    f"{self.root}: config.yaml but no state.json: the run was stopped before "
                    f"it started; start it again with `selftaught run CONFIG --out {self.root}`"
                )
            raise FileNotFoundError(f"{self.root}: no state.json, so not a run directory")
        state = read_json(path)
        completed = state.get("completed") if isinstance(state, dict) else None
        if not isinstance(completed, list) or not all(isinstance(p, str) for p in completed):
            raise RunDirError(
                f'{path}: damaged: expected {{"completed": ["ITERATION/PHASE", ...], ...}}'
            )
        last = state.get("last")
        if last is not None and not (
            isinstance(last, dict)
            and type(last.get("iteration")) is int
            and isinstance(last.get("phase"), str)
        ):
            raise RunDirError(f'{path}: damaged: expected "last": {{"iteration": N, "phase": P}}')
        return state

    def _write_state(self, state: dict) -> None:
        atomic_write_text(self.root / "state.json", json.dumps(state, indent=1) + "\n")

    def verify(self, outputs: dict[str, tuple[str, ...]]) -> None:
        """Check that every phase ``state.json`` calls complete left its ``outputs`` (files
        of its iteration's directory, by phase); a damaged directory fails here, before
        anything runs, with the missing file named."""
        state = self.state()
        for entry in state["completed"]:
            iteration, sep, phase = entry.partition("/")
            if not sep or not iteration.isdigit():
                raise RunDirError(
                    f"{self.root / 'state.json'}: damaged: {entry!r} is not ITERATION/PHASE"
                )
            if phase not in self.stats(int(iteration)):  # written before state.json
                raise RunDirError(
                    f"{self.root}: state.json says {entry} is complete, but "
                    f"{self.iter_dir(int(iteration)).name}/stats.json has no {phase!r} entry"
                )
            for name in outputs.get(phase, ()):
                if not (self.iter_dir(int(iteration)) / name).exists():
                    raise RunDirError(
                        f"{self.root}: state.json says {entry} is complete, but "
                        f"{self.iter_dir(int(iteration)).name}/{name} is missing; restore it, "
                        f"or remove {entry!r} and what follows it from state.json to redo them"
                    )

    def lock(self, create: bool = True) -> None:
        """Hold the run for this process (an advisory ``flock`` on ``RUN/.lock``, released
        by the kernel when the process ends, however it ends): a second ``--resume`` of a
        run that is still going fails instead of writing into it too. ``create``: make the
        directory if it is missing (a new run), else fail (a resume)."""
        if self._lock_fd is not None:
            return
        if not create and not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such run directory, so not a run directory")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:  # `--out /dev/null/run`, a file, a read-only place
            places = [self.root, *self.root.parents]
            blocker = next((p for p in places if p.exists() and not p.is_dir()), None)
            why = f"{blocker} is not a folder" if blocker else err.strerror
            raise RunDirError(
                f"{self.root}: cannot be a run directory ({why}); "
                + ("choose another --out" if create else "is it the run's directory?")
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunDirError(
                f"{self.root}: another process (pid {holder}) is running this run; wait for "
                "it to finish or stop it, then resume"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def prepare_resume(self, outputs: dict[str, tuple[str, ...]]) -> None:
        """Before continuing a run (with ``lock`` held): finish an interrupted settings
        change, check the files against ``state.json`` (``verify``), clear a killed
        writer's temp files, rebuild a lost or damaged ``metrics.jsonl``."""
        self.state()
        self.apply_pending_changes()
        self.verify(outputs)
        self.remove_temp_files()
        if any(self.root.glob(f"iter_*/{METRICS}")):  # metrics.jsonl holds nothing else
            self.rebuild_metrics()

    def remove_temp_files(self) -> list[Path]:
        """Clear what a killed writer of ours left: ``.NAME.*.tmp`` files (from
        ``atomic_write_bytes``) and ``*.tmp`` checkpoint directories (``model.tmp``,
        ``reward_model.tmp``), where we write them, and nothing under other tools' folders
        (tensorboard, wandb). Only for a run no other process is writing (``lock``)."""
        removed = []
        folders = [self.root, self.root / "plots", *sorted(self.root.glob("iter_*"))]
        for folder in folders:
            for path in sorted(folder.glob("*.tmp")):
                if path.is_dir() and not path.name.startswith("."):
                    shutil.rmtree(path, ignore_errors=True)
                elif path.is_file() and path.name.startswith("."):
                    path.unlink(missing_ok=True)
                else:
                    continue
                removed.append(path)
        return removed

    # -- changed settings ---------------------------------------------------------
    def change_config(self, overrides: list[str]) -> list[dict]:
        """Apply ``KEY=VALUE`` overrides to the run's config for the phases still to run,
        and record them; returns the changes (none when the values are already so).

        Crash-safe: the change is recorded in ``state.json`` as pending, then
        ``config.yaml`` is rewritten, then the record is marked applied; a kill in between
        leaves a pending record that ``apply_pending_changes`` finishes (``prepare_resume``
        calls it)."""
        self.apply_pending_changes()
        old, new = self.load_config(), self.preview_config(overrides)
        changes = config_diff(old.model_dump(mode="json"), new.model_dump(mode="json"))
        if not changes:
            return []
        state = self.state()
        record = {
            "iteration": _current_iteration(state),
            "after": state.get("last"),  # the last completed phase; None: before any
            "changes": changes,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "applied": False,
        }
        state.setdefault("config_changes", []).append(record)
        self._write_state(state)
        self.apply_pending_changes()
        return [{"key": k, **v} for k, v in changes.items()]

    def preview_config(self, overrides: list[str]) -> RunConfig:
        """The config ``change_config(overrides)`` would leave, nothing written. Until a
        phase has completed nothing has used the frozen sections, so they may change too
        (a model that failed to load is replaced without starting over)."""
        path = self.root / "config.yaml"
        frozen = FROZEN_SECTIONS if self.state()["completed"] else ()
        raw = apply_overrides(self.load_config().model_dump(mode="json"), overrides, frozen=frozen)
        return resolve(raw, f"{path} with --set {' '.join(overrides)}")

    def apply_pending_changes(self) -> None:
        """Finish a change a kill interrupted: write its values into ``config.yaml``."""
        state = self.state()
        pending = [c for c in state.get("config_changes", []) if not c.get("applied")]
        if not pending:
            return
        path = self.root / "config.yaml"
        raw = self.load_config().model_dump(mode="json")
        for record in pending:
            for key, change in record["changes"].items():
                set_dotted(raw, key.split("."), change["to"])
        atomic_write_text(path, dump_config(resolve(raw, str(path))))
        for record in pending:
            record["applied"] = True
        self._write_state(state)

    def config_changes(self) -> list[dict]:
        return list(self.state().get("config_changes", []))

    # -- phases -------------------------------------------------------------------
    def done(self, iteration: int, phase: str) -> bool:
        return f"{iteration}/{phase}" in self.state()["completed"]

    def complete(self, iteration: int, phase: str, stats: dict) -> None:
        """Record a phase's figures, then mark it done: the order is what makes resume safe."""
        path = self.iter_dir(iteration) / "stats.json"
        all_stats = self.stats(iteration)
        all_stats[phase] = stats
        atomic_write_text(path, json.dumps(all_stats, indent=1) + "\n")
        state = self.state()
        key = f"{iteration}/{phase}"
        if key not in state["completed"]:
            state["completed"].append(key)
        state["last"] = {"iteration": iteration, "phase": phase}
        self._write_state(state)

    def stats(self, iteration: int) -> dict:
        path = self.iter_dir(iteration) / "stats.json"
        if not path.exists():
            return {}
        stats = read_json(path)
        if not isinstance(stats, dict) or not all(isinstance(v, dict) for v in stats.values()):
            raise RunDirError(f"{path}: damaged: expected a JSON object of phases' figures")
        return stats

    def iter_dir(self, iteration: int) -> Path:
        return self.root / f"iter_{iteration:04d}"

    def model_dir(self, iteration: int) -> Path:
        return self.iter_dir(iteration) / MODEL

    def samples(self, iteration: int) -> list[dict]:
        """The iteration's samples, those drawn with the hint (rationalization) last."""
        rows = read_jsonl(self.iter_dir(iteration) / SAMPLES, SAMPLE_KEYS)
        hinted = self.iter_dir(iteration) / RATIONALIZED
        # runs of before rationalization had its own file kept the hinted rows in SAMPLES
        return rows + read_jsonl(hinted, SAMPLE_KEYS) if hinted.exists() else rows

    @property
    def reward_model_dir(self) -> Path:
        return self.root / "reward_model"

    # -- metrics ------------------------------------------------------------------
    def write_metrics(self, iteration: int, metrics: dict) -> None:
        """Per-iteration file first, then metrics.jsonl rebuilt from all of them, so a
        repeated phase after a kill can never append a line twice."""
        atomic_write_text(self.iter_dir(iteration) / METRICS, json.dumps(metrics) + "\n")
        self.rebuild_metrics()

    def rebuild_metrics(self) -> None:
        rows = [read_json(p) for p in sorted(self.root.glob(f"iter_*/{METRICS}"))]
        write_jsonl(self.root / "metrics.jsonl", rows)

    def metrics(self) -> list[dict]:
        path = self.root / "metrics.jsonl"
        return read_jsonl(path) if path.exists() else []


def _current_iteration(state: dict) -> int:
    """The iteration whose phases run next: a change takes effect from there."""
    last = state.get("last")
    if not last:
        return 0
    return last["iteration"] + 1 if last["phase"] == "eval" else last["iteration"]


def config_diff(old: Any, new: Any, prefix: str = "") -> dict[str, dict]:
    """``{"train.lr": {"from": 1e6, "to": 1e-4}}`` for every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = {}
        for key in dict.fromkeys([*old, *new]):
            out |= config_diff(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return {} if old == new else {prefix.rstrip("."): {"from": old, "to": new}}
