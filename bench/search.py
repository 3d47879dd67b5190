"""How long the Results page's contact search takes on big efforts (``store.results.search_contacts``: a count
and a page of 50), which the panel runs on the event loop the calls share.

Compares the folded column (migration 8: names and cities without case or accents) with what a per-row Python
function (``unicodedata`` in SQL) would cost, for a query that matches a quarter of the list and one that
matches nothing (both scan the effort's rows).

    .venv/bin/python bench/search.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from store import results as r
from store.db import Store
from store.textfold import fold

NAMES = ["José", "Nguyễn", "García", "Smith", "Ada", "Zoë", "Müller", "O'Brien"]


def _median_ms(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def measure(size: int, runs: int) -> list[tuple[str, float, float]]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "search.db")
        cid = store.create_campaign("Search bench")["id"]
        store.add_contacts(
            cid,
            [
                {
                    "first_name": f"{NAMES[i % 8]}{i}",
                    "last_name": NAMES[(i * 3) % 8],
                    "phone": f"+1202{2000000 + i:07d}",
                    "city": "Springfield",
                }
                for i in range(size)
            ],
        )
        store.conn.create_function("pb_fold", 1, fold, deterministic=True)
        for q in ("garcia", "zzzz"):
            column = _median_ms(lambda q=q: r.search_contacts(store, cid, q), runs)
            udf = _median_ms(
                lambda q=q: store.conn.execute(
                    "SELECT COUNT(*) FROM contacts WHERE campaign_id = ? AND (pb_fold(first_name || ' ' || last_name) "
                    "LIKE ? OR pb_fold(city) LIKE ?)",
                    (cid, f"%{q}%", f"%{q}%"),
                ).fetchone(),
                runs,
            )
            out.append((q, column, udf))
        store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    print("| contacts | query | folded column: search (count + page) ms | per-row function: count alone ms |")
    print("| ---: | --- | ---: | ---: |")
    for size in args.sizes:
        for q, column, udf in measure(size, args.runs):
            print(f"| {size:,} | {q} | {column:.1f} | {udf:.1f} |")


if __name__ == "__main__":
    main()
