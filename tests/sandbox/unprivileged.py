"""Run a function as an ordinary user (uid 65534, how almost every user runs selftaught)
from a test suite that runs as root: in a forked child that drops its privileges first, and
sends back what the function returned (pickled) or the exception it raised.

The interpreter may lie where that user cannot reach it (here under /root, mode 0700), which
no real user's interpreter does: the child, while still root, makes it reachable in a mount
namespace of its own (the blocking directory covered by a tmpfs with the way to the
interpreter bound back), and nothing else is changed. ``drop_cap_sys_admin`` instead keeps
uid 0 without CAP_SYS_ADMIN: root as Docker runs it."""

from __future__ import annotations

import ctypes
import os
import pickle
import stat
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import selftaught

NOBODY = 65534
_CLONE_NEWNS, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20000, 4096, 16384, 1 << 18
_PR_CAPBSET_DROP, _CAP_SYS_ADMIN = 24, 21


def unavailable(uid: int | None, drop_cap_sys_admin: bool = False) -> str | None:
    """Why ``run_as`` cannot run as asked here, or None. An ordinary user's suite runs
    the ordinary user's mode as itself, and cannot run the root modes."""
    if os.geteuid() != 0 and (uid is None or drop_cap_sys_admin):
        return "needs root"
    if uid is not None and os.geteuid() == 0 and not _readable_by_others(_PACKAGE):
        return (
            f"the checkout ({_PACKAGE}) is not readable by other users (a directory above it "
            "lacks o+rx, e.g. a 0700 temp dir), so an ordinary user cannot import the sandbox"
        )
    return None


_PACKAGE = Path(selftaught.__file__).resolve().parent


def _readable_by_others(path: Path) -> bool:
    """Whether a user who is neither owner nor group can reach and read ``path``."""
    if not path.stat().st_mode & stat.S_IROTH:
        return False
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _libc():
    lib = ctypes.CDLL(None, use_errno=True)
    lib.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    return lib


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _reachable_interpreter(uid: int) -> None:
    """Cover the first directory on the way to the interpreter that ``uid`` cannot
    search with a tmpfs, and bind the way on back, in this process's own mount namespace."""
    lib = _libc()
    target = Path(os.path.realpath(sys.executable)).parent.parent  # the prefix
    blocking = next((p for p in reversed(target.parents) if not os.stat(p).st_mode & 0o001), None)
    if blocking is None:
        return
    _check(lib.unshare(_CLONE_NEWNS), "unshare")
    _check(lib.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
    step = Path(blocking, target.relative_to(blocking).parts[0])  # e.g. /root/.pyenv
    fd = os.open(step, os.O_RDONLY | os.O_DIRECTORY)  # the way on, before it is covered
    _check(lib.mount(b"tmpfs", bytes(blocking), b"tmpfs", 0, b"mode=755,size=64k"), "tmpfs")
    os.mkdir(step)
    source = f"/proc/self/fd/{fd}".encode()
    _check(lib.mount(source, bytes(step), None, _MS_BIND | _MS_REC, None), "bind")
    os.close(fd)


def run_as(
    fn: Callable, *args, uid: int | None = NOBODY, home: str | None = None,
    env: dict | None = None, drop_cap_sys_admin: bool = False,
):  # fmt: skip
    """``fn(*args)`` in a forked child as ``uid`` (None: as this process's user; with
    ``drop_cap_sys_admin``, root without CAP_SYS_ADMIN), with HOME set to ``home`` and
    ``env`` added to the environment; its return value, or its exception raised again
    here (with the child's traceback in the message). An ordinary user cannot change its
    uid: it runs ``fn`` as itself."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                os.environ.update(env or {})
                if home:
                    os.environ["HOME"] = home
                if drop_cap_sys_admin:
                    _check(_libc().prctl(_PR_CAPBSET_DROP, _CAP_SYS_ADMIN, 0, 0, 0), "capbset")
                elif uid is not None and os.geteuid() == 0:
                    _reachable_interpreter(uid)
                    os.setgroups([])
                    os.setresgid(uid, uid, uid)
                    os.setresuid(uid, uid, uid)
                payload = ("ok", fn(*args))
            except BaseException as e:  # noqa: BLE001 - sent back and raised there
                payload = ("raised", (type(e).__name__, str(e), traceback.format_exc()))
            data = pickle.dumps(payload)
            with os.fdopen(w, "wb") as f:
                f.write(data)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise RuntimeError(f"the child as uid {uid} died: wait status {status}")
    kind, value = pickle.loads(data)
    if kind == "raised":
        name, message, trace = value
        raise RuntimeError(f"as uid {uid}: {name}: {message}\n{trace}")
    return value
