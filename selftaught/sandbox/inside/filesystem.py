"""The filesystem as the program sees it: a new root built on an empty tmpfs from an
ALLOW-list, so that what is not named here does not exist for the program (the caller's
home, /root, /tmp, the data, the run directory, other users' files), rather than a list of
places to hide, which misses whatever it did not think of.

Built by the init in the run's mount namespace, before the program starts:

* read-only, nosuid, nodev bind mounts of what the interpreter needs (``allowed``): the
  system's /usr, /lib*, /bin, /sbin, the interpreter's ``lib`` directories and executable
  wherever its prefix is (e.g. under /root), the directories of the shared objects it has
  loaded, and /etc/ld.so.cache and /etc/localtime. Every ``site-packages`` and
  ``dist-packages`` below them is covered by an empty tmpfs: installed packages, this one
  and any data shipped in one, are not the standard library;
* /dev with null, zero, full, random and urandom only; a /proc of the run's own PID
  namespace (mounted before the old root goes: a user namespace may mount a proc only
  where one is already fully visible); a minimal /etc/passwd and /etc/group;
* /tmp/prog.py, and /tmp/work, a small tmpfs owned by the program, the only writable place;
* then pivot_root into it and detach the old root, so not even a path to it is left, and
  the new root's own tmpfs made read-only.

Without a mount namespace (only where the user opted in to running unisolated) the program
and its work directory stay in the caller's staging directory."""

from __future__ import annotations

import glob
import os
import sys
import sysconfig

from . import libc

FILE_MB = 16  # largest single file (RLIMIT_FSIZE); the work directory holds 4x that
MAX_FILES = 256
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_ATTR_RDONLY, _ATTR_NOSUID, _ATTR_NODEV = 1, 2, 4
_SYSTEM = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
_DEVICES = ("null", "zero", "full", "random", "urandom")
_SITE = ("python3*/*-packages", "lib/python3*/*-packages", "lib64/python3*/*-packages",
         "local/lib/python3*/*-packages", "lib/python3/dist-packages")  # fmt: skip


def unisolated_files(staging: str, uid: int | None) -> tuple[str, str]:
    """No mount namespace: the program and its work directory in the staging directory."""
    work = os.path.join(staging, "work")
    os.mkdir(work, 0o700)
    if uid is not None:
        os.chown(work, uid, uid)
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would lock the program out
    return os.path.join(staging, "prog.py"), work


def allowed() -> tuple[list[str], list[str]]:
    """The directories and the files bound into the new root (real paths: a symlink's
    target is what must be reachable). The interpreter's whole prefix is not among them:
    for a prefix in a home directory (``~/.local``, a pyenv) that would be the home."""
    dirs = [d for d in _SYSTEM if os.path.isdir(d) and not os.path.islink(d)]
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib"):  # .../lib/python3.X, lib-dynload included
        dirs.append(os.path.dirname(os.path.realpath(paths[key])))
    executable = os.path.realpath(sys.executable)
    files = [executable, "/etc/ld.so.cache"]
    with open("/proc/self/maps") as maps:  # libpython, libc, the loader: wherever they are
        for line in maps:
            fields = line.split(maxsplit=5)
            path = os.path.realpath(fields[5].strip()) if len(fields) == 6 else ""
            if path.startswith("/") and path != executable and os.path.isfile(path):
                dirs.append(os.path.dirname(path))
    if os.path.exists("/etc/localtime"):
        files.append(os.path.realpath("/etc/localtime"))
    dirs = _outermost(d for d in dirs if os.path.isdir(d))
    files = sorted({f for f in files if os.path.isfile(f) and not _under(f, dirs)})
    return dirs, files


def _under(path: str, dirs) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def _outermost(dirs) -> list[str]:
    kept: list[str] = []
    for d in sorted(set(dirs), key=len):
        if not _under(d, kept):
            kept.append(d)
    return kept


def build_root(config: dict, ids: dict, with_proc: bool) -> tuple[str, str, list[str]]:
    """Build the new root (see the module doc) and move into it; returns the program's
    path, its work directory and the layers made (``fsroot``, ``proc``)."""
    with open(os.path.join(config["staging"], "prog.py"), "rb") as f:
        source = f.read()
    new = os.path.join(config["staging"], "root")
    libc.mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing below leaks to the host
    size = len(source) + (1 << 20)
    libc.mount("tmpfs", new, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={size},mode=755")
    dirs, files = allowed()
    for d in _SYSTEM:  # /bin -> usr/bin and the like, as the host has them
        if os.path.islink(d):
            os.symlink(os.readlink(d), new + d)
    for d in dirs:
        os.makedirs(new + d, exist_ok=True)
        libc.mount(d, new + d, None, _MS_BIND | _MS_REC)
    for f in files:
        _bind_file(f, new + f)
    for d in dirs:
        _read_only(new + d, config.get("legacy_remount", False))
    for f in files:
        _remount(new + f, _flags_ro())
    for d in dirs:  # after the binds are read-only: these mounts sit on top of them
        for site in sorted({p for pattern in _SITE for p in glob.glob(os.path.join(d, pattern))}):
            if os.path.isdir(site) and not os.path.islink(site):
                libc.mount("tmpfs", new + site, "tmpfs", _flags_ro(), "size=4k,mode=555")
    layers = ["fsroot"]
    _devices(new)
    _etc(new, ids)
    os.mkdir(new + "/proc", 0o555)
    if with_proc:  # only the run's PID namespace: the init is its PID 1
        try:  # refused where the host's /proc is partly covered (Docker's masked paths)
            libc.mount("proc", new + "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
            layers.append("proc")
        except OSError:
            pass  # the program does without; so does the memory watch (``watch``)
    os.mkdir(new + "/tmp", 0o755)
    with open(new + "/tmp/prog.py", "wb") as f:
        f.write(source)
    os.mkdir(new + "/tmp/work", 0o700)
    owner = f",uid={ids['uid']},gid={ids['gid']}" if ids["uid"] is not None else ""
    limits = f"size={4 * FILE_MB}m,nr_inodes={MAX_FILES},mode=700{owner}"
    libc.mount("tmpfs", new + "/tmp/work", "tmpfs", _MS_NOSUID | _MS_NODEV, limits)
    os.chdir(new)
    libc.pivot_root(".", ".")  # the old root is now stacked under the new one ...
    libc.umount_detach(".")  # ... and detached: no path, no descriptor leads back to it
    os.chdir("/")
    libc.mount(None, "/", None, _MS_REMOUNT | _MS_BIND | _flags_ro())
    return "/tmp/prog.py", "/tmp/work", layers


def _flags_ro() -> int:
    return _MS_RDONLY | _MS_NOSUID | _MS_NODEV


def _bind_file(source: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o444))
    libc.mount(source, target, None, _MS_BIND)


def _read_only(target: str, legacy: bool) -> None:
    """Read-only, nosuid and nodev on the bind at ``target`` and every mount below it. A
    recursive bind made read-only by a remount is read-only at its top only, so
    mount_setattr(AT_RECURSIVE); before Linux 5.12, a remount of each mount in turn."""
    if not legacy:
        try:
            libc.mount_setattr_recursive(target, _ATTR_RDONLY | _ATTR_NOSUID | _ATTR_NODEV)
            return
        except OSError as e:
            if e.errno != 38:  # ENOSYS: an older kernel
                raise
    for mountpoint in _mounts_under(target):
        _remount(mountpoint, _flags_ro())


def _remount(mountpoint: str, add: int) -> None:
    """A bind remount adding ``add``. A user namespace may not clear the flags a mount
    came with (they are locked), so those it has are kept."""
    flags = _kept_flags(os.statvfs(mountpoint).f_flag) | add
    libc.mount(None, mountpoint, None, _MS_REMOUNT | _MS_BIND | flags)


def _mounts_under(target: str) -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].encode().decode("unicode_escape")  # \040 for a space
            if point == target or point.startswith(target.rstrip("/") + "/"):
                found.append(point)
    return sorted(set(found), key=len)


def _kept_flags(st_flag: int) -> int:
    """statvfs's ST_* bits as MS_* mount flags (equal but for relatime)."""
    keep = _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC | 16 | 64 | 1024 | 2048
    flags = st_flag & keep  # and sync, mandlock, noatime, nodiratime
    if st_flag & 4096:  # ST_RELATIME
        flags |= 1 << 21  # MS_RELATIME
    return flags


def _devices(new: str) -> None:
    """The harmless character devices, bound from the host's /dev: a user namespace cannot
    make device nodes, and a tmpfs it mounts ignores them anyway."""
    os.mkdir(new + "/dev", 0o755)
    for name in _DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _bind_file(f"/dev/{name}", f"{new}/dev/{name}")
            _remount(f"{new}/dev/{name}", _MS_NOSUID)  # writable: /dev/null must take writes
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):  # fmt: skip
        os.symlink(target, f"{new}/dev/{name}")


def _etc(new: str, ids: dict) -> None:
    """Just enough of /etc: the loader's cache and the time zone are bound (``allowed``);
    the accounts are made up, so that no name or home of a real one is shown."""
    os.makedirs(new + "/etc", 0o755, exist_ok=True)
    uid = ids["uid"] if ids["uid"] is not None else os.getuid()
    gid = ids["gid"] if ids["gid"] is not None else os.getgid()
    with open(new + "/etc/passwd", "w") as f:
        f.write("root:x:0:0:root:/:/sbin/nologin\n")
        f.write(f"sandbox:x:{uid}:{gid}:sandbox:/tmp/work:/sbin/nologin\n")
    with open(new + "/etc/group", "w") as f:
        f.write(f"root:x:0:\nsandbox:x:{gid}:\n")
    if os.path.islink("/etc/localtime") and not os.path.exists(new + "/etc/localtime"):
        os.symlink(os.readlink("/etc/localtime"), new + "/etc/localtime")


def mount_proc() -> None:
    """Without a new root (unisolated, but with mount and PID namespaces) a /proc that
    shows only the run's processes, mounted over the host's."""
    libc.mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
