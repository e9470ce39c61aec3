"""The namespaces the supervisor moves into: network, mount, PID and IPC, and the user
namespace that makes them possible without root. The PID namespace holds the supervisor's
children, not the supervisor: its first child, the init, is PID 1.

Two routes to the same four namespaces:

* as root with CAP_SYS_ADMIN, each namespace directly (no user namespace: nothing here
  then depends on user namespaces being enabled). The program later switches to a user id
  of its own, chosen per run (``ids``).
* otherwise (an ordinary user; root without CAP_SYS_ADMIN, as in Docker), a new user
  namespace first. Its creator holds every capability inside it, and with them creates the
  other four, each owned by it. The program runs as ``INSIDE_UID``, which maps to the
  caller's own uid (an ordinary user can map nothing else) or, for root, to the run's own
  uid; either way it is not 0 inside, so its exec drops every capability.

Each namespace is tried on its own, so one the kernel refuses does not cost the others;
what was refused, and why, goes back to the caller, which refuses to run where isolation is
required (``selftaught.sandbox.run``)."""

from __future__ import annotations

import os
import secrets

from . import libc

_CLONE = {"netns": 0x40000000, "pidns": 0x20000000, "mountns": 0x00020000, "ipcns": 0x08000000}
_CLONE_NEWUSER = 0x10000000
INSIDE_UID = 1000  # the program's uid and gid inside a user namespace: any but 0 would do


def fresh_uid() -> int:
    """A user id for the run alone, far above any real account's: RLIMIT_NPROC then counts
    only the run's processes, and no file outside belongs to it."""
    return 1_000_000_000 + secrets.randbelow(1 << 30)


def enter(layers: list[str], route: str = "auto") -> tuple[set[str], dict[str, str], dict]:
    """Move into the namespaces named in ``layers``: directly where root may (``route``
    "auto"; "userns" takes a user namespace even as root), else by a user namespace.
    Returns the active layers, the refused ones with the kernel's reason, and ``ids``: the
    program's ``uid`` and ``gid`` as seen inside (None: it stays the caller's),
    ``setgroups`` (whether it may and must drop its supplementary groups), ``own_uid``
    (whether that id is the run's own outside too, not the caller's) and ``nproc_extra``
    (the processes of that id that are not the program's: the supervisor and the init,
    where they share it)."""
    wanted = [n for n in _CLONE if n in layers]
    active: set[str] = set()
    refused: dict[str, str] = {}
    ids: dict = {"uid": None, "gid": None, "setgroups": False, "own_uid": False, "nproc_extra": 0}
    root = os.geteuid() == 0
    # forked first: once a PID namespace is made, the next child would be its PID 1
    helper = start_helper() if root and wanted else None
    if root and route == "auto":
        for name in wanted:
            _try(name, active, refused)
    if set(wanted) - active:
        try:
            if root:
                os.setgroups([])  # while it may: in a user namespace setgroups is denied
            outside = os.geteuid(), os.getegid()  # inside, unmapped, they read as 65534
            libc.unshare(_CLONE_NEWUSER, "userns")
        except OSError as e:
            refused["userns"] = str(e)
        else:
            # past this point there is no way back: a failure to map the ids is fatal
            ids.update(_map_ids(root, helper, *outside))
            active.add("userns")
            refused.clear()  # what root could not do alone, it now retries inside
            for name in wanted:
                if name not in active:
                    _try(name, active, refused)
    finish_helper(helper, False)  # not needed (or refused), or done already
    if ids["uid"] is None and root:
        uid = fresh_uid()  # no user namespace: the program still leaves root behind
        ids.update(uid=uid, gid=uid, setgroups=True, own_uid=True)
    return active, refused, ids


def _try(name: str, active: set[str], refused: dict[str, str]) -> None:
    try:
        libc.unshare(_CLONE[name], name)
        active.add(name)
        refused.pop(name, None)
    except OSError as e:
        refused[name] = str(e)


def start_helper() -> list[int] | None:
    """For root: a process that stays in the host's user namespace, where it holds
    CAP_SETUID, to write the supervisor's id maps. The kernel lets a process map only its
    own id into a namespace it is in; root's two-line map must come from outside."""
    if os.geteuid() != 0:
        return None
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(done_r)
        message = b""
        if os.read(go_r, 1):  # nothing: the supervisor did not need a user namespace
            try:
                outside = fresh_uid()
                _write(f"/proc/{parent}/setgroups", "deny")
                for which in ("uid_map", "gid_map"):
                    _write(f"/proc/{parent}/{which}", f"0 0 1\n{INSIDE_UID} {outside} 1\n")
            except OSError as e:
                message = str(e).encode()
            os.write(done_w, message or b"ok")
        os._exit(0)
    os.close(go_r)
    os.close(done_w)
    return [pid, go_w, done_r]


def finish_helper(helper, go: bool) -> bytes:
    """Let the helper write the maps (``go``) and return its answer, or let it go; only
    the first call on a helper does anything."""
    if helper is None or helper[0] < 0:
        return b""
    pid, go_w, done_r = helper
    helper[0] = -1
    if go:
        os.write(go_w, b"x")
    os.close(go_w)
    answer = os.read(done_r, 4096) if go else b""
    os.close(done_r)
    os.waitpid(pid, 0)
    return answer


def _map_ids(root: bool, helper, uid: int, gid: int) -> dict:
    """The new user namespace's id maps. An ordinary user may map one id, its own: the
    caller's uid and gid become ``INSIDE_UID``, and the supplementary groups stay (shown as
    the overflow group: the kernel allows no setgroups without an id map for them, hence
    "deny"). Root (through ``helper``) maps itself to 0, which keeps its own files
    writable to the supervisor, and the run's own uid to ``INSIDE_UID``. ``uid`` and
    ``gid``: the caller's, read before the namespace was made."""
    if root:
        answer = finish_helper(helper, True)
        if answer != b"ok":
            raise OSError(1, f"mapping the user namespace's ids: {answer.decode()}")
        return {"uid": INSIDE_UID, "gid": INSIDE_UID, "own_uid": True, "nproc_extra": 0}
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{INSIDE_UID} {uid} 1\n")
    _write("/proc/self/gid_map", f"{INSIDE_UID} {gid} 1\n")
    # the supervisor and the init are INSIDE_UID too, and RLIMIT_NPROC counts them
    return {"uid": INSIDE_UID, "gid": INSIDE_UID, "own_uid": False, "nproc_extra": 2}


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise OSError(e.errno, f"writing {path}: {e.strerror}") from None
