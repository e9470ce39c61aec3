"""Rows of a data set, from a hub name or a local file, each knowing where it came from.

Sources (``task.path`` / ``task.eval_path``):

- a local ``.jsonl`` file (one JSON object per line; blank lines are skipped), read here
  line by line so that a bad line fails as ``file:line: what was expected``;
- a local ``.json`` file: an array of objects, or JSON lines;
- a local ``.parquet`` file (pyarrow);
- a local directory: the file named after the split in it (``train.jsonl``, ``test.json``,
  ``validation.parquet``), so ``path: ../shared/datasets/gsm8k`` reads ``train.jsonl`` for
  training and ``test.jsonl`` for evaluation;
- anything else that looks like a hub name (``openai/gsm8k``, ``gsm8k``):
  ``datasets.load_dataset(path, subset, split=split)``.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXTENSIONS = (".jsonl", ".json", ".parquet")


class DataError(ValueError):
    """A data file or row is not what the task expects; the message names file and line."""


@dataclass(frozen=True)
class Record:
    """One row and where it came from (``file:line``, ``file: item 3``, ``hub ... row 3``)."""

    where: str
    index: int  # 0-based position among the source's rows
    row: dict

    def get(self, *names: str, kind: type | tuple[type, ...] = str, required: bool = True) -> Any:
        """The first of ``names`` present in the row, checked to be of ``kind``."""
        for name in names:
            if name in self.row and self.row[name] is not None:
                value = self.row[name]
                if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
                    raise DataError(
                        f"{self.where}: field {name!r} is {_json_type(value)} ({excerpt(value)}); "
                        f"expected {_kind_name(kind)}"
                    )
                return value
        if not required:
            return None
        wanted = " or ".join(repr(n) for n in names)
        has = ", ".join(repr(k) for k in self.row) or "no fields"
        raise DataError(f"{self.where}: missing field {wanted} (the row has {has})")

    def fail(self, what: str) -> DataError:
        return DataError(f"{self.where}: {what}")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", dict: "an object"}
    names |= {list: "an array", bool: "a boolean"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def excerpt(value: Any) -> str:
    """``value`` as JSON for an error message, cut to 60 characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# -- local files -------------------------------------------------------------------------
def _not_json(err: ValueError | RecursionError, text: str, unit: str) -> str:
    """What is wrong, and whether the ``unit`` (line, file) looks cut short. Valid JSON
    that Python's decoder cannot hold fails too: an integer of more than 4300 digits
    (a ValueError), nesting deeper than the recursion limit."""
    if isinstance(err, RecursionError):
        return "arrays or objects nested too deeply for Python's JSON reader"
    if not isinstance(err, json.JSONDecodeError):
        return f"a value Python's JSON reader refuses: {str(err).split(':')[0]}"
    truncated = err.pos >= len(text.rstrip())
    why = f" (the {unit} ends early: truncated?)" if truncated else ""
    return f"not valid JSON: {err.msg} at column {err.colno}{why}"


def _culprit_line(text: str) -> int | None:
    """The line of what Python's JSON reader refused in valid JSON (it says no position):
    the first integer of over 4300 digits, or the first run of 500 opening brackets."""
    found = re.search(r"\d{4301}|[\[{](?:\s*[\[{]){499}", text)
    return text.count("\n", 0, found.start()) + 1 if found else None


def read_jsonl(path: Path) -> list[Record]:
    """One object per line; blank lines are skipped; the first bad line fails with its number."""
    records: list[Record] = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            where = f"{path}:{number}"
            if number == 1:
                if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    raise DataError(f"{where}: the file is UTF-16 text; expected UTF-8")
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{where}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column "
                    f"{err.start + 1}); expected UTF-8 JSON"
                ) from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except (ValueError, RecursionError) as err:
                raise DataError(
                    f"{where}: {_not_json(err, text, 'line')}; expected one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise DataError(
                    f"{where}: expected a JSON object {{...}} per line, got {_json_type(row)}"
                )
            records.append(Record(where, len(records), row))
    if not records:
        raise DataError(f"{path}: empty file; expected one JSON object per line")
    return records


def read_json(path: Path) -> list[Record]:
    """A JSON array of objects, or JSON lines in a ``.json`` file."""
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path}:1: the file is UTF-16 text; expected UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}); expected UTF-8 JSON"
        ) from None
    if not text.strip():
        raise DataError(f"{path}: empty file; expected a JSON array of objects, or JSON lines")
    if not text.lstrip().startswith("["):
        return read_jsonl(path)
    try:
        rows = json.loads(text)
    except (ValueError, RecursionError) as err:
        line = err.lineno if isinstance(err, json.JSONDecodeError) else _culprit_line(text)
        where = f"{path}:{line}" if line else str(path)
        raise DataError(f"{where}: {_not_json(err, text, 'file')}") from None
    if not rows:
        raise DataError(f"{path}: an empty array; expected an array of objects")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"{path}: item {i}: expected a JSON object, got {_json_type(row)}")
    return [Record(f"{path}: item {i}", i, row) for i, row in enumerate(rows)]


def read_parquet(path: Path) -> list[Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises several types for a bad file
        raise DataError(f"{path}: not a readable Parquet file: {err}") from None
    if not rows:
        raise DataError(f"{path}: no rows")
    return [Record(f"{path}: row {i}", i, row) for i, row in enumerate(rows)]


def read_local(path: Path) -> list[Record]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl(path)
    if suffix == ".json":
        return read_json(path)
    if suffix == ".parquet":
        return read_parquet(path)
    raise DataError(f"{path}: unknown file type {suffix!r}; expected one of {EXTENSIONS}")


def split_file(directory: Path, split: str) -> Path:
    """``directory/<split>.jsonl`` (or ``.json`` / ``.parquet``): exactly one must exist."""
    found = [directory / f"{split}{ext}" for ext in EXTENSIONS]
    found = [p for p in found if p.is_file()]
    if len(found) == 1:
        return found[0]
    if found:
        raise DataError(f"{directory}: several files for split {split!r}: {found}")
    have = sorted(p.name for p in directory.iterdir() if p.suffix in EXTENSIONS)
    raise DataError(
        f"{directory}: no {split}.jsonl, {split}.json or {split}.parquet for split {split!r} "
        f"(the folder has {', '.join(have) or 'no data files'})"
    )


# -- hub -----------------------------------------------------------------------------------
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def looks_like_hub_name(text: str) -> bool:
    """``openai/gsm8k`` or ``gsm8k``; not ``data/x.jsonl``, ``./x``, ``a/b/c`` or ``~/x``."""
    return bool(_HUB_NAME.fullmatch(text)) and not text.lower().endswith(
        (*EXTENSIONS, ".csv", ".txt", ".gz")
    )


def read_hub(name: str, subset: str | None, split: str) -> list[Record]:
    """``datasets.load_dataset(name, subset, split=split)``: needs the network or HF's cache."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{name!r} is not a local file, and reading a hub data set needs the datasets "
            "package (pip install datasets)"
        ) from None
    what = f"hub data set {name!r}" + (f" ({subset})" if subset else "") + f" split {split!r}"
    try:
        rows = datasets.load_dataset(name, subset, split=split)
    except Exception as err:  # datasets raises many types: name, network, config, split
        raise DataError(
            f"{what}: {type(err).__name__}: {err} (it is not a local file or folder either)"
        ) from None
    return [Record(f"{what} row {i}", i, dict(row)) for i, row in enumerate(rows)]


# -- a source ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where one split's rows come from: a local file, or a hub name with subset and split."""

    path: str
    subset: str | None = None
    split: str = "train"

    def resolve(self, base: Path | None = None) -> tuple[str, ...]:
        """An identity: two sources with the same one give the same rows."""
        local = Path(self.path).expanduser()
        if base is not None and not local.is_absolute():
            local = base / local
        if local.is_dir():
            return ("file", str(split_file(local, self.split).resolve()))
        if local.is_file():
            return ("file", str(local.resolve()))
        if local.exists():  # a FIFO would wait for a writer for ever; a device never ends
            raise DataError(
                f"{self.path}: not a regular file (a FIFO, device or socket); expected a "
                ".jsonl/.json/.parquet file or a folder of them"
            )
        if looks_like_hub_name(self.path):
            return ("hub", self.path, self.subset or "", self.split)
        near = ""
        if local.parent.is_dir():
            names = sorted(p.name for p in local.parent.iterdir())[:8]
            near = f"; {local.parent} has {', '.join(names) or 'nothing'}"
        raise DataError(
            f"{self.path}: no such file or folder, and not a hub data set name "
            f"(expected a .jsonl/.json/.parquet file, a folder of them, or a name like "
            f"'openai/gsm8k'){near}"
        )

    def read(self, base: Path | None = None) -> list[Record]:
        identity = self.resolve(base)
        if identity[0] == "file":
            return read_local(Path(identity[1]))
        return read_hub(self.path, self.subset, self.split)
