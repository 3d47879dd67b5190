"""The store: migrations, contact import, claiming for dialing, retry rules, dispositions, bad input."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callin.entry import CODE_LENGTH
from store import callin_guard, results
from store.contacts import ListReport, check_list, csv_headers, guess_mapping, mask_phone, normalize_phone
from store.db import MIGRATIONS, Store, StoreError


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "pb.db")


# Claims honour calling hours in the number's local time: these tests dial Washington DC numbers at 10:00 there.
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()


def campaign(store: Store, **kw: object) -> int:
    return int(store.create_campaign("Test", org_name="Org", **kw)["id"])


def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.db")
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.close()
    again = Store(tmp_path / "a.db")  # reopening migrates nothing twice
    assert again.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("202-555-0101", "+12025550101"),
        ("(202) 555 0101", "+12025550101"),
        ("+44 20 7946 0958", "+442079460958"),
        ("1 202 555 0101", "+12025550101"),
    ],
)
def test_normalize_phone(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(("raw", "reason"), [("", "missing"), ("12345", "not a valid"), ("hello", "not a phone")])
def test_bad_phones_say_why(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_phone(raw)


def test_mask_phone_keeps_only_last_digits() -> None:
    assert mask_phone("+12025550101") == "+1********01"
    assert "555" not in mask_phone("+12025550101")


def _check(text: str) -> ListReport:
    """As the CLI checks a file: the columns guessed from the header."""
    return check_list(text, guess_mapping(csv_headers(text)))


def test_check_list_reports_each_bad_row_and_keeps_extras() -> None:
    text = (
        "First Name,Last,Phone,City,Ward\nAda,Lovelace,202-555-0101,DC,3\nBad,Number,12,DC,1\n"
        "No,Phone,,DC,2\nGrace,Hopper,+1 202 555 0102,DC,\n"
    )
    result = _check(text)
    assert [r["phone"] for r in result.rows] == ["+12025550101", "+12025550102"]
    assert result.rows[0]["first_name"] == "Ada" and result.rows[0]["extra"] == {"Ward": "3"}
    assert [(e.line, e.reason.split(":")[0]) for e in result.errors] == [
        (3, "bad phone number '12'"),
        (4, "missing phone number"),
    ]
    assert "not a valid phone number" in result.errors[0].reason


def test_check_list_without_phone_column() -> None:
    result = _check("name,city\nAda,DC\n")
    assert not result.rows and result.problems == ["Choose the column that holds the phone number."]


def test_campaign_validation_writes_nothing(store: Store) -> None:
    with pytest.raises(StoreError, match="at least 15"):
        store.create_campaign("X", ring_timeout_s=10)
    with pytest.raises(StoreError, match="unknown campaign settings"):
        store.create_campaign("X", colour="red")
    with pytest.raises(StoreError, match="name is required"):
        store.create_campaign("  ")
    assert store.campaigns() == []


def test_claim_marks_dialing_and_never_dials_a_number_twice(store: Store) -> None:
    cid = campaign(store)
    other = campaign(store)
    store.add_contacts(cid, [{"phone": "+12025550101"}, {"phone": "+12025550101"}, {"phone": "+12025550102"}])
    store.add_contacts(other, [{"phone": "+12025550102"}])
    first = store.claim_contacts(cid, 5, now=T0)
    assert sorted(c["phone"] for c in first) == ["+12025550101", "+12025550102"]
    assert all(c["attempts"] == 1 for c in first)
    # The same number in another effort waits while it is being dialled.
    assert store.claim_contacts(other, 5, now=T0) == []
    assert store.claim_contacts(cid, 5, now=T0) == []


@pytest.mark.parametrize(
    ("outcome", "status", "delay"),
    [
        ("busy", "pending", 600),
        ("no_answer", "pending", 3600),
        ("machine", "pending", 7200),
        ("abandoned", "pending", 86400),
        ("unallocated", "removed", None),
        ("connected", "connected", None),
    ],
)
def test_retry_rules(store: Store, outcome: str, status: str, delay: int | None) -> None:
    cid = campaign(store)
    store.add_contacts(cid, [{"phone": "+12025550101"}])
    (c,) = store.claim_contacts(cid, 1, now=T0)
    store.release_contact(c["id"], outcome, now=T0)
    after = store.contact(c["id"])
    assert after is not None and after["status"] == status and after["last_outcome"] == outcome
    if delay is not None:
        assert after["next_attempt_at"] == T0 + delay
        assert store.claim_contacts(cid, 1, now=T0 + delay - 1) == []
        assert len(store.claim_contacts(cid, 1, now=T0 + delay)) == 1


def test_max_attempts_exhausts(store: Store) -> None:
    cid = campaign(store, max_attempts=2)
    store.add_contacts(cid, [{"phone": "+12025550101"}])
    for now in (T0, T0 + 10_000):
        (c,) = store.claim_contacts(cid, 1, now=now)
        store.release_contact(c["id"], "busy", now=now)
    assert store.contact(c["id"])["status"] == "exhausted"  # type: ignore[index]
    assert store.claim_contacts(cid, 1, now=T0 + 20_000) == []


def test_sessions_have_unique_open_codes(store: Store) -> None:
    cid = campaign(store)
    codes = {store.create_session(cid, f"V{i}")["code"] for i in range(50)}
    assert len(codes) == 50 and all(len(c) == CODE_LENGTH == 10 and c.isdigit() and c[0] != "0" for c in codes)
    with pytest.raises(StoreError, match="no campaign"):
        store.create_session(999, "X")
    with pytest.raises(StoreError, match="name is required"):
        store.create_session(cid, "")


@pytest.mark.parametrize(
    ("status", "state", "channel_id", "live"),
    [
        ("open", "waiting_for_phone", None, True),  # never called in yet
        ("open", "disconnected", None, True),  # the phone hung up mid-shift: calling back in resumes
        ("open", "waiting_for_phone", "ch-1", False),  # its phone is joining right now
        ("open", "idle", "ch-1", False),  # phone on the line
        ("open", "paused", "ch-1", False),
        ("open", "talking", "ch-1", False),
        ("open", "idle", None, False),  # the controller has not yet recorded the phone gone: not yet
        ("ended", "ended", None, False),
        ("ended", "waiting_for_phone", None, False),
    ],
)
def test_a_code_is_live_only_while_its_session_waits_for_its_phone(
    store: Store, status: str, state: str, channel_id: str | None, live: bool
) -> None:
    s = store.create_session(campaign(store), "V")
    store.update_session(s["id"], status=status, state=state, channel_id=channel_id)
    found = store.live_session_by_code(s["code"])
    assert (found["id"] if found else None) == (s["id"] if live else None)
    assert store.live_session_by_code("0" * CODE_LENGTH) is None


def test_the_callin_guard_is_kept_in_the_store(tmp_path: Path) -> None:
    s = Store(tmp_path / "g.db")
    assert callin_guard.load(s) is None
    callin_guard.save(s, '{"wrong": []}', 1.0)
    callin_guard.save(s, '{"wrong": [["+15550000001", 2.0]]}', 2.0)
    s.close()
    again = Store(tmp_path / "g.db")
    assert callin_guard.load(again) == '{"wrong": [["+15550000001", 2.0]]}'


def test_disposition_with_answers_and_bad_codes(store: Store) -> None:
    cid = campaign(store)
    store.add_contacts(cid, [{"phone": "+12025550101"}, {"phone": "+12025550102"}])
    sid = store.create_session(cid, "Vera")["id"]
    a, b = store.claim_contacts(cid, 2, now=T0)
    store.insert_call("call-a", cid, a["id"], 1, "call-a", now=0)
    with pytest.raises(StoreError, match="unknown disposition"):
        store.add_disposition(sid, "call-a", a["id"], "nonsense", "", {})
    with pytest.raises(StoreError, match="answers"):
        store.add_disposition(sid, "call-a", a["id"], "supporter", "", {"q": 3})  # type: ignore[dict-item]
    assert store.dispositions(cid) == []
    saved = store.add_disposition(sid, "call-a", a["id"], "supporter", "nice", {"Vote?": "Yes"})
    assert store.answers(saved["id"]) == {"Vote?": "Yes"}
    assert store.contact(a["id"])["status"] == "done"  # type: ignore[index]
    store.add_disposition(sid, None, b["id"], "wrong_number", "", {})
    assert store.contact(b["id"])["status"] == "removed"  # type: ignore[index]


def test_stats_count_abandon_rate(store: Store) -> None:
    cid = campaign(store)
    store.add_contacts(cid, [{"phone": f"+1202555{100 + i:04d}"} for i in range(4)])
    for i, c in enumerate(store.claim_contacts(cid, 4, now=T0)):
        store.insert_call(f"k{i}", cid, c["id"], 1, f"k{i}", now=0)
    store.update_call("k0", bridged_at=1.0, answered_at=0.5)
    store.update_call("k1", bridged_at=1.0, answered_at=0.5)
    store.update_call("k2", abandoned=1, answered_at=0.5)
    # A machine put through and pulled back when the detector corrected itself: no conversation, no live answer.
    store.update_call("k3", bridged_at=1.0, answered_at=0.5, amd_status="MACHINE", outcome="machine")
    stats = store.campaign_stats(cid)
    assert stats["connected"] == 2 and stats["abandoned"] == 1 and stats["abandon_rate"] == round(1 / 3, 4)
    totals = results.call_totals_by_session(store, cid, now=10.0)
    assert sum(r["bridged"] for r in totals) == 2 and sum(r["live_answers"] for r in totals) == 3


def test_pacing_settings_are_validated(store: Store) -> None:
    with pytest.raises(StoreError, match="legal limit"):
        store.create_campaign("X", abandon_target=0.05)
    with pytest.raises(StoreError, match="unknown pacing settings"):
        store.create_campaign("X", pacing_params={"turbo": 1})
    cid = campaign(store, dial_mode="predictive", abandon_target=0.02, pacing_params={"min_attempts": 20})
    row = store.campaign(cid)
    assert row is not None and row["pacing_params"] == {"min_attempts": 20} and row["abandon_target"] == 0.02


def test_pacing_history_lists_finished_calls_with_disposition_time(store: Store) -> None:
    cid = campaign(store)
    store.add_contacts(cid, [{"phone": "+12025550101"}, {"phone": "+12025550102"}])
    sid = store.create_session(cid, "V")["id"]
    a, b = store.claim_contacts(cid, 2, now=T0)
    store.insert_call("ka", cid, a["id"], 1, "ka", now=100)
    store.insert_call("kb", cid, b["id"], 1, "kb", now=200)
    store.update_call("ka", ended_at=160.0, bridged_at=110.0)
    store.add_disposition(sid, "ka", a["id"], "talked", "", {})
    rows = store.pacing_history(cid, since=0)
    assert [r["id"] for r in rows] == ["ka"] and rows[0]["disposed_at"] is not None
    assert store.pacing_history(cid, since=150) == []


@pytest.mark.parametrize(
    ("attempts", "delay_s", "ok", "attempts_after"),
    [
        (1, 2 * 3600, True, 1),
        (3, 2 * 3600, True, 2),  # attempts used up: the appointment still gets its call
        (1, -60, False, 1),  # in the past
        (1, 31 * 86400, False, 1),  # too far ahead
    ],
)
def test_callback_is_an_appointment(
    tmp_path: Path, attempts: int, delay_s: float, ok: bool, attempts_after: int
) -> None:
    store = Store(tmp_path / "cb.db")
    cid = store.create_campaign("Callbacks", max_attempts=3)["id"]
    store.add_contacts(cid, [{"first_name": "Cal", "phone": "+12025550177"}])
    contact = store.contacts(cid)[0]
    store.conn.execute("UPDATE contacts SET attempts = ?, status = 'connected' WHERE id = ?", (attempts, contact["id"]))
    sid = store.create_session(cid, "Vol")["id"]
    when = time.time() + delay_s
    if not ok:
        with pytest.raises(StoreError):
            store.add_disposition(sid, None, contact["id"], "callback", "", {}, callback_at=when)
        assert store.dispositions(cid) == []
        return
    store.add_disposition(sid, None, contact["id"], "callback", "call after 6", {}, callback_at=when)
    after = store.contacts(cid)[0]
    assert after["status"] == "pending" and after["next_attempt_at"] == pytest.approx(when)
    assert after["attempts"] == attempts_after and after["last_outcome"] == "callback"
    # Not before its time; when it comes, calling hours still decide (see tests/test_claim.py).
    assert store.claim_contacts(cid, 5, when - 60) == []


def test_callback_needs_a_time_and_a_no_contact_code(tmp_path: Path) -> None:
    store = Store(tmp_path / "cb2.db")
    cid = store.create_campaign("Callbacks")["id"]
    store.add_contacts(cid, [{"phone": "+12025550178"}])
    contact = store.contacts(cid)[0]
    sid = store.create_session(cid, "Vol")["id"]
    with pytest.raises(StoreError, match="callback_at"):
        store.add_disposition(sid, None, contact["id"], "callback", "", {})
    with pytest.raises(StoreError, match="no-contact"):
        store.add_disposition(sid, None, contact["id"], "supporter", "", {}, callback_at=time.time() + 3600)
    assert "callback" in {d["code"] for d in store.disposition_codes(cid)}


def test_a_due_callback_goes_ahead_of_the_queue(tmp_path: Path) -> None:
    store = Store(tmp_path / "cb3.db")
    cid = store.create_campaign("Callbacks first", calling_hours_start="08:00", calling_hours_end="21:00")["id"]
    store.add_contacts(cid, [{"first_name": n, "phone": f"+1202555{1300 + i}"} for i, n in enumerate("ABC")])
    c = store.contacts(cid)[2]
    sid = store.create_session(cid, "Vol")["id"]
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
    store.conn.execute("UPDATE contacts SET attempts = 1 WHERE id = ?", (c["id"],))
    store.add_disposition(sid, None, c["id"], "callback", "", {}, callback_at=time.time() + 60)
    store.conn.execute("UPDATE contacts SET next_attempt_at = ? WHERE id = ?", (noon - 60, c["id"]))
    picked = store.claim_contacts(cid, 1, noon)
    assert [p["first_name"] for p in picked] == ["C"]


def test_a_result_saved_while_talking_survives_the_hangup(tmp_path: Path) -> None:
    """Save & Next while the voter is still on: the disposition lands first, then the call ends."""
    store = Store(tmp_path / "order.db")
    cid = store.create_campaign("Order")["id"]
    store.add_contacts(cid, [{"phone": "+12025550188"}, {"phone": "+12025550189"}])
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
    first, second = store.claim_contacts(cid, 2, noon)
    sid = store.create_session(cid, "Vol")["id"]
    store.add_disposition(sid, None, first["id"], "callback", "", {}, callback_at=time.time() + 600)
    store.add_disposition(sid, None, second["id"], "supporter", "", {})
    for c in (first, second):
        store.release_contact(c["id"], "connected", noon + 30)
    after = {c["id"]: c for c in store.contacts(cid)}
    assert after[first["id"]]["status"] == "pending" and after[first["id"]]["last_outcome"] == "callback"
    assert after[second["id"]]["status"] == "done" and after[second["id"]]["last_outcome"] == "supporter"


def test_preview_is_not_a_dial_mode(store: Store) -> None:
    with pytest.raises(StoreError, match="dial_mode must be one of: power, predictive, personal"):
        store.create_campaign("Preview", dial_mode="preview")
    cid = store.create_campaign("Power")["id"]
    with pytest.raises(StoreError):
        store.update_campaign(cid, dial_mode="preview")
    assert store.campaign(cid)["dial_mode"] == "power"  # type: ignore[index]
