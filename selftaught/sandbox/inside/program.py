"""The program's own layers, set in its process just before the exec: rlimits, a user id of
its own, no_new_privs and the seccomp filter."""

from __future__ import annotations

import os
import resource
import sys

from . import libc, seccomp

FILE_MB = 16  # largest single file (RLIMIT_FSIZE); the work directory holds 4x that
MAX_FILES = 256
_PR_SET_NO_NEW_PRIVS = 38


def confine(config: dict, uid: int | None) -> list[str]:
    """The layers this process got going (``uid``, ``no_new_privs``, ``seccomp``). The
    rlimits and the switch to ``uid`` are not optional: their failure raises OSError."""
    limits = {
        resource.RLIMIT_CPU: (config["cpu"], config["cpu"] + 1),  # SIGXCPU, then SIGKILL
        resource.RLIMIT_AS: (config["memory"],) * 2,
        resource.RLIMIT_FSIZE: (FILE_MB << 20,) * 2,
        resource.RLIMIT_NPROC: (config["processes"],) * 2,
        resource.RLIMIT_NOFILE: (MAX_FILES,) * 2,
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
    lib = libc.load()
    if lib.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0:  # no setuid binary undoes it
        active.append("no_new_privs")
        if "seccomp" in config["layers"] and seccomp.install(lib):
            active.append("seccomp")
    return active


def execute(prog: str, workdir: str):
    """Become the program: ``python -I -S prog.py`` in its work directory, with the empty
    environment the supervisor was given and HOME and TMPDIR in the work directory."""
    os.chdir(workdir)
    env = dict(os.environ, HOME=workdir, TMPDIR=workdir)
    os.execve(sys.executable, [sys.executable, "-I", "-S", prog], env)
