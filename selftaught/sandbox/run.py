"""The caller's side of the sandbox, and its public API: ``run_program`` and ``isolation``.
It starts the supervisor (the package ``inside``, a program of its own), feeds the program's
stdin and collects its stdout, stderr and the supervisor's report in one loop under the output
cap and the deadline, stops and kills what is left, and turns the wait status into a
:data:`Status`. Nothing here runs in the box; see ``selftaught.sandbox`` for the whole."""

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
from functools import cache
from pathlib import Path
from typing import Literal

Status = Literal["ok", "error", "timeout", "memory", "output_limit", "killed"]

# Nothing from the caller's environment reaches the program: API keys stay in the parent.
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
# The optional layers, each tried and dropped alone if the kernel refuses it. Tests narrow
# this to exercise the fallbacks; the uid switch and the rlimits are not optional.
_LAYERS = frozenset({"netns", "pidns", "mountns", "ipcns", "seccomp"})
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
    """The sandbox itself could not be set up: a fault of the machine, not of the program."""


@dataclass(frozen=True)
class RunResult:
    """stdout and stderr are cut at the output cap; seconds is wall time, sandbox included."""

    status: Status
    returncode: int | None  # None when the sandbox killed the program before it ended
    stdout: str
    stderr: str
    seconds: float


def run_program(
    source: str,
    stdin: str = "",
    *,
    cpu_seconds: float = 2,
    wall_seconds: float = 5,
    memory_mb: int = 256,
    max_output_bytes: int = 64_000,
    max_processes: int = 16,
) -> RunResult:
    """Run ``source`` on ``stdin``. ``memory_mb`` and ``cpu_seconds`` hold per process and
    ``max_processes`` bounds their number (threads included); ``max_output_bytes`` caps
    stdout and stderr each."""
    return _run(
        source, stdin, cpu_seconds, wall_seconds, memory_mb, max_output_bytes, max_processes
    )[0]


@cache
def isolation() -> frozenset[str]:
    """The isolation layers active on this machine, from a run of an empty program:
    ``netns pidns mountns ipcns`` (namespaces), ``uid`` (own unprivileged user),
    ``no_new_privs``, ``seccomp`` (sockets other than AF_UNIX refused). rlimits, the empty
    environment and the process-group kill are always there and not listed."""
    return _run("", "", 2, 10, 256, 1000, 16)[1]


def _run(source, stdin, cpu_seconds, wall_seconds, memory_mb, max_output_bytes, max_processes):
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="selftaught-sandbox-") as staging:
        Path(staging, "prog.py").write_text(source, encoding="utf-8")
        config = {
            "staging": staging,
            "layers": sorted(_LAYERS),
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
                # the venv is used, and a venv under a hidden directory (/tmp) is gone inside
                [_REAL_PYTHON, *_SUPERVISOR, json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_ENV,
                cwd=staging,
                start_new_session=True,
                pass_fds=(report_w,),
            )
        finally:
            os.close(report_w)
        try:
            out, err, report, limit = _collect(
                proc, report_r, stdin.encode(), start + wall_seconds, max_output_bytes
            )
        finally:
            _kill_all(proc)
            os.close(report_r)
    if "setup_error" in report:
        raise SandboxError(report["setup_error"])
    status = report.get("status")
    returncode = None if status is None else os.waitstatus_to_exitcode(status)
    stderr = err.decode(errors="replace")
    result = RunResult(
        status=limit or _status(returncode, stderr),
        returncode=returncode,
        stdout=out.decode(errors="replace"),
        stderr=stderr,
        seconds=time.monotonic() - start,
    )
    return result, frozenset(report["active"])


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
    ``active``."""
    report: dict = {"active": []}
    for line in data.decode().splitlines():
        entry = json.loads(line)
        report["active"] += entry.pop("active", [])
        report.update(entry)
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
