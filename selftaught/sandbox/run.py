"""The caller's side of the sandbox, and its public API, ``run_program``.
It starts the supervisor (the package ``inside``, a program of its own), feeds the program's
stdin and collects its stdout, stderr and the supervisor's report in one loop under the output
cap and the deadline, stops and kills what is left, and turns the wait status into a
:data:`Status`. Nothing here runs in the box; see ``selftaught.sandbox`` for the whole, and
``selftaught.sandbox.check`` for what is required and what to do where it is missing."""

from __future__ import annotations

import contextlib
import json
import math
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Status = Literal["ok", "error", "timeout", "memory", "output_limit", "killed", "rejected"]

# Nothing from the caller's environment reaches the program: API keys stay in the parent.
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
# The layers the supervisor tries. Tests narrow this to exercise the fallbacks; the uid
# switch and the rlimits are not optional.
_LAYERS = frozenset({"netns", "pidns", "mountns", "ipcns", "seccomp"})
# "auto": root makes the namespaces directly and a user namespace only where that is
# refused; "userns": a user namespace even as root (tests take this route as root)
_ROUTE = "auto"
# True: make the binds read-only by one remount a mount, as kernels before 5.12 need
_LEGACY_REMOUNT = False
# What isolation means: where it is required, a run without every one of these that
# ``_LAYERS`` asks for stops before the program starts (``IsolationUnavailable``)
REQUIRED = frozenset(
    {"netns", "pidns", "mountns", "ipcns", "fsroot", "caps", "no_new_privs", "seccomp"}
)
MAX_SOURCE_BYTES = 4 << 20  # a bigger "program" is rejected unrun, not written anywhere
_REAL_PYTHON = os.path.realpath(sys.executable)
_GRACE = 1.0  # seconds the supervisor gets to clean up before SIGKILL
# The sandbox's side is the package ``inside`` in this directory, a program of its own that
# needs the standard library only. -I -S leave site-packages out, and with it ``selftaught``;
# this directory, and no other, is added to its sys.path, after the standard library (whose
# modules none of ours can then shadow), and ``inside`` is imported as a top-level package.
# -B: the supervisor, often root, writes no bytecode into the package.
_SUPERVISOR = (
    "-I",
    "-S",
    "-B",
    "-c",
    "import sys; sys.path.append(sys.argv[1]); from inside.supervisor import main; "
    "main(sys.argv[2])",
    str(Path(__file__).resolve().parent),
)


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up: a fault of the machine, not of the program.
    ``active`` and ``refused``: the layers that had come up, and those the kernel refused
    (with its reason), before it failed."""

    def __init__(self, message: str, active=frozenset(), refused: dict | None = None):
        super().__init__(message)
        self.active, self.refused = frozenset(active), dict(refused or {})


class IsolationUnavailable(SandboxError):
    """Isolation was required and a layer of it did not come up on this machine; nothing
    ran. ``missing``: the layers; ``refused``: the kernel's reason for each it refused."""

    def __init__(self, missing: list[str], refused: dict[str, str]):
        self.missing = missing
        why = "; ".join(f"{k}: {v}" for k, v in sorted(refused.items()))
        super().__init__(
            f"isolation unavailable: {', '.join(missing)} missing" + (f" ({why})" if why else ""),
            refused=refused,
        )


@dataclass(frozen=True)
class RunResult:
    """stdout and stderr are cut at the output cap; seconds is wall time, sandbox included.
    ``reason``: why a "rejected" run was not run, or a "memory" run was ended."""

    status: Status
    returncode: int | None  # None when the sandbox killed the program before it ended
    stdout: str
    stderr: str
    seconds: float
    reason: str = ""


@dataclass(frozen=True)
class Outcome:
    """A run as the supervisor reported it, with the layers that were active."""

    result: RunResult
    active: frozenset[str]
    refused: dict[str, str]


def run_program(
    source: str,
    stdin: str = "",
    *,
    cpu_seconds: float = 2,
    wall_seconds: float = 5,
    memory_mb: int = 256,
    max_output_bytes: int = 64_000,
    max_processes: int = 16,
    require_isolation: bool = True,
) -> RunResult:
    """Run ``source`` on ``stdin``. ``memory_mb`` holds for the whole process tree (see
    ``inside.watch``) and for each process; ``cpu_seconds`` per process; ``max_processes``
    bounds their number (threads included); ``max_output_bytes`` caps stdout and stderr
    each. Whatever the source and the input are, the answer is a RunResult: one that cannot
    be run (not text, too big) is "rejected" with a reason. ``require_isolation``: raise
    ``IsolationUnavailable`` rather than run with less than ``REQUIRED``."""
    start = time.monotonic()
    try:
        source_bytes = source.encode()
        stdin_bytes = stdin.encode()
    except UnicodeEncodeError as e:  # a lone surrogate: no file or pipe can carry it
        which = "the program" if e.object is source else "the input"
        return _rejected(f"{which} is not valid text ({e.reason} at {e.start})", start)
    if len(source_bytes) > MAX_SOURCE_BYTES:
        return _rejected(f"the program has {len(source_bytes)} bytes, over the "
                         f"{MAX_SOURCE_BYTES} a program may have", start)  # fmt: skip
    limits = (cpu_seconds, wall_seconds, memory_mb, max_output_bytes, max_processes)
    return _run(source_bytes, stdin_bytes, limits, require_isolation).result


def probe_run() -> Outcome:
    """An empty program run with whatever layers come up (``check`` reads them)."""
    return _run(b"", b"", (2, 10, 256, 1000, 16), False)


def _rejected(reason: str, start: float) -> RunResult:
    return RunResult("rejected", None, "", "", time.monotonic() - start, reason)


def _required(require: bool) -> list[str]:
    """The required layers among those ``_LAYERS`` asks for (and what they imply)."""
    if not require:
        return []
    asked = _LAYERS | {"caps", "no_new_privs"} | ({"fsroot"} if "mountns" in _LAYERS else set())
    return sorted(REQUIRED & asked)


def _run(source: bytes, stdin: bytes, limits, require: bool) -> Outcome:
    cpu_seconds, wall_seconds, memory_mb, max_output_bytes, max_processes = limits
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="selftaught-sandbox-") as staging:
        Path(staging, "prog.py").write_bytes(source)
        os.chmod(Path(staging, "prog.py"), 0o644)  # whatever the caller's umask
        os.mkdir(Path(staging, "root"))  # where the program's new root is mounted
        config = {
            "staging": staging,
            "layers": sorted(_LAYERS),
            "route": _ROUTE,
            "legacy_remount": _LEGACY_REMOUNT,
            "required": _required(require),
            "cpu": max(1, math.ceil(cpu_seconds)),  # RLIMIT_CPU counts whole seconds
            "wall": wall_seconds + 2 * _GRACE,  # the supervisor's own alarm, a backstop
            "memory": memory_mb << 20,
            "processes": max_processes,
        }
        report_r, report_w = os.pipe()
        config["report_fd"] = report_w
        try:
            proc = subprocess.Popen(
                # the real interpreter, not a virtualenv's link to it: with -I -S nothing of
                # the venv is used, and the venv itself is not in the program's filesystem
                [_REAL_PYTHON, *_SUPERVISOR, json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_ENV,
                cwd=staging,
                start_new_session=True,
                pass_fds=(report_w,),
            )
        except OSError as e:  # no process to be had (EAGAIN, EMFILE): the machine's fault
            os.close(report_r)
            raise SandboxError(f"starting the sandbox: {e}") from e
        finally:
            os.close(report_w)
        try:
            out, err, report, limit = _collect(
                proc, report_r, stdin, start + wall_seconds, max_output_bytes
            )
        finally:
            _kill_all(proc)
            os.close(report_r)
    if report.get("unavailable"):
        raise IsolationUnavailable(report["unavailable"], report["refused"])
    if "setup_error" in report:
        raise SandboxError(report["setup_error"], report["active"], report["refused"])
    status = report.get("status")
    returncode = None if status is None else os.waitstatus_to_exitcode(status)
    stderr = err.decode(errors="replace")
    reason = ""
    if report.get("memory"):
        limit, reason = "memory", "the processes together held more than the memory cap"
    result = RunResult(
        status=limit or _status(returncode, stderr),
        returncode=returncode,
        stdout=out.decode(errors="replace"),
        stderr=stderr,
        seconds=time.monotonic() - start,
        reason=reason,
    )
    return Outcome(result, frozenset(report["active"]), report["refused"])


def _collect(proc, report_r, stdin: bytes, deadline: float, cap: int):
    """Feed stdin and read stdout, stderr and the supervisor's report all in one loop, until
    the supervisor has exited and the pipes are closed, the deadline passes ("timeout") or
    an output goes over ``cap`` ("output_limit")."""
    sel = selectors.DefaultSelector()
    bufs = {
        proc.stdout.fileno(): bytearray(),
        proc.stderr.fileno(): bytearray(),
        report_r: bytearray(),
    }
    for fd in bufs:
        sel.register(fd, selectors.EVENT_READ)
    pidfd = os.pidfd_open(proc.pid)  # readable once the supervisor exits; does not reap it
    sel.register(pidfd, selectors.EVENT_READ)
    stdin_fd = proc.stdin.fileno()
    if stdin:
        os.set_blocking(stdin_fd, False)
        sel.register(stdin_fd, selectors.EVENT_WRITE)
    else:
        proc.stdin.close()
    sent, exited, limit = 0, False, None
    try:
        while not exited or sel.get_map():
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                limit = None if exited else "timeout"  # exited: only a stray pipe is open
                break
            for key, _ in sel.select(timeout):
                if key.fd == pidfd:
                    exited = True
                    sel.unregister(pidfd)
                    deadline = min(deadline, time.monotonic() + _GRACE)
                elif key.fd == stdin_fd:
                    try:
                        sent += os.write(key.fd, stdin[sent : sent + 65536])
                    except OSError:  # the program closed its stdin or is gone
                        sent = len(stdin)
                    if sent >= len(stdin):
                        sel.unregister(key.fd)
                        proc.stdin.close()
                else:
                    data = os.read(key.fd, 65536)
                    if not data:
                        sel.unregister(key.fd)
                    bufs[key.fd] += data
                    if key.fd != report_r and len(bufs[key.fd]) > cap:
                        limit = "output_limit"
            if limit:
                break
        if not exited:
            _stop(proc, pidfd)
        while True:  # whatever the supervisor managed to report before it went
            data = _read_nowait(report_r)
            if not data:
                break
            bufs[report_r] += data
    finally:
        sel.close()
        os.close(pidfd)
    return (
        bytes(bufs[proc.stdout.fileno()][:cap]),
        bytes(bufs[proc.stderr.fileno()][:cap]),
        _parse_report(bufs[report_r]),
        limit,
    )


def _parse_report(data: bytes) -> dict:
    """One JSON object a line (``inside.supervisor.report``), from the supervisor, the init
    and the program's setup; the layers each of them got going are collected under
    ``active``. Only the sandbox's own processes hold the pipe (it is closed at the
    program's exec), but a line that is not one of theirs is a setup error, not a crash."""
    report: dict = {"active": [], "refused": {}}
    for line in data.decode(errors="replace").splitlines():
        try:
            entry = json.loads(line)
            report["active"] += list(entry.pop("active", []))
            report["refused"].update(entry.pop("refused", {}))
            report.update(entry)
        except (ValueError, TypeError, AttributeError):
            report["setup_error"] = f"unreadable report from the sandbox: {line[:200]!r}"
    return report


def _read_nowait(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def _stop(proc, pidfd: int) -> None:
    """Ask the supervisor to kill the run (it knows the init, which takes the whole PID
    namespace with it); if it does not go within the grace period, kill its group."""
    os.kill(proc.pid, signal.SIGTERM)
    with selectors.DefaultSelector() as sel:
        sel.register(pidfd, selectors.EVENT_READ)
        if not sel.select(_GRACE):
            os.killpg(proc.pid, signal.SIGKILL)


def _kill_all(proc) -> None:
    """Kill the whole process group, then reap the supervisor. The order matters: until it
    is reaped its pid, and so the group id, cannot be handed to an unrelated process."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for f in (proc.stdin, proc.stdout, proc.stderr):
        f.close()
    proc.wait()


def _status(returncode: int | None, stderr: str) -> Status:
    if returncode == 0:
        return "ok"
    if "MemoryError" in stderr:  # RLIMIT_AS makes allocations fail rather than the process
        return "memory"
    if returncode == -signal.SIGXCPU:  # RLIMIT_CPU's soft limit
        return "timeout"
    if returncode is None or returncode < 0:
        return "killed"
    return "error"
