"""What every benchmark here shares: the median wall time of several runs (the machine is
shared and noisy, so one run says little), and the process's peak resident memory."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def timed(fn: Callable[[], object], runs: int) -> float:
    """Median seconds of ``runs`` calls of ``fn``."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def reset_peak() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux's clear_refs; ru_maxrss follows
    it); False where that is not allowed, so later peaks include the earlier ones."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_gib() -> float:
    """The process's peak resident memory since the last reset (ru_maxrss: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def rss_summary(loaded: str, peaks: dict[str, float], resets: bool, seconds: float) -> str:
    """The benches' closing line: peak RSS after loading (``peaks["loaded"]``, described by
    ``loaded``) and during each timed way, whether the peaks could be reset, the total time."""
    during = ", ".join(f"{value:.2f} {way}" for way, value in peaks.items() if way != "loaded")
    return (f"  peak RSS: {peaks['loaded']:.2f} GiB {loaded}; while timed {during}"
            f"{'' if resets else ' (cumulative: the peak could not be reset)'}; "
            f"{seconds:.0f} s in all")
