"""The supervisor, the sandbox's outermost process, and the init below it: the process tree
of a run, how it is killed, and the report to the caller. ``main`` is the entry point."""

from __future__ import annotations

import json
import math
import os
import resource
import secrets
import signal

from . import filesystem, libc, namespaces, program

_PR_SET_PDEATHSIG = 1


def main(config: str) -> None:
    """Supervise one run, configured by ``selftaught.sandbox.run`` in JSON; never returns."""
    _supervise(json.loads(config))


def report(fd: int, **entry) -> None:
    """A line of the report (``selftaught.sandbox.run._parse_report``): the ``active``
    layers, a ``setup_error``, or the program's wait ``status``."""
    os.write(fd, (json.dumps(entry) + "\n").encode())  # short lines: one atomic write each


def _supervise(config: dict) -> None:
    fd = config["report_fd"]
    os.set_inheritable(fd, False)  # closed when the program is exec'd
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        active = namespaces.unshare(config["layers"])
        uid = 1_000_000_000 + secrets.randbelow(1 << 30) if os.geteuid() == 0 else None
        prog, workdir = filesystem.prepare_files(config["staging"], "mountns" in active, uid)
    except OSError as e:
        report(fd, setup_error=f"supervisor: {e}")
        os._exit(1)
    report(fd, active=sorted(active))
    stop = {signal.SIGTERM, signal.SIGALRM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # no kill request lost around the fork
    init = os.fork()
    if init == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop)
        _init(fd, config, prog, workdir, uid, {"pidns", "mountns"} <= active)
    for sig in stop:
        signal.signal(sig, lambda *_: os.kill(init, signal.SIGKILL))
    signal.alarm(math.ceil(config["wall"]))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stop)
    _detach_stdio()
    # wait without reaping: a kill request that comes now must not hit a recycled pid
    os.waitid(os.P_PID, init, os.WEXITED | os.WNOWAIT)
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    os.waitpid(init, 0)
    if "pidns" not in active and uid is not None:
        _kill_user(uid)  # no namespace took the strays down with the init
    os._exit(0)


def _init(fd: int, config: dict, prog: str, workdir: str, uid: int | None, own_proc: bool):
    """PID 1 of the namespace (when there is one): start the program, reap orphans until it
    ends, report its wait status and exit, which kills whatever is left."""
    libc.load().prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))  # the supervisor killed: so are we
    if own_proc:  # a /proc that shows only this namespace's processes
        filesystem.mount_proc()
    child = os.fork()
    if child == 0:
        _exec_program(fd, config, prog, workdir, uid)
    _detach_stdio()
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            report(fd, status=status)
            os._exit(0)


def _exec_program(fd: int, config: dict, prog: str, workdir: str, uid: int | None):
    try:
        active = program.confine(config, uid)
        report(fd, active=active)
        program.execute(prog, workdir)
    except OSError as e:
        report(fd, setup_error=f"program: {e}")
        os._exit(126)


def _detach_stdio() -> None:
    """Let go of the program's pipes, so that their end of file means the program is done."""
    null = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(null, std)
    os.close(null)


def _kill_user(uid: int) -> None:
    """Kill every process of the run's own user. ``kill(-1)`` sent as that user reaches
    exactly them, atomically, so even a fork bomb racing the kill cannot slip through."""
    helper = os.fork()
    if helper == 0:
        try:
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(helper, 0)
