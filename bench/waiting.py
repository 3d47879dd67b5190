"""How long the list's part of "why is nothing dialled" takes (``Store.queue_outlook``, read by the caller's screen
and the dashboard through bridge.waiting, which caches it 5 s per effort) on big lists.

    .venv/bin/python bench/waiting.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from store.db import Store


def timed(store: Store, cid: int, now: float, runs: int) -> tuple[str, float, float]:
    times, kind = [], ""
    for k in range(runs):
        t = time.perf_counter()
        kind = store.queue_outlook(cid, now + k)["kind"]
        times.append(time.perf_counter() - t)
    return kind, statistics.median(times), max(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    p.add_argument("--runs", type=int, default=20)
    a = p.parse_args()
    print("| contacts | list state | outlook | median ms | worst ms |")
    print("| ---: | --- | --- | ---: | ---: |")
    for size in a.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "outlook.db")
            cid = store.create_campaign("Outlook bench", household_once=1)["id"]
            # As bench/claim.py: mostly DC numbers, a tenth on the West Coast.
            store.add_contacts(
                cid, [{"phone": f"+1{'202' if i % 10 else '415'}{2000000 + i:07d}"} for i in range(size)]
            )
            night = datetime(2026, 11, 24, 6, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
            cases = [("6:00 Eastern, nobody put off yet", night), ("10:00 Eastern", night + 4 * 3600)]
            for label, now in cases:
                kind, med, worst = timed(store, cid, now, a.runs)
                print(f"| {size:,} | {label} | {kind} | {med * 1000:.2f} | {worst * 1000:.2f} |")
            store.claim_contacts(cid, 5, night)  # puts the head of the queue off until its window
            kind, med, worst = timed(store, cid, night, a.runs)
            print(f"| {size:,} | 6:00 Eastern, after a claim | {kind} | {med * 1000:.2f} | {worst * 1000:.2f} |")
            store.close()


if __name__ == "__main__":
    main()
