"""bridge.write_queue on a real SQLite file locked by another connection: facts refused are kept in order and
written once the lock goes, the store is reported down and back once each; and the pure reconnect rule."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bridge import reconcile as rc
from bridge.write_queue import WriteQueue
from store.db import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "pb.db")
    cid = s.create_campaign("Faults")["id"]
    s.add_contacts(cid, [{"phone": "+12025550100"}])
    return s


def lock(path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(str(path), isolation_level=None, timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    return other


def test_refused_writes_are_queued_in_order_and_written_when_the_lock_goes(store: Store) -> None:
    changes: list[bool] = []
    q = WriteQueue(store, on_change=changes.append)
    contact = store.conn.execute("SELECT id FROM contacts").fetchone()[0]
    cid = store.conn.execute("SELECT id FROM campaigns").fetchone()[0]
    q.insert_call("c1", cid, contact, 1, "c1", 10.0)
    assert store.call("c1") is not None and not q.down

    other = lock(store.path)
    q.update_call("c1", answered_at=11.0)
    assert q.down and changes == [True] and "locked" in q.error
    # Every later write waits behind the first (an UPDATE must not overtake what came before it).
    q.update_call("c1", ended_at=12.0, outcome="connected")
    q.insert_leg("v1", "volunteer", 12.0)
    q.update_leg("v1", ended_at=13.0)
    assert len(q.pending) == 4
    assert q.flush() == 0 and q.down  # still locked: nothing written, nothing lost
    assert store.call("c1")["answered_at"] is None

    other.execute("ROLLBACK")
    other.close()
    assert q.flush() == 4
    assert not q.down and changes == [True, False]
    row = store.call("c1")
    assert row is not None and (row["answered_at"], row["ended_at"], row["outcome"]) == (11.0, 12.0, "connected")
    leg = store.conn.execute("SELECT ended_at FROM legs WHERE channel_id = 'v1'").fetchone()
    assert leg[0] == 13.0
    # The connection's own patience is back for everyone else using it.
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_a_full_queue_refuses_loudly_and_counts(store: Store) -> None:
    q = WriteQueue(store, limit=2)
    other = lock(store.path)
    for i in range(4):
        q.update_session(1, state=f"s{i}")
    assert len(q.pending) == 2 and q.dropped == 2
    other.execute("ROLLBACK")
    other.close()


def test_a_refused_claim_takes_the_store_down_until_a_write_goes_through(store: Store) -> None:
    changes: list[bool] = []
    q = WriteQueue(store, on_change=changes.append)
    other = lock(store.path)
    with pytest.raises(sqlite3.OperationalError) as exc:
        store.conn.execute("PRAGMA busy_timeout=0")
        store.claim_contacts(1, 1, 10.0)
    store.conn.execute("PRAGMA busy_timeout=30000")
    q.refused(exc.value, "NeedContacts")
    assert q.down and not q.pending
    q.probe()
    assert q.down
    other.execute("ROLLBACK")
    other.close()
    q.probe()
    assert not q.down and changes == [True, False]


@pytest.mark.parametrize(
    ("channels", "calls", "legs", "entries", "expected"),
    [
        # A blip of the WebSocket: everything is still there.
        (["c1", "v1", "e1"], ["c1"], {7: "v1"}, ["e1"], []),
        # Asterisk restarted: every call, leg and prompt is gone; calls are recorded before legs.
        ([], ["c1"], {7: "v1"}, ["e1"], [rc.CallLost("c1"), rc.LegLost(7), rc.EntryLost("e1")]),
        (["v1"], ["c1", "c2"], {7: "v1"}, [], [rc.CallLost("c1"), rc.CallLost("c2")]),
    ],
)
def test_after_reconnect(
    channels: list[str], calls: list[str], legs: dict[int, str], entries: list[str], expected: list[rc.Command]
) -> None:
    assert rc.after_reconnect(channels, calls, legs, entries) == expected


def test_a_full_disk_is_the_same_path(store: Store) -> None:
    """SQLITE_FULL ("database or disk is full"), made without root by capping the file's pages on this connection:
    the facts wait, the store is down, and they are written once there is room."""
    changes: list[bool] = []
    q = WriteQueue(store, on_change=changes.append)
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count={pages}")
    try:
        for i in range(200):  # enough rows to need a new page
            q.insert_leg(f"leg-{i}-" + "x" * 200, "volunteer", float(i))
        assert q.down and changes == [True] and "full" in q.error
        assert q.pending, "refused writes are kept"
        assert q.flush() == 0 and q.down
    finally:
        store.conn.execute("PRAGMA max_page_count=4294967294")
    assert q.flush() > 0 and not q.down and changes == [True, False]
    assert store.conn.execute("SELECT COUNT(*) FROM legs WHERE channel_id LIKE 'leg-%'").fetchone()[0] == 200


def test_a_write_half_done_before_the_refusal_does_not_block_the_queue(store: Store) -> None:
    q = WriteQueue(store)
    contact = store.conn.execute("SELECT id FROM contacts").fetchone()[0]
    cid = store.conn.execute("SELECT id FROM campaigns").fetchone()[0]
    other = lock(store.path)
    q.insert_call("c1", cid, contact, 1, "c1", 10.0)
    q.update_call("c1", ended_at=12.0)
    other.execute("ROLLBACK")
    other.close()
    # As if the calls row had gone in and only the leg's INSERT was refused.
    store.insert_call("c1", cid, contact, 1, "c1", 10.0)
    assert q.flush() == 2 and not q.down
    assert store.call("c1")["ended_at"] == 12.0  # type: ignore[index]
