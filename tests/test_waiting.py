"""Why a caller waits: the list's outlook by the claim's own rules (store.db.queue_outlook) and the one reason the
caller's screen and the dashboard both show (bridge.waiting), with a fixed clock."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge import waiting as wt
from store.db import Store

CHI = ZoneInfo("America/Chicago")
CHICAGO = "+13125550100"
CHICAGO2 = "+13125550101"
DC = "+12025550101"


def at(hh: int, mm: int = 0, tz: ZoneInfo = CHI, day: int = 25) -> float:
    return datetime(2026, 11, day, hh, mm, tzinfo=tz).timestamp()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "pb.db")


def effort(store: Store, **kw: object) -> int:
    return int(store.create_campaign("Waiting", org_name="Org", **kw)["id"])


def reason(store: Store, cid: int, now: float, **live: Any) -> wt.Waiting:
    campaign = store.campaign(cid)
    assert campaign is not None
    return wt.explain(campaign, lambda: store.queue_outlook(cid, now), wt.Live(**live), now)


@pytest.mark.parametrize("claimed_first", [False, True])
def test_outside_calling_hours_until_nine_central(store: Store, claimed_first: bool) -> None:
    """Every number is in Chicago and the effort calls from 9:00: at 6:30 there the reason is the hours, and when
    they open, in the contacts' own zone — whether or not a claim has already put them off."""
    cid = effort(store, calling_hours_start="09:00")
    store.add_contacts(cid, [{"phone": CHICAGO}, {"phone": CHICAGO2}])
    now = at(6, 30)
    if claimed_first:
        assert store.claim_contacts(cid, 2, now) == []  # puts both off until 9:00 Chicago
    assert store.queue_outlook(cid, now) == {"kind": "outside_hours", "at": at(9, 0), "zone": "America/Chicago"}
    w = reason(store, cid, now)
    assert w.code == "outside_hours" and w.until == at(9, 0) and not w.dialing
    assert "outside calling hours" in w.text and "9:00 AM Central time (in 2 h 30 min)" in w.text
    # After 9:00 the same list is callable.
    assert reason(store, cid, at(9, 0)).code == "dialing"


def test_the_earliest_window_wins_across_zones(store: Store) -> None:
    cid = effort(store)
    store.add_contacts(cid, [{"phone": CHICAGO}, {"phone": DC}])
    # 6:30 in Chicago is 7:30 in Washington: the east coast opens first, at 8:00 there.
    w = reason(store, cid, at(6, 30))
    assert w.until == at(8, 0, ZoneInfo("America/New_York")) and "8:00 AM Eastern time (in 30 min)" in w.text


def test_late_evening_names_the_next_day(store: Store) -> None:
    cid = effort(store)
    store.add_contacts(cid, [{"phone": CHICAGO}])
    w = reason(store, cid, at(22, 0))
    assert w.code == "outside_hours" and "tomorrow 8:00 AM Central time (in 10 h)" in w.text


def test_list_exhausted_retries_and_callbacks(store: Store) -> None:
    cid = effort(store, max_attempts=1, recycle_noanswer_s=3600)
    store.add_contacts(cid, [{"phone": CHICAGO}])
    noon = at(12, 0)
    (c,) = store.claim_contacts(cid, 1, noon)
    assert reason(store, cid, noon).code == "in_calls", "nothing pending, the last one being dialled"
    store.release_contact(c["id"], "no_answer", noon + 30)
    w = reason(store, cid, noon + 60)
    assert w.code == "exhausted" and "nobody is left to call" in w.text and w.until is None

    cid2 = effort(store, max_attempts=3, recycle_noanswer_s=3600)
    store.add_contacts(cid2, [{"phone": CHICAGO}])
    (c,) = store.claim_contacts(cid2, 1, noon)
    store.release_contact(c["id"], "no_answer", noon + 30)
    w = reason(store, cid2, noon + 60)
    assert w.code == "recycle" and w.until == noon + 3630 and "1:00 PM Central time (in 1 h)" in w.text

    store.conn.execute(
        "UPDATE contacts SET last_outcome = 'callback', next_attempt_at = ? WHERE id = ?", (noon + 1800, c["id"])
    )
    w = reason(store, cid2, noon + 60)
    assert w.code == "callback" and w.until == noon + 1800 and "12:30 PM Central time" in w.text


def test_do_not_call_numbers_leave_nobody(store: Store) -> None:
    cid = effort(store)
    store.add_contacts(cid, [{"phone": CHICAGO}])
    store.conn.execute("INSERT INTO do_not_call (phone, reason, created_at) VALUES (?, 'test', 0)", (CHICAGO,))
    assert reason(store, cid, at(12, 0)).code == "exhausted"


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"status": "paused"}, "paused", "paused"),
        ({"status": "closed"}, "closed", "closed"),
        ({"status": "draft"}, "draft", "not finished"),
        ({"start_at": at(18, 0)}, "not_started", "starts calling at"),
        ({"end_at": at(11, 0)}, "window_over", "over"),
        ({"dial_mode": "personal"}, "caller_dials", "themselves"),
    ],
)
def test_the_effort_itself(store: Store, fields: dict[str, Any], code: str, words: str) -> None:
    cid = effort(store, **fields)
    store.add_contacts(cid, [{"phone": CHICAGO}])
    w = reason(store, cid, at(12, 0))
    assert w.code == code and words in w.text
    if code == "not_started":
        assert w.until == at(18, 0)


def test_live_reasons_come_before_the_list(store: Store) -> None:
    cid = effort(store)
    store.add_contacts(cid, [{"phone": CHICAGO}])
    noon = at(12, 0)
    assert reason(store, cid, noon, asterisk_up=False).code == "asterisk_down"
    calling = reason(store, cid, noon, in_flight=2)
    assert calling.code == "dialing" and calling.dialing and calling.text == "Calling 2 numbers…"
    held = reason(store, cid, noon, in_flight=1, plan_reason="abandon budget spent: 1:1")
    assert held.code == "governor" and "abandon rate is at its limit" in held.text and held.dialing
    trunk = wt.TrunkWatch()
    for _ in range(wt.TRUNK_FAILURES):
        assert trunk.error(cid) is None
        trunk.failed(cid, "congestion: Switching equipment congestion")
    down = reason(store, cid, noon, trunk_error=trunk.error(cid))
    assert down.code == "trunk_down" and "Switching equipment congestion" in down.text
    trunk.ok(cid)
    assert trunk.error(cid) is None
    assert reason(store, cid, noon, callers=0).code == "no_callers"


class CountingStore:
    def __init__(self, store: Store) -> None:
        self.store, self.asked = store, 0

    def queue_outlook(self, campaign_id: int, now: float) -> dict[str, Any]:
        self.asked += 1
        return self.store.queue_outlook(campaign_id, now)


def test_the_lists_answer_is_cached_per_effort(store: Store) -> None:
    cid = effort(store)
    store.add_contacts(cid, [{"phone": CHICAGO}])
    counting = CountingStore(store)
    reasons = wt.Reasons()
    t = at(6, 0)
    for k in range(12):  # a push every half second
        assert reasons.outlook(counting, cid, t + k * 0.5)["kind"] == "outside_hours"
    assert counting.asked == 2, "once, and again after CACHE_S"
    reasons.forget(cid)
    reasons.outlook(counting, cid, t + 5)
    assert counting.asked == 3
    # The moment it named has come: asked again at once.
    assert reasons.outlook(counting, cid, at(8, 0))["kind"] == "due" and counting.asked == 4
