"""The memory cap on the whole process tree, kept by the init.

RLIMIT_AS bounds each process, and RLIMIT_NPROC their number, so alone they let a tree of
processes hold ``memory x processes``. Where the kernel's own answer, a cgroup, is not
ours to make (cgroup v1, or a v2 tree not delegated to us: most machines, this one
included), the init, PID 1 of the run's namespace, sums the proportional set size (Pss: a
page shared by n processes counts 1/n in each, so forked copies are not counted twice) of
every process in the namespace whenever more than one is alive, and ends the run when the
sum passes the cap. It is polled, so the sum can overshoot by what the processes allocate
before it looks and the kernel has killed them: measured on 2 busy cores, 15 processes each
allocating 230 MB as fast as they can peaked at 0.33-0.59 GB under a 0.25 GB cap (3.5 GB
without the watch; a shorter interval did not help: the init competes with them for the
CPU). RLIMIT_AS times RLIMIT_NPROC stays the hard bound."""

from __future__ import annotations

import os

INTERVAL = 0.01  # seconds between two looks at the processes' memory


def over(cap_bytes: int) -> bool:
    """Whether the run's processes (all but the init) together hold more than the cap. One
    process alone is already held under it by RLIMIT_AS, so it is not read."""
    pids = [p for p in os.listdir("/proc") if p.isdigit() and p != "1"]
    if len(pids) < 2:
        return False
    total = 0
    for pid in pids:
        total += _pss_bytes(pid)
        if total > cap_bytes:
            return True
    return False


def _pss_bytes(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) << 10  # in kB
    except (OSError, ValueError, IndexError):  # gone meanwhile, or a zombie
        pass
    return 0
