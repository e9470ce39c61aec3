"""A phase's peak resident memory (RSS), as ``resource.getrusage`` reports it; and the
process's allocator told to keep what torch frees (``keep_freed_memory``).

The kernel keeps one high-water mark per process; on Linux writing 5 to
``/proc/self/clear_refs`` resets it, so a phase that resets it first reports its own peak
rather than the largest of every phase before it in the same process. Elsewhere the
figure is the process's peak since it started, which ``peak_rss`` says.
"""

from __future__ import annotations

import contextlib
import ctypes
import resource
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BELOW = 2**31 - 1  # bytes: the largest value mallopt takes (an int)


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


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep the memory torch frees for the next allocation, instead of
    handing blocks over 32 MB (its largest mmap threshold) back to the kernel at once and
    trimming its heap: a fresh block costs a page fault per 4 KB on first write. Sampling
    regrows the KV cache every few steps, and a real model's train step allocates its
    logits and their log-softmax afresh (60-70 MB each for SmolLM2's 49,152-entry
    vocabulary): kept, the built-in model samples 1.30x faster and SmolLM2's LoRA phase
    runs 1.08-1.13x (benchmarks/speed/results-allocator.md). The same aim as the jemalloc
    or tcmalloc that PyTorch's CPU tuning guide preloads, with the allocator already in
    the process. The process keeps its peak memory mapped until it ends. False where the
    C library is not glibc (nothing changed)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no libc.so.6 or no mallopt
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BELOW)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _KEEP_BELOW)
    )
