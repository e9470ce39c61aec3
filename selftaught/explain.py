"""How the command line answers what a user can act on: a message, never a traceback.

A user's own mistake (a config, a data file, a model, a damaged run directory), the
machine's (a full disk, a path that cannot be written) and a stop by a signal each end in
one paragraph that names the file or key and what to do, with the resume command where
there is a run to resume; a bug still ends in its traceback. The CLI wraps each command's
work in ``explained``."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import typer

from selftaught.config import ConfigError


def fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@contextlib.contextmanager
def explained(
    run_dir: Path | None = None, reading: str = "", starting: bool = False
) -> Iterator[None]:
    """Within, what a user can act on ends in ``fail``'s message (or a stop's). ``run_dir``:
    the run to name and resume. ``reading``: the run directories a command only reads
    (report, compare, refilter), where a value of the wrong kind in one of their files,
    which the checks of what is read did not foresee, is a damaged file too.
    ``starting``: a run before its directory is named, where a stop leaves nothing."""
    from selftaught.store import RunDirError
    from selftaught.tasks.sources import DataError

    try:
        yield
    except (ConfigError, RunDirError, DataError) as err:
        fail(str(err))
    except KeyboardInterrupt as err:
        _stopped(err, run_dir, starting)
    except (typer.Exit, typer.Abort):
        raise  # said already
    except Exception as err:
        if isinstance(err, OSError) or _disk_full(err):
            fail(_os_message(err, run_dir))
        if reading and isinstance(err, DAMAGE) and not os.environ.get("SELFTAUGHT_TRACEBACK"):
            fail(
                f"{reading}: a file holds what a run never writes ({type(err).__name__}: "
                f"{err}): damaged by hand or by another tool? SELFTAUGHT_TRACEBACK=1 shows "
                "where it was read"
            )
        raise  # a bug: its traceback is what finds it


DAMAGE = (TypeError, KeyError, AttributeError, ValueError, IndexError)


def _disk_full(err: BaseException | None) -> bool:
    """A full disk, however it surfaced: OSError from our writes, but SafetensorError or
    RuntimeError from safetensors and torch, where only the message tells."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(err) or "os error 28" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def _os_message(err: Exception, run_dir: Path | None) -> str:
    if isinstance(err, OSError) and err.errno is None:
        return str(err)  # ours, which says it all
    full = _disk_full(err)
    path = getattr(err, "filename", None) or (full and _being_written(run_dir)) or run_dir
    if full:
        message = f"the disk is full: no space left on the device writing {path or 'a file'}"
    else:
        message = f"{path or 'a file'}: {err.strerror if isinstance(err, OSError) else err}"
    if run_dir is None:
        return message
    if not (Path(run_dir) / "state.json").is_file():
        return (
            message
            + ". The run had not started: "
            + ("free some space and run the command again" if full else "run the command again")
        )
    return (
        f"{message}. Everything completed so far is kept in {run_dir}: "
        f"{'free some space, then ' if full else ''}"
        f"`selftaught run --resume {run_dir}` continues from there"
    )


def _being_written(run_dir: Path | None) -> Path | None:
    """The checkpoint a full disk stopped (``model.tmp``): safetensors and torch do not
    say which file they were writing."""
    if run_dir is None:
        return None
    found = sorted(Path(run_dir).glob("*.tmp")) + sorted(Path(run_dir).glob("iter_*/*.tmp"))
    return found[-1] if found else None


def _stopped(err: KeyboardInterrupt, run_dir: Path | None, starting: bool) -> NoReturn:
    """Where a stopped run stands, from its state.json, and the exit status of the signal."""
    from selftaught.stopping import signal_number

    signum = signal_number(err)
    message = f"stopped by {signal.Signals(signum).name}"
    if run_dir is None:
        message += " before the run started: nothing to resume" if starting else ""
    else:
        try:
            last = json.loads((Path(run_dir) / "state.json").read_text()).get("last")
            where = f"after iteration {last['iteration']}'s {last['phase']} phase" if last else ""
            message += f" {where or 'before any phase completed'}, in {run_dir}, which is "
            message += f"consistent: `selftaught run --resume {run_dir}` continues from there"
        except (OSError, ValueError, AttributeError, TypeError, KeyError):
            message += " before the run directory was written: nothing to resume"
    typer.secho(message, fg=typer.colors.YELLOW, err=True)
    raise typer.Exit(128 + signum)
