"""The seccomp filter on the program: sockets other than AF_UNIX, and io_uring, refused."""

from __future__ import annotations

import ctypes
import platform
import struct

_PR_SET_SECCOMP = 22
# (AUDIT_ARCH, socket, io_uring_setup): io_uring can open sockets without the socket call
_SYSCALLS = {"x86_64": (0xC000003E, 41, 425), "aarch64": (0xC00000B7, 198, 425)}


def install(libc) -> bool:
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
