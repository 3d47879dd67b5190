"""The volunteer state machine, as a table: (state, event) -> (state, commands)."""

from __future__ import annotations

import pytest

from bridge.commands import HangupCall, HangupVolunteer, VolunteerChanged
from bridge.volunteer import (
    Disposed,
    EndVoterCall,
    LegGone,
    LegReplaced,
    Pause,
    Resume,
    Stop,
    Tick,
    Volunteer,
    VoterConnected,
    VoterGone,
    VoterWithdrawn,
    VState,
    step,
)

T0 = 1000.0


def v(state: VState, call: str | None = None, since: float = T0, **kw: object) -> Volunteer:
    return Volunteer(7, 1, state=state, since=since, call_id=call, wrapup_limit=60, **kw)  # type: ignore[arg-type]


CASES = [
    # (name, volunteer, event, now, expected state, expected commands (types or values))
    (
        "idle takes a voter",
        v(VState.IDLE),
        VoterConnected("c1"),
        T0 + 1,
        VState.TALKING,
        [VolunteerChanged(7, "talking", "", "c1")],
    ),
    ("talking ignores a second voter", v(VState.TALKING, "c1"), VoterConnected("c2"), T0 + 1, VState.TALKING, []),
    (
        "voter hangs up: wrap-up",
        v(VState.TALKING, "c1"),
        VoterGone("c1"),
        T0 + 5,
        VState.WRAPUP,
        [VolunteerChanged(7, "wrapup", "", "c1")],
    ),
    ("a stale voter-gone is ignored", v(VState.TALKING, "c2"), VoterGone("c1"), T0 + 5, VState.TALKING, []),
    (
        "a machine caught late: back to idle, no wrap-up",
        v(VState.TALKING, "c1"),
        VoterWithdrawn("c1"),
        T0 + 2,
        VState.IDLE,
        [VolunteerChanged(7, "idle", "machine_pulled_back", None)],
    ),
    (
        "voter gone before the bridge: no wrap-up",
        v(VState.TALKING, "c1"),
        VoterWithdrawn("c1", "voter_hung_up_before_connect"),
        T0 + 1,
        VState.IDLE,
        [VolunteerChanged(7, "idle", "voter_hung_up_before_connect", None)],
    ),
    (
        "late machine, pause requested: paused",
        v(VState.TALKING, "c1", pause_after_call=True),
        VoterWithdrawn("c1"),
        T0 + 2,
        VState.PAUSED,
        [VolunteerChanged(7, "paused", "paused_by_volunteer", None)],
    ),
    (
        "volunteer ends the voter's call",
        v(VState.TALKING, "c1"),
        EndVoterCall(),
        T0 + 5,
        VState.TALKING,
        [HangupCall("c1", "volunteer_ended")],
    ),
    ("end-call key when idle does nothing", v(VState.IDLE), EndVoterCall(), T0, VState.IDLE, []),
    (
        "disposition in wrap-up: next call",
        v(VState.WRAPUP, "c1"),
        Disposed(),
        T0 + 9,
        VState.IDLE,
        [VolunteerChanged(7, "idle", "", None)],
    ),
    (
        "save & next while talking hangs up the voter",
        v(VState.TALKING, "c1"),
        Disposed(),
        T0 + 9,
        VState.IDLE,
        [HangupCall("c1", "volunteer_saved"), VolunteerChanged(7, "idle", "", None)],
    ),
    ("wrap-up under the limit stays", v(VState.WRAPUP, "c1"), Tick(), T0 + 59, VState.WRAPUP, []),
    (
        "wrap-up limit pauses, line stays up",
        v(VState.WRAPUP, "c1"),
        Tick(),
        T0 + 60,
        VState.PAUSED,
        [VolunteerChanged(7, "paused", "wrapup_timeout", "c1")],
    ),
    ("late disposition while paused keeps the pause", v(VState.PAUSED, "c1"), Disposed(), T0 + 70, VState.PAUSED, []),
    (
        "resume from pause",
        v(VState.PAUSED, "c1"),
        Resume(),
        T0 + 80,
        VState.IDLE,
        [VolunteerChanged(7, "idle", "", None)],
    ),
    (
        "pause when idle",
        v(VState.IDLE),
        Pause(),
        T0,
        VState.PAUSED,
        [VolunteerChanged(7, "paused", "paused_by_volunteer", None)],
    ),
    ("pause while talking waits for the call", v(VState.TALKING, "c1"), Pause(), T0, VState.TALKING, []),
    (
        "pause requested: disposition pauses",
        v(VState.WRAPUP, "c1", pause_after_call=True),
        Disposed(),
        T0,
        VState.PAUSED,
        [VolunteerChanged(7, "paused", "paused_by_volunteer", None)],
    ),
    (
        "phone drops mid-call: voter hung up, session disconnected",
        v(VState.TALKING, "c1"),
        LegGone(),
        T0,
        VState.DISCONNECTED,
        [HangupCall("c1", "volunteer_left"), VolunteerChanged(7, "disconnected", "phone_hung_up", "c1")],
    ),
    (
        "phone drops when idle",
        v(VState.IDLE),
        LegGone(),
        T0,
        VState.DISCONNECTED,
        [VolunteerChanged(7, "disconnected", "phone_hung_up", None)],
    ),
    # Computer audio and softphones are one more kind of leg: lost like a phone, and cut for lack of audio.
    (
        "computer audio closed mid-call: voter hung up, session disconnected",
        v(VState.TALKING, "c1", leg="webrtc"),
        LegGone(16),
        T0,
        VState.DISCONNECTED,
        [HangupCall("c1", "volunteer_left"), VolunteerChanged(7, "disconnected", "computer_audio_closed", "c1")],
    ),
    (
        "computer audio with no media for 20 s: paused as a hang-up",
        v(VState.IDLE, leg="webrtc"),
        LegGone(44),
        T0,
        VState.DISCONNECTED,
        [VolunteerChanged(7, "disconnected", "no_audio", None)],
    ),
    (
        "softphone silent while talking: voter hung up too",
        v(VState.TALKING, "c1", leg="softphone"),
        LegGone(44),
        T0,
        VState.DISCONNECTED,
        [HangupCall("c1", "volunteer_left"), VolunteerChanged(7, "disconnected", "no_audio", "c1")],
    ),
    (
        "softphone hangs up when idle",
        v(VState.IDLE, leg="softphone"),
        LegGone(16),
        T0,
        VState.DISCONNECTED,
        [VolunteerChanged(7, "disconnected", "softphone_hung_up", None)],
    ),
    (
        "a phone's cause 44 is still a hang-up",
        v(VState.IDLE),
        LegGone(44),
        T0,
        VState.DISCONNECTED,
        [VolunteerChanged(7, "disconnected", "phone_hung_up", None)],
    ),
    (
        "a new leg of the session's own takes over mid-call: nothing changes for the voter",
        v(VState.TALKING, "c1"),
        LegReplaced("webrtc"),
        T0,
        VState.TALKING,
        [],
    ),
    (
        "stop while talking",
        v(VState.TALKING, "c1"),
        Stop(),
        T0,
        VState.ENDED,
        [HangupCall("c1", "volunteer_stopped"), HangupVolunteer(7), VolunteerChanged(7, "ended", "stopped", "c1")],
    ),
    ("ended is final", v(VState.ENDED), Resume(), T0, VState.ENDED, []),
    ("resume when idle does nothing", v(VState.IDLE), Resume(), T0, VState.IDLE, []),
]


@pytest.mark.parametrize(("name", "vol", "event", "now", "state", "commands"), CASES, ids=[c[0] for c in CASES])
def test_volunteer_table(
    name: str, vol: Volunteer, event: object, now: float, state: VState, commands: list[object]
) -> None:
    new, cmds = step(vol, event, now)  # type: ignore[arg-type]
    assert new.state is state
    assert cmds == commands
    if state is not vol.state:
        assert new.since == now


def test_wrapup_timer_starts_when_voter_leaves() -> None:
    vol, _ = step(v(VState.TALKING, "c1", since=T0), VoterGone("c1"), T0 + 100)
    still, _ = step(vol, Tick(), T0 + 159)
    assert still.state is VState.WRAPUP
    paused, _ = step(vol, Tick(), T0 + 160)
    assert paused.state is VState.PAUSED


def test_leg_replaced_keeps_the_call_and_records_the_kind() -> None:
    nv, cmds = step(v(VState.TALKING, "c1"), LegReplaced("softphone"), T0)
    assert (nv.state, nv.call_id, nv.leg, cmds) == (VState.TALKING, "c1", "softphone", [])
