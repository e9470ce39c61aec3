"""Which isolation this machine gives, found by running an empty program once, and, where it
falls short of ``REQUIRED``, a message that says what is missing and how to get it (the
``code`` task refuses to start with it)."""

from __future__ import annotations

import os
import platform
import sys
from functools import cache

from selftaught.sandbox.run import REQUIRED, Outcome, SandboxError, probe_run

# What to do about each missing layer, most likely cause first
_HOW = {
    "userns": (
        "user namespaces are not available to this user. Enable them: `sysctl -w "
        "user.max_user_namespaces=15000` (a 0 there disables them); on Debian and older "
        "Ubuntu kernels `sysctl -w kernel.unprivileged_userns_clone=1`; on Ubuntu 23.10 "
        "and later `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (or an "
        "AppArmor profile that allows userns for this Python). In a Docker container, "
        "whose default seccomp profile refuses them, start it with `--security-opt "
        "seccomp=unconfined`, or run as root with `--cap-add SYS_ADMIN`"
    ),
    "namespace": (
        "the kernel refused a namespace inside the user namespace (an AppArmor or "
        "seccomp policy can allow the user namespace and deny what it is for); see "
        "the advice for user namespaces, or run as root"
    ),
    "fsroot": (
        "the program's read-only root could not be built; the reason above names the "
        "mount the kernel refused"
    ),
    "seccomp": (
        f"there is no seccomp filter for this architecture ({platform.machine()}): "
        "only x86_64 and aarch64 have one"
    ),
    "no_new_privs": "the kernel refused PR_SET_NO_NEW_PRIVS (Linux 3.5 or later has it)",
    "caps": "the program's capabilities could not be dropped (see the reason above)",
}


@cache
def probe() -> Outcome | SandboxError:
    """An empty program run with whatever the machine allows; the error where the sandbox
    could not run it at all."""
    try:
        return probe_run()
    except SandboxError as e:
        return e


def isolation() -> frozenset[str]:
    """The isolation layers active on this machine: ``userns`` (a user namespace made
    them, without root), ``netns pidns mountns ipcns`` (namespaces), ``fsroot`` (the
    allow-list root), ``proc`` (a /proc of the run's own; the memory watch needs it),
    ``uid`` (a user id of the run's own, not the caller's), ``caps`` (none left),
    ``no_new_privs``, ``seccomp``. rlimits, the empty environment and the kill of the
    process group are always there and not listed. Empty where the sandbox cannot run."""
    outcome = probe()
    return frozenset() if isinstance(outcome, SandboxError) else outcome.active


def cannot_run() -> str | None:
    """Why the sandbox cannot run a program here at all, even unisolated, or None."""
    outcome = probe()
    if not isinstance(outcome, SandboxError):
        return None
    message = (
        "The sandbox for model-written programs cannot run on this machine: "
        f"{outcome}. Running as uid {os.geteuid()}."
    )
    interpreter = os.path.realpath(sys.executable)
    if "Permission denied" in str(outcome) and interpreter in str(outcome):
        # root without namespaces: the program's own uid must reach the interpreter
        message += (
            f" The program runs as a user of its own, which cannot reach {interpreter}: "
            "use a Python installed where every user can read it (/usr, /usr/local, /opt), "
            "or make the directories above it searchable by others (chmod o+x)."
        )
    return message


def isolation_problem() -> str | None:
    """None where every layer of ``REQUIRED`` comes up here; else what is missing,
    the kernel's reason and how to get it, in a paragraph."""
    outcome = probe()
    if isinstance(outcome, SandboxError):  # nothing ran: the namespaces are all one can say
        active, refused = outcome.active, outcome.refused
        missing = sorted({"netns", "pidns", "mountns", "ipcns"} - active)
        lines = [cannot_run()]
    else:
        active, refused = outcome.active, outcome.refused
        missing = sorted(REQUIRED - active)
        lines = []
    if not missing:
        return lines[0] if lines else None
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    lines.append(
        f"This machine cannot isolate model-written programs (running as {who}): "
        f"{', '.join(missing)} missing."
    )
    if refused:
        why = "; ".join(f"{k}: {v}" for k, v in refused.items())
        lines.append(f"The kernel refused {why}.")
    advice = []
    namespaces = {"netns", "pidns", "mountns", "ipcns"} & set(missing)
    if "userns" in refused:
        advice.append(_HOW["userns"])
    elif namespaces:
        advice.append(_HOW["namespace"] if "userns" in active else _HOW["userns"])
    # without the namespaces there is no root to build and no uid to switch to: those two
    # follow from the advice above; each is worth its own words only when it failed alone
    alone = ("fsroot", "seccomp", "no_new_privs", "caps")
    own = [m for m in alone if m in missing and not (namespaces and m in ("fsroot", "caps"))]
    advice += [_HOW[m] for m in own]
    if advice:
        lines.append("To get it: " + "; ".join(advice) + ".")
    return " ".join(lines)
