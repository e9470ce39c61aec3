"""One training phase as its own program, so that ``accelerate launch`` can run it on
several processes (DDP, DeepSpeed ZeRO, FSDP) with the user's accelerate config, while
the loop itself stays one process that samples, selects and writes the run directory.

    accelerate launch --config_file CFG -m selftaught.models.train_phase SPEC.json

The spec names the init checkpoint, the examples (a JSONL of prompt/completion), the
steps, the output directory, the seed, the schedule and the trainer's settings; the
main process writes the result beside the spec as ``SPEC.result.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from accelerate import PartialState

from selftaught.config import LoraConfig
from selftaught.memory import keep_freed_memory
from selftaught.models.train_loop import TrainingError, TrainResult
from selftaught.models.training import HFTrainer
from selftaught.tasks.base import Example


def write_spec(path: Path, trainer: HFTrainer, **job) -> Path:
    settings = {f.name: getattr(trainer, f.name) for f in dataclasses.fields(trainer)}
    if trainer.lora is not None:
        settings["lora"] = trainer.lora.model_dump()
    spec = {"trainer": settings, **{k: _jsonable(v) for k, v in job.items()}}
    path.write_text(json.dumps(spec, indent=1))
    return path


def _jsonable(value):
    return str(value) if isinstance(value, Path) else value


def launch(spec: Path, num_processes: int, accelerate_config: str | None) -> TrainResult:
    """Run the phase under ``accelerate launch``; its failure is a TrainingError that
    says where the workers' output is."""
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if accelerate_config:
        command += ["--config_file", accelerate_config]
    command += ["--num_processes", str(num_processes)]
    command += ["-m", "selftaught.models.train_phase", str(spec)]
    env = os.environ.copy()
    if not torch.cuda.is_available():  # processes on CPU join a gloo group
        env["ACCELERATE_USE_CPU"] = "true"
    log = spec.with_suffix(".log")
    with open(log, "w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise TrainingError(f"accelerate launch failed (exit {done.returncode}); {log}:\n{tail}")
    return TrainResult(**json.loads(_result_path(spec).read_text())["result"])


def _result_path(spec: Path) -> Path:
    return spec.with_suffix(".result.json")


def run_spec(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    settings = spec["trainer"]
    if settings.get("lora"):
        settings["lora"] = LoraConfig(**settings["lora"])
    trainer = HFTrainer(**settings)
    with open(spec["examples"], encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    examples = [Example(r["prompt"], r["completion"]) for r in rows]
    schedule = tuple(spec["schedule"]) if spec.get("schedule") else None
    result = trainer.fit(
        spec["init"], examples, spec["steps"], Path(spec["out_dir"]), spec["seed"], None, schedule
    )
    state = PartialState()  # the processes fit() trained with
    if state.is_main_process:
        record = {"result": dataclasses.asdict(result), "processes": state.num_processes}
        _result_path(spec_path).write_text(json.dumps(record))


if __name__ == "__main__":
    keep_freed_memory()
    run_spec(Path(sys.argv[1]))
