"""The kernel calls the os module lacks (unshare, mount, mount_setattr, pivot_root, prctl,
capset), through ctypes. Each raises OSError with the call's name on failure, so that a
refusal reported to the caller says which call the kernel refused."""

from __future__ import annotations

import ctypes
import os
import platform

# Numbers of the calls glibc has no wrapper for, per architecture (x86_64, aarch64)
_NR = {
    "x86_64": {"pivot_root": 155, "mount_setattr": 442},
    "aarch64": {"pivot_root": 41, "mount_setattr": 442},
}
_AT_FDCWD, _AT_RECURSIVE = -100, 0x8000
_PR_CAPBSET_DROP, _CAP_LAST = 24, 63
_CAPABILITY_VERSION_3 = 0x20080522

_lib = None


def load():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(None, use_errno=True)
        _lib.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
        _lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _lib.syscall.restype = ctypes.c_long
    return _lib


def check(ret: int, what: str = "") -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}" if what else os.strerror(err))


def unshare(flags: int, what: str) -> None:
    check(load().unshare(flags), f"unshare({what})")


def mount(source, target, fstype, flags, data=None) -> None:
    args = [None if s is None else os.fsencode(s) for s in (source, target, fstype, data)]
    check(load().mount(*args[:3], flags, args[3]), f"mount {target}")


def umount_detach(target: str) -> None:
    check(load().umount2(os.fsencode(target), 2), f"umount {target}")  # MNT_DETACH


def pivot_root(new_root: str, put_old: str) -> None:
    nr = _NR.get(platform.machine(), {}).get("pivot_root")
    if nr is None:
        raise OSError(38, f"pivot_root: not known on {platform.machine()}")
    check(load().syscall(nr, os.fsencode(new_root), os.fsencode(put_old)), "pivot_root")


class _MountAttr(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("set", "clr", "propagation", "userns_fd")]


def mount_setattr_recursive(target: str, attr_set: int) -> None:
    """``mount_setattr(AT_RECURSIVE)`` (Linux 5.12): set flags on a whole mount tree in one
    call; ENOSYS on older kernels, where the caller falls back to one remount a mount."""
    nr = _NR.get(platform.machine(), {}).get("mount_setattr")
    if nr is None:
        raise OSError(38, "mount_setattr: unknown architecture")
    attr = _MountAttr(attr_set, 0, 0, 0)
    ret = load().syscall(
        nr, _AT_FDCWD, os.fsencode(target), _AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr)
    )
    check(ret, f"mount_setattr {target}")


def drop_bounding_set() -> None:
    """Empty the capability bounding set, so no exec, setuid binary or file capability can
    give a capability back; needs CAP_SETPCAP, so it comes before the uid switch."""
    lib = load()
    for cap in range(_CAP_LAST + 1):
        if lib.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == 22 and cap > 0:
                break  # EINVAL: past the last capability this kernel knows
            check(-1, f"prctl(PR_CAPBSET_DROP, {cap})")


def clear_capabilities() -> None:
    """Clear the effective, permitted and inheritable sets. After a switch away from uid 0
    the kernel does this itself; a process that created its user namespace as an ordinary
    user keeps its capabilities through the uid switch, so this is what removes them."""
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable}, all zero
    check(load().capset(header, data), "capset")
