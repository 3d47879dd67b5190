"""What a controller that starts (or reconnects) does with what Asterisk and the store still hold, pure.

``after_restart(channels, bridges, stored, now) -> commands``: the first picture after a start. Asterisk kept
every channel and bridge up while no controller was in control; the store has every fact written before the kill.
From both this decides, without any I/O, who is taken back (a volunteer in their bridge, with the voter they are
talking to), who is asked again (a caller keying a code), and what is ended and recorded (detector taps, voter
legs nobody can account for, half-joined SIP legs, sessions whose phone is gone). The adapter
(``bridge.ari_app``) only fetches the inputs and carries the commands out, in order.

``after_reconnect(channels, calls, legs) -> commands``: on every later reconnect of the event WebSocket, what
vanished while we were not listening.

Tested by tables in tests/test_reconcile.py; the real-Asterisk test is tests/test_e2e_restart.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge import sip_accounts as sa
from callin import guard as g

VOLUNTEER_BRIDGE_PREFIX = "pb-vol-"
# Our detector's tap of a voter (bridge.ari_app._tap_for_detector): snoop and external-media channels, their bridge.
TAP_CHANNEL_PREFIXES = ("amds-", "amdx-")
TAP_BRIDGE_PREFIX = "amdb-"
# A captain coaching a caller (bridge.ari_app._captain_joined, _coach_attach): their snoop channels and holding
# bridge. Coaching lives in memory only: after a restart the captain calls in again.
COACH_SNOOP_PREFIX = "pbks-"
COACH_BRIDGE_PREFIX = "pb-coach-"
# Dialplan contexts a volunteer's or a captain's own leg comes in through (config/asterisk/extensions.conf).
LEG_CONTEXTS = ("pb-callin", "pb-sip-leg", "pb-coach-leg")
# Volunteers in these stored states have no phone to lose (not joined yet, or already marked as gone).
NO_PHONE_STATES = ("waiting_for_phone", "disconnected")

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Stored:
    """What the store holds that the picture depends on: the open sessions and the calls not yet ended."""

    sessions: Mapping[int, Row] = field(default_factory=dict)  # open sessions by id
    live_calls: Mapping[str, Row] = field(default_factory=dict)  # calls with no ended_at, by call (channel) id

    @classmethod
    def of(cls, open_sessions: Iterable[Row], live_calls: Iterable[Row]) -> Stored:
        return cls({int(s["id"]): s for s in open_sessions}, {str(c["id"]): c for c in live_calls})


# ---------------------------------------------------------------- commands
@dataclass(frozen=True)
class HangupChannel:
    channel_id: str
    why: str


@dataclass(frozen=True)
class DeleteBridge:
    bridge_id: str


@dataclass(frozen=True)
class Voter:
    call_id: str
    campaign_id: int
    contact_id: int


@dataclass(frozen=True)
class RestoreVolunteer:
    """Take the volunteer back in their own bridge (and the voter with them), in the state the store last had."""

    session_id: int
    campaign_id: int
    channel_id: str
    bridge_id: str
    endpoint: str  # the session's own SIP account, when the leg came from one
    voter: Voter | None
    stored_state: str
    stored_reason: str
    stored_call_id: str | None


@dataclass(frozen=True)
class PromptAgain:
    """A caller was keying a code (or an admin recording a message: that recording is not kept): ask again rather
    than leave them in silence."""

    channel_id: str
    caller: str


@dataclass(frozen=True)
class EndCall:
    """A voter call nobody can account for any more: ended now, with why; ``release``: its contact goes back with
    outcome "failed" (a call whose outcome was already written keeps it, and its contact was released then)."""

    call_id: str
    contact_id: int
    outcome: str
    release: bool


@dataclass(frozen=True)
class MarkDisconnected:
    session_id: int


@dataclass(frozen=True)
class ResetStaleDialing:
    """Contacts left "dialing" with no live call go back to the queue."""


@dataclass(frozen=True)
class CallLost:
    """A call we track whose channel vanished while the event WebSocket was down."""

    call_id: str


@dataclass(frozen=True)
class LegLost:
    session_id: int


@dataclass(frozen=True)
class EntryLost:
    """A caller keying a code whose channel vanished while the event WebSocket was down: forget the prompt."""

    channel_id: str


@dataclass(frozen=True)
class CaptainLost:
    """A coaching captain's leg that vanished while the event WebSocket was down: end the coaching (its snoop,
    holding bridge and SIP account go; the caller stops showing as coached)."""

    coach_id: str


Command = (
    HangupChannel
    | DeleteBridge
    | RestoreVolunteer
    | PromptAgain
    | EndCall
    | MarkDisconnected
    | ResetStaleDialing
    | CallLost
    | LegLost
    | EntryLost
    | CaptainLost
)


def session_of_bridge(name: str) -> int | None:
    """ "pb-vol-12" (or "pb-vol-12-<anything>") -> 12; None for any other bridge."""
    if not name.startswith(VOLUNTEER_BRIDGE_PREFIX):
        return None
    head = name[len(VOLUNTEER_BRIDGE_PREFIX) :].split("-")[0]
    return int(head) if head.isdigit() else None


def after_restart(channels: Mapping[str, Row], bridges: Sequence[Row], stored: Stored, now: float) -> list[Command]:
    """The commands that take the previous run's calls back or end them (see the module docstring). ``now`` is
    not read today (the adapter stamps the writes with it); it is here so a rule that needs it stays pure."""
    out: list[Command] = []
    # Detector taps of the previous run: nobody is listening to them any more.
    out += [HangupChannel(ch, "detector_tap") for ch in channels if ch.startswith(TAP_CHANNEL_PREFIXES)]
    out += [DeleteBridge(b["id"]) for b in bridges if str(b["id"]).startswith(TAP_BRIDGE_PREFIX)]
    out += [HangupChannel(ch, "coach_snoop") for ch in channels if ch.startswith(COACH_SNOOP_PREFIX)]
    for b in bridges:
        if str(b["id"]).startswith(COACH_BRIDGE_PREFIX):
            out.append(DeleteBridge(b["id"]))
            captains = [ch for ch in b.get("channels", []) if ch in channels and not ch.startswith(COACH_SNOOP_PREFIX)]
            out += [HangupChannel(ch, "coach_gone") for ch in captains]
    calls = dict(stored.live_calls)
    restored: set[int] = set()
    for b in bridges:
        sid = session_of_bridge(str(b.get("name", "")))
        if sid is None:
            continue
        session = stored.sessions.get(sid)
        members = [ch for ch in b.get("channels", []) if ch in channels]
        vol_chan = next((ch for ch in members if session is not None and ch == session.get("channel_id")), None)
        if session is None or session.get("status", "open") != "open" or vol_chan is None:
            # The session is over, or its volunteer's phone is not in the bridge: nothing to take back.
            out.append(DeleteBridge(b["id"]))
            out += [HangupChannel(ch, "volunteer_bridge_gone") for ch in members]
            continue
        voter_id = next((ch for ch in members if ch in calls), None)
        # A captain who was barging sits in the caller's own bridge, not in a coaching's: coaching does not outlive
        # the controller, so left there they would stay on this caller's calls, unseen (and a SIP captain's
        # account is gone, not the leg). Only a leg that called in (any other member is the voter's side).
        out += [
            HangupChannel(ch, "coach_gone")
            for ch in members
            if ch != vol_chan
            and ch not in calls
            and (channels[ch].get("dialplan") or {}).get("context") in LEG_CONTEXTS
        ]
        voter = None
        if voter_id is not None:
            row = calls.pop(voter_id)
            voter = Voter(voter_id, int(row["campaign_id"]), int(row["contact_id"]))
        restored.add(sid)
        out.append(
            RestoreVolunteer(
                sid,
                int(session["campaign_id"]),
                vol_chan,
                str(b["id"]),
                sa.channel_endpoint(str(channels[vol_chan].get("name", ""))),
                voter,
                str(session.get("state") or "idle"),
                str(session.get("state_reason") or ""),
                session.get("current_call_id"),
            )
        )
    bridged = {ch for b in bridges for ch in b.get("channels", [])}
    for ch_id, ch in channels.items():
        if ch_id in bridged:
            continue
        plan = ch.get("dialplan") or {}
        if plan.get("context") in ("pb-sip-leg", "pb-coach-leg"):
            # A SIP leg (a caller's, or a captain's) that was joining when we went down: its device calls again.
            out.append(HangupChannel(ch_id, "sip_leg_joining"))
        elif plan.get("context") == "pb-callin" and plan.get("app_name") == "Stasis":
            out.append(PromptAgain(ch_id, g.number_of((ch.get("caller") or {}).get("number"))))
    for call_id, row in calls.items():
        # A voter leg we no longer know what to do with: end it and record why.
        if call_id in channels:
            out.append(HangupChannel(call_id, "voter_unaccounted"))
        out.append(
            EndCall(call_id, int(row["contact_id"]), str(row.get("outcome") or "lost"), release=not row.get("outcome"))
        )
    for sid, s in stored.sessions.items():
        if sid not in restored and s.get("state") not in NO_PHONE_STATES:
            out.append(MarkDisconnected(sid))
    out.append(ResetStaleDialing())
    return out


def after_reconnect(
    channels: Iterable[str],
    calls: Iterable[str],
    legs: Mapping[int, str],
    entries: Iterable[str] = (),
    captains: Mapping[str, str] | None = None,
) -> list[Command]:
    """``calls``: the call ids the dialer tracks; ``legs``: session id -> its volunteer channel; ``entries``: the
    channels of callers keying a code; ``captains``: coach id -> the captain's joined leg. Calls go first: a voter
    lost with their volunteer's leg is recorded as the call it was (talked, or lost before anyone talked) before the
    volunteer is paused. A captain whose volunteer's leg is lost goes with it (LegLost ends the coaching)."""
    live = set(channels)
    return [
        *(CallLost(cid) for cid in calls if cid not in live),
        *(LegLost(sid) for sid, ch in legs.items() if ch not in live),
        *(EntryLost(ch) for ch in entries if ch not in live),
        *(CaptainLost(coach_id) for coach_id, ch in (captains or {}).items() if ch not in live),
    ]
