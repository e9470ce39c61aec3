"""The run directory (DESIGN §5). Every file is written atomically (temp file, fsync,
rename), and ``state.json`` moves on only after a phase's outputs are on disk, so a
run killed at any moment resumes from the last completed phase."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from selftaught.config import RunConfig, dump_config, read_yaml, resolve


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)  # mtime=0: same rows, same bytes
    atomic_write_bytes(path, data)


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)

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

    def load_config(self) -> RunConfig:
        path = self.root / "config.yaml"
        if not path.exists():
            raise FileNotFoundError(f"{self.root}: no config.yaml, so not a run directory")
        return resolve(read_yaml(path), str(path))

    def state(self) -> dict:
        path = self.root / "state.json"
        if not path.exists():
            raise FileNotFoundError(f"{self.root}: no state.json, so not a run directory")
        return json.loads(path.read_text())

    def _write_state(self, state: dict) -> None:
        atomic_write_text(self.root / "state.json", json.dumps(state, indent=1) + "\n")

    # -- phases -------------------------------------------------------------------
    def done(self, iteration: int, phase: str) -> bool:
        return f"{iteration}/{phase}" in self.state()["completed"]

    def complete(self, iteration: int, phase: str, stats: dict) -> None:
        """Record a phase's figures, then mark it done: the order is what makes resume safe."""
        path = self.iter_dir(iteration) / "stats.json"
        all_stats = json.loads(path.read_text()) if path.exists() else {}
        all_stats[phase] = stats
        atomic_write_text(path, json.dumps(all_stats, indent=1) + "\n")
        state = self.state()
        state["completed"].append(f"{iteration}/{phase}")
        state["last"] = {"iteration": iteration, "phase": phase}
        self._write_state(state)

    def stats(self, iteration: int) -> dict:
        path = self.iter_dir(iteration) / "stats.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def iter_dir(self, iteration: int) -> Path:
        return self.root / f"iter_{iteration:04d}"

    def model_dir(self, iteration: int) -> Path:
        return self.iter_dir(iteration) / "model"

    @property
    def reward_model_dir(self) -> Path:
        return self.root / "reward_model"

    # -- metrics ------------------------------------------------------------------
    def write_metrics(self, iteration: int, metrics: dict) -> None:
        """Per-iteration file first, then metrics.jsonl rebuilt from all of them, so a
        repeated phase after a kill can never append a line twice."""
        atomic_write_text(self.iter_dir(iteration) / "metrics.json", json.dumps(metrics) + "\n")
        rows = [json.loads(p.read_text()) for p in sorted(self.root.glob("iter_*/metrics.json"))]
        write_jsonl(self.root / "metrics.jsonl", rows)

    def metrics(self) -> list[dict]:
        path = self.root / "metrics.jsonl"
        return read_jsonl(path) if path.exists() else []
