"""The supervisor, the sandbox's outermost process, and the init below it: the process tree
of a run, how it is killed, and the report to the caller. ``main`` is the entry point.

Each stage checks the layers it is responsible for before the next one starts (``_require``):
where the caller requires isolation, a layer that did not come up stops the run before the
program exists, and the caller is told which (``unavailable``), so nothing ever runs with
less isolation than was asked for."""

from __future__ import annotations

import json
import math
import os
import resource
import signal

from . import filesystem, libc, namespaces, program, watch

_PR_SET_PDEATHSIG = 1
_NAMESPACES = {"netns", "pidns", "mountns", "ipcns"}


def main(config: str) -> None:
    """Supervise one run, configured by ``selftaught.sandbox.run`` in JSON; never returns."""
    _supervise(json.loads(config))


def report(fd: int, **entry) -> None:
    """A line of the report (``selftaught.sandbox.run._parse_report``): the ``active``
    layers, the ``refused`` ones and why, the ``unavailable`` required ones, a
    ``setup_error``, the program's wait ``status``, or ``memory`` (the watch ended it)."""
    os.write(fd, (json.dumps(entry) + "\n").encode())  # short lines: one atomic write each


def _require(fd: int, config: dict, active, stage: set[str]) -> None:
    missing = (set(config["required"]) & stage) - set(active)
    if missing:
        report(fd, unavailable=sorted(missing))
        os._exit(1)


def _supervise(config: dict) -> None:
    fd = config["report_fd"]
    os.set_inheritable(fd, False)  # closed when the program is exec'd
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.umask(0o022)  # the program, another user, must read what is made for it
    try:
        active, refused, ids = namespaces.enter(config["layers"], config["route"])
    except Exception as e:  # noqa: BLE001 - whatever it is, the caller is told
        report(fd, setup_error=f"supervisor: {e}")
        os._exit(1)
    report(fd, active=sorted(active), refused=refused)
    _require(fd, config, active, _NAMESPACES)
    # opened now: the init is about to pivot this mount namespace's root, ours included
    null = os.open(os.devnull, os.O_RDWR)
    stop = {signal.SIGTERM, signal.SIGALRM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # no kill request lost around the fork
    init = os.fork()
    if init == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop)
        os.close(null)
        _init(fd, config, ids, active)
    for sig in stop:
        signal.signal(sig, lambda *_: os.kill(init, signal.SIGKILL))
    signal.alarm(math.ceil(config["wall"]))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stop)
    _detach_stdio(null)
    # wait without reaping: a kill request that comes now must not hit a recycled pid
    os.waitid(os.P_PID, init, os.WEXITED | os.WNOWAIT)
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    os.waitpid(init, 0)
    if "pidns" not in active and ids["own_uid"]:
        _kill_user(ids["uid"])  # no namespace took the strays down with the init
    os._exit(0)


def _init(fd: int, config: dict, ids: dict, active: set[str]):
    """PID 1 of the namespace (when there is one): build the program's filesystem, start
    the program, reap orphans and watch the memory until it ends, report its wait status
    and exit, which kills whatever is left in the namespace."""
    libc.load().prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))  # the supervisor killed: so are we
    # PID 1 gets only the signals it has a handler for from inside its namespace: with
    # none, the program can neither stop nor interrupt it
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        if "mountns" in active:
            prog, workdir, layers = filesystem.build_root(config, ids, "pidns" in active)
        else:
            prog, workdir = filesystem.unisolated_files(config["staging"], ids["uid"])
            layers = []
    except Exception as e:  # noqa: BLE001 - whatever it is, the caller is told
        report(fd, setup_error=f"filesystem: {e}")
        os._exit(1)
    report(fd, active=layers)
    _require(fd, config, layers, {"fsroot"})
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # see _reap
    child = os.fork()
    if child == 0:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        _exec_program(fd, config, prog, workdir, ids)
    _detach_stdio()
    watching = "pidns" in active and "proc" in layers  # /proc shows the run's processes only
    _reap(fd, child, config["memory"] if watching else None)


def _reap(fd: int, child: int, memory_cap: int | None):
    """Reap every process that ends (orphans come to PID 1) until the program does; in
    between, every ``watch.INTERVAL``, the memory watch. SIGCHLD is blocked and waited for,
    so a program that ends is seen at once, not at the next look."""
    while True:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
            if pid == child:
                report(fd, status=status)
                os._exit(0)
        if memory_cap is not None and watch.over(memory_cap):
            report(fd, memory=True)
            os._exit(0)  # PID 1 gone: the kernel kills every process in the namespace
        if memory_cap is None:
            signal.sigwait({signal.SIGCHLD})
        else:
            signal.sigtimedwait({signal.SIGCHLD}, watch.INTERVAL)


def _exec_program(fd: int, config: dict, prog: str, workdir: str, ids: dict):
    try:
        active = program.confine(config, ids)
        report(fd, active=active)
        _require(fd, config, active, {"caps", "no_new_privs", "seccomp"})
        program.execute(prog, workdir)
    except Exception as e:  # noqa: BLE001 - whatever it is, the caller is told
        report(fd, setup_error=f"program: {e}")
        os._exit(126)


def _detach_stdio(null: int | None = None) -> None:
    """Let go of the program's pipes, so that their end of file means the program is done."""
    if null is None:
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
