"""Run untrusted, model-written Python programs (B-STaR's APPS task: a sample is correct when
its program passes the test cases) so that they cannot reach anything outside a throwaway box.

Three processes, outermost first:

* the supervisor: this file run as a script (``python -I -S sandbox.py CONFIG``) in a new
  session with an empty environment. As root it moves into new network, mount, PID and IPC
  namespaces, hides the writable and private parts of the filesystem, and stays behind as
  the one process the caller has to kill: on SIGTERM (or its own wall-clock alarm) it kills
  everything below it.
* the init: PID 1 of the new PID namespace. When it exits the kernel kills every process left
  in the namespace, so no fork, ``setsid()`` or double fork outlives the run.
* the program: limited by rlimits, switched to a user id of its own (unique per run, so
  RLIMIT_NPROC counts only its processes and ``kill(-1)`` as that user reaps exactly them),
  and under a seccomp filter that refuses every socket but AF_UNIX. Then it execs
  ``python -I -S prog.py`` (standard library only: no site-packages).

Each optional layer the kernel refuses (no CAP_SYS_ADMIN, another architecture) is left out
and the rest still apply; :func:`isolation` says which are active on this machine. Without
root there is no user to switch to, so the program runs as the caller. Not covered: memory
summed over processes (each gets ``memory_mb``), world-readable files outside the hidden
directories, and multiprocessing's locks (they need a writable /dev/shm).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import platform
import resource
import secrets
import selectors
import signal
import struct
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
# Hidden behind empty read-only tmpfs: the places others can write to (so a program can
# neither leave files behind nor talk to another run) and home directories (data, caches
# and keys). The interpreter's own prefix is mounted back read-only if it lives in one.
_HIDDEN = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/root", "/home")
# The optional layers, each tried and dropped alone if the kernel refuses it. Tests narrow
# this to exercise the fallbacks; the uid switch and the rlimits are not optional.
_LAYERS = frozenset({"netns", "pidns", "mountns", "ipcns", "seccomp"})
_FILE_MB = 16  # largest single file (RLIMIT_FSIZE); the work directory holds 4x that
_MAX_FILES = 256
_REAL_PYTHON = os.path.realpath(sys.executable)
_GRACE = 1.0  # seconds the supervisor gets to clean up before SIGKILL


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


def passes_tests(source: str, tests: list[tuple[str, str]], **limits) -> bool:
    """True when the program prints the expected output for every (stdin, expected stdout)
    pair; stops at the first failure, since one is enough to reject a sample."""
    for stdin, expected in tests:
        result = run_program(source, stdin, **limits)
        if result.status != "ok" or not same_output(result.stdout, expected):
            return False
    return True


def same_output(got: str, expected: str) -> bool:
    """Line by line with surrounding whitespace ignored, as APPS graders compare."""
    return _lines(got) == _lines(expected)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines()]


@cache
def isolation() -> frozenset[str]:
    """The isolation layers active on this machine, from a run of an empty program:
    ``netns pidns mountns ipcns`` (namespaces), ``uid`` (own unprivileged user),
    ``no_new_privs``, ``seccomp`` (sockets other than AF_UNIX refused). rlimits, the empty
    environment and the process-group kill are always there and not listed."""
    return _run("", "", 2, 10, 256, 1000, 16)[1]


# -- the caller's side --------------------------------------------------------------------------
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
                [_REAL_PYTHON, "-I", "-S", str(Path(__file__).resolve()), json.dumps(config)],
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
    """One JSON object a line, from the supervisor, the init and the program's setup; the
    layers each of them got going are collected under ``active``."""
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


# -- the sandbox's side -----------------------------------------------------------------------
# Everything below runs in the supervisor and its children, started from __main__.
_CLONE = {"netns": 0x40000000, "pidns": 0x20000000, "mountns": 0x00020000, "ipcns": 0x08000000}
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP = 1, 38, 22
# (AUDIT_ARCH, socket, io_uring_setup): io_uring can open sockets without the socket call
_SYSCALLS = {"x86_64": (0xC000003E, 41, 425), "aarch64": (0xC00000B7, 198, 425)}


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    return libc


def _check(ret: int) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _mount(source, target, fstype, flags, data=None) -> None:
    args = [None if s is None else s.encode() for s in (source, target, fstype, data)]
    _check(_libc().mount(*args[:3], flags, args[3]))


def _report(fd: int, **entry) -> None:
    os.write(fd, (json.dumps(entry) + "\n").encode())  # short lines: one atomic write each


def _supervise(config: dict) -> None:
    fd = config["report_fd"]
    os.set_inheritable(fd, False)  # closed when the program is exec'd
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        active = _unshare(config["layers"])
        uid = 1_000_000_000 + secrets.randbelow(1 << 30) if os.geteuid() == 0 else None
        prog, workdir = _prepare_files(config["staging"], "mountns" in active, uid)
    except OSError as e:
        _report(fd, setup_error=f"supervisor: {e}")
        os._exit(1)
    _report(fd, active=sorted(active))
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


def _unshare(layers: list[str]) -> set[str]:
    """Each namespace on its own, so that one the kernel refuses does not cost the others."""
    libc, active = _libc(), set()
    for name, flag in _CLONE.items():
        if name in layers and libc.unshare(flag) == 0:
            active.add(name)
    return active


def _prepare_files(staging: str, mountns: bool, uid: int | None) -> tuple[str, str]:
    """Where the program and its work directory are, as the program sees them."""
    if not mountns:
        work = os.path.join(staging, "work")
        os.mkdir(work, 0o700)
        if uid is not None:
            os.chown(work, uid, uid)
            os.chmod(staging, 0o755)  # mkdtemp's 0700 would lock the program out
        return os.path.join(staging, "prog.py"), work
    source = Path(staging, "prog.py").read_bytes()
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing below leaks to the host
    keep = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}
    keep_fds = {p: os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in keep}
    hidden = [d for d in _HIDDEN if os.path.isdir(d) and not os.path.islink(d)]
    for d in hidden:
        _mount("tmpfs", d, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=755")
    for path, dfd in keep_fds.items():
        if any(path == d or path.startswith(d + "/") for d in hidden):
            os.makedirs(path, exist_ok=True)
            # through the open descriptor: the path itself is now covered by the tmpfs
            _mount(f"/proc/self/fd/{dfd}", path, None, _MS_BIND | _MS_REC)
            _mount(None, path, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID)
        os.close(dfd)
    Path("/tmp/prog.py").write_bytes(source)
    os.mkdir("/tmp/work")
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    _mount(
        "tmpfs",
        "/tmp/work",
        "tmpfs",
        _MS_NOSUID | _MS_NODEV,
        f"size={4 * _FILE_MB}m,nr_inodes={_MAX_FILES},mode=700{owner}",
    )
    for d in hidden:
        _mount(None, d, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    return "/tmp/prog.py", "/tmp/work"


def _init(fd: int, config: dict, prog: str, workdir: str, uid: int | None, own_proc: bool):
    """PID 1 of the namespace (when there is one): start the program, reap orphans until it
    ends, report its wait status and exit, which kills whatever is left."""
    _libc().prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))  # the supervisor killed: so are we
    if own_proc:  # a /proc that shows only this namespace's processes
        _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    program = os.fork()
    if program == 0:
        _exec_program(fd, config, prog, workdir, uid)
    _detach_stdio()
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == program:
            _report(fd, status=status)
            os._exit(0)


def _exec_program(fd: int, config: dict, prog: str, workdir: str, uid: int | None):
    try:
        limits = {
            resource.RLIMIT_CPU: (config["cpu"], config["cpu"] + 1),  # SIGXCPU, then SIGKILL
            resource.RLIMIT_AS: (config["memory"],) * 2,
            resource.RLIMIT_FSIZE: (_FILE_MB << 20,) * 2,
            resource.RLIMIT_NPROC: (config["processes"],) * 2,
            resource.RLIMIT_NOFILE: (_MAX_FILES,) * 2,
            resource.RLIMIT_CORE: (0, 0),
        }
        for which, value in limits.items():
            resource.setrlimit(which, value)
        active = []
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            active.append("uid")
        libc = _libc()
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0:  # no setuid binary undoes it
            active.append("no_new_privs")
            if "seccomp" in config["layers"] and _seccomp(libc):
                active.append("seccomp")
        _report(fd, active=active)
        os.chdir(workdir)
        env = dict(os.environ, HOME=workdir, TMPDIR=workdir)
        os.execve(sys.executable, [sys.executable, "-I", "-S", prog], env)
    except OSError as e:
        _report(fd, setup_error=f"program: {e}")
        os._exit(126)


def _seccomp(libc) -> bool:
    """A BPF filter that fails socket() for every family but AF_UNIX, and io_uring, with
    EACCES: with no network namespace this is what keeps the network out; with one, it is
    a second wall. Other architectures (and 32-bit or x32 calls) are refused outright."""
    if platform.machine() not in _SYSCALLS:
        return False
    arch, socket_nr, io_uring_nr = _SYSCALLS[platform.machine()]
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 13  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO|EACCES
    program = [  # (code, jump if true, jump if false, k); jumps count from the next one
        (ld, 0, 0, 4),  # seccomp_data.arch
        (jeq, 0, 7, arch),
        (ld, 0, 0, 0),  # seccomp_data.nr
        (jge, 5, 0, 0x40000000),  # the x32 ABI
        (jeq, 4, 0, io_uring_nr),
        (jeq, 0, 2, socket_nr),
        (ld, 0, 0, 16),  # low half of args[0], the address family
        (jeq, 0, 1, 1),  # AF_UNIX
        (ret, 0, 0, allow),
        (ret, 0, 0, deny),
    ]
    code = b"".join(struct.pack("HBBI", *insn) for insn in program)
    filt = ctypes.create_string_buffer(code)
    fprog = struct.pack("HxxxxxxQ", len(program), ctypes.addressof(filt))
    return libc.prctl(_PR_SET_SECCOMP, 2, ctypes.c_char_p(fprog), 0, 0) == 0


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


if __name__ == "__main__":
    _supervise(json.loads(sys.argv[1]))
