"""Claiming contacts for the live dialer: the list engine's rules on the store (calling hours in the number's own
time zone, attempts and recycling, households, do-not-call across efforts, no number dialled twice at once)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from store.db import Store

NY = ZoneInfo("America/New_York")
DC = "+12025550101"  # America/New_York
LA = "+13105550100"  # America/Los_Angeles
HNL = "+18085550100"  # Pacific/Honolulu
AK = "+19075550100"  # America/Anchorage and America/Adak: the narrower window
NOWHERE = "+80012345678"  # international freephone: no time zone at all


def at(hh: int, mm: int = 0, tz: ZoneInfo = NY) -> float:
    return datetime(2026, 11, 25, hh, mm, tzinfo=tz).timestamp()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "pb.db")


def effort(store: Store, **kw: object) -> int:
    return int(store.create_campaign("Claims", org_name="Org", **kw)["id"])


def phones(rows: list[dict[str, object]]) -> list[object]:
    return [r["phone"] for r in rows]


@pytest.mark.parametrize(
    ("phone", "window", "now", "called"),
    [
        (DC, None, at(7, 59), False),
        (DC, None, at(8, 0), True),
        (DC, None, at(20, 59), True),
        (DC, None, at(21, 0), False),
        (LA, None, at(10, 0), False),  # 7:00 in Los Angeles
        (LA, None, at(11, 0), True),
        (HNL, None, at(12, 0), False),  # 7:00 in Honolulu
        (HNL, None, at(23, 30), True),  # 18:30 in Honolulu
        (AK, None, at(12, 59), False),  # 8:59 in Anchorage but 7:59 on Adak
        (AK, None, at(13, 0), True),
        (NOWHERE, None, at(12, 0), False),  # no zone: never guess
        (DC, ("09:30", "17:00"), at(9, 0), False),  # the effort narrows the window
        (DC, ("09:30", "17:00"), at(9, 30), True),
        (DC, ("09:30", "17:00"), at(17, 0), False),
        (DC, ("06:00", "23:30"), at(7, 0), False),  # ... but can never widen it past 8:00-21:00
        (DC, ("06:00", "23:30"), at(21, 30), False),
        (DC, ("nonsense", ""), at(12, 0), True),  # unreadable: the legal window
    ],
)
def test_calling_hours_in_the_numbers_local_time(
    store: Store, phone: str, window: tuple[str, str] | None, now: float, called: bool
) -> None:
    kw = {"calling_hours_start": window[0], "calling_hours_end": window[1]} if window else {}
    cid = effort(store, **kw)
    store.add_contacts(cid, [{"phone": phone}])
    assert phones(store.claim_contacts(cid, 1, now)) == ([phone] if called else [])
    (c,) = store.contacts(cid)
    assert c["status"] == ("dialing" if called else "pending")
    assert c["attempts"] == (1 if called else 0), "a contact passed over for its hours spends no attempt"


def test_outside_hours_waits_for_its_window_and_the_queue_moves_on(store: Store) -> None:
    cid = effort(store)
    # The head of the queue is on the west coast, asleep at 10:00 in New York; the east coast comes after.
    store.add_contacts(cid, [{"phone": f"+1310555{i:04d}"} for i in range(300)])
    store.add_contacts(cid, [{"phone": f"+1202555{i:04d}"} for i in range(3)])
    assert sorted(phones(store.claim_contacts(cid, 5, at(10, 0)))) == [f"+1202555{i:04d}" for i in range(3)]
    west = [c for c in store.contacts(cid) if c["phone"].startswith("+1310")]
    assert {c["next_attempt_at"] for c in west} == {at(8, 0, ZoneInfo("America/Los_Angeles"))}
    assert store.claim_contacts(cid, 5, at(10, 30)) == [], "put off: not looked at again before 8:00 there"
    assert len(store.claim_contacts(cid, 5, at(11, 0))) == 5


def test_unknown_zone_is_looked_at_again_tomorrow(store: Store) -> None:
    cid = effort(store)
    store.add_contacts(cid, [{"phone": NOWHERE}])
    assert store.claim_contacts(cid, 1, at(12, 0)) == []
    (c,) = store.contacts(cid)
    assert c["next_attempt_at"] == at(12, 0) + 86400 and c["status"] == "pending"


@pytest.mark.parametrize(
    ("outcome", "status", "back_after_s"),
    [
        ("busy", "pending", 600),
        ("congestion", "pending", 600),
        ("no_answer", "pending", 3600),
        ("machine", "pending", 7200),
        ("voicemail_left", "pending", 7200),
        ("abandoned", "pending", 86400),  # a day: they heard our recorded apology (store.outcomes)
        ("hangup_before_connect", "pending", 86400),
        ("connected", "connected", None),
        ("unallocated", "removed", None),
    ],
)
def test_recycle_interval_per_outcome(store: Store, outcome: str, status: str, back_after_s: int | None) -> None:
    cid = effort(store)
    store.add_contacts(cid, [{"phone": DC}])
    t = at(12, 0)
    (c,) = store.claim_contacts(cid, 1, t)
    store.release_contact(c["id"], outcome, t)
    assert store.contact(c["id"])["status"] == status  # type: ignore[index]
    assert store.claim_contacts(cid, 1, t + (back_after_s or 86400) - 1) == []
    if back_after_s is not None:
        assert phones(store.claim_contacts(cid, 1, t + back_after_s)) == [DC]


def test_max_attempts_then_exhausted(store: Store) -> None:
    cid = effort(store, max_attempts=2, recycle_busy_s=600)
    store.add_contacts(cid, [{"phone": DC}])
    t = at(12, 0)
    for k in range(2):
        (c,) = store.claim_contacts(cid, 1, t + 600 * k)
        store.release_contact(c["id"], "busy", t + 600 * k)
    assert store.contact(c["id"])["status"] == "exhausted"  # type: ignore[index]
    assert store.claim_contacts(cid, 1, t + 3600) == []


def test_unallocated_numbers_go_on_the_do_not_call_list_for_every_effort(store: Store) -> None:
    a, b = effort(store), effort(store)
    store.add_contacts(a, [{"phone": DC}])
    store.add_contacts(b, [{"phone": DC}])
    t = at(12, 0)
    (c,) = store.claim_contacts(a, 1, t)
    store.release_contact(c["id"], "unallocated", t)
    dnc = store._one("SELECT * FROM do_not_call WHERE phone = ?", (DC,))
    assert dnc is not None and dnc["reason"] == "unallocated" and dnc["campaign_id"] == a
    assert store.claim_contacts(b, 1, t + 86400) == []


@pytest.mark.parametrize(
    ("code", "blocked"),
    [("wrong_number", True), ("disconnected", True), ("hostile", True), ("supporter", False), ("not_home", False)],
)
def test_remove_number_dispositions_are_honoured_across_efforts(store: Store, code: str, blocked: bool) -> None:
    a, b = effort(store), effort(store)
    store.add_contacts(a, [{"phone": DC}])
    store.add_contacts(b, [{"phone": DC}])
    sid = store.create_session(a, "Vera")["id"]
    t = at(12, 0)
    (c,) = store.claim_contacts(a, 1, t)
    store.release_contact(c["id"], "connected", t)
    store.add_disposition(sid, None, c["id"], code, "", {})
    on_list = store._one("SELECT reason FROM do_not_call WHERE phone = ?", (DC,))
    assert (on_list is not None) == blocked
    assert (store.claim_contacts(b, 1, t) == []) == blocked


def test_do_not_call_list_blocks_every_effort(store: Store) -> None:
    cid = effort(store)
    store.add_contacts(cid, [{"phone": DC}, {"phone": LA}])
    store.conn.execute("INSERT INTO do_not_call (phone, reason, created_at) VALUES (?, 'request', 0)", (DC,))
    assert phones(store.claim_contacts(cid, 5, at(12, 0))) == [LA]


@pytest.mark.parametrize(
    ("household_once", "first_code", "second_called"),
    [
        (1, "supporter", False),  # reached the household: nobody else at that number is called
        (1, "refused", True),  # a no-contact disposition: the household was not reached
        (0, "supporter", True),  # households off: each contact on their own
    ],
)
def test_households_one_call_per_shared_number(
    store: Store, household_once: int, first_code: str, second_called: bool
) -> None:
    cid = effort(store, household_once=household_once)
    store.add_contacts(cid, [{"first_name": "Ann", "phone": DC}, {"first_name": "Bob", "phone": DC}])
    sid = store.create_session(cid, "Vera")["id"]
    t = at(12, 0)
    (first,) = store.claim_contacts(cid, 5, t)
    assert first["first_name"] == "Ann", "one call at a time per number"
    assert store.claim_contacts(cid, 5, t) == []
    store.release_contact(first["id"], "connected", t)
    assert store.claim_contacts(cid, 5, t) == [], "still talking"
    store.add_disposition(sid, None, first["id"], first_code, "", {})
    later = t + 7200
    assert [r["first_name"] for r in store.claim_contacts(cid, 5, later)] == (["Bob"] if second_called else [])


def test_no_number_dialled_twice_at_once_across_efforts(store: Store) -> None:
    a, b = effort(store), effort(store)
    store.add_contacts(a, [{"phone": DC}, {"phone": DC}, {"phone": LA}])
    store.add_contacts(b, [{"phone": DC}])
    t = at(12, 0)
    assert sorted(phones(store.claim_contacts(a, 5, t))) == [DC, LA]
    assert store.claim_contacts(b, 5, t) == []


def test_claim_is_fast_on_a_large_list(store: Store) -> None:
    cid = effort(store)
    store.add_contacts(cid, [{"phone": f"+12025{i:06d}"} for i in range(20000)])
    store.conn.executemany(
        "INSERT INTO do_not_call (phone, reason, created_at) VALUES (?, 'request', 0)",
        [(f"+12025{i:06d}",) for i in range(0, 20000, 7)],
    )
    t0 = time.perf_counter()
    got = store.claim_contacts(cid, 20, at(12, 0))
    elapsed = time.perf_counter() - t0
    assert len(got) == 20 and not any(int(p[-6:]) % 7 == 0 for p in phones(got))  # type: ignore[index]
    assert elapsed < 0.5, f"claim took {elapsed:.3f} s"


@pytest.mark.parametrize(
    ("status", "start_in", "end_in", "claims"),
    [
        ("active", None, None, True),
        ("paused", None, None, False),
        ("closed", None, None, False),
        ("draft", None, None, False),
        ("active", 3600, None, False),  # scheduled, not started yet
        ("active", -3600, -60, False),  # its window is over
        ("active", -3600, 3600, True),
    ],
)
def test_only_an_effort_calling_now_hands_out_contacts(
    tmp_path: Path, status: str, start_in: float | None, end_in: float | None, claims: bool
) -> None:
    store = Store(tmp_path / "window.db")
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
    cid = store.create_campaign(
        "Window",
        status=status,
        start_at=noon + start_in if start_in is not None else None,
        end_at=noon + end_in if end_in is not None else None,
    )["id"]
    store.add_contacts(cid, [{"phone": "+12025550160"}])
    assert bool(store.claim_contacts(cid, 1, noon)) is claims


@pytest.mark.parametrize("outcome", ["cancelled", "trunk_failed"])
@pytest.mark.parametrize("before", ["fresh", "no_answer", "callback"])
def test_a_cancelled_call_puts_the_contact_straight_back(store: Store, before: str, outcome: str) -> None:
    """Hung up by us while it rang (its volunteer left), or failed by the carrier before any phone rang: the claim
    is undone — no attempt, no recycle delay, the last real outcome kept (a due callback stays first in line).
    store.listengine agrees (test_listengine)."""
    cid = effort(store, max_attempts=2)
    store.add_contacts(cid, [{"phone": DC}])
    t = at(12, 0)
    (c,) = store.claim_contacts(cid, 1, t)
    if before == "no_answer":
        store.release_contact(c["id"], "no_answer", t)
        (c,) = store.claim_contacts(cid, 1, t + 3600)
        t += 3600
    elif before == "callback":
        # As add_disposition leaves a callback asked for (it checks against the wall clock, this test runs at noon).
        store.conn.execute(
            "UPDATE contacts SET status = 'pending', last_outcome = 'callback', next_attempt_at = ? WHERE id = ?",
            (t + 60, c["id"]),
        )
        t += 120
        (c,) = store.claim_contacts(cid, 1, t)
    kept = store.contact(c["id"])
    assert kept is not None
    store.release_contact(c["id"], outcome, t + 1)
    back = store.contact(c["id"])
    assert back is not None and back["status"] == "pending"
    assert back["attempts"] == kept["attempts"] - 1, "no attempt spent"
    assert back["last_outcome"] == kept["last_outcome"] and back["next_attempt_at"] == kept["next_attempt_at"]
    again = store.claim_contacts(cid, 1, t + 2)
    assert phones(again) == [DC] and again[0]["attempts"] == kept["attempts"], "straight back, same attempt"
