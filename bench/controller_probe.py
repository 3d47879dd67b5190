"""The controller (``phonebank.cli run``) with an event-loop lag probe, for bench/capacity.py.

Every 50 ms a task on the controller's own loop asks to sleep 50 ms; how much later it wakes is the lag every
other callback on the loop (an ARI event, an RTP packet for the detector, an API request) suffered at that
moment. One line per sample, ``<epoch s> <lag ms>``, to the file named by PB_BENCH_LAG_FILE. Wrapping ``serve``
here keeps the probe out of the product.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from phonebank import cli, service

PERIOD_S = 0.05
_serve = service.serve


async def _probe(path: str) -> None:
    # A line to the page cache every 50 ms: cheaper than handing each write to a thread, which would itself be
    # work on the loop being measured.
    with open(path, "a", buffering=1) as f:  # noqa: ASYNC230
        while True:
            start = time.perf_counter()
            await asyncio.sleep(PERIOD_S)
            lag_ms = (time.perf_counter() - start - PERIOD_S) * 1000.0
            f.write(f"{time.time():.3f} {lag_ms:.2f}\n")


async def serve(*args: Any, **kwargs: Any) -> None:
    task = asyncio.create_task(_probe(os.environ["PB_BENCH_LAG_FILE"]))
    try:
        await _serve(*args, **kwargs)
    finally:
        task.cancel()


if __name__ == "__main__":
    service.serve = serve  # type: ignore[assignment]
    sys.exit(cli.main())
