"""Which isolation this machine gives, found by running an empty program once, and, where it
falls short of ``REQUIRED``, a message that says what is missing and how to get it (the
``code`` task refuses to start with it)."""

from __future__ import annotations

import os
import platform
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
def probe() -> Outcome | str:
    """An empty program run with whatever the machine allows; a string where the sandbox
    could not run it at all (why)."""
    try:
        return probe_run()
    except SandboxError as e:
        return str(e)


def isolation() -> frozenset[str]:
    """The isolation layers active on this machine: ``userns`` (a user namespace made
    them, without root), ``netns pidns mountns ipcns`` (namespaces), ``fsroot`` (the
    allow-list root), ``proc`` (a /proc of the run's own; the memory watch needs it),
    ``uid`` (a user id of the run's own, not the caller's), ``caps`` (none left),
    ``no_new_privs``, ``seccomp``. rlimits, the empty environment and the kill of the
    process group are always there and not listed. Empty where the sandbox cannot run."""
    outcome = probe()
    return frozenset() if isinstance(outcome, str) else outcome.active


def isolation_problem() -> str | None:
    """None where every layer of ``REQUIRED`` comes up here; else what is missing,
    the kernel's reason and how to get it, in a paragraph."""
    outcome = probe()
    if isinstance(outcome, str):
        return (
            "The sandbox for model-written programs cannot run on this machine: "
            f"{outcome}. Running as uid {os.geteuid()}."
        )
    missing = sorted(REQUIRED - outcome.active)
    if not missing:
        return None
    refused = outcome.refused
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    lines = [
        f"This machine cannot isolate model-written programs (running as {who}): "
        f"{', '.join(missing)} missing."
    ]
    if refused:
        lines.append("The kernel refused: " + "; ".join(f"{k}: {v}" for k, v in refused.items()))
    advice = []
    if "userns" in refused:
        advice.append(_HOW["userns"])
    elif {"netns", "pidns", "mountns", "ipcns"} & set(missing):
        advice.append(_HOW["namespace"] if "userns" in outcome.active else _HOW["userns"])
    advice += [_HOW[m] for m in ("fsroot", "seccomp", "no_new_privs", "caps") if m in missing]
    lines.append("To get it: " + "; ".join(dict.fromkeys(advice)) + ".")
    return " ".join(lines)
