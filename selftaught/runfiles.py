"""A run's files on disk: written atomically (temp file, fsync, rename), so a kill never
leaves half a file under a real name, and read back with errors that name the file and
line, so a damaged one is a message rather than a traceback. ``store.py`` builds the run
directory on these."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class RunDirError(ValueError):
    """A run directory is damaged or not one; the message names the file and what is wrong."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:
            # a full disk fails in write() or fsync(), which name no file: the user must
            # learn which one, and where the run is
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    _fsync_dir(path.parent)  # the rename itself survives a crash of the machine


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be opened
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)  # mtime=0: same rows, same bytes
    atomic_write_bytes(path, data)


def _not_json(err: ValueError | RecursionError) -> str:
    """Why ``json.loads`` refused: a syntax error, or what Python's decoder cannot hold
    (an integer of more than 4300 digits, nesting deeper than the recursion limit)."""
    if isinstance(err, json.JSONDecodeError):
        return err.msg
    if isinstance(err, RecursionError):
        return "nested too deeply"
    return str(err).split(":")[0]  # "Exceeds the limit (4300 digits) for integer ..."


def read_json(path: Path) -> Any:
    """A JSON file the run wrote; a damaged one fails with ``RunDirError`` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError too
        raise RunDirError(f"{path}: damaged: not JSON ({_not_json(err)})") from None


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> list[dict]:
    """The rows of a JSONL (or .jsonl.gz) file the run wrote; a damaged one fails with
    ``RunDirError`` naming the file and line, as does a row without a ``required`` key."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as err:
        raise RunDirError(f"{path}: damaged ({type(err).__name__}: {err})") from None
    rows = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as err:
            raise RunDirError(f"{path}:{number}: damaged: not JSON ({_not_json(err)})") from None
        if not isinstance(row, dict):
            raise RunDirError(f"{path}:{number}: damaged: expected a JSON object")
        missing = [key for key in required if key not in row]
        if missing:
            raise RunDirError(f"{path}:{number}: damaged: no {', '.join(missing)} in the row")
        rows.append(row)
    return rows
