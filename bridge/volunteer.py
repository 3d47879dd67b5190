"""The volunteer's state machine, pure: ``step(volunteer, event, now) -> (volunteer, commands)``.

A volunteer's phone leg stays in their own bridge for the whole shift; this machine only says whether
they can take a voter. Leaving the line (the leg hangs up) pauses the session rather than ending it, so a
volunteer whose phone dropped can call back in with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from bridge.commands import Command, HangupCall, HangupVolunteer, VolunteerChanged


class VState(StrEnum):
    IDLE = "idle"
    TALKING = "talking"
    WRAPUP = "wrapup"
    PAUSED = "paused"
    DISCONNECTED = "disconnected"
    ENDED = "ended"


@dataclass(frozen=True)
class Volunteer:
    session_id: int
    campaign_id: int
    state: VState = VState.IDLE
    since: float = 0.0
    call_id: str | None = None  # the voter on the line, or the last one still awaiting a disposition
    wrapup_limit: float = 60.0
    pause_after_call: bool = False
    reason: str = ""


@dataclass(frozen=True)
class VoterConnected:
    call_id: str


@dataclass(frozen=True)
class VoterGone:
    call_id: str


@dataclass(frozen=True)
class VoterWithdrawn:
    """The voter never was one for the volunteer: a machine the detector caught late, or a person who hung up
    before reaching the bridge. Nothing to write up."""

    call_id: str
    reason: str = "machine_pulled_back"


@dataclass(frozen=True)
class Disposed:
    """A disposition was posted for the current or last call."""


@dataclass(frozen=True)
class EndVoterCall:
    """The volunteer ends the voter's call themselves (keypad key or API)."""


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class LegGone:
    pass


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Tick:
    pass


VEvent = VoterConnected | VoterGone | VoterWithdrawn | Disposed | EndVoterCall | Pause | Resume | LegGone | Stop | Tick


def _to(v: Volunteer, state: VState, now: float, *, reason: str = "", **changes: object) -> tuple[Volunteer,
                                                                                                    list[Command]]:
    nv = replace(v, state=state, since=now, reason=reason, **changes)  # type: ignore[arg-type]
    return nv, [VolunteerChanged(v.session_id, state.value, reason, nv.call_id)]


def step(v: Volunteer, event: VEvent, now: float) -> tuple[Volunteer, list[Command]]:
    s = v.state
    if s is VState.ENDED:
        return v, []
    match event:
        case Stop():
            cmds: list[Command] = []
            if s is VState.TALKING and v.call_id:
                cmds.append(HangupCall(v.call_id, "volunteer_stopped"))
            nv, changed = _to(v, VState.ENDED, now, reason="stopped")
            return nv, [*cmds, HangupVolunteer(v.session_id), *changed]
        case LegGone():
            cmds = [HangupCall(v.call_id, "volunteer_left")] if s is VState.TALKING and v.call_id else []
            nv, changed = _to(v, VState.DISCONNECTED, now, reason="phone_hung_up")
            return nv, [*cmds, *changed]
        case VoterConnected(call_id) if s is VState.IDLE:
            return _to(v, VState.TALKING, now, call_id=call_id)
        case VoterGone(call_id) if s is VState.TALKING and call_id == v.call_id:
            return _to(v, VState.WRAPUP, now)
        case VoterWithdrawn(call_id, reason) if s is VState.TALKING and call_id == v.call_id:
            # Straight back to waiting (or to the pause they asked for).
            if v.pause_after_call:
                return _to(v, VState.PAUSED, now, reason="paused_by_volunteer", call_id=None, pause_after_call=False)
            return _to(v, VState.IDLE, now, reason=reason, call_id=None)
        case EndVoterCall() if s is VState.TALKING and v.call_id:
            return v, [HangupCall(v.call_id, "volunteer_ended")]
        case Disposed() if s is VState.TALKING:
            # Save & Next while still talking ends the voter's call.
            cmds = [HangupCall(v.call_id, "volunteer_saved")] if v.call_id else []
            nv, changed = _after_disposition(v, now)
            return nv, [*cmds, *changed]
        case Disposed() if s is VState.WRAPUP:
            return _after_disposition(v, now)
        case Disposed() if s is VState.PAUSED:
            return replace(v, call_id=None), []
        case Pause() if s is VState.IDLE:
            return _to(v, VState.PAUSED, now, reason="paused_by_volunteer")
        case Pause() if s in (VState.TALKING, VState.WRAPUP):
            return replace(v, pause_after_call=True), []
        case Resume() if s is VState.PAUSED:
            return _to(v, VState.IDLE, now, call_id=None, pause_after_call=False)
        case Resume() if s in (VState.TALKING, VState.WRAPUP):
            return replace(v, pause_after_call=False), []
        case Tick() if s is VState.WRAPUP and now - v.since >= v.wrapup_limit:
            return _to(v, VState.PAUSED, now, reason="wrapup_timeout")
    return v, []


def _after_disposition(v: Volunteer, now: float) -> tuple[Volunteer, list[Command]]:
    if v.pause_after_call:
        return _to(v, VState.PAUSED, now, reason="paused_by_volunteer", call_id=None, pause_after_call=False)
    return _to(v, VState.IDLE, now, call_id=None)
