"""memory.py: a phase's peak RSS is its own, not the largest of every phase before it."""

from __future__ import annotations

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
