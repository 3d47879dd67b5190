"""How long a big contact list takes to import through the importer the panel and the CLI share
(store/contacts.py): read the file (table_text: decode, sniff the delimiter, rewrite as CSV), parse + validate
(E.164, the phone-column fallback, duplicates, missing fields), insert into a fresh store in one transaction.

Generates a seeded CSV (default 100,000 rows, ~2% bad: malformed numbers, missing names, missing phones,
duplicates, short rows; ~5% households sharing a number; an extra column and a cell phone on some rows, the
fallback when the first phone is bad), then times each stage. The phonenumbers library is most of the validation
time; the same list is also checked with the fast path switched off to show what it saves.

    .venv/bin/python bench/import_contacts.py [--rows 100000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store import contacts as importer
from store import efforts as ef
from store.contacts import check_list, csv_headers, decode_text, guess_mapping, normalize_phone, table_text
from store.db import Store

FIRST = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo", "Kim", "Lee", "Mo", "Nia"]
LAST = ["Smith", "Jones", "Garcia", "Nguyen", "Brown", "Lopez", "Khan", "Okafor", "Rossi", "Kowalski"]
AREAS = ["202", "212", "213", "305", "312", "415", "512", "617", "702", "808"]
FORMATS = ["({a}) {x}-{n}", "{a}-{x}-{n}", "{a}{x}{n}", "+1 {a} {x} {n}", "1{a}{x}{n}", "{a}.{x}.{n}"]


def make_csv(rows: int, seed: int = 11) -> tuple[str, int]:
    """The CSV text and how many rows are bad on purpose."""
    rng = random.Random(seed)
    lines = ["first_name,last_name,phone,cell,city,state,zip,ward"]
    bad = 0
    people: list[tuple[str, str, str]] = []
    for i in range(rows):
        a, x, n = rng.choice(AREAS), f"{rng.randint(200, 999)}", f"{i % 10000:04d}"
        phone = rng.choice(FORMATS).format(a=a, x=x, n=n)
        first, last = rng.choice(FIRST), f"{rng.choice(LAST)}{i}"
        cell = f"{rng.choice(AREAS)}555{rng.randint(0, 9999):04d}" if rng.random() < 0.2 else ""
        roll = rng.random()
        if people and roll < 0.05:  # household: someone else on an earlier number
            phone = people[-1][2]
        elif people and roll < 0.055:  # the same person twice
            first, last, phone = people[-1]
            bad += 1
        elif roll < 0.065:
            phone, bad = rng.choice(["12345", "call me", "(000) 123-4567", "+1 555"]), bad + 1
        elif roll < 0.07:
            first, last, bad = "", "", bad + 1
        elif roll < 0.073:
            phone, bad = "", bad + 1
        elif roll < 0.075:
            lines.append(f"{first},{last},{phone}")
            bad += 1
            continue
        people.append((first, last, phone))
        lines.append(f"{first},{last},{phone},{cell},Springfield,IL,627{i % 100:02d},{1 + i % 9}")
    return "\n".join(lines) + "\n", bad


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def run(rows: int, repeat: int) -> dict[str, Any]:
    text, planted = make_csv(rows)
    data = text.encode()
    mapping = guess_mapping(csv_headers(text))
    t_decode, _ = timed(lambda: decode_text(data), repeat)
    t_read, table = timed(lambda: table_text(data), repeat)
    t_check, report = timed(lambda: check_list(table, mapping), repeat)
    fast = importer.fast_phone
    importer.fast_phone = lambda raw, region="US": normalize_phone(raw, region)  # type: ignore[assignment]
    try:
        t_slow, slow_report = timed(lambda: check_list(table, mapping), 1)
    finally:
        importer.fast_phone = fast  # type: ignore[assignment]
    assert slow_report.rows == report.rows and len(slow_report.errors) == len(report.errors)
    inserts = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            store = Store(Path(tmp) / f"bench{i}.db")
            cid = ef.create_effort(store, "Bench")["id"]
            t = time.perf_counter()
            ef.import_list(store, cid, report, skip_bad=True)
            inserts.append(time.perf_counter() - t)
            assert ef.contact_count(store, cid) == report.valid
            store.close()
    t_insert = min(inserts)
    return {
        "rows": rows,
        "bytes": len(data),
        "planted_bad": planted,
        "valid": report.valid,
        "rejected": report.invalid,
        "households": report.shared_numbers,
        "fallbacks": report.fallbacks,
        "decode_s": t_decode,
        "read_s": t_read,
        "check_s": t_check,
        "check_without_fast_path_s": t_slow,
        "insert_s": t_insert,
        "total_s": t_read + t_check + t_insert,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of N for each stage")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = run(args.rows, args.repeat)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(
        f"{r['rows']:,} rows, {r['bytes'] / 1e6:.1f} MB; {r['valid']:,} valid, {r['rejected']:,} rejected "
        f"({r['planted_bad']:,} planted), {r['households']:,} shared numbers, {r['fallbacks']:,} called on the "
        "cell column"
    )
    print()
    print("| stage | seconds | rows/s |")
    print("| --- | ---: | ---: |")
    for label, key in (
        ("decode", "decode_s"),
        ("read the file (decode, delimiter, rewrite)", "read_s"),
        ("parse + validate", "check_s"),
        ("parse + validate, phonenumbers.parse for every row", "check_without_fast_path_s"),
        ("insert (one transaction)", "insert_s"),
        ("total (read + validate + insert)", "total_s"),
    ):
        print(f"| {label} | {r[key]:.2f} | {r['rows'] / r[key]:,.0f} |")


if __name__ == "__main__":
    main()
