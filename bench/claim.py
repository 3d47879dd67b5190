"""How long the dialer's "who to call next" takes on big lists: ``Store.claim_contacts`` (calling hours in each
number's time zone, households, do-not-call), which runs on the controller's event loop for every batch of calls.

    .venv/bin/python bench/claim.py --sizes 1000 10000 100000
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


def measure(size: int, claims: int, batch: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "claim.db")
        cid = store.create_campaign("Claim bench", household_once=1)["id"]
        # A list as the import makes it: mostly DC numbers, some West Coast ones still outside their hours.
        store.add_contacts(
            cid,
            [{"first_name": f"V{i}", "phone": f"+1{'202' if i % 10 else '415'}{2000000 + i:07d}"} for i in range(size)],
        )
        store.conn.executemany(
            "INSERT INTO do_not_call (phone, reason, created_at) VALUES (?, 'bench', 0)",
            [(f"+1202{2000000 + i:07d}",) for i in range(1, size, 50)],
        )
        noon = datetime(2026, 11, 24, 9, 30, tzinfo=ZoneInfo("America/New_York")).timestamp()
        times = []
        for k in range(claims):
            t = time.perf_counter()
            picked = store.claim_contacts(cid, batch, noon + k)
            times.append(time.perf_counter() - t)
            assert picked, "nothing claimed"
        store.close()
    return statistics.median(times), max(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--claims", type=int, default=20, help="claims per list")
    p.add_argument("--batch", type=int, default=5, help="contacts per claim")
    a = p.parse_args()
    print(f"| contacts | claim of {a.batch}: median ms | worst ms |")
    print("| ---: | ---: | ---: |")
    for size in a.sizes:
        med, worst = measure(size, a.claims, a.batch)
        print(f"| {size:,} | {med * 1000:.1f} | {worst * 1000:.1f} |")


if __name__ == "__main__":
    main()
