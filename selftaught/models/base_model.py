"""The built-in base model M (`selftaught base`): a tiny Llama trained on a small seed set
of worked examples, the analogue of STaR's few-shot prompt. Cached by its config, so
every run with the same settings starts from the very same M.

The package ships M of the default config (``builtin/<key>/``, 4 MB), as a real model's
user downloads a pretrained checkpoint rather than pretraining it: a newcomer's first
run then starts at once instead of after ~11 minutes of training, and every machine starts
from the same weights. Any other settings train their own M on first use;
``selftaught base --from-scratch`` retrains even the shipped one."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path

import torch

from selftaught.cache import cache_root
from selftaught.config import RunConfig
from selftaught.models.pretrained import resolve_model
from selftaught.models.tiny import save_new_tiny
from selftaught.models.training import HFTrainer
from selftaught.progress import Reporter
from selftaught.tasks import build_task

FORMAT_VERSION = 1  # bump when the scratchpad, tokenizer or base recipe changes
SHIPPED = Path(__file__).parent / "builtin"
RECORD = "base.json"  # beside M's weights: the settings it was trained with, and how it went
# keys added to the config after M was first shipped: left out of M's spec while at their
# defaults, so the shipped M's key (its directory) stays what it was
_LATER_KEYS = {
    "model": {"gguf_file": None},
    "task": {
        "few_shot": 0,
        "format": "scratchpad",
        "train_exemplars": False,
        "exemplars_after_training": True,
    },
}


def base_spec(config: RunConfig) -> dict:
    """Every setting M depends on."""
    base = config.base.model_dump(mode="json")
    # M's architecture stays under "model", where it was before it moved to config.base:
    # M's key, and so the shipped M's directory, is this dict's hash
    shape = {key: base.pop(key) for key in config.base.ARCHITECTURE}
    return {
        "version": FORMAT_VERSION,
        "seed": config.task.seed,
        "model": {**_without_later(config.model.model_dump(mode="json"), "model"), **shape},
        "base": base,
        "task": _without_later(config.task.model_dump(mode="json", exclude={"train_size"}), "task"),
    }


def _without_later(section: dict, name: str) -> dict:
    later = _LATER_KEYS[name]
    return {k: v for k, v in section.items() if not (k in later and v == later[k])}


def base_key(config: RunConfig) -> str:
    return spec_key(base_spec(config))


def spec_key(spec: dict) -> str:
    text = json.dumps(spec, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def base_model_path(
    config: RunConfig, reporter: Reporter | None = None, from_scratch: bool = False
) -> Path:
    """M's checkpoint: a user's model (a directory, a hub name, a short name or a GGUF
    file, ``pretrained.resolve_model``), or the built-in one: cached, else shipped with the
    package, else trained now (``from_scratch``: trained now regardless)."""
    reporter = reporter or Reporter(quiet=True)
    if config.model.name_or_path != "builtin":
        return resolve_model(config.model.name_or_path, config.model.gguf_file, reporter)
    key = base_key(config)
    path = cache_root() / "base" / key
    if from_scratch or not (path / "config.json").exists():
        shipped = SHIPPED / key
        if not from_scratch and (shipped / "config.json").exists():
            install_shipped(shipped, path, reporter)
        else:
            train_base(config, path, reporter)
    return path


def shipped_path() -> Path:
    """The checkpoint of M that ships with the package: the main command's."""
    return next(p for p in sorted(SHIPPED.iterdir()) if p.is_dir())


def install_shipped(shipped: Path, path: Path, reporter: Reporter) -> None:
    record = json.loads((shipped / RECORD).read_text())
    reporter.line(
        f"Base model M: the one shipped with selftaught (trained by `selftaught base` in "
        f"{record['result']['seconds'] / 60:.0f} min on a 2-core CPU; `selftaught base "
        f"--from-scratch` retrains it); cached at {path}"
    )
    work = path.with_name(path.name + ".copy")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(shipped, work)
    _replace(work, path)


def _replace(new: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(path, ignore_errors=True)
    new.rename(path)


def train_base(config: RunConfig, path: Path, reporter: Reporter) -> None:
    task = build_task(config.task)
    b = config.base
    short = [n for n in task.sizes if n <= b.max_size]
    longer = [n for n in task.sizes if n > b.max_size]
    long = round(b.examples * b.long_fraction) if longer else 0
    examples = task.seed_examples(b.examples - long, short, b.hinted_fraction)
    if long:
        examples += task.seed_examples(long, longer, b.hinted_fraction, salt="long")
    work = path.with_name(path.name + ".build")
    shutil.rmtree(work, ignore_errors=True)
    init = save_new_tiny(work / "init", b.hidden_size, b.layers, b.heads, config.task.seed)
    # one padded batch per step, as M was first trained: micro-batches give the same
    # gradient up to rounding, yet a different M, from which STaR learned 5-digit sums
    # far less (benchmarks/README.md); this keeps the shipped M reproducible bit for bit
    trainer = HFTrainer(batch_size=b.batch_size, lr=b.lr, micro_batches=1)
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
    spec = base_spec(config)
    record = {
        "key": spec_key(spec),
        "spec": spec,
        "result": dataclasses.asdict(result),
        "torch": torch.__version__,
        "trained": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (work / "model" / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    _replace(work / "model", path)
    shutil.rmtree(work, ignore_errors=True)
