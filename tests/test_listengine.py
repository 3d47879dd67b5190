"""Who to call next: calling hours, attempts, recycling, callbacks, households, do-not-call, no double dial."""

from __future__ import annotations

import types
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import store.db as store_db
from store.db import Store
from store.listengine import (
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
from store.outcomes import RECYCLE_OF, Outcome, Recycle, recycle_column

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


def tries(*items: tuple[Outcome, datetime]) -> tuple[AttemptRecord, ...]:
    return tuple(AttemptRecord(when, outcome) for outcome, when in items)


# ------------------------------------------------------------------ one table, two implementations
# The live dialer does not call next_contacts: it claims from the store (store.db.Store.claim_contacts, SQL for
# speed). The tables below that say who is dialled run against both; the store gets the contacts, their attempts
# replayed at their times through the store's own writes (the claim's, release_contact, add_disposition), and its
# claim at ``now`` answers.
Picks = Callable[..., list[tuple[str, str]]]
# The volunteer's result behind each result outcome: a code of the default catalogue with that effect.
RESULT_CODE = {
    Outcome.CONTACTED: "talked",
    Outcome.REFUSED: "opposed",  # a final refusal (the catalogue's "refused" code is a no-contact kind, retried)
    Outcome.WRONG_NUMBER: "wrong_number",
    Outcome.DISCONNECTED: "disconnected",
    Outcome.DO_NOT_CALL: "hostile",
    Outcome.CALLBACK: "callback",
}


def engine_picks(
    contacts: Sequence[Contact],
    rules: EffortRules,
    now: datetime,
    *,
    limit: int,
    do_not_call: Collection[str] = (),
    dialing: Collection[str] = (),
) -> list[tuple[str, str]]:
    picks = next_contacts(contacts, rules, now, limit=limit, do_not_call=do_not_call, dialing=dialing)
    return [(p.contact_id, p.reason) for p in picks]


class LiveClaim:
    """next_contacts' question answered by Store.claim_contacts."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp_path
        self.clock = [0.0]
        self.n = 0
        # add_disposition stamps (and checks a callback time against) the store's clock: the replay's time.
        monkeypatch.setattr(store_db, "time", types.SimpleNamespace(time=lambda: self.clock[0]))

    def __call__(
        self,
        contacts: Sequence[Contact],
        rules: EffortRules,
        now: datetime,
        *,
        limit: int,
        do_not_call: Collection[str] = (),
        dialing: Collection[str] = (),
    ) -> list[tuple[str, str]]:
        assert rules.last_call_margin == timedelta(0), "the store has no last-call margin"
        self.n += 1
        self.clock[0] = now.timestamp() - 40 * 86400
        st = Store(self.tmp / f"claim{self.n}.db")
        sample = {kind: next(o for o, k in RECYCLE_OF.items() if k is kind) for kind in Recycle}
        effort = int(
            st.create_campaign(
                "Rules",
                org_name="Org",
                max_attempts=rules.max_attempts,
                household_once=int(rules.one_call_per_household),
                calling_hours_start=rules.calling_start.strftime("%H:%M"),
                calling_hours_end=rules.calling_end.strftime("%H:%M"),
                **{recycle_column(kind): int(rules.recycle[o].total_seconds()) for kind, o in sample.items()},
            )["id"]
        )
        session = st.create_session(effort, "Volunteer")["id"]
        st.add_contacts(effort, [{"phone": c.phone} for c in contacts])
        ids = {row["id"]: c for row, c in zip(st.contacts(effort), contacts, strict=True)}
        sid = {c.id: i for i, c in ids.items()}
        history = sorted(
            ((a.at, i, c, a.outcome) for c in contacts for i, a in enumerate(c.attempts)), key=lambda x: (x[0], x[1])
        )
        for when, _, c, outcome in history:
            t = self.clock[0] = when.timestamp()
            # What the claim writes for a contact it picks.
            st.conn.execute(
                "UPDATE contacts SET status = 'dialing', attempts = attempts + 1 WHERE id = ?", (sid[c.id],)
            )
            if outcome in RESULT_CODE:
                st.release_contact(sid[c.id], Outcome.CONNECTED, t)
                cb = c.callback_at.timestamp() if outcome is Outcome.CALLBACK and c.callback_at else None
                st.add_disposition(session, None, sid[c.id], RESULT_CODE[outcome], "", {}, cb)
            else:
                st.release_contact(sid[c.id], outcome, t)
        self.clock[0] = now.timestamp()
        for phone in do_not_call:
            st._do_not_call(phone, "test", None, now.timestamp())
        if dialing:
            other = int(st.create_campaign("Other", org_name="Org")["id"])
            st.add_contacts(other, [{"phone": p} for p in dialing])
            st.conn.execute("UPDATE contacts SET status = 'dialing' WHERE campaign_id = ?", (other,))
        out = []
        for row in st.claim_contacts(effort, limit, now.timestamp()):
            c = ids[row["id"]]
            reason = (
                "callback" if row["last_outcome"] == Outcome.CALLBACK else "fresh" if row["attempts"] == 1 else "retry"
            )
            out.append((c.id, reason))
        st.db.close()
        return out


@pytest.fixture(params=["listengine", "live claim"])
def picks(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Picks:
    if request.param == "listengine":
        return engine_picks
    return LiveClaim(tmp_path, monkeypatch)


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


@pytest.mark.parametrize(
    ("phone", "now", "ok"),
    [
        (NYC, at(NY, 7, 59), False),
        (NYC, at(NY, 8, 0), True),
        (NYC, at(NY, 21, 0), False),
        (SFO, at(NY, 8, 30), False),
        (SFO, at(NY, 23, 30), True),
        (HNL, at(NY, 12, 59), False),
        (HNL, at(NY, 13, 0), True),
        ("+999123", at(NY, 12), False),  # no known zone: never guessed
    ],
)
def test_calling_hours_live_and_engine(picks: Picks, phone: str, now: datetime, ok: bool) -> None:
    assert picks([contact(phone=phone)], RULES, now, limit=1) == ([("c1", "fresh")] if ok else [])
    narrow = EffortRules(calling_start=time(10, 0), calling_end=time(20, 0))
    assert picks([contact(phone=NYC)], narrow, at(NY, 9, 59), limit=1) == []


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
        (tries((Outcome.BUSY, NOON - timedelta(minutes=5))), None, (Skip.RECYCLE, "")),
        (tries((Outcome.BUSY, NOON - timedelta(minutes=11))), None, (None, "retry")),
        (tries((Outcome.NO_ANSWER, NOON - timedelta(minutes=11))), None, (Skip.RECYCLE, "")),
        (tries((Outcome.NO_ANSWER, NOON - timedelta(minutes=59))), None, (Skip.RECYCLE, "")),
        (tries((Outcome.NO_ANSWER, NOON - timedelta(hours=1))), None, (None, "retry")),
        (tries((Outcome.MACHINE, NOON - timedelta(minutes=119))), None, (Skip.RECYCLE, "")),
        (tries((Outcome.VOICEMAIL_LEFT, NOON - timedelta(hours=2))), None, (None, "retry")),
        (tries((Outcome.CONGESTION, NOON - timedelta(minutes=10))), None, (None, "retry")),
        (tries((Outcome.ABANDONED, NOON - timedelta(hours=5))), None, (Skip.RECYCLE, "")),
        (tries((Outcome.HANGUP_BEFORE_CONNECT, NOON - timedelta(hours=23))), None, (Skip.RECYCLE, "")),
        (tries((Outcome.ABANDONED, NOON - timedelta(days=1))), None, (None, "retry")),
        (tries((Outcome.UNALLOCATED, NOON - timedelta(days=2))), None, (Skip.DONE, "")),
        # Put through, the volunteer's result not saved yet.
        (tries((Outcome.CONNECTED, NOON - timedelta(minutes=3))), None, (Skip.DIALING, "")),
        (
            tries(*[(Outcome.NO_ANSWER, NOON - timedelta(days=d)) for d in (1, 2, 3)]),
            None,
            (Skip.MAX_ATTEMPTS, ""),
        ),
        (tries((Outcome.CONTACTED, NOON - timedelta(days=2))), None, (Skip.DONE, "")),
        (tries((Outcome.REFUSED, NOON - timedelta(days=2))), None, (Skip.DONE, "")),
        (tries((Outcome.WRONG_NUMBER, NOON - timedelta(days=2))), None, (Skip.DONE, "")),
        (tries((Outcome.DO_NOT_CALL, NOON - timedelta(days=2))), None, (Skip.DONE, "")),
        # Callbacks: pending until due, then first in line even past the attempt limit.
        (
            tries((Outcome.CALLBACK, NOON - timedelta(hours=1))),
            NOON + timedelta(hours=1),
            (Skip.CALLBACK_PENDING, ""),
        ),
        (tries((Outcome.CALLBACK, NOON - timedelta(hours=1))), NOON, (None, "callback")),
        (
            tries(
                *[(Outcome.NO_ANSWER, NOON - timedelta(days=d)) for d in (1, 2)],
                (Outcome.CALLBACK, NOON - timedelta(hours=2)),
            ),
            NOON - timedelta(minutes=1),
            (None, "callback"),
        ),
        # A callback already made after it fell due is not made again.
        (
            tries(
                (Outcome.CALLBACK, NOON - timedelta(hours=3)),
                (Outcome.NO_ANSWER, NOON - timedelta(minutes=30)),
            ),
            NOON - timedelta(hours=1),
            (Skip.RECYCLE, ""),
        ),
    ],
)
def test_attempts_recycle_and_callbacks(
    picks: Picks, attempts: tuple[AttemptRecord, ...], callback_at: datetime | None, expected: tuple[Skip | None, str]
) -> None:
    c = contact(attempts=attempts, callback_at=callback_at)
    skip, reason = expected
    assert picks([c], RULES, NOON, limit=1) == ([] if skip else [("c1", reason)])
    assert eligibility(c, RULES, NOON) == expected


def test_busy_recycles_sooner_than_no_answer() -> None:
    assert RULES.recycle[Outcome.BUSY] < RULES.recycle[Outcome.NO_ANSWER]


def test_do_not_call_is_honoured_across_efforts(picks: Picks) -> None:
    # The number asked to be removed in another effort: the caller passes the global list.
    c = contact()
    assert eligibility(c, RULES, NOON, do_not_call={NYC}) == (Skip.DO_NOT_CALL, "")
    assert picks([c, contact("c2", SFO)], RULES, at(NY, 14), limit=5, do_not_call=[NYC]) == [("c2", "fresh")]
    assert picks([c], RULES, at(NY, 14), limit=5, do_not_call=[NYC]) == []


def test_no_number_dialled_twice_at_once(picks: Picks) -> None:
    a, b = contact("a", NYC), contact("b", NYC)
    got = picks([a, b, contact("c", "+12125550199")], RULES, NOON, limit=10)
    assert len(got) == 2 and {cid for cid, _ in got} in ({"a", "c"}, {"b", "c"})
    # Already ringing in this or another effort: not picked at all.
    assert picks([a, b], RULES, NOON, limit=10, dialing={NYC}) == []


def test_households_one_call_per_shared_number(picks: Picks) -> None:
    rules = EffortRules(one_call_per_household=True)
    members = [contact("m1", NYC), contact("m2", NYC), contact("solo", "+12125550199")]
    got = picks(members, rules, NOON, limit=10)
    assert got == [("m1", "fresh"), ("solo", "fresh")]
    (house,) = (p for p in next_contacts(members, rules, NOON, limit=10) if p.phone == NYC)
    assert set(house.household) == {"m1", "m2"}


def test_households_finish_together(picks: Picks) -> None:
    rules = EffortRules(one_call_per_household=True, max_attempts=2)
    day = timedelta(days=1)
    done = [
        contact("m1", NYC, attempts=tries((Outcome.CONTACTED, NOON - day))),
        contact("m2", NYC),
    ]
    assert picks(done, rules, NOON, limit=10) == []
    # Without households each member is its own contact (still one call per number).
    assert len(picks(done, EffortRules(), NOON, limit=10)) == 1


def test_households_share_attempts(picks: Picks) -> None:
    rules = EffortRules(one_call_per_household=True, max_attempts=2)
    day = timedelta(days=1)
    tired = [
        contact("m1", NYC, attempts=tries((Outcome.NO_ANSWER, NOON - day))),
        contact("m2", NYC, attempts=tries((Outcome.NO_ANSWER, NOON - 2 * day))),
    ]
    assert picks(tired, rules, NOON, limit=10) == []
    # Without households each member is its own contact with one attempt left (still one call per number).
    assert picks(tired, EffortRules(max_attempts=2), NOON, limit=10) == [("m2", "retry")]
    # A callback one of them asked for is still made: it bypasses the limit.
    called = tries((Outcome.CALLBACK, NOON - day + timedelta(hours=3)))
    asked = [tired[0], contact("m2", NYC, attempts=(*tired[1].attempts, *called), callback_at=NOON - day / 2)]
    assert picks(asked, rules, NOON, limit=10) == [("m2", "callback")]


def test_household_callback_asks_for_the_right_person(picks: Picks) -> None:
    rules = EffortRules(one_call_per_household=True)
    members = [
        contact("m1", NYC),
        contact(
            "m2",
            NYC,
            attempts=tries((Outcome.CALLBACK, NOON - timedelta(hours=2))),
            callback_at=NOON - timedelta(minutes=5),
        ),
    ]
    assert picks(members, rules, NOON, limit=10) == [("m2", "callback")]


def test_order_callbacks_then_fewest_attempts_then_longest_due(picks: Picks) -> None:
    old = NOON - timedelta(days=2)
    newer = NOON - timedelta(days=1)
    cs = [
        contact("retry-new", "+12125550101", attempts=tries((Outcome.NO_ANSWER, newer))),
        contact("retry-old", "+12125550102", attempts=tries((Outcome.NO_ANSWER, old))),
        contact("fresh", "+12125550103"),
        contact("cb", "+12125550104", attempts=tries((Outcome.CALLBACK, old)), callback_at=newer),
        # Tried after retry-new, but due before it (busy waits 10 min, no answer 1 h): the queue is in order of
        # when each fell due, as the store's index keeps it.
        contact("busy", "+12125550105", attempts=tries((Outcome.BUSY, newer + timedelta(minutes=30)))),
    ]
    assert [cid for cid, _ in picks(cs, RULES, NOON, limit=10)] == ["cb", "fresh", "retry-old", "busy", "retry-new"]
    assert [cid for cid, _ in picks(cs, RULES, NOON, limit=2)] == ["cb", "fresh"]


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


def test_a_cancelled_call_counts_for_nothing(picks: Picks) -> None:
    """Hung up by us while it rang (its volunteer left): no attempt spent, no recycle wait, the callback stands —
    in the engine and in the live claim (store.db.release_contact)."""
    max_two = EffortRules(max_attempts=2)
    cancelled = (Outcome.CANCELLED, NOON - timedelta(seconds=5))
    once = tries((Outcome.NO_ANSWER, NOON - timedelta(days=1)), cancelled)
    assert eligibility(contact(attempts=once), max_two, NOON) == (None, "retry")
    assert picks([contact(attempts=once)], max_two, NOON, limit=1) == [("c1", "retry")]
    assert picks([contact(attempts=tries(cancelled))], RULES, NOON, limit=1) == [("c1", "fresh")]
    due = tries((Outcome.CALLBACK, NOON - timedelta(hours=1)), cancelled)
    assert picks([contact(attempts=due, callback_at=NOON - timedelta(minutes=10))], RULES, NOON, limit=1) == [
        ("c1", "callback")
    ]
    # Fewest attempts first: a cancelled call does not push a contact down the queue.
    fresh = contact("a", NYC, attempts=tries(cancelled, cancelled))
    tried = contact("b", SFO, attempts=tries((Outcome.NO_ANSWER, NOON - timedelta(days=1))))
    assert picks([tried, fresh], RULES, at(NY, 14), limit=2) == [("a", "fresh"), ("b", "retry")]


def test_the_store_and_the_engine_start_from_one_table(tmp_path: Path) -> None:
    """A new effort's retry waits are store.outcomes' table, the engine's defaults; an effort's own settings reach
    the engine through EffortRules.from_effort."""
    st = Store(tmp_path / "one.db")
    row = st.create_campaign("Defaults", org_name="Org")
    assert EffortRules.from_effort(row).recycle == EffortRules().recycle
    assert EffortRules.from_effort(row).max_attempts == EffortRules().max_attempts
    custom = st.update_campaign(
        int(row["id"]),
        recycle_busy_s=900,
        recycle_noanswer_s=5400,
        max_attempts=5,
        household_once=1,
        calling_hours_start="09:30",
        calling_hours_end="20:00",
    )
    rules = EffortRules.from_effort(custom)
    assert rules.recycle[Outcome.CONGESTION] == timedelta(minutes=15)
    assert rules.recycle[Outcome.NO_ANSWER] == timedelta(minutes=90)
    assert rules.recycle[Outcome.ABANDONED] == timedelta(days=1)
    assert (rules.max_attempts, rules.one_call_per_household) == (5, True)
    assert (rules.calling_start, rules.calling_end) == (time(9, 30), time(20, 0))


def test_old_efforts_abandon_wait_becomes_a_day(tmp_path: Path) -> None:
    """Migration 10: the 10-minute abandon wait was the schema's default, never chosen on any screen."""
    st = Store(tmp_path / "old.db")
    cid = int(st.create_campaign("Old", org_name="Org", recycle_abandon_s=600)["id"])
    kept = int(st.create_campaign("Chosen", org_name="Org", recycle_abandon_s=1800)["id"])
    st.conn.executescript(store_db.MIGRATIONS[10 - 1])
    assert st.campaign(cid)["recycle_abandon_s"] == 86400  # type: ignore[index]
    assert st.campaign(kept)["recycle_abandon_s"] == 1800  # type: ignore[index]
