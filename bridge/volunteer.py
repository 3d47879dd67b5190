"""The volunteer's state machine, pure: ``step(volunteer, event, now) -> (volunteer, commands)``.

A volunteer's leg stays in their own bridge for the whole shift; this machine only says whether they can
take a voter. A leg is a phone that called in with the session code, the browser's computer audio (WebRTC) or a
softphone on the session's own SIP account: one more kind of leg each, joined, lost, or cut by Asterisk for lack
of audio (rtp_timeout), and all treated alike. Leaving the line pauses the session rather than ending it, so a
volunteer whose phone or network dropped can come back with the same code or a fresh account.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

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
    leg: str = "phone"  # "phone" (called in), "webrtc" (computer audio) or "softphone"
    coached: str = ""  # a captain on the line with them (bridge.coaching Mode: listen, whisper, barge), or ""


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
    """The volunteer's leg hung up; ``cause`` is Asterisk's hang-up cause (44: cut for lack of audio).
    ``pbx_lost``: Asterisk itself went away with it (a restart): the screen says so, not "your phone hung up"."""

    cause: int = 0
    pbx_lost: bool = False


@dataclass(frozen=True)
class LegReplaced:
    """Another leg of the session's own took the old one's place in the same bridge (e.g. computer audio after
    the phone, or the browser reconnecting): nothing changes for the voter or the dialer."""

    kind: str


# Asterisk's cause for a leg it cut because no audio came (rtp_timeout): AST_CAUSE_REQUESTED_CHAN_UNAVAIL.
CAUSE_NO_MEDIA = 44
# The session's reason when the phone system (Asterisk) restarted under the leg: call in again, same code.
PBX_LOST_REASON = "phone_system_restarted"
LEG_GONE_REASONS = {"phone": "phone_hung_up", "webrtc": "computer_audio_closed", "softphone": "softphone_hung_up"}


def leg_gone_reason(leg: str, cause: int) -> str:
    """Why the session paused, for the caller's screen."""
    if cause == CAUSE_NO_MEDIA and leg != "phone":
        return "no_audio"
    return LEG_GONE_REASONS.get(leg, "phone_hung_up")


@dataclass(frozen=True)
class Coached:
    """A captain started, changed or ended coaching (``mode`` "" when they left): the volunteer is in whatever
    state they were, and stays there: a coached call is still a call, the pacing does not change."""

    mode: str


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Tick:
    """The timer ``next_timer`` asked for is due (a tick before it changes nothing)."""


VEvent = (
    VoterConnected
    | VoterGone
    | VoterWithdrawn
    | Disposed
    | EndVoterCall
    | Pause
    | Resume
    | LegGone
    | LegReplaced
    | Coached
    | Stop
    | Tick
)


def _to(
    v: Volunteer, state: VState, now: float, *, reason: str = "", **changes: Any
) -> tuple[Volunteer, list[Command]]:
    nv = replace(v, state=state, since=now, reason=reason, **changes)
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
        case LegGone(cause, pbx_lost):
            cmds = [HangupCall(v.call_id, "volunteer_left")] if s is VState.TALKING and v.call_id else []
            reason = PBX_LOST_REASON if pbx_lost else leg_gone_reason(v.leg, cause)
            nv, changed = _to(v, VState.DISCONNECTED, now, reason=reason)
            return nv, [*cmds, *changed]
        case LegReplaced(kind):
            return replace(v, leg=kind), []
        case Coached(mode):
            return replace(v, coached=mode), []
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


def next_timer(v: Volunteer) -> float | None:
    """When this volunteer's machine next needs a ``Tick`` (aioquic's get_timer): the end of the wrap-up limit."""
    return v.since + v.wrapup_limit if v.state is VState.WRAPUP else None


def _after_disposition(v: Volunteer, now: float) -> tuple[Volunteer, list[Command]]:
    if v.pause_after_call:
        return _to(v, VState.PAUSED, now, reason="paused_by_volunteer", call_id=None, pause_after_call=False)
    return _to(v, VState.IDLE, now, call_id=None)
