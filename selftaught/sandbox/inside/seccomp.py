"""The seccomp filter on the program, the last wall: it holds even where a namespace is
missing, and it keeps the kernel's riskier interfaces away from untrusted code.

Refused (EPERM unless noted):

* sockets of every family but AF_UNIX (EACCES): with a network namespace a second wall,
  without one (unisolated) the only one; io_uring, which can open sockets without socket();
* new namespaces: unshare, setns, clone with a CLONE_NEW* flag, and clone3 (ENOSYS: its
  flags sit in memory a filter cannot read, and glibc then falls back to clone). A new user
  namespace would give the program every capability inside it;
* reaching other processes: ptrace, process_vm_readv/writev, pidfd_getfd;
* mounts and roots: mount, umount2, pivot_root, chroot and the new mount API;
* kernel attack surface no program for a judge needs: bpf, perf_event_open, userfaultfd,
  keyctl/add_key/request_key, modules, kexec, reboot, swap, acct, quotactl, syslog,
  open_by_handle_at, fanotify, and on x86_64 modify_ldt, iopl, ioperm, uselib;
* memory no rlimit counts: memfd_create, memfd_secret and SysV shared memory (pages kept
  there belong to no process, so RLIMIT_AS and the memory watch would not see them).

Other architectures' calls (32-bit x86, x32) are refused outright; on an architecture with
no table here there is no filter, and the caller is told (``seccomp`` is not active)."""

from __future__ import annotations

import ctypes
import platform
import struct

_PR_SET_SECCOMP = 22
_EPERM, _EACCES, _ENOSYS = 1, 13, 38
_CLONE_NEW = 0x7E020000  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_AF_UNIX = 1
# name: (x86_64, aarch64); None where an architecture has no such call
_DENIED = {
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427), "unshare": (272, 97), "setns": (308, 268),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "pidfd_getfd": (438, 438), "mount": (165, 40), "umount2": (166, 39),
    "pivot_root": (155, 41), "chroot": (161, 51), "open_tree": (428, 428),
    "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442),
    "bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "init_module": (175, 105), "finit_module": (313, 273), "delete_module": (176, 106),
    "kexec_load": (246, 104), "kexec_file_load": (320, 294), "reboot": (169, 142),
    "swapon": (167, 224), "swapoff": (168, 225), "acct": (163, 89), "quotactl": (179, 60),
    "syslog": (103, 116), "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264),
    "fanotify_init": (300, 262), "memfd_create": (319, 279), "memfd_secret": (447, 447),
    "shmget": (29, 194), "shmat": (30, 196), "modify_ldt": (154, None),
    "iopl": (172, None), "ioperm": (173, None), "uselib": (134, None),
}  # fmt: skip
# (AUDIT_ARCH, column in _DENIED, socket, clone, clone3)
_ARCH = {"x86_64": (0xC000003E, 0, 41, 56, 435), "aarch64": (0xC00000B7, 1, 198, 220, 435)}
_LD, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000


def denied_calls() -> dict[str, int]:
    """The refused calls of this architecture (the tests read it)."""
    column = _ARCH[platform.machine()][1]
    return {name: nrs[column] for name, nrs in _DENIED.items() if nrs[column] is not None}


def program() -> list[tuple[int, int, int, int]]:
    """The BPF program, as (code, jump if true, jump if false, k); jumps count from the
    next instruction, and every one goes forward to the returns at the end."""
    arch, _, socket_nr, clone_nr, clone3_nr = _ARCH[platform.machine()]
    denied = sorted(set(denied_calls().values()))
    n = len(denied)
    # layout: 0 ld arch | 1 jeq arch | 2 ld nr | 3 jge x32 | 4 jeq socket | 5 jeq clone
    #         | 6 jeq clone3 | 7..7+n-1 jeq denied | 7+n ret allow | socket check (4)
    #         | clone check (3) | ret EPERM | ret ENOSYS
    allow = 7 + n
    socket_check, clone_check = allow + 1, allow + 5
    eperm, enosys = allow + 8, allow + 9

    def to(target: int, at: int) -> int:
        return target - at - 1

    prog = [
        (_LD, 0, 0, 4),  # seccomp_data.arch
        (_JEQ, 0, to(eperm, 1), arch),
        (_LD, 0, 0, 0),  # seccomp_data.nr
        (_JGE, to(eperm, 3), 0, 0x40000000),  # the x32 ABI
        (_JEQ, to(socket_check, 4), 0, socket_nr),
        (_JEQ, to(clone_check, 5), 0, clone_nr),
        (_JEQ, to(enosys, 6), 0, clone3_nr),
    ]
    prog += [(_JEQ, to(eperm, 7 + i), 0, nr) for i, nr in enumerate(denied)]
    prog += [
        (_RET, 0, 0, _ALLOW),
        (_LD, 0, 0, 16),  # low half of args[0]: socket's address family
        (_JEQ, 0, 1, _AF_UNIX),
        (_RET, 0, 0, _ALLOW),
        (_RET, 0, 0, _ERRNO | _EACCES),  # other families: the socket is refused
        (_LD, 0, 0, 16),  # low half of args[0]: clone's flags
        (_JSET, to(eperm, clone_check + 1), 0, _CLONE_NEW),
        (_RET, 0, 0, _ALLOW),
        (_RET, 0, 0, _ERRNO | _EPERM),
        (_RET, 0, 0, _ERRNO | _ENOSYS),
    ]
    assert len(prog) == enosys + 1
    assert all(0 <= jump < 256 for _, jt, jf, _ in prog for jump in (jt, jf))
    return prog


def install(libc) -> bool:
    """Install the filter on this process and its future children; False where this
    architecture has no table. Needs no_new_privs (or CAP_SYS_ADMIN)."""
    if platform.machine() not in _ARCH:
        return False
    insns = program()
    code = b"".join(struct.pack("HBBI", *insn) for insn in insns)
    filt = ctypes.create_string_buffer(code)
    fprog = struct.pack("HxxxxxxQ", len(insns), ctypes.addressof(filt))
    return libc.prctl(_PR_SET_SECCOMP, 2, ctypes.c_char_p(fprog), 0, 0) == 0
