"""The dialer core driven by event tables: what each AMD verdict, hangup cause and volunteer change does."""

from __future__ import annotations

import random

import pytest

from bridge import predictive as pr
from bridge import volunteer as vol
from bridge.commands import (
    Connect,
    DropVoicemail,
    HangupCall,
    Log,
    NeedContacts,
    Originate,
    PlayAbandonMessage,
    PullBack,
    RecordOutcome,
    VolunteerChanged,
)
from bridge.dialer import (
    TRUNK_BACKOFF_S,
    AmdDecided,
    CallAnswered,
    CallBridged,
    CallEnded,
    CallPlaced,
    CallRinging,
    CampaignConfig,
    CampaignUpdated,
    ConnectFailed,
    CState,
    Dialer,
    HistoryLoaded,
    LateMachine,
    Tick,
    VolunteerEvent,
    VolunteerJoined,
    history_from_rows,
    unanswered_outcome,
)


def dialer(volunteers: int = 1, **config: object) -> Dialer:
    d = Dialer()
    d.handle(CampaignUpdated(CampaignConfig(1, **config)), 0)  # type: ignore[arg-type]
    for sid in range(1, volunteers + 1):
        d.handle(VolunteerJoined(sid, 1), float(sid))
    return d


def answered(d: Dialer, call_id: str, now: float = 10.0) -> None:
    d.handle(CallPlaced(call_id, 1, 100), now)
    d.handle(CallRinging(call_id), now)
    d.handle(CallAnswered(call_id), now + 1)


def kinds(cmds: list[object]) -> list[type]:
    return [type(c) for c in cmds]


def test_idle_volunteer_gets_one_line_and_originates() -> None:
    d = Dialer()
    assert d.handle(CampaignUpdated(CampaignConfig(1)), 0) == []
    cmds = d.handle(VolunteerJoined(1, 1), 0)
    assert NeedContacts(1, 1) in cmds
    assert d.handle(CallPlaced("c1", 1, 100), 0) == [Originate("c1", 1, 100)]
    # The line is out: no more until it resolves.
    assert not [c for c in d.handle(Tick(), 1) if isinstance(c, NeedContacts)]


@pytest.mark.parametrize(
    ("ratio", "idle", "in_flight", "want"),
    [(1.0, 1, 0, 1), (1.0, 3, 1, 2), (3.0, 2, 0, 6), (3.0, 2, 5, 1), (1.5, 1, 0, 1), (1.5, 2, 0, 3), (1.0, 0, 0, 0)],
)
def test_power_pacing(ratio: float, idle: int, in_flight: int, want: int) -> None:
    d = dialer(idle, dial_ratio=ratio)
    for i in range(in_flight):
        d.handle(CallPlaced(f"c{i}", 1, i), 0)
    asked = [c.count for c in d.handle(Tick(), 1) if isinstance(c, NeedContacts)]
    assert asked == ([want] if want else [])


def test_power_honours_the_trunk_line_limit() -> None:
    # 4 idle at 3:1 would be 12 lines; the effort's max_lines (pacing_params) caps the live power path too.
    d = dialer(4, dial_ratio=3.0, pacing=pr.PacingConfig(max_lines=5))
    assert [c.count for c in d.handle(Tick(), 5) if isinstance(c, NeedContacts)] == [5]
    for i in range(5):
        d.handle(CallPlaced(f"c{i}", 1, i), 5)
    assert d.lines_wanted(1, 6) == 0


@pytest.mark.parametrize(("ratio", "idle"), [(1.0, 3), (1.5, 1), (1.5, 3), (2.5, 2), (3.0, 4)])
def test_live_power_path_is_the_engines_rule(ratio: float, idle: int) -> None:
    """The dialer asks bridge.predictive for power lines, as the simulator does: no rule of its own."""
    d = dialer(idle, dial_ratio=ratio)
    engine = pr.plan(pr.PacingConfig(mode=pr.Mode.POWER, power_ratio=ratio), d.live_state(1, 9), None)
    assert d.lines_wanted(1, 9) == engine.new_calls == pr.power_lines(ratio, idle)


def test_preview_is_not_a_dialing_mode() -> None:
    # Preview was removed from the engine (docs/PACING.md): an effort stored with it places no lines.
    d = dialer(2, mode="preview")
    assert d.lines_wanted(1, 5) == 0 and d.plan(1, 5).new_calls == 0


def test_inactive_campaign_does_not_dial() -> None:
    d = dialer(2, active=False)
    assert not [c for c in d.handle(Tick(), 1) if isinstance(c, NeedContacts)]


@pytest.mark.parametrize(
    ("status", "voicemail", "expected", "outcome", "state"),
    [
        ("HUMAN", False, Connect, None, CState.CONNECTING),
        ("NOTSURE", False, Connect, None, CState.CONNECTING),
        ("MACHINE", False, HangupCall, "machine", CState.MACHINE),
        ("MACHINE", True, DropVoicemail, "voicemail_left", CState.MACHINE),
        ("HANGUP", False, HangupCall, "hangup_before_connect", CState.MACHINE),
    ],
)
def test_amd_verdicts(status: str, voicemail: bool, expected: type, outcome: str | None, state: CState) -> None:
    d = dialer(1, voicemail=voicemail)
    answered(d, "c1")
    cmds = d.handle(AmdDecided("c1", status, "x"), 12)
    assert isinstance(cmds[0], expected)
    assert d.calls["c1"].state is state
    outcomes = [c.outcome for c in cmds if isinstance(c, RecordOutcome)]
    assert outcomes == ([outcome] if outcome else [])
    if expected is Connect:
        assert cmds[0] == Connect("c1", 1)
        assert d.volunteers[1].state is vol.VState.TALKING


def test_human_with_nobody_free_is_abandoned_and_recorded() -> None:
    d = dialer(1, dial_ratio=3.0)
    answered(d, "c1")
    answered(d, "c2")
    assert isinstance(d.handle(AmdDecided("c1", "HUMAN"), 12)[0], Connect)
    cmds = d.handle(AmdDecided("c2", "HUMAN"), 12.1)
    assert cmds[0] == PlayAbandonMessage("c2")
    assert RecordOutcome("c2", "abandoned", abandoned=True) in cmds
    # The abandon does not get re-recorded when the line clears.
    assert [c for c in d.handle(CallEnded("c2", 16), 20) if isinstance(c, RecordOutcome)] == []


def test_longest_idle_volunteer_gets_the_call() -> None:
    d = dialer(3)  # joined at t=1, 2, 3
    answered(d, "c1")
    assert d.handle(AmdDecided("c1", "HUMAN"), 12)[0] == Connect("c1", 1)
    answered(d, "c2")
    assert d.handle(AmdDecided("c2", "HUMAN"), 13)[0] == Connect("c2", 2)


@pytest.mark.parametrize(
    ("cause", "outcome", "rang", "recorded"),
    [
        (17, "busy", True, "busy"),
        (21, "busy", True, "busy"),
        (17, "busy", False, "busy"),
        (19, "no_answer", True, "no_answer"),
        (18, "no_answer", True, "no_answer"),
        (0, "no_answer", True, "no_answer"),
        (1, "unallocated", True, "unallocated"),
        (3, "unallocated", False, "unallocated"),
        # The carrier's failures are not the voter's: a network cause, or no answer from a line that never rang
        # (a dead trunk times out; a refused dial ends with cause 0).
        (34, "congestion", True, "trunk_failed"),
        (38, "congestion", False, "trunk_failed"),
        (127, "failed", True, "trunk_failed"),
        (19, "no_answer", False, "trunk_failed"),
        (0, "no_answer", False, "trunk_failed"),
    ],
)
def test_unanswered_causes(cause: int, outcome: str, rang: bool, recorded: str) -> None:
    assert unanswered_outcome(cause) == outcome
    d = dialer(1)
    d.handle(CallPlaced("c1", 1, 100), 0)
    if rang:
        d.handle(CallRinging("c1"), 1)
    cmds = d.handle(CallEnded("c1", cause), 15)
    assert RecordOutcome("c1", recorded) in cmds
    assert "c1" not in d.calls
    assert NeedContacts(1, 1) in cmds  # the volunteer is still idle: dial the next one


def test_carrier_failures_back_off_then_probe_one_line_until_one_gets_through() -> None:
    d = dialer(2)  # power 1:1, two idle volunteers: two lines
    for i in range(3):
        d.handle(CallPlaced(f"c{i}", 1, 100 + i), 10)
        assert RecordOutcome(f"c{i}", "trunk_failed") in d.handle(CallEnded(f"c{i}", 34), 10.1)  # a 503
    error = d.trunk_error(1)
    assert error is not None and "congestion (cause 34)" in error
    assert d.lines_wanted(1, 11) == 0, "paused after three failures in a row"
    assert d.lines_wanted(1, 10.1 + TRUNK_BACKOFF_S) == 1, "then one probe, not the two lines pacing wants"
    d.handle(CallPlaced("p1", 1, 200), 16)
    assert d.lines_wanted(1, 16) == 0, "one probe at a time"
    cmds = d.handle(CallEnded("p1", 19), 41)  # no answer from a line that never rang: the trunk timed out
    assert RecordOutcome("p1", "trunk_failed") in cmds
    assert any(isinstance(c, Log) and c.event == "trunk.backoff" for c in cmds)
    assert d.lines_wanted(1, 41 + 2 * TRUNK_BACKOFF_S - 0.1) == 0, "the pause doubles"
    assert d.lines_wanted(1, 41 + 2 * TRUNK_BACKOFF_S) == 1
    d.handle(CallPlaced("p2", 1, 201), 52)
    d.handle(CallRinging("p2"), 53)
    assert d.trunk_error(1) is not None, "a carrier may ring and then fail the call"
    assert RecordOutcome("p2", "busy") in d.handle(CallEnded("p2", 17), 54)
    assert d.trunk_error(1) is None and d.lines_wanted(1, 54) == 2, "the voter's own answer: back to pacing"


def test_an_answer_ends_the_carrier_pause() -> None:
    d = dialer(2)
    for i in range(3):
        d.handle(CallPlaced(f"c{i}", 1, 100 + i), 10)
        d.handle(CallEnded(f"c{i}", 0), 10.1)  # refused by Asterisk (the trunk is marked unreachable)
    assert d.trunk_error(1) is not None
    d.handle(CallPlaced("old", 1, 110), 9)  # placed before the failures
    d.handle(CallAnswered("old"), 12)
    assert d.trunk_error(1) is not None, "an older call answered says nothing about the trunk since"
    answered(d, "p1", 20)
    assert d.trunk_error(1) is None


def test_full_live_call_cycle() -> None:
    d = dialer(1)
    answered(d, "c1")
    d.handle(AmdDecided("c1", "HUMAN"), 12)
    d.handle(CallBridged("c1"), 12.01)
    assert d.calls["c1"].state is CState.CONNECTED
    cmds = d.handle(CallEnded("c1", 16), 40)
    assert RecordOutcome("c1", "connected") in cmds
    assert VolunteerChanged(1, "wrapup", "", "c1") in cmds
    assert not [c for c in cmds if isinstance(c, NeedContacts)], "no dialing for a volunteer in wrap-up"
    cmds = d.handle(VolunteerEvent(1, vol.Disposed()), 50)
    assert VolunteerChanged(1, "idle", "", None) in cmds and NeedContacts(1, 1) in cmds


def test_answered_then_gone_during_amd() -> None:
    d = dialer(1)
    answered(d, "c1")
    assert RecordOutcome("c1", "hangup_before_connect") in d.handle(CallEnded("c1", 16), 13)


def test_volunteer_phone_drops_mid_call() -> None:
    d = dialer(1)
    answered(d, "c1")
    d.handle(AmdDecided("c1", "HUMAN"), 12)
    d.handle(CallBridged("c1"), 12.1)
    cmds = d.handle(VolunteerEvent(1, vol.LegGone()), 20)
    assert HangupCall("c1", "volunteer_left") in cmds
    assert 1 not in d.volunteers
    assert not [c for c in d.handle(Tick(), 21) if isinstance(c, NeedContacts)]


def test_connect_failure_goes_to_next_volunteer() -> None:
    d = dialer(2)
    answered(d, "c1")
    d.handle(AmdDecided("c1", "HUMAN"), 12)
    cmds = d.handle(ConnectFailed("c1"), 12.1)
    assert Connect("c1", 2) in cmds
    assert 1 not in d.volunteers


def test_wrapup_limit_from_campaign() -> None:
    d = dialer(1, wrapup_limit=5)
    answered(d, "c1")
    d.handle(AmdDecided("c1", "HUMAN"), 12)
    d.handle(CallBridged("c1"), 12.01)
    d.handle(CallEnded("c1", 16), 20)
    assert VolunteerChanged(1, "paused", "wrapup_timeout", "c1") in d.handle(Tick(), 25)


# ---------------------------------------------------------------- predictive pacing wired in


def rich_history(cid: int = 1, n: int = 300) -> HistoryLoaded:
    """A campaign where a third of dials reach a person after 3-12 s of ringing; the rest are busy at once
    or ring out at 25 s."""
    rng = random.Random(4)
    attempts = []
    for i in range(n):
        if i % 3 == 0:
            attempts.append(pr.Attempt(rng.uniform(3, 12), pr.Outcome.HUMAN, 2.0))
        elif i % 3 == 1:
            attempts.append(pr.Attempt(rng.uniform(1, 3), pr.Outcome.NO_ANSWER))
        else:
            attempts.append(pr.Attempt(25.0, pr.Outcome.NO_ANSWER))
    talks = tuple((rng.uniform(30, 90), rng.uniform(5, 15)) for _ in range(40))
    return HistoryLoaded(cid, tuple(attempts), talks, ((0, 0, 400),))


def predictive_dialer(volunteers: int, **pacing: object) -> Dialer:
    d = dialer(volunteers, mode="predictive", pacing=pr.PacingConfig(**pacing))  # type: ignore[arg-type]
    return d


def test_predictive_waits_for_the_tick_and_starts_one_to_one() -> None:
    d = predictive_dialer(3)
    cmds = d.handle(VolunteerEvent(1, vol.Pause()), 5)
    assert not [c for c in cmds if isinstance(c, NeedContacts)], "predictive decides on the tick only"
    asked = [c.count for c in d.handle(Tick(), 5) if isinstance(c, NeedContacts)]
    assert asked == [2], "thin data: one line per idle volunteer"
    assert d.plan(1, 5).reason == "thin data: 1:1"


def test_predictive_with_history_dials_ahead_within_the_abandon_budget() -> None:
    d = predictive_dialer(10)
    d.handle(rich_history(), 5)
    assert d.plan(1, 5).reason == "predictive"
    placed = 0
    for tick in range(5):  # the engine adds lines over successive ticks, as calls age
        for c in d.handle(Tick(), 5 + tick):
            if isinstance(c, NeedContacts):
                for _ in range(c.count):
                    d.handle(CallPlaced(f"p{placed}", 1, placed), 5 + tick)
                    placed += 1
    assert d.in_flight(1) > 10, "a third of dials reach a person: more lines than idle volunteers"
    decision = d.plan(1, 10)
    # The governor's contract: the forecast abandon risk stays within the allowance it granted.
    assert decision.new_calls == 0 and decision.expected_abandons <= decision.allowed_risk * decision.expected_humans


def test_a_decision_asked_again_in_the_same_state_is_not_forecast_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tick's NeedContacts is asked again when the adapter carries it out (lines_wanted, same clock reading):
    the forecast (tens of ms at 100 volunteers, on the calls' event loop) runs once; any change to what it reads
    (time, a call placed, the history growing) is a fresh forecast, the same one an uncached dialer makes."""
    d = predictive_dialer(10)
    d.handle(rich_history(), 5)
    forecasts = 0
    real = pr.plan

    def counted(*args: object) -> pr.Decision:
        nonlocal forecasts
        forecasts += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(pr, "plan", counted)
    asked = [c.count for c in d.handle(Tick(), 6) if isinstance(c, NeedContacts)]
    assert asked and forecasts == 1
    assert d.lines_wanted(1, 6) == asked[0] and forecasts == 1, "the adapter's second look: no second forecast"
    d.handle(CallPlaced("p0", 1, 0), 6)
    d.lines_wanted(1, 6)
    assert forecasts == 2, "a call placed: the state changed"
    fresh = predictive_dialer(10)
    fresh.handle(rich_history(), 5)
    fresh.handle(CallPlaced("p0", 1, 0), 6)
    assert d.plan(1, 7.5) == fresh.plan(1, 7.5) and forecasts == 4, "later: forecast again, as without the memo"
    d.handle(CallEnded("p0", 19), 8)
    before = forecasts
    d.plan(1, 8)
    assert forecasts == before + 1, "the history grew: its stats are new"


def test_predictive_budget_spent_trims_dialing_ahead() -> None:
    """30 abandons in 400 live answers: the 3% is spent, the governor's allowance drops to its floor and the
    dialer places fewer lines ahead than with the budget intact."""

    def lines(days: tuple[tuple[int, int, int], ...]) -> tuple[int, pr.Decision]:
        d = predictive_dialer(10)
        history = rich_history()
        d.handle(HistoryLoaded(1, history.attempts, history.conversations, days), 5)
        for tick in range(5):
            for c in d.handle(Tick(), 5 + tick):
                if isinstance(c, NeedContacts):
                    for i in range(c.count):
                        d.handle(CallPlaced(f"q{tick}-{i}", 1, i), 5 + tick)
        return d.in_flight(1), d.plan(1, 10)

    spent, decision = lines(((0, 30, 400),))
    intact, _ = lines(((0, 0, 400),))
    assert decision.allowed_risk == pytest.approx(0.03 * pr.PacingConfig().min_risk_share)
    assert 10 <= spent < intact


def test_ledger_counts_live_answers_and_abandons() -> None:
    d = dialer(1, dial_ratio=3.0)
    answered(d, "c1")
    answered(d, "c2")
    d.handle(AmdDecided("c1", "HUMAN"), 12)
    d.handle(AmdDecided("c2", "HUMAN"), 12)
    assert d.history[1].ledger.counts(0) == pr.AbandonCounts(1, 2, 1, 2)


def test_history_learns_attempts_and_conversations() -> None:
    d = dialer(1)
    answered(d, "c1", now=10)
    d.handle(AmdDecided("c1", "HUMAN"), 13)
    d.handle(CallBridged("c1"), 13)
    d.handle(CallEnded("c1", 16), 73)
    d.handle(VolunteerEvent(1, vol.Disposed()), 83)
    d.handle(CallPlaced("c2", 1, 101), 90)
    d.handle(CallEnded("c2", 17), 95)
    h = d.history[1]
    assert list(h.window.attempts) == [pr.Attempt(1.0, pr.Outcome.HUMAN, 2.0), pr.Attempt(5.0, pr.Outcome.NO_ANSWER)]
    assert list(h.window.conversations) == [(60.0, 10.0)]


def test_live_answer_is_in_the_history_from_its_verdict_once() -> None:
    # Recorded at hang-up, every answer still in conversation would be missing from the answer rate: early in a
    # shift most of them are, and the forecast overdialled (the capacity benchmark's cold-start abandons).
    d = dialer(1)
    answered(d, "c1", now=10)
    d.handle(AmdDecided("c1", "HUMAN"), 13)
    assert list(d.history[1].window.attempts) == [pr.Attempt(1.0, pr.Outcome.HUMAN, 2.0)]
    d.handle(CallBridged("c1"), 13)
    d.handle(CallEnded("c1", 16), 73)
    assert list(d.history[1].window.attempts) == [pr.Attempt(1.0, pr.Outcome.HUMAN, 2.0)]


def test_personal_phone_efforts_are_never_dialled() -> None:
    d = dialer(2, mode="personal")
    assert not [c for c in d.handle(Tick(), 1) if isinstance(c, NeedContacts)]


def test_history_from_stored_rows() -> None:
    rows = [
        {
            "id": "a",
            "campaign_id": 1,
            "originated_at": 0.0,
            "answered_at": 4.0,
            "amd_decided_at": 6.0,
            "amd_status": "HUMAN",
            "bridged_at": 6.0,
            "ended_at": 66.0,
            "abandoned": 0,
            "disposed_at": 70.0,
        },
        {
            "id": "b",
            "campaign_id": 1,
            "originated_at": 10.0,
            "answered_at": 12.0,
            "amd_decided_at": 14.0,
            "amd_status": "HUMAN",
            "bridged_at": None,
            "ended_at": 20.0,
            "abandoned": 1,
            "disposed_at": None,
        },
        {
            "id": "c",
            "campaign_id": 1,
            "originated_at": 20.0,
            "answered_at": None,
            "amd_decided_at": None,
            "amd_status": None,
            "bridged_at": None,
            "ended_at": 45.0,
            "abandoned": 0,
            "disposed_at": None,
        },
    ]
    loaded = history_from_rows(rows)
    assert loaded is not None
    assert [a.outcome for a in loaded.attempts] == [pr.Outcome.HUMAN, pr.Outcome.HUMAN, pr.Outcome.NO_ANSWER]
    assert loaded.attempts[2].ring_s == 25.0
    assert loaded.conversations == ((60.0, 4.0),)
    assert loaded.days == ((0, 1, 2),)
    assert history_from_rows([]) is None


@pytest.mark.parametrize(("voicemail", "then"), [(True, DropVoicemail), (False, HangupCall)])
def test_late_machine_is_pulled_back_from_the_volunteer(voicemail: bool, then: type) -> None:
    d = dialer(1, voicemail=voicemail)
    answered(d, "c1")
    d.handle(AmdDecided("c1", "HUMAN"), 12)
    d.handle(CallBridged("c1"), 12.01)
    assert d.history[1].ledger.counts(0).live_answers == 1
    cmds = d.handle(LateMachine("c1", "OURS-late_speech"), 13.5)
    assert cmds[0] == PullBack("c1", 1)
    assert VolunteerChanged(1, "idle", "machine_pulled_back", None) in cmds
    assert any(isinstance(c, then) for c in cmds)
    assert RecordOutcome("c1", "voicemail_left" if voicemail else "machine") in cmds
    assert d.history[1].ledger.counts(0).live_answers == 0, "a machine is not a live answer"
    # The line ends later: no second outcome, no wrap-up for the volunteer.
    cmds = d.handle(CallEnded("c1", 16), 30)
    assert not [c for c in cmds if isinstance(c, RecordOutcome)]
    assert d.volunteers[1].state is vol.VState.IDLE
    assert list(d.history[1].window.attempts)[-1].outcome is pr.Outcome.MACHINE


def test_late_machine_for_a_call_not_put_through_is_ignored() -> None:
    d = dialer(1)
    answered(d, "c1")  # still in AMD: a late correction cannot apply
    assert not [c for c in d.handle(LateMachine("c1"), 12) if not isinstance(c, NeedContacts)]
    assert d.calls["c1"].state is CState.AMD


def test_voter_gone_before_reaching_the_bridge() -> None:
    d = dialer(1)
    answered(d, "c1")
    d.handle(AmdDecided("c1", "HUMAN"), 12)  # Connect issued, ChannelEnteredBridge never comes
    cmds = d.handle(CallEnded("c1", 16), 12.2)
    assert RecordOutcome("c1", "hangup_before_connect") in cmds
    assert VolunteerChanged(1, "idle", "voter_hung_up_before_connect", None) in cmds
    assert NeedContacts(1, 1) in cmds


@pytest.mark.parametrize(
    ("stored", "reason", "call_id", "state", "kept_call"),
    [
        ("idle", "joined", None, vol.VState.IDLE, None),
        ("paused", "ready_to_start", None, vol.VState.PAUSED, None),  # panel session not started yet
        ("paused", "paused_by_volunteer", None, vol.VState.PAUSED, None),
        ("paused", "wrapup_timeout", "pb-old", vol.VState.PAUSED, "pb-old"),  # result still to save
        ("wrapup", "", "pb-old", vol.VState.WRAPUP, "pb-old"),
        ("talking", "", "pb-old", vol.VState.WRAPUP, "pb-old"),  # the voter left while we were down
    ],
)
def test_restart_restores_the_stored_state(
    stored: str, reason: str, call_id: str | None, state: vol.VState, kept_call: str | None
) -> None:
    d = Dialer()
    d.handle(CampaignUpdated(CampaignConfig(1)), 0)
    cmds = d.restore(7, 1, 100.0, stored_state=stored, stored_reason=reason, stored_call_id=call_id)
    v = d.volunteers[7]
    assert v.state is state and v.call_id == kept_call
    changed = [c for c in cmds if isinstance(c, VolunteerChanged)]
    assert changed and changed[0].state == state.value
    # Nothing is dialled for a paused or writing-up volunteer after the restart.
    if state is not vol.VState.IDLE:
        assert d.lines_wanted(1, 101.0) == 0


# ---------------------------------------------------------------- a volunteer leaving the pool


def ringing(d: Dialer, call_id: str, now: float, contact: int = 100) -> None:
    d.handle(CallPlaced(call_id, 1, contact), now)
    d.handle(CallRinging(call_id), now + 0.5)


def cancelled(cmds: list[object]) -> list[str]:
    return [c.call_id for c in cmds if isinstance(c, RecordOutcome) and c.outcome == "cancelled"]


@pytest.mark.parametrize("leaves", [vol.Stop(), vol.LegGone(), vol.Pause()])
def test_the_last_volunteer_leaving_cancels_the_line_dialled_for_them(leaves: vol.VEvent) -> None:
    """Save & Next, the next voter rings, Stop: the ringing line is hung up and recorded as cancelled (the
    contact goes back to the queue), so an answer 9 s later is not abandoned."""
    d = dialer(1)
    ringing(d, "c1", 10)
    cmds = d.handle(VolunteerEvent(1, leaves), 12)
    assert HangupCall("c1", "cancelled") in cmds and cancelled(cmds) == ["c1"]
    assert d.calls["c1"].state is CState.CANCELLED and d.in_flight(1) == 0
    # The voter answers in the moment before the hang-up lands: nothing is put through, nothing abandoned.
    later = d.handle(CallAnswered("c1"), 12.1) + d.handle(AmdDecided("c1", "HUMAN"), 13)
    assert not [c for c in later if isinstance(c, (PlayAbandonMessage, Connect, RecordOutcome))]
    assert d._history(1).ledger.counts(0) == pr.AbandonCounts()
    assert d.handle(CallEnded("c1", 16), 13.5) == [], "outcome already recorded; not a dial the pacing learns from"
    assert not d._history(1).window.attempts


def test_an_answered_call_is_never_cancelled() -> None:
    """Hanging up on someone who answered would be an abandon itself: it goes to the detector and then to
    whoever is free, or to the abandon message."""
    d = dialer(2)
    answered(d, "c1")
    cmds = d.handle(VolunteerEvent(1, vol.Stop()), 11.5)
    assert cancelled(cmds) == [] and d.calls["c1"].state is CState.AMD
    assert Connect("c1", 2) in d.handle(AmdDecided("c1", "HUMAN"), 12), "to the volunteer still idle"


@pytest.mark.parametrize(
    ("ratio", "volunteers", "lines", "stopping", "cancel"),
    [
        (1.0, 2, 1, 1, []),  # one line, one volunteer left: it stays, its answer goes to them
        (1.0, 2, 2, 1, ["c1"]),  # the newest goes
        (2.0, 2, 4, 1, ["c3", "c2"]),  # 1 × 2 = 2 kept
        (1.5, 2, 3, 1, ["c2", "c1"]),  # floor(1 × 1.5) = 1 kept: the ratio is a ceiling (predictive.power_lines)
        (3.0, 1, 3, 1, ["c2", "c1", "c0"]),  # nobody left: every ringing line
    ],
)
def test_power_keeps_what_the_ratio_gives_the_volunteers_left(
    ratio: float, volunteers: int, lines: int, stopping: int, cancel: list[str]
) -> None:
    d = dialer(volunteers, dial_ratio=ratio)
    for i in range(lines):
        ringing(d, f"c{i}", 10 + i, contact=100 + i)
    cmds = d.handle(VolunteerEvent(stopping, vol.Stop()), 20)
    assert cancelled(cmds) == cancel
    assert [c.call_id for c in cmds if isinstance(c, HangupCall)] == cancel
    assert d.in_flight(1) == lines - len(cancel)


def test_the_answer_goes_to_the_volunteer_still_there() -> None:
    d = dialer(2)
    ringing(d, "c1", 10)
    assert cancelled(d.handle(VolunteerEvent(2, vol.Stop()), 11)) == []
    d.handle(CallAnswered("c1"), 19)
    cmds = d.handle(AmdDecided("c1", "HUMAN"), 21)
    assert Connect("c1", 1) in cmds and not [c for c in cmds if isinstance(c, PlayAbandonMessage)]


def test_a_volunteer_busy_with_a_voter_keeps_no_ringing_line_under_power() -> None:
    """Power dials for idle volunteers only: with the idle one gone, a line left ringing could only be abandoned
    unless the talker happened to finish in time."""
    d = dialer(2)
    answered(d, "c0")
    d.handle(AmdDecided("c0", "HUMAN"), 12)  # volunteer 1 talking
    ringing(d, "c1", 13)  # dialled for volunteer 2
    assert cancelled(d.handle(VolunteerEvent(2, vol.Pause()), 14)) == ["c1"]


def test_pause_after_the_call_also_returns_the_lines_when_they_leave() -> None:
    d = dialer(2)
    answered(d, "c0")
    d.handle(AmdDecided("c0", "HUMAN"), 12)  # volunteer 1 talking, asks to pause after the call
    d.handle(CallBridged("c0"), 12.1)
    d.handle(VolunteerEvent(1, vol.Pause()), 12.5)
    ringing(d, "c1", 13)
    ringing(d, "c2", 13)
    d.handle(CallEnded("c0", 16), 20)
    cmds = d.handle(VolunteerEvent(1, vol.Disposed()), 22)
    assert VolunteerChanged(1, "paused", "paused_by_volunteer", None) in cmds
    assert cancelled(cmds) == ["c2"], "volunteer 2 is idle: one line kept; placed together, the later one goes"


def test_predictive_asks_the_engine_which_lines_to_keep() -> None:
    """Thin data: the engine keeps one line per idle volunteer; with history it keeps lines ahead as it would
    dial them, and none once nobody is left."""
    d = predictive_dialer(3)
    for i in range(3):
        ringing(d, f"c{i}", 10 + i, contact=100 + i)
    assert cancelled(d.handle(VolunteerEvent(3, vol.Stop()), 20)) == ["c2"]
    assert d.plan(1, 20).new_calls == 0 and d.in_flight(1) == 2

    rich = predictive_dialer(10)
    rich.handle(rich_history(), 5)
    placed = 0
    for tick in range(5):
        for c in rich.handle(Tick(), 5 + tick):
            if isinstance(c, NeedContacts):
                for _ in range(c.count):
                    rich.handle(CallPlaced(f"p{placed}", 1, placed), 5 + tick)
                    placed += 1
    out = rich.in_flight(1)
    assert out > 10
    gone = cancelled(rich.handle(VolunteerEvent(10, vol.Stop()), 10))
    assert gone == [f"p{i}" for i in range(out - 1, out - 1 - len(gone), -1)], "newest first"
    assert 0 < len(gone) < out, "lines ahead kept for the nine left"
    kept = frozenset(c for c in rich.calls if rich.calls[c].state is not CState.CANCELLED)
    assert rich.plan(1, 10).new_calls == 0, "no more than the engine would dial"
    newest_kept = max(kept, key=lambda c: int(c[1:]))
    assert rich.plan(1, 10, without=frozenset({newest_kept})).new_calls >= 1, "and no fewer"
    for sid in range(1, 10):
        rich.handle(VolunteerEvent(sid, vol.Stop()), 11)
    assert rich.in_flight(1) == 0, "nobody left: every ringing line cancelled"


def test_cancelled_calls_do_not_teach_the_pacing() -> None:
    rows = [
        {
            "id": "x",
            "campaign_id": 1,
            "originated_at": 0.0,
            "answered_at": None,
            "amd_decided_at": None,
            "amd_status": None,
            "bridged_at": None,
            "ended_at": 2.0,
            "abandoned": 0,
            "outcome": "cancelled",
        },
        {
            "id": "y",
            "campaign_id": 1,
            "originated_at": 5.0,
            "answered_at": None,
            "amd_decided_at": None,
            "amd_status": None,
            "bridged_at": None,
            "ended_at": 30.0,
            "abandoned": 0,
            "outcome": "no_answer",
        },
    ]
    loaded = history_from_rows(rows)
    assert loaded is not None and len(loaded.attempts) == 1


@pytest.mark.parametrize("leaves", [vol.Stop(), vol.LegGone()])
def test_leaving_as_the_voter_is_put_through_hands_them_on(leaves: vol.VEvent) -> None:
    """The voter was on their way into the leaving volunteer's bridge and never heard them: they go to another
    idle volunteer, counted once as a live answer; with nobody free they hear the abandon message, not a bare
    hang-up."""
    d = dialer(2)
    answered(d, "c1")
    assert Connect("c1", 1) in d.handle(AmdDecided("c1", "HUMAN"), 12)
    cmds = d.handle(VolunteerEvent(1, leaves), 12.05)
    assert Connect("c1", 2) in cmds and not [c for c in cmds if isinstance(c, HangupCall) and c.call_id == "c1"]
    assert d.calls["c1"].session_id == 2 and d._history(1).ledger.counts(0) == pr.AbandonCounts(0, 1, 0, 1)

    alone = dialer(1)
    answered(alone, "c1")
    alone.handle(AmdDecided("c1", "HUMAN"), 12)
    cmds = alone.handle(VolunteerEvent(1, leaves), 12.05)
    assert PlayAbandonMessage("c1") in cmds and RecordOutcome("c1", "abandoned", abandoned=True) in cmds
    assert not [c for c in cmds if isinstance(c, HangupCall) and c.call_id == "c1"]
    assert alone._history(1).ledger.counts(0) == pr.AbandonCounts(1, 1, 1, 1), "one live answer, abandoned"


def test_connect_failure_counts_the_live_answer_once() -> None:
    d = dialer(2)
    answered(d, "c1")
    d.handle(AmdDecided("c1", "HUMAN"), 12)
    d.handle(ConnectFailed("c1"), 12.1)
    assert d._history(1).ledger.counts(0) == pr.AbandonCounts(0, 1, 0, 1)


# ---------------------------------------------------------------- timers the dialer owns (get_timer / handle_timer)
def test_no_verdict_by_the_deadline_puts_the_voter_through_as_a_person() -> None:
    from bridge.commands import Log, RecordVerdict
    from bridge.dialer import AMD_TIMEOUT_CAUSE, AMD_VERDICT_S, DetectorListening

    d = dialer(1, active=False)  # no pacing tick in the way: only the detector's windows are timed
    answered(d, "c1")
    d.handle(DetectorListening("c1"), 11.5)
    assert d.get_timer() == 11.5 + AMD_VERDICT_S
    assert d.handle_timer(11.4 + AMD_VERDICT_S) == [], "not due yet"
    cmds = d.handle_timer(11.5 + AMD_VERDICT_S)
    assert cmds[0] == Log("amd.no_verdict", {"call_id": "c1"}, level="warning")
    assert Connect("c1", 1) in cmds and RecordVerdict("c1", "HUMAN", AMD_TIMEOUT_CAUSE) in cmds
    assert d.calls["c1"].verdict == "HUMAN"


@pytest.mark.parametrize(
    ("events", "at", "expected"),
    [
        # A person put through: the tap comes off when the late-correction window ends, AMD_LISTEN_S (17.5 s)
        # after the tap.
        ([("verdict", "HUMAN", 13.0)], 29.0, "stop"),
        ([("verdict", "HUMAN", 13.0)], 28.9, "nothing"),
        # Put through by the no-verdict deadline (AMD_VERDICT_S, 7.5 s): the same window (it used to leave the tap
        # on the whole call).
        ([("timer", "", 19.0)], 29.0, "stop"),
        # A machine with a message to leave: the tap stays for the beep, no window.
        ([("verdict", "MACHINE", 13.0)], 60.0, "nothing"),
        # The adapter took the tap off itself.
        ([("done", "", 13.0)], 60.0, "nothing"),
    ],
)
def test_the_detectors_listening_window(events: list[tuple[str, str, float]], at: float, expected: str) -> None:
    from bridge.commands import StopListening
    from bridge.dialer import DetectorDone, DetectorListening

    d = dialer(1, active=False, voicemail=True)
    answered(d, "c1")
    d.handle(DetectorListening("c1"), 11.5)
    for kind, status, t in events:
        if kind == "verdict":
            cmds = d.handle(AmdDecided("c1", status), t)
            if status == "MACHINE":
                assert DropVoicemail("c1", on_cue=True) in cmds, "the message waits for the detector's beep"
        elif kind == "timer":
            d.handle_timer(t)
        else:
            d.handle(DetectorDone("c1"), t)
    stops = [c for c in d.handle_timer(at) if isinstance(c, StopListening)]
    assert stops == ([StopListening("c1")] if expected == "stop" else [])
    if expected == "stop":
        assert d.get_timer() is None, "nothing left to time"


def test_a_machine_without_our_detector_gets_the_message_at_once() -> None:
    d = dialer(1, voicemail=True)
    answered(d, "c1")
    assert DropVoicemail("c1") in d.handle(AmdDecided("c1", "MACHINE"), 12)


def test_wrapup_limit_is_a_timer() -> None:
    d = dialer(1, wrapup_limit=5, active=False)
    answered(d, "c1")
    d.handle(AmdDecided("c1", "HUMAN"), 12)
    d.handle(CallBridged("c1"), 12.01)
    assert d.get_timer() is None, "talking: nothing timed"
    d.handle(CallEnded("c1", 16), 20)
    assert d.get_timer() == 25
    assert d.handle_timer(24.9) == []
    assert VolunteerChanged(1, "paused", "wrapup_timeout", "c1") in d.handle_timer(25)
    assert d.get_timer() is None


def test_the_pacing_tick_is_a_timer_while_an_effort_dials() -> None:
    from bridge.dialer import PACE_EVERY_S

    d = dialer(1)
    assert d.get_timer() == 0.0, "due at once after a start"
    asked = [c.count for c in d.handle_timer(1.0) if isinstance(c, NeedContacts)]
    assert asked == [1]
    assert d.get_timer() == 1.0 + PACE_EVERY_S
    d.handle(CampaignUpdated(CampaignConfig(1, active=False)), 1.2)
    assert d.get_timer() is None, "an effort that does not dial needs no tick"


# ---------------------------------------------------------------- what our detector hears (DetectorHeard)
@pytest.mark.parametrize(
    ("voicemail", "heard", "expected", "listening_after"),
    [
        # The verdict while the call is judged.
        (False, [("human", 13.0)], [Connect, VolunteerChanged, "RecordVerdict"], True),  # the tap stays
        (False, [("machine", 13.0)], [HangupCall, RecordOutcome, "RecordVerdict", "StopListening"], False),
        (True, [("machine", 13.0)], [DropVoicemail, RecordOutcome, "RecordVerdict"], True),  # waits for the beep
        # The cue the message waits for; a cue nobody waits for is nothing.
        (True, [("machine", 13.0), ("beep", 15.0)], ["Log", "PlayVoicemail", "StopListening"], False),
        (False, [("human", 13.0), ("beep", 15.0)], [], True),
        # A late correction after the call was put through.
        (
            False,
            [("human", 13.0), ("machine", 18.0)],
            ["Log", PullBack, VolunteerChanged, HangupCall, RecordOutcome, "RecordVerdict", "StopListening"],
            False,
        ),
        (
            True,
            [("human", 13.0), ("machine", 18.0)],
            ["Log", PullBack, VolunteerChanged, DropVoicemail, RecordOutcome, "RecordVerdict"],
            True,
        ),
    ],
)
def test_what_the_detector_hears(
    voicemail: bool, heard: list[tuple[str, float]], expected: list[object], listening_after: bool
) -> None:
    from bridge.dialer import DetectorHeard, DetectorListening

    d = dialer(1, active=False, voicemail=voicemail)
    answered(d, "c1")
    d.handle(DetectorListening("c1"), 11.5)
    cmds: list[object] = []
    for kind, t in heard:
        cmds = d.handle(DetectorHeard("c1", kind, f"OURS-x-{int(t * 1000)}"), t)
    assert [k if isinstance(k, str) else k.__name__ for k in expected] == [type(c).__name__ for c in cmds]
    call = d.calls["c1"]
    assert (call.listen_until is not None or call.awaiting_cue) == listening_after


def test_a_late_machine_keeps_its_first_decision_time() -> None:
    from bridge.commands import RecordVerdict
    from bridge.dialer import DetectorHeard, DetectorListening

    d = dialer(1, active=False)
    answered(d, "c1")
    d.handle(DetectorListening("c1"), 11.5)
    assert RecordVerdict("c1", "HUMAN", "OURS-a-1") in d.handle(DetectorHeard("c1", "human", "OURS-a-1"), 13)
    assert RecordVerdict("c1", "MACHINE", "OURS-late-9", late=True) in d.handle(
        DetectorHeard("c1", "machine", "OURS-late-9"), 18
    )


def test_one_number_failing_at_the_carrier_again_is_its_own_outcome_once_others_get_through() -> None:
    d = dialer(2)
    d.handle(CallPlaced("a1", 1, 100), 10)
    assert RecordOutcome("a1", "trunk_failed") in d.handle(CallEnded("a1", 34), 10.5)  # its attempt given back
    d.handle(CallPlaced("x1", 1, 200), 11)
    d.handle(CallRinging("x1"), 11.5)
    d.handle(CallEnded("x1", 17), 12)  # another voter's own busy: the trunk carries calls
    for i in range(2, 6):  # the same number, dialled again, keeps answering "no circuit"
        d.handle(CallPlaced(f"a{i}", 1, 100), 10 * i)
        cmds = d.handle(CallEnded(f"a{i}", 34), 10 * i + 0.5)
        assert RecordOutcome(f"a{i}", "congestion") in cmds, "an attempt spent, its retry wait"
    assert d.trunk_error(1) is None and d.lines_wanted(1, 61) == 2, "one bad number does not pause the effort"
    # Other numbers failing at the carrier still count, and the repeat offender counted neither way.
    for i, contact in enumerate((101, 102, 103)):
        d.handle(CallPlaced(f"b{i}", 1, contact), 70)
        d.handle(CallEnded(f"b{i}", 34), 70.5)
    assert d.trunk_error(1) is not None


def test_while_nothing_gets_through_a_number_failing_again_is_still_the_trunks_failure() -> None:
    d = dialer(1)
    for i in range(3):  # a dead trunk: the same contact, given back, is the next one dialled each time
        d.handle(CallPlaced(f"a{i}", 1, 100), 10 + i)
        assert RecordOutcome(f"a{i}", "trunk_failed") in d.handle(CallEnded(f"a{i}", 34), 10.5 + i)
    assert d.trunk_error(1) is not None, "no attempt burnt, and the effort pauses"
