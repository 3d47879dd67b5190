"""Who to call next: calling hours, attempts, recycling, callbacks, households, do-not-call, no double dial."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bridge.listengine import (
    AttemptOutcome,
    AttemptRecord,
    Contact,
    EffortRules,
    Skip,
    effort_window,
    eligibility,
    in_calling_hours,
    next_contacts,
    next_window_start,
    zones_for,
)

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
# 212 is Manhattan (Eastern), 415 San Francisco (Pacific), 808 Hawaii.
NYC = "+12125550100"
SFO = "+14155550100"
HNL = "+18085550100"
RULES = EffortRules()


def at(zone: ZoneInfo, hh: int, mm: int = 0, day: int = 3) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=zone)


def contact(cid: str = "c1", phone: str = NYC, **kw: object) -> Contact:
    return Contact(cid, phone, **kw)  # type: ignore[arg-type]


def tries(*items: tuple[AttemptOutcome, datetime]) -> tuple[AttemptRecord, ...]:
    return tuple(AttemptRecord(when, outcome) for outcome, when in items)


def test_zones_from_number() -> None:
    assert zones_for(NYC) == ("America/New_York",)
    assert zones_for(SFO) == ("America/Los_Angeles",)
    assert zones_for(NYC, "America/Chicago") == ("America/New_York", "America/Chicago")
    assert zones_for("+1", None) == ()


@pytest.mark.parametrize(
    ("phone", "address_tz", "now", "ok"),
    [
        (NYC, None, at(NY, 7, 59), False),
        (NYC, None, at(NY, 8, 0), True),
        (NYC, None, at(NY, 20, 59), True),
        (NYC, None, at(NY, 21, 0), False),
        (NYC, None, at(NY, 23, 30), False),
        # 8:30 in New York is 5:30 in San Francisco.
        (SFO, None, at(NY, 8, 30), False),
        (SFO, None, at(NY, 11, 0), True),
        # 9pm+ in New York is still calling time in San Francisco.
        (SFO, None, at(NY, 23, 30), True),
        # Number says Eastern, address says Pacific: the narrower window, 11am-9pm Eastern.
        (NYC, "America/Los_Angeles", at(NY, 9, 0), False),
        (NYC, "America/Los_Angeles", at(NY, 11, 0), True),
        (NYC, "America/Los_Angeles", at(NY, 20, 59), True),
        (NYC, "America/Los_Angeles", at(NY, 21, 0), False),
        # Number says Pacific, address says Eastern: 8am Pacific to 9pm Eastern (= 6pm Pacific).
        (SFO, "America/New_York", at(LA, 8, 0), True),
        (SFO, "America/New_York", at(LA, 17, 59), True),
        (SFO, "America/New_York", at(LA, 18, 0), False),
        (HNL, None, at(NY, 13, 0), True),  # 8am in Honolulu (no DST)
        (HNL, None, at(NY, 12, 59), False),
    ],
)
def test_calling_hours(phone: str, address_tz: str | None, now: datetime, ok: bool) -> None:
    c = contact(phone=phone, address_tz=address_tz)
    skip, _ = eligibility(c, RULES, now)
    assert (skip is None) is ok
    if not ok:
        assert skip is Skip.OUTSIDE_HOURS


def test_calling_hours_across_dst_change() -> None:
    # 1 Nov 2026 US DST ends: 13:00 UTC is 8:00 EST on 2 Nov but 9:00 EDT on 31 Oct.
    assert in_calling_hours(["America/New_York"], datetime(2026, 11, 2, 13, 0, tzinfo=UTC), RULES)
    assert not in_calling_hours(["America/New_York"], datetime(2026, 11, 2, 12, 59, tzinfo=UTC), RULES)
    assert in_calling_hours(["America/New_York"], datetime(2026, 10, 31, 12, 0, tzinfo=UTC), RULES)


def test_last_call_margin_narrows_the_end() -> None:
    rules = EffortRules(last_call_margin=timedelta(minutes=10))
    assert in_calling_hours(["America/New_York"], at(NY, 20, 49), rules)
    assert not in_calling_hours(["America/New_York"], at(NY, 20, 50), rules)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        next_contacts([contact()], RULES, datetime(2026, 11, 3, 12, 0), limit=1)


def test_unknown_zone_is_not_called() -> None:
    skip, _ = eligibility(contact(phone="+999123"), RULES, at(NY, 12))
    assert skip is Skip.UNKNOWN_ZONE


NOON = at(NY, 12)


@pytest.mark.parametrize(
    ("attempts", "callback_at", "expected"),
    [
        ((), None, (None, "fresh")),
        (tries((AttemptOutcome.BUSY, NOON - timedelta(minutes=5))), None, (Skip.RECYCLE, "")),
        (tries((AttemptOutcome.BUSY, NOON - timedelta(minutes=11))), None, (None, "retry")),
        (tries((AttemptOutcome.NO_ANSWER, NOON - timedelta(minutes=11))), None, (Skip.RECYCLE, "")),
        (tries((AttemptOutcome.NO_ANSWER, NOON - timedelta(hours=3))), None, (None, "retry")),
        (tries((AttemptOutcome.MACHINE, NOON - timedelta(hours=3))), None, (Skip.RECYCLE, "")),
        (tries((AttemptOutcome.ABANDONED, NOON - timedelta(hours=5))), None, (Skip.RECYCLE, "")),
        (
            tries(*[(AttemptOutcome.NO_ANSWER, NOON - timedelta(days=d)) for d in (1, 2, 3)]),
            None,
            (Skip.MAX_ATTEMPTS, ""),
        ),
        (tries((AttemptOutcome.CONTACTED, NOON - timedelta(days=2))), None, (Skip.DONE, "")),
        (tries((AttemptOutcome.REFUSED, NOON - timedelta(days=2))), None, (Skip.DONE, "")),
        (tries((AttemptOutcome.WRONG_NUMBER, NOON - timedelta(days=2))), None, (Skip.DONE, "")),
        (tries((AttemptOutcome.DO_NOT_CALL, NOON - timedelta(days=2))), None, (Skip.DONE, "")),
        # Callbacks: pending until due, then first in line even past the attempt limit.
        (
            tries((AttemptOutcome.CALLBACK, NOON - timedelta(hours=1))),
            NOON + timedelta(hours=1),
            (Skip.CALLBACK_PENDING, ""),
        ),
        (tries((AttemptOutcome.CALLBACK, NOON - timedelta(hours=1))), NOON, (None, "callback")),
        (
            tries(
                *[(AttemptOutcome.NO_ANSWER, NOON - timedelta(days=d)) for d in (1, 2)],
                (AttemptOutcome.CALLBACK, NOON - timedelta(hours=2)),
            ),
            NOON - timedelta(minutes=1),
            (None, "callback"),
        ),
        # A callback already made after it fell due is not made again.
        (
            tries(
                (AttemptOutcome.CALLBACK, NOON - timedelta(hours=3)),
                (AttemptOutcome.NO_ANSWER, NOON - timedelta(minutes=30)),
            ),
            NOON - timedelta(hours=1),
            (Skip.RECYCLE, ""),
        ),
    ],
)
def test_attempts_recycle_and_callbacks(
    attempts: tuple[AttemptRecord, ...], callback_at: datetime | None, expected: tuple[Skip | None, str]
) -> None:
    assert eligibility(contact(attempts=attempts, callback_at=callback_at), RULES, NOON) == expected


def test_busy_recycles_sooner_than_no_answer() -> None:
    assert RULES.recycle[AttemptOutcome.BUSY] < RULES.recycle[AttemptOutcome.NO_ANSWER]


def test_do_not_call_is_honoured_across_efforts() -> None:
    # The number asked to be removed in another effort: the caller passes the global list.
    c = contact()
    assert eligibility(c, RULES, NOON, do_not_call={NYC}) == (Skip.DO_NOT_CALL, "")
    assert next_contacts([c, contact("c2", SFO)], RULES, at(NY, 14), limit=5, do_not_call=[NYC])[0].phone == SFO
    assert next_contacts([c], RULES, at(NY, 14), limit=5, do_not_call=[NYC]) == []


def test_no_number_dialled_twice_at_once() -> None:
    a, b = contact("a", NYC), contact("b", NYC)
    picks = next_contacts([a, b, contact("c", "+12125550199")], RULES, NOON, limit=10)
    phones = [p.phone for p in picks]
    assert len(phones) == len(set(phones)) == 2
    # Already ringing in this or another effort: not picked at all.
    assert [p.contact_id for p in next_contacts([a, b], RULES, NOON, limit=10, dialing={NYC})] == []


def test_households_one_call_per_shared_number() -> None:
    rules = EffortRules(one_call_per_household=True)
    members = [contact("m2", NYC), contact("m1", NYC), contact("solo", "+12125550199")]
    picks = next_contacts(members, rules, NOON, limit=10)
    assert len(picks) == 2
    house = next(p for p in picks if p.phone == NYC)
    assert house.contact_id == "m1"
    assert set(house.household) == {"m1", "m2"}


def test_households_finish_together_and_share_attempts() -> None:
    rules = EffortRules(one_call_per_household=True, max_attempts=2)
    day = timedelta(days=1)
    done = [
        contact("m1", NYC, attempts=tries((AttemptOutcome.CONTACTED, NOON - day))),
        contact("m2", NYC),
    ]
    assert next_contacts(done, rules, NOON, limit=10) == []
    tired = [
        contact("m1", NYC, attempts=tries((AttemptOutcome.NO_ANSWER, NOON - day))),
        contact("m2", NYC, attempts=tries((AttemptOutcome.NO_ANSWER, NOON - 2 * day))),
    ]
    assert next_contacts(tired, rules, NOON, limit=10) == []
    # Without households each member is its own contact with one attempt left (still one call per number).
    assert [p.contact_id for p in next_contacts(tired, EffortRules(max_attempts=2), NOON, limit=10)] == ["m2"]
    assert len(next_contacts(done, EffortRules(), NOON, limit=10)) == 1


def test_household_callback_asks_for_the_right_person() -> None:
    rules = EffortRules(one_call_per_household=True)
    members = [
        contact("m1", NYC),
        contact(
            "m2",
            NYC,
            attempts=tries((AttemptOutcome.CALLBACK, NOON - timedelta(hours=2))),
            callback_at=NOON - timedelta(minutes=5),
        ),
    ]
    (pick,) = next_contacts(members, rules, NOON, limit=10)
    assert (pick.contact_id, pick.reason) == ("m2", "callback")


def test_order_callbacks_then_fewest_attempts_then_oldest() -> None:
    old = NOON - timedelta(days=2)
    newer = NOON - timedelta(days=1)
    cs = [
        contact("retry-new", "+12125550101", attempts=tries((AttemptOutcome.NO_ANSWER, newer))),
        contact("retry-old", "+12125550102", attempts=tries((AttemptOutcome.NO_ANSWER, old))),
        contact("fresh", "+12125550103"),
        contact("cb", "+12125550104", attempts=tries((AttemptOutcome.CALLBACK, old)), callback_at=newer),
    ]
    assert [p.contact_id for p in next_contacts(cs, RULES, NOON, limit=10)] == [
        "cb",
        "fresh",
        "retry-old",
        "retry-new",
    ]
    assert [p.contact_id for p in next_contacts(cs, RULES, NOON, limit=2)] == ["cb", "fresh"]


def test_custom_window() -> None:
    rules = EffortRules(calling_start=time(10, 0), calling_end=time(20, 0))
    assert eligibility(contact(), rules, at(NY, 9, 59))[0] is Skip.OUTSIDE_HOURS
    assert eligibility(contact(), rules, at(NY, 10, 0))[0] is None


@pytest.mark.parametrize(
    ("start", "end", "window"),
    [
        ("08:00", "21:00", (time(8), time(21))),
        ("09:30", "17:00", (time(9, 30), time(17))),
        ("06:00", "23:00", (time(8), time(21))),  # an effort may narrow the legal window, never widen it
        ("nonsense", None, (time(8), time(21))),
        ("25:00", "7:5", (time(8), time(7, 5))),  # ends before it starts: an empty window, no calls
    ],
)
def test_effort_window_is_clamped_to_the_legal_one(start: str, end: str | None, window: tuple[time, time]) -> None:
    assert effort_window(start, end) == window


@pytest.mark.parametrize(
    ("phone", "now", "opens"),
    [
        (NYC, at(NY, 12), at(NY, 12)),  # already open
        (NYC, at(NY, 6, 30), at(NY, 8)),
        (NYC, at(NY, 21, 15), at(NY, 8, day=4)),
        (SFO, at(NY, 9), at(LA, 8)),
        (HNL, at(NY, 6), at(ZoneInfo("Pacific/Honolulu"), 8)),
        ("+19075550100", at(NY, 12), at(ZoneInfo("America/Adak"), 8)),  # Alaska: the later of its two zones
    ],
)
def test_next_window_start(phone: str, now: datetime, opens: datetime) -> None:
    got = next_window_start(zones_for(phone), now, RULES)
    assert got == opens
    assert got is not None and in_calling_hours(zones_for(phone), got, RULES)


def test_next_window_start_without_zone_or_overlap() -> None:
    assert next_window_start((), at(NY, 12), RULES) is None
    # 9:00-17:00 in New York and in Tokyo never overlap.
    office = EffortRules(calling_start=time(9), calling_end=time(17))
    assert next_window_start(("America/New_York", "Asia/Tokyo"), at(NY, 12), office) is None
    assert not in_calling_hours(("America/New_York", "Asia/Tokyo"), at(NY, 12), office)
    with pytest.raises(ValueError):
        next_window_start(("America/New_York",), datetime(2026, 11, 3, 12), RULES)


def test_a_cancelled_call_counts_for_nothing() -> None:
    """Hung up by us while it rang (its volunteer left): no attempt spent, no recycle wait, the callback stands —
    the same as store.db.release_contact does to the stored contact (tests/test_claim.py)."""
    max_two = EffortRules(max_attempts=2)
    cancelled = (AttemptOutcome.CANCELLED, NOON - timedelta(seconds=5))
    once = tries((AttemptOutcome.NO_ANSWER, NOON - timedelta(days=1)), cancelled)
    assert eligibility(contact(attempts=once), max_two, NOON) == (None, "retry")
    assert eligibility(contact(attempts=tries(cancelled)), RULES, NOON) == (None, "fresh")
    due = tries((AttemptOutcome.CALLBACK, NOON - timedelta(hours=1)), cancelled)
    assert eligibility(contact(attempts=due, callback_at=NOON - timedelta(minutes=10)), RULES, NOON) == (
        None, "callback")
    # Fewest attempts first: a cancelled call does not push a contact down the queue.
    fresh = contact("a", NYC, attempts=tries(cancelled, cancelled))
    tried = contact("b", SFO, attempts=tries((AttemptOutcome.NO_ANSWER, NOON - timedelta(days=1))))
    picks = next_contacts([tried, fresh], RULES, at(NY, 14), limit=2)
    assert [p.contact_id for p in picks] == ["a", "b"]
