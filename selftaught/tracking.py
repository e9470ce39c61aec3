"""Each iteration's metrics row, live, in TensorBoard (by default) and Weights & Biases.

A row of ``metrics.jsonl`` becomes scalar tags at step = iteration: nested figures are
flattened with ``/`` (``accuracy_by_bucket/3``, ``pass@k/4``, ``seconds/train``), text and
missing values are left out. TensorBoard's event files go to ``RUN/tensorboard``; a W&B
run (offline by default: no network, ``wandb sync RUN/wandb/offline-run-*`` uploads it
later) lives under ``RUN/wandb``.

Resume-safe: the iterations each backend has logged are remembered in
``RUN/tracking.json`` (written atomically after the backend has flushed), and a row
already logged is never written again. If a run is killed between a flush and that
record, the TensorBoard writer reopens with ``purge_step`` at the first unrecorded
iteration, so TensorBoard hides the orphaned copy and shows each step once.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable
from pathlib import Path

from selftaught.config import RunConfig
from selftaught.config_files import dump_config
from selftaught.store import atomic_write_text

STATE_FILE = "tracking.json"


def scalars(row: dict, prefix: str = "") -> dict[str, float]:
    """The row's numbers as flat tags; ``iteration`` is the step, not a tag."""
    out: dict[str, float] = {}
    for key, value in row.items():
        tag = f"{prefix}{key}"
        if not prefix and key == "iteration":
            continue
        if isinstance(value, dict):
            out.update(scalars(value, tag + "/"))
        elif isinstance(value, bool | int | float) and math.isfinite(float(value)):
            out[tag] = float(value)
    return out


class Tracker:
    """``with Tracker(config, run_dir) as t: t.log(row)``; a no-op when both backends are off.

    Opening it costs nothing until a row is logged: a resumed run that has logged every
    row already never starts TensorBoard or W&B."""

    def __init__(self, config: RunConfig, run_dir: Path):
        self.config = config
        self.root = Path(run_dir)
        self.backends = [
            name
            for name, on in (("tensorboard", config.log.tensorboard), ("wandb", config.log.wandb))
            if on
        ]
        if "wandb" in self.backends:
            _require_wandb()
        self._state = self._read_state()
        self._tb = None
        self._wandb = None

    # -- public -------------------------------------------------------------------
    def log(self, row: dict) -> None:
        """Log one metrics row to every backend that has not logged its iteration yet."""
        step = int(row["iteration"])
        tags = scalars(row)
        done = []
        for backend in self.backends:
            if step in self._state.get(backend, []):
                continue
            if backend == "tensorboard":
                writer = self._tensorboard()
                for tag, value in tags.items():
                    writer.add_scalar(tag, value, step)
                writer.flush()
            else:
                self._wandb_run().log(tags, step=step)
            done.append(backend)
        if done:
            for backend in done:
                self._state[backend] = sorted({*self._state.get(backend, []), step})
            self._write_state()

    def log_rows(self, rows: Iterable[dict]) -> None:
        """Every row not logged yet, in iteration order: catches up after a resume."""
        for row in sorted(rows, key=lambda r: r["iteration"]):
            self.log(row)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- backends -----------------------------------------------------------------
    def _tensorboard(self):
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            logged = self._state.get("tensorboard", [])
            # events at or after this step written by a killed run are hidden by TensorBoard
            purge = max(logged) + 1 if logged else 0
            self._tb = SummaryWriter(str(self.root / "tensorboard"), purge_step=purge)
            if not logged:
                text = "```yaml\n" + dump_config(self.config) + "```"
                self._tb.add_text("config", text, 0)
        return self._tb

    def _wandb_run(self):
        if self._wandb is None:
            import wandb

            log = self.config.log
            if "wandb_id" not in self._state:
                self._state["wandb_id"] = uuid.uuid4().hex[:8]  # one W&B run across resumes
                self._write_state()
            self._wandb = wandb.init(
                project=log.wandb_project,
                name=self.root.name,
                id=self._state["wandb_id"],
                resume="allow",
                dir=str(self.root),  # wandb adds its own wandb/ below this
                mode=log.wandb_mode,
                config=self.config.model_dump(mode="json"),
                settings=wandb.Settings(
                    console="off",  # leave stdout/stderr to the progress bars
                    silent=True,
                    x_disable_stats=True,  # no system-metrics sampler thread
                ),
            )
        return self._wandb

    # -- state ----------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    def _read_state(self) -> dict:
        if not self.state_path.exists():
            return {}
        return json.loads(self.state_path.read_text())

    def _write_state(self) -> None:
        atomic_write_text(self.state_path, json.dumps(self._state, indent=1) + "\n")


def _require_wandb() -> None:
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ImportError(
            "log.wandb is true but wandb is not installed: "
            "pip install 'selftaught[wandb]', or set log.wandb=false"
        ) from None
