"""Which rows a data task trains on and which it holds out, and the few-shot exemplars
its prompt shows.

Held-out rows: from ``eval_path`` (or the same hub name or directory) at ``eval_split``.
When training and evaluation would read the very same rows (one local file and no
``eval_path``, or the same split twice) ``eval_size`` rows are held out by the seed and
training draws from the rest, so the two never overlap. ``train_size`` / ``eval_size`` pick
a deterministic subset with ``seed`` (rows keep their file order).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selftaught.tasks.sources import DataError, Record, Source, read_local

if TYPE_CHECKING:
    from selftaught.config import DataTaskConfig


def pick(records: list[Record], size: int | None, seed: int, salt: str, key: str) -> list:
    """``size`` rows chosen by the seed, in their original order; all rows when ``size`` is None."""
    if size is None:
        return list(records)
    if size > len(records):
        raise DataError(f"task.{key}: {size} rows asked for, the data has only {len(records)}")
    chosen = random.Random(f"{salt}-{seed}").sample(range(len(records)), size)
    return [records[i] for i in sorted(chosen)]


def load_splits(config: DataTaskConfig, base: Path | None = None) -> tuple[list, list]:
    """The training and held-out records of a data task's config (see the module doc)."""
    train_src = Source(config.path, config.subset, config.split)
    eval_src = Source(config.eval_path or config.path, config.subset, config.eval_split)
    train_id, eval_id = train_src.resolve(base), eval_src.resolve(base)
    train_rows = train_src.read(base)
    if train_id == eval_id:
        if config.eval_size is None:
            raise DataError(
                f"task.eval_size: training and evaluation would both read {train_id[1]}; set "
                "eval_size to hold out that many of its rows, or set task.eval_path"
            )
        if config.eval_size >= len(train_rows):
            raise DataError(
                f"task.eval_size: {config.eval_size} held-out rows leave none of the "
                f"{len(train_rows)} in {train_id[1]} for training"
            )
        order = list(range(len(train_rows)))
        random.Random(f"{config.name}-holdout-{config.seed}").shuffle(order)
        held = set(order[: config.eval_size])
        eval_rows = [r for r in train_rows if r.index in held]
        train_rows = [r for r in train_rows if r.index not in held]
        train = pick(
            train_rows, config.train_size, config.seed, f"{config.name}-train", "train_size"
        )
        return train, eval_rows
    eval_rows = eval_src.read(base)
    return (
        pick(train_rows, config.train_size, config.seed, f"{config.name}-train", "train_size"),
        pick(eval_rows, config.eval_size, config.seed, f"{config.name}-eval", "eval_size"),
    )


# -- few-shot exemplars ------------------------------------------------------------------
@dataclass(frozen=True)
class Exemplar:
    question: str
    rationale: str
    answer: str
    choices: Any = None  # multiple choice: as in the task's rows, or None


def load_exemplars(path: str | None, count: int, base: Path | None = None) -> list[Exemplar]:
    """The first ``count`` exemplars of a JSONL of ``{question, rationale, answer}`` (all of
    them when ``count`` is 0)."""
    if path is None:
        if count:
            raise DataError(f"task.few_shot: {count} exemplars need task.few_shot_path")
        return []
    file = Path(path).expanduser()
    if base is not None and not file.is_absolute():
        file = base / file
    if not file.is_file():
        raise DataError(f"task.few_shot_path: {path}: no such file (expected a JSONL file)")
    records = read_local(file)
    if count > len(records):
        raise DataError(f"task.few_shot: {count} exemplars asked for, {file} has {len(records)}")
    out = []
    for r in records[: count or len(records)]:
        answer = r.get("answer", kind=(str, int, float))
        out.append(
            Exemplar(
                r.get("question"),
                r.get("rationale"),
                str(answer),
                r.get("choices", kind=(dict, list), required=False),
            )
        )
    return out
