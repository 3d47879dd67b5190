"""The controller's writes of call facts, kept in order in memory while the database refuses them.

A PBX controller learns facts it cannot un-learn: a voter answered, a call was put through, it ended. When SQLite
refuses writes (disk full, the file locked by another process, an I/O error) those facts still happened, and the
calls on the line go on; dropping the writes would lose them, and raising out of the event handler (what a plain
``Store`` call does) would also lose what the cores were about to do with the event (a call would stay "ringing"
for ever in the dialer). So the adapter's call-path writes go through ``WriteQueue``:

* while the store takes writes, each is written at once (one short busy wait, not the store's 30 s: the event loop
  carries every call and must not stall on a lock);
* once one is refused, it and every later one are queued in order (a later UPDATE must not overtake an earlier
  INSERT of the same row), the queue is ``down``, ``on_change`` is told (the controller holds the dialer: it must
  not place calls it cannot record, bridge.dialer.Hold.STORE_DOWN), and the failure is logged as an error;
* ``flush()`` (the controller's timer loop, twice a second while down) writes the queue out oldest first, and
  when it is empty the store is up again.

The queue is bounded: with the dialer held, only the calls already on the line add facts (a few dozen writes per
call), so LIMIT is hours of a large shift. Past it, a write is refused loudly (logged as critical, counted in
``dropped`` and on /healthz), never silently. Panel requests are not queued: the panel refuses writes while the
store is down (panel.ops), so nothing a person was told is saved is only in memory.

Writes that need an answer now (claiming contacts) are not queued: a refused claim claims nobody and takes the
store down the same way (``claim_contacts``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from store.db import Store

log = structlog.get_logger(__name__)

# Most writes kept while the store is down (see the module docstring).
LIMIT = 50_000
# How long one write may wait for another connection's lock, in ms: the first try of a write, and each flush try.
BUSY_MS = 250
FLUSH_BUSY_MS = 50


@dataclass
class WriteQueue:
    store: Store
    on_change: Callable[[bool], None] | None = None  # told True when the store goes down, False when it is back
    limit: int = LIMIT
    pending: deque[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=deque)
    error: str = ""  # the last refusal, as SQLite said it
    down_since: float | None = None
    dropped: int = 0  # writes refused past the limit (lost: logged as critical one by one)
    written_late: int = 0  # writes that waited in the queue and were written since
    _busy_default: int = 30000  # the connection's own busy timeout (ms), put back after each write

    def __post_init__(self) -> None:
        with contextlib.suppress(sqlite3.Error, AttributeError):  # a stand-in store in tests has no connection
            self._busy_default = int(self.store.conn.execute("PRAGMA busy_timeout").fetchone()[0])

    @property
    def down(self) -> bool:
        return self.down_since is not None

    # ------------------------------------------------------------------ the writes the adapter makes
    def update_call(self, call_id: str, **values: Any) -> None:
        self._write("update_call", (call_id,), values)

    def update_leg(self, channel_id: str, **values: Any) -> None:
        self._write("update_leg", (channel_id,), values)

    def update_session(self, session_id: int, **values: Any) -> None:
        self._write("update_session", (session_id,), values)

    def insert_leg(self, channel_id: str, kind: str, now: float, **values: Any) -> None:
        self._write("insert_leg", (channel_id, kind, now), values)

    def insert_call(
        self, call_id: str, campaign_id: int, contact_id: int, attempt_no: int, channel_id: str, now: float
    ) -> None:
        self._write("insert_call", (call_id, campaign_id, contact_id, attempt_no, channel_id, now), {})

    def release_contact(self, contact_id: int, outcome: str, now: float) -> None:
        self._write("release_contact", (contact_id, outcome, now), {})

    def claim_contacts(self, campaign_id: int, n: int, now: float) -> list[dict[str, Any]]:
        """Not queued (the dialer needs the contacts now): refused, it claims nobody and takes the store down,
        which holds the dialer. With the short busy wait: a claim must not stall every call for 30 s either."""
        try:
            return list(self._apply("claim_contacts", (campaign_id, n, now), {}, BUSY_MS))
        except sqlite3.OperationalError as exc:
            self.refused(exc, "claim_contacts")
            return []

    # ------------------------------------------------------------------ machinery
    def _write(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.pending:
            self._queue(method, args, kwargs)
            return
        try:
            self._apply(method, args, kwargs, BUSY_MS)
        except sqlite3.OperationalError as exc:
            self.refused(exc, method)
            self._queue(method, args, kwargs)

    def _queue(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if len(self.pending) >= self.limit:
            self.dropped += 1
            log.critical("store.write_dropped", method=method, queued=len(self.pending), dropped=self.dropped)
            return
        self.pending.append((method, args, kwargs))

    @contextlib.contextmanager
    def _patience(self, busy_ms: int) -> Iterator[sqlite3.Connection]:
        """The connection with a short busy wait for the body, then the store's own again."""
        conn = self.store.conn
        conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        try:
            yield conn
        finally:
            # Back to the store's own patience for everyone else on this connection (the panel's requests).
            conn.execute(f"PRAGMA busy_timeout={self._busy_default}")

    def _apply(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], busy_ms: int) -> Any:
        with self._patience(busy_ms):
            return getattr(self.store, method)(*args, **kwargs)

    def refused(self, exc: sqlite3.OperationalError, what: str) -> None:
        """A write was refused (queued by the caller, or not attempted again: a claim). The first refusal takes
        the store down; every one is logged."""
        self.error = str(exc)
        log.error("store.write_failed", what=what, error=self.error, queued=len(self.pending))
        if self.down_since is None:
            self.down_since = time.time()
            log.error("store.down", error=self.error)
            if self.on_change is not None:
                self.on_change(True)

    def flush(self) -> int:
        """Write out what waited, oldest first, until the store refuses again; returns how many were written.
        The store is up again once the queue is empty (and was down)."""
        written = 0
        while self.pending:
            method, args, kwargs = self.pending[0]
            try:
                self._apply(method, args, kwargs, FLUSH_BUSY_MS)
            except sqlite3.OperationalError as exc:
                self.error = str(exc)
                break
            except sqlite3.IntegrityError as exc:
                # Written already in part before the refusal (insert_call is two statements): what is left of it
                # cannot go in twice. Said, and passed over: it must not block every fact behind it for good.
                log.error("store.write_conflict", method=method, error=str(exc))
            self.pending.popleft()
            written += 1
        self.written_late += written
        if not self.pending and self.down_since is not None:
            log.warning(
                "store.recovered",
                down_s=round(time.time() - self.down_since, 1),
                written_late=self.written_late,
                dropped=self.dropped,
            )
            self.down_since = None
            self.written_late = 0
            if self.on_change is not None:
                self.on_change(False)
        return written

    def probe(self) -> None:
        """Down with nothing queued (only a claim was refused): try whether the store writes again."""
        if self.pending or self.down_since is None:
            return
        try:
            with self._patience(FLUSH_BUSY_MS) as conn:
                # Takes the write lock and lets it go: what a write would need first.
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            self.error = str(exc)
            return
        self.flush()
