"""The filesystem as the program sees it, in the supervisor's mount namespace: the hidden
directories, the interpreter's prefix mounted back read-only where it lies in one, the
program at /tmp/prog.py, a work directory of its own at /tmp/work, and a /proc of the new PID
namespace. Without a mount namespace the program and its work directory stay in the caller's
staging directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from . import libc
from .program import FILE_MB, MAX_FILES

# Hidden behind empty read-only tmpfs: the places others can write to (so a program can
# neither leave files behind nor talk to another run) and home directories (data, caches
# and keys). The interpreter's own prefix is mounted back read-only if it lives in one.
_HIDDEN = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/root", "/home")
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18


def _mount(source, target, fstype, flags, data=None) -> None:
    args = [None if s is None else s.encode() for s in (source, target, fstype, data)]
    libc.check(libc.load().mount(*args[:3], flags, args[3]))


def prepare_files(staging: str, mountns: bool, uid: int | None) -> tuple[str, str]:
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
        f"size={4 * FILE_MB}m,nr_inodes={MAX_FILES},mode=700{owner}",
    )
    for d in hidden:
        _mount(None, d, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    return "/tmp/prog.py", "/tmp/work"


def mount_proc() -> None:
    """A /proc that shows only this namespace's processes: called by the init, the first
    process of the new PID namespace."""
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
