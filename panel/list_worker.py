"""A contact list's heavy work (reading, checking and importing 100k rows) in a process of its own.

The panel and the controller share one event loop. A worker thread was not enough: checking a list is seconds of
pure Python (phone numbers, the csv module), and a thread running Python holds the GIL, so every time the loop
gives the GIL up (each SQLite call, each socket write) it waits for the thread's switch interval to get it back:
with a 100k-row list checked in a thread, the loop lagged 100-730 ms under call load (bench/capacity.py
--with-admin-load). In a process, the loop only waits for the answer: a summary (counts, the rejected rows),
never the 100k rows themselves, and the import writes from the child on a connection of its own, in batches
(store.efforts.import_list), so the controller's writes never wait behind it for long either.

Everything here runs in the child; the routes in panel/admin.py call it through ``run``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from store import efforts as ef
from store.contacts import FileRefused, ListReport, RowError, check_list, csv_headers, guess_mapping, table_text
from store.db import Store
from store.messages import reason

POOL = web.AppKey("list_worker_pool", ProcessPoolExecutor)
T = TypeVar("T")


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    """One worker process per panel, started on the first list, stopped with the app. Forked from a fork server
    (a clean process that has imported this module once), not from this one: a fork of the panel would copy the
    running loop's threads and sockets, and a fresh interpreter per panel takes seconds to import the checker."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    pool = ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_behind_the_calls)
    app[POOL] = pool
    yield
    pool.shutdown(wait=False, cancel_futures=True)


# How much less CPU the worker gets than the controller and Asterisk when the cores are busy (nice 10: about a tenth
# of a normal process's share under contention); idle cores it uses in full.
NICE = 10


def _behind_the_calls() -> None:
    os.nice(NICE)


async def run(app: web.Application, fn: Callable[..., T], *args: Any) -> T:
    # Submitted from a thread: the first submit starts the fork server and waits for it to import the checker
    # (3 s under load, measured as a loop stall when it was submitted from the loop).
    future = await asyncio.to_thread(app[POOL].submit, fn, *args)
    return await asyncio.wrap_future(future)


@dataclass
class Summary:
    """A checked list as the List step shows it: the ListReport without its rows (only their count)."""

    valid: int = 0
    headers: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    total: int = 0
    shared_numbers: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[RowError] = field(default_factory=list)
    extensions: int = 0
    fallbacks: int = 0

    @property
    def invalid(self) -> int:
        return len(self.errors)

    @classmethod
    def of(cls, report: ListReport) -> Summary:
        return cls(
            report.valid,
            report.headers,
            report.errors,
            report.total,
            report.shared_numbers,
            report.problems,
            report.notes,
            report.extensions,
            report.fallbacks,
        )


def held_back(summary: Summary, skip_bad: bool, expected_valid: str) -> bool:
    """The report must be shown first: a file-level problem, or rejected rows the admin has not yet chosen to
    skip (with the count of good rows they saw still holding)."""
    if summary.problems:
        return True
    return bool(summary.errors) and (not skip_bad or expected_valid != str(summary.valid))


def importable(summary: Summary, skip_bad: bool, expected_valid: str) -> bool:
    return not held_back(summary, skip_bad, expected_valid) and summary.valid > 0


def mapping_ctx(text: str, token: str, mapping: list[str] | None = None) -> dict[str, Any]:
    """The mapping step: the file's columns, what each is taken as, a sample and the row count."""
    headers = csv_headers(text)
    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    sample = list(itertools.islice(reader, 5))
    if not mapping or len(mapping) != len(headers):
        mapping = guess_mapping(headers)
    return {
        "token": token,
        "headers": headers,
        "mapping": mapping,
        "sample": sample,
        "problems": [],
        "rows_in_file": len(sample) + sum(1 for _ in reader),
    }


def _read(store: Store, effort_id: int, token: str) -> str | None:
    path = ef.upload_path(store, effort_id, token)
    return ef.decode_csv(path.read_bytes()) if path else None


def save(db: Path, effort_id: int, data: bytes) -> tuple[str, str]:
    """An uploaded file as the kept UTF-8 CSV: (its token, "") or ("", why it is refused)."""
    try:
        text = table_text(data)
    except FileRefused as exc:
        return "", reason(exc)  # the Message itself (it pickles): the page shows it translated
    store = Store(db)
    try:
        return ef.save_upload(store, effort_id, text.encode()), ""
    finally:
        store.close()


def mapping_of(db: Path, effort_id: int, token: str, mapping: list[str] | None = None) -> dict[str, Any] | None:
    """The mapping step for a kept upload; None: the upload is gone."""
    store = Store(db)
    try:
        text = _read(store, effort_id, token)
        return mapping_ctx(text, token, mapping) if text is not None else None
    finally:
        store.close()


def check(
    db: Path, effort_id: int, token: str, mapping: list[str] | None = None
) -> tuple[dict[str, Any] | None, Summary | None]:
    """The mapping step and the check of a kept upload against the people already on the list."""
    return check_and_import(db, effort_id, token, mapping, None)[:2]


def check_and_import(
    db: Path,
    effort_id: int,
    token: str,
    mapping: list[str] | None,
    choice: tuple[bool, str, bool] | None,
) -> tuple[dict[str, Any] | None, Summary | None, int | None]:
    """Check a kept upload, then, if ``choice`` (skip_bad, the valid count the admin saw, household_once) and
    ``importable`` say so, import it and delete the upload. Returns the mapping step, the summary and how many
    were imported (None: nothing was)."""
    store = Store(db)
    try:
        text = _read(store, effort_id, token)
        if text is None:
            return None, None, None
        ctx = mapping_ctx(text, token, mapping)
        # The columns as posted (a count that does not match the file is the check's to report).
        report = check_list(text, ctx["mapping"] if mapping is None else mapping, ef.existing_people(store, effort_id))
        summary = Summary.of(report)
        if choice is None or not importable(summary, choice[0], choice[1]):
            return ctx, summary, None
        n = ef.import_list(store, effort_id, report, skip_bad=choice[0], household_once=choice[2])
        ef.delete_upload(store, effort_id, token)
        return ctx, summary, n
    finally:
        store.close()
