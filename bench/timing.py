"""What every benchmark here shares: the median wall time of several runs (the machine is
shared and noisy, so one run says little)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], runs: int) -> float:
    """Median seconds of ``runs`` calls of ``fn``."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)
