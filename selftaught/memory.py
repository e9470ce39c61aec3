"""A phase's peak resident memory (RSS), as ``resource.getrusage`` reports it.

The kernel keeps one high-water mark per process; on Linux writing 5 to
``/proc/self/clear_refs`` resets it, so a phase that resets it first reports its own peak
rather than the largest of every phase before it in the same process. Elsewhere the
figure is the process's peak since it started, which ``peak_rss`` says.
"""

from __future__ import annotations

import contextlib
import resource
import sys


def reset_peak_rss() -> bool:
    """Start a new high-water mark; False where the OS offers no way to."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """The peak RSS in MB (10^6 bytes) since the last reset, or since the process began.

    Linux: ``VmHWM``, the mark ``clear_refs`` resets; ``ru_maxrss`` also keeps the peak of
    every thread that has exited since the process began, reset or not."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) * 1024 / 1e6, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # KiB on Linux, bytes on macOS
    return round(peak * (1 if sys.platform == "darwin" else 1024) / 1e6, 1)
