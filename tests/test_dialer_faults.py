"""The dialer core's fault decisions, by tables: a hold (Asterisk lost, the store refusing writes) stops every
effort's dialling and keeps the calls already out; a call Asterisk lost is nobody's attempt."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bridge import predictive as pr
from bridge import volunteer as vol
from bridge.commands import HangupCall, Log, NeedContacts, RecordOutcome, VolunteerChanged
from bridge.dialer import (
    AmdDecided,
    CallAnswered,
    CallBridged,
    CallEnded,
    CallLost,
    CallPlaced,
    CallRinging,
    CampaignConfig,
    CampaignUpdated,
    CState,
    Dialer,
    Hold,
    HoldChanged,
    Tick,
    VolunteerEvent,
    VolunteerJoined,
)
from store.outcomes import NOT_AN_ATTEMPT, Outcome


def dialer(volunteers: int = 2, efforts: int = 1) -> Dialer:
    d = Dialer()
    for cid in range(1, efforts + 1):
        d.handle(CampaignUpdated(CampaignConfig(cid)), 0)
    for sid in range(1, volunteers + 1):
        d.handle(VolunteerJoined(sid, 1 + (sid - 1) % efforts), float(sid))
    return d


def need(cmds: Sequence[object]) -> int:
    return sum(c.count for c in cmds if isinstance(c, NeedContacts))


@pytest.mark.parametrize(
    ("holds", "wanted"),
    [
        ((), 1),
        ((Hold.STORE_DOWN,), 0),
        ((Hold.PBX_DOWN,), 0),
        ((Hold.STORE_DOWN, Hold.PBX_DOWN), 0),
    ],
)
def test_a_hold_stops_every_effort_dialling(holds: tuple[Hold, ...], wanted: int) -> None:
    d = dialer(volunteers=2, efforts=2)
    for h in holds:
        d.handle(HoldChanged(h, True), 10)
    assert [d.lines_wanted(cid, 11) for cid in (1, 2)] == [wanted, wanted]
    assert need(d.handle(Tick(), 11)) == 2 * wanted


def test_hold_logs_once_and_release_dials_again() -> None:
    d = dialer(volunteers=1)
    on = d.handle(HoldChanged(Hold.STORE_DOWN, True), 10)
    assert [c for c in on if isinstance(c, Log)] == [
        Log("dialer.hold", {"hold": "store_down", "holds": ["store_down"]}, level="error")
    ]
    assert need(on) == 0
    # Told again (every refused write says so): nothing new to say.
    assert d.handle(HoldChanged(Hold.STORE_DOWN, True), 11) == []
    # Two holds: released one at a time, dialling only when both are gone.
    d.handle(HoldChanged(Hold.PBX_DOWN, True), 12)
    assert need(d.handle(HoldChanged(Hold.STORE_DOWN, False), 13)) == 0
    off = d.handle(HoldChanged(Hold.PBX_DOWN, False), 14)
    assert Log("dialer.hold_released", {"hold": "pbx_down", "holds": []}, level="info") in off
    assert need(off) == 1


def test_a_hold_keeps_the_calls_already_out() -> None:
    """The store refusing writes does not hang up anyone: a ringing line rings on and an answer is put through
    (its facts are queued by the adapter); only new lines wait."""
    d = dialer(volunteers=2)
    d.handle(CallPlaced("c1", 1, 100), 10)
    d.handle(CallRinging("c1"), 10)
    cmds = d.handle(HoldChanged(Hold.STORE_DOWN, True), 11)
    assert not [c for c in cmds if isinstance(c, HangupCall)]
    d.handle(CallAnswered("c1"), 12)
    cmds = d.handle(AmdDecided("c1", "HUMAN"), 13)
    assert d.calls["c1"].state is CState.CONNECTING and need(cmds) == 0
    d.handle(CallBridged("c1"), 13)
    cmds = d.handle(CallEnded("c1", 16), 40)
    assert RecordOutcome("c1", Outcome.CONNECTED) in cmds
    assert need(cmds) == 0


def _out(d: Dialer, call_id: str, state: str) -> None:
    d.handle(CallPlaced(call_id, 1, 100), 10)
    if state in ("ringing", "amd", "connecting", "connected"):
        d.handle(CallRinging(call_id), 11)
    if state in ("amd", "connecting", "connected"):
        d.handle(CallAnswered(call_id), 12)
    if state in ("connecting", "connected"):
        d.handle(AmdDecided(call_id, "HUMAN"), 13)
    if state == "connected":
        d.handle(CallBridged(call_id), 13)


@pytest.mark.parametrize(
    ("state", "outcome", "volunteer_after"),
    [
        # Never reached anyone, or answered and lost before a volunteer talked: Asterisk's loss, not the voter's.
        ("dialing", Outcome.PBX_LOST, "idle"),
        ("ringing", Outcome.PBX_LOST, "idle"),
        ("amd", Outcome.PBX_LOST, "idle"),
        ("connecting", Outcome.PBX_LOST, "idle"),
        # Talking when Asterisk went: they talked; the volunteer writes the result up.
        ("connected", Outcome.CONNECTED, "wrapup"),
    ],
)
def test_a_call_asterisk_lost_is_not_the_voters_attempt(state: str, outcome: Outcome, volunteer_after: str) -> None:
    d = dialer(volunteers=1)
    _out(d, "c1", state)
    cmds = d.handle(CallLost("c1"), 20)
    assert [c for c in cmds if isinstance(c, RecordOutcome)] == [RecordOutcome("c1", outcome)]
    assert "c1" not in d.calls
    assert d.volunteers[1].state == volunteer_after
    # Says nothing about the trunk; a lost call says nothing about how the list answers either (a conversation
    # cut short still was one).
    assert d.trunk_error(1) is None and d.trunk == {}
    if outcome is Outcome.PBX_LOST:
        assert outcome in NOT_AN_ATTEMPT
        attempts = list(d.history[1].window.attempts) if 1 in d.history else []
        # A person had already answered (the verdict put them in the history); the loss adds nothing.
        assert attempts == ([pr.Attempt(2.0, pr.Outcome.HUMAN, 1.0)] if state == "connecting" else [])


def test_many_lost_calls_never_pause_the_trunk() -> None:
    """A restart loses every call at once: that is not three carrier failures in a row."""
    d = dialer(volunteers=4)
    for i in range(4):
        _out(d, f"c{i}", "dialing")
    for i in range(4):
        d.handle(CallLost(f"c{i}"), 20)
    assert d.trunk_error(1) is None
    assert d.lines_wanted(1, 21) > 0


def test_lost_call_then_lost_leg_pauses_the_volunteer_with_why() -> None:
    """The order the adapter reconciles in (bridge.reconcile.after_reconnect): calls, then legs."""
    d = dialer(volunteers=1)
    _out(d, "c1", "connected")
    d.handle(CallLost("c1"), 20)
    cmds = d.handle(VolunteerEvent(1, vol.LegGone(0, pbx_lost=True)), 20)
    assert VolunteerChanged(1, "disconnected", vol.PBX_LOST_REASON, "c1") in cmds
    assert 1 not in d.volunteers  # out of the pool: no line is dialled for them until they call in again
    assert d.lines_wanted(1, 21) == 0


def test_a_call_already_decided_keeps_its_outcome_when_lost() -> None:
    d = dialer(volunteers=0)
    _out(d, "c1", "amd")
    cmds = d.handle(AmdDecided("c1", "MACHINE"), 13)
    assert RecordOutcome("c1", Outcome.MACHINE) in cmds
    assert [c for c in d.handle(CallLost("c1"), 20) if isinstance(c, RecordOutcome)] == []
