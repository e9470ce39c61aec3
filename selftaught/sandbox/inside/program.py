"""The program's own layers, set in its process just before the exec, in this order (each
step needs what the next one takes away): rlimits; the capability bounding set emptied; the
switch to the program's own user id; every capability cleared; no_new_privs; the seccomp
filter."""

from __future__ import annotations

import os
import resource
import sys

from . import libc, seccomp
from .filesystem import FILE_MB, MAX_FILES

_PR_SET_NO_NEW_PRIVS = 38


def confine(config: dict, ids: dict) -> list[str]:
    """The layers this process got going (``uid``: a user id of the run's own, not the
    caller's; ``caps``; ``no_new_privs``; ``seccomp``). The rlimits and the switch to the
    program's uid are not optional: their failure raises OSError, and nothing runs."""
    limits = {
        resource.RLIMIT_CPU: (config["cpu"], config["cpu"] + 1),  # SIGXCPU, then SIGKILL
        # per process; the sum over the processes is the init's memory watch (``watch``)
        resource.RLIMIT_AS: (config["memory"],) * 2,
        resource.RLIMIT_FSIZE: (FILE_MB << 20,) * 2,
        # counted per user id (per user namespace since Linux 5.14): the supervisor and the
        # init count too where they share the program's id
        resource.RLIMIT_NPROC: (config["processes"] + ids["nproc_extra"],) * 2,
        resource.RLIMIT_NOFILE: (MAX_FILES,) * 2,
        resource.RLIMIT_CORE: (0, 0),
    }
    for which, value in limits.items():
        resource.setrlimit(which, value)
    active = []
    lib = libc.load()
    uid, gid = ids["uid"], ids["gid"]
    if uid is not None:
        libc.drop_bounding_set()  # needs CAP_SETPCAP: before the uid switch takes it
        if ids["setgroups"]:
            os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        libc.clear_capabilities()
        active += ["caps", "uid"] if ids["own_uid"] else ["caps"]
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
