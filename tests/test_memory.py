"""memory.py: a phase's peak RSS is its own, not the largest of every phase before it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from selftaught.memory import peak_rss_mb, reset_peak_rss


@pytest.mark.skipif(sys.platform != "linux", reason="the peak is reset through /proc")
def test_the_peak_rises_with_an_allocation_and_a_reset_forgets_it():
    assert reset_peak_rss()
    before = peak_rss_mb()
    block = bytearray(300_000_000)  # zero-filled pages are touched: resident
    block[::4096] = b"x" * len(block[::4096])
    grown = peak_rss_mb()
    del block
    assert grown - before > 250
    assert reset_peak_rss()
    assert peak_rss_mb() < grown - 250


FAULTS_OF_A_SECOND_BLOCK = """
import resource, sys
import torch
from selftaught.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
block = torch.ones(64 * 2**20 // 4)  # 64 MB, past glibc's largest mmap threshold
del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
# a little smaller: an aligned block of the very same size may not fit the freed one
block = torch.ones(60 * 2**20 // 4)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_freed_memory_kept_spares_the_next_block_its_page_faults():
    """Each way in a process of its own (the setting is the process's): by default a
    freed 64 MB block goes back to the kernel and the next one (60 MB) faults in all its
    15,360 pages; kept, the next one reuses it."""

    def faults(way: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", FAULTS_OF_A_SECOND_BLOCK, way],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(out.stdout.split()[-1])

    pages = 60 * 2**20 // 4096
    assert faults("default") > pages // 2
    assert faults("keep") < pages // 10
