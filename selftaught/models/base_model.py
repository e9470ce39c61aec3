"""The built-in base model M (`selftaught base`): a tiny Llama trained on a small seed set
of worked examples, the analogue of STaR's few-shot prompt. Cached by its config, so
every run with the same settings starts from the very same M."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from selftaught.config import RunConfig
from selftaught.models.tiny import save_new_tiny
from selftaught.models.training import HFTrainer
from selftaught.progress import Reporter
from selftaught.tasks import build_task

FORMAT_VERSION = 1  # bump when the scratchpad, tokenizer or base recipe changes


def cache_root() -> Path:
    return Path(os.environ.get("SELFTAUGHT_CACHE", Path.home() / ".cache" / "selftaught"))


def base_key(config: RunConfig) -> str:
    spec = {
        "version": FORMAT_VERSION,
        "seed": config.task.seed,
        "model": config.model.model_dump(),
        "base": config.base.model_dump(),
        "task": config.task.model_dump(exclude={"train_size"}),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def base_model_path(config: RunConfig, reporter: Reporter | None = None) -> Path:
    """M's checkpoint: a user's model as given, or the built-in one, trained on first use."""
    if config.model.name_or_path != "builtin":
        return Path(config.model.name_or_path)
    path = cache_root() / "base" / base_key(config)
    if not (path / "config.json").exists():
        train_base(config, path, reporter or Reporter(quiet=True))
    return path


def train_base(config: RunConfig, path: Path, reporter: Reporter) -> None:
    task = build_task(config)
    b = config.base
    short = [n for n in task.sizes if n <= b.max_size]
    longer = [n for n in task.sizes if n > b.max_size]
    long = round(b.examples * b.long_fraction) if longer else 0
    examples = task.seed_examples(b.examples - long, short, b.hinted_fraction)
    if long:
        examples += task.seed_examples(long, longer, b.hinted_fraction, salt="long")
    work = path.with_name(path.name + ".build")
    shutil.rmtree(work, ignore_errors=True)
    init = save_new_tiny(
        work / "init",
        config.model.hidden_size,
        config.model.layers,
        config.model.heads,
        config.task.seed,
    )
    trainer = HFTrainer(batch_size=b.batch_size, lr=b.lr)
    reporter.line(
        f"Training the base model M on {len(examples)} seed examples "
        f"({task.name} sizes {short[0]}-{short[-1]}, {long} larger); cached at {path}"
    )
    with reporter.phase("base", b.steps, "steps") as bar:
        result = trainer.fit(
            init,
            examples,
            b.steps,
            work / "model",
            config.task.seed,
            lambda step, loss: bar.advance(1, f"loss {loss:.3f}"),
        )
    reporter.line(
        f"base: {result.steps} steps, loss {result.loss:.4f}, "
        f"{result.tokens_per_second:,.0f} tokens/s"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(path, ignore_errors=True)
    (work / "model").rename(path)
    shutil.rmtree(work, ignore_errors=True)
