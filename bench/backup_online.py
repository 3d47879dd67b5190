"""How long ``phonebank backup`` takes on a campaign-sized store, and whether writers wait for it.

    .venv/bin/python bench/backup_online.py [--contacts 100000]

Imports a list of N contacts with the panel's importer into a scratch store, then backs it up while another
connection commits a row every 5 ms, and prints the copy's duration and the writer's commit latencies during it.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from phonebank.backup import Places, backup
from store import efforts as ef
from store.contacts import check_list, csv_headers, guess_mapping
from store.db import Store


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--contacts", type=int, default=100_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        store = Store(data / "phonebank.db")
        cid = store.create_campaign("big")["id"]
        text = "\n".join(["First,Last,Phone"] + [f"P{i},L{i},+1202555{i % 10000:04d}" for i in range(args.contacts)])
        report = check_list(text, guess_mapping(csv_headers(text)), ef.existing_people(store, cid), region="US")
        ef.import_list(store, cid, report, skip_bad=True)
        size_mb = (data / "phonebank.db").stat().st_size / 1e6
        stop, latencies = threading.Event(), []

        def writer() -> None:
            other = Store(data / "phonebank.db")
            while not stop.is_set():
                t = time.perf_counter()
                other.create_campaign("written during the backup")
                latencies.append(time.perf_counter() - t)
                time.sleep(0.005)
            other.close()

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(0.3)
        latencies.clear()
        start = time.perf_counter()
        manifest = backup(Places(data, None, "main"), Path(tmp) / "bk")
        elapsed = time.perf_counter() - start
        stop.set()
        thread.join()
        latencies.sort()
        print(
            f"store {size_mb:.1f} MB, {manifest['tables']['contacts']} contacts: backup {elapsed:.2f} s; "  # type: ignore[index]
            f"writer commits during it {len(latencies)}, p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
            f"max {latencies[-1] * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
