"""The namespaces the supervisor moves into: network, mount, PID and IPC. The PID namespace
holds the supervisor's children, not the supervisor: its first child, the init, is PID 1."""

from __future__ import annotations

from . import libc

_CLONE = {"netns": 0x40000000, "pidns": 0x20000000, "mountns": 0x00020000, "ipcns": 0x08000000}


def unshare(layers: list[str]) -> set[str]:
    """Each namespace on its own, so that one the kernel refuses does not cost the others."""
    lib, active = libc.load(), set()
    for name, flag in _CLONE.items():
        if name in layers and lib.unshare(flag) == 0:
            active.add(name)
    return active
