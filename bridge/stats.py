"""Counters the controller keeps for /metrics (panel/ops.py reads them at scrape time).

Plain numbers in memory, no metrics library here: recording one is an addition and a bucket search on the call
path, and the panel turns them into Prometheus families only when scraped.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import deque
from dataclasses import dataclass, field

# Answer -> AMD verdict: the detector listens about 1–6 s (the live deadline is 6 s).
VERDICT_BUCKETS_S: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
# Event-loop lag: anything past ~50 ms is heard as dead air on a call being bridged.
LAG_BUCKETS_S: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Histogram:
    """Cumulative-bucket histogram as Prometheus exposes it (counts per upper bound, +Inf last)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """[(le, count)] with ``le`` as Prometheus writes it, ending in ``+Inf``."""
        out, running = [], 0
        for bound, n in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


@dataclass
class VerdictStats:
    """AMD verdicts by status and the answer -> verdict latency."""

    verdicts: dict[str, int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=lambda: Histogram(VERDICT_BUCKETS_S))

    def record(self, status: str, answered_at: float | None, decided_at: float) -> None:
        self.verdicts[status] = self.verdicts.get(status, 0) + 1
        if answered_at is not None:
            self.latency.observe(max(decided_at - answered_at, 0.0))


@dataclass
class LoopLag:
    """How late the event loop wakes a task that asked to sleep ``interval_s``: the time anything else (an AMD
    verdict, a bridge) would have waited behind whatever held the loop."""

    interval_s: float = 0.25
    histogram: Histogram = field(default_factory=lambda: Histogram(LAG_BUCKETS_S))
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=1200))  # (monotonic, lag)

    def record(self, lag_s: float, now: float) -> None:
        self.histogram.observe(lag_s)
        self.recent.append((now, lag_s))

    def max_since(self, since: float) -> float:
        return max((lag for at, lag in self.recent if at >= since), default=0.0)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval_s)
            self.record(max(loop.time() - start - self.interval_s, 0.0), time.monotonic())
