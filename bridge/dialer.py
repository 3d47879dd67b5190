"""The dialer core, sans-IO: ``Dialer.handle(event, now) -> commands``.

It owns the calls in flight and the volunteers on line, decides how many lines each campaign dials, and
what happens to an answered call once AMD has judged it: a live answer goes to the volunteer who has
waited longest, or is abandoned (message, hang-up, recorded) when nobody is free; a machine gets the
voicemail drop or a hang-up. No clocks, no sockets: the adapter (``ari_app``) feeds it events and carries
out its commands, and the tests drive it with tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from bridge import volunteer as vol
from bridge.commands import (
    Command,
    Connect,
    DropVoicemail,
    HangupCall,
    Log,
    NeedContacts,
    Originate,
    PlayAbandonMessage,
    RecordOutcome,
    VolunteerChanged,
)


class CState(StrEnum):
    DIALING = "dialing"
    RINGING = "ringing"
    AMD = "amd"  # answered, detector listening
    CONNECTING = "connecting"  # being added to a volunteer's bridge
    CONNECTED = "connected"
    MACHINE = "machine"
    ABANDONING = "abandoning"
    ENDED = "ended"


IN_FLIGHT = (CState.DIALING, CState.RINGING, CState.AMD)

# Q.850 causes as the trunk (or the simulated network) reports them for calls never answered.
BUSY_CAUSES = {17, 21}
NO_ANSWER_CAUSES = {18, 19, 0, 16}
CONGESTION_CAUSES = {34, 38, 41, 42, 44, 47, 58}
UNALLOCATED_CAUSES = {1, 2, 3, 22, 27, 28}


def unanswered_outcome(cause: int) -> str:
    if cause in BUSY_CAUSES:
        return "busy"
    if cause in UNALLOCATED_CAUSES:
        return "unallocated"
    if cause in CONGESTION_CAUSES:
        return "congestion"
    if cause in NO_ANSWER_CAUSES:
        return "no_answer"
    return "failed"


@dataclass(frozen=True)
class CampaignConfig:
    campaign_id: int
    active: bool = True
    dial_ratio: float = 1.0
    wrapup_limit: float = 60.0
    voicemail: bool = False  # drop a message on machines (else hang up)


@dataclass(frozen=True)
class Call:
    call_id: str
    campaign_id: int
    contact_id: int
    state: CState = CState.DIALING
    answered: bool = False
    session_id: int | None = None
    outcome: str | None = None


# ---------------------------------------------------------------- events
@dataclass(frozen=True)
class CampaignUpdated:
    config: CampaignConfig


@dataclass(frozen=True)
class VolunteerJoined:
    session_id: int
    campaign_id: int


@dataclass(frozen=True)
class VolunteerEvent:
    """Anything that happens to one volunteer: leg gone, disposition, pause/resume/stop, end voter call."""

    session_id: int
    event: vol.VEvent


@dataclass(frozen=True)
class CallPlaced:
    call_id: str
    campaign_id: int
    contact_id: int


@dataclass(frozen=True)
class CallRinging:
    call_id: str


@dataclass(frozen=True)
class CallAnswered:
    call_id: str


@dataclass(frozen=True)
class AmdDecided:
    call_id: str
    status: str  # HUMAN | MACHINE | NOTSURE | HANGUP
    cause: str = ""


@dataclass(frozen=True)
class CallBridged:
    call_id: str


@dataclass(frozen=True)
class ConnectFailed:
    call_id: str


@dataclass(frozen=True)
class CallEnded:
    call_id: str
    cause: int


@dataclass(frozen=True)
class Tick:
    pass


Event = (CampaignUpdated | VolunteerJoined | VolunteerEvent | CallPlaced | CallRinging | CallAnswered | AmdDecided
         | CallBridged | ConnectFailed | CallEnded | Tick)


class Dialer:
    def __init__(self) -> None:
        self.campaigns: dict[int, CampaignConfig] = {}
        self.volunteers: dict[int, vol.Volunteer] = {}
        self.calls: dict[str, Call] = {}

    # ------------------------------------------------------------------ queries
    def idle_volunteers(self, campaign_id: int) -> list[vol.Volunteer]:
        idle = [v for v in self.volunteers.values() if v.campaign_id == campaign_id and v.state is vol.VState.IDLE]
        return sorted(idle, key=lambda v: (v.since, v.session_id))

    def in_flight(self, campaign_id: int) -> int:
        return sum(1 for c in self.calls.values() if c.campaign_id == campaign_id and c.state in IN_FLIGHT)

    def restore(self, session_id: int, campaign_id: int, now: float, voter: Call | None = None) -> list[Command]:
        """After a controller restart: a volunteer found in their bridge, maybe with a voter. Restored
        without pacing, so no line is dialled before the whole picture is back."""
        limit = self.campaigns.get(campaign_id, CampaignConfig(campaign_id)).wrapup_limit
        v = vol.Volunteer(session_id, campaign_id, since=now, wrapup_limit=limit)
        cmds: list[Command] = []
        if voter is not None:
            self.calls[voter.call_id] = replace(voter, state=CState.CONNECTED, answered=True, session_id=session_id)
            v, cmds = vol.step(v, vol.VoterConnected(voter.call_id), now)
        else:
            cmds = [VolunteerChanged(session_id, v.state.value, "restored")]
        self.volunteers[session_id] = v
        return cmds

    # ------------------------------------------------------------------ the one entry point
    def handle(self, event: Event, now: float) -> list[Command]:
        cmds = self._handle(event, now)
        return [*cmds, *self._pace()]

    def _handle(self, event: Event, now: float) -> list[Command]:
        match event:
            case CampaignUpdated(config):
                self.campaigns[config.campaign_id] = config
                for sid, v in self.volunteers.items():
                    if v.campaign_id == config.campaign_id:
                        self.volunteers[sid] = replace(v, wrapup_limit=config.wrapup_limit)
                return []
            case VolunteerJoined(session_id, campaign_id):
                limit = self.campaigns.get(campaign_id, CampaignConfig(campaign_id)).wrapup_limit
                v = vol.Volunteer(session_id, campaign_id, since=now, wrapup_limit=limit)
                self.volunteers[session_id] = v
                return [VolunteerChanged(session_id, v.state.value, "joined")]
            case VolunteerEvent(session_id, vevent):
                return self._volunteer_step(session_id, vevent, now)
            case CallPlaced(call_id, campaign_id, contact_id):
                self.calls[call_id] = Call(call_id, campaign_id, contact_id)
                return [Originate(call_id, campaign_id, contact_id)]
            case CallRinging(call_id):
                return self._set(call_id, CState.RINGING, only_from=(CState.DIALING,))
            case CallAnswered(call_id):
                call = self.calls.get(call_id)
                if call and call.state in (CState.DIALING, CState.RINGING):
                    self.calls[call_id] = replace(call, state=CState.AMD, answered=True)
                return []
            case AmdDecided(call_id, status, cause):
                return self._amd_decided(call_id, status.upper(), cause, now)
            case CallBridged(call_id):
                call = self.calls.get(call_id)
                if call and call.state is CState.CONNECTING:
                    self.calls[call_id] = replace(call, state=CState.CONNECTED)
                return []
            case ConnectFailed(call_id):
                return self._connect_failed(call_id, now)
            case CallEnded(call_id, cause):
                return self._call_ended(call_id, cause, now)
            case Tick():
                out: list[Command] = []
                for sid in list(self.volunteers):
                    out += self._volunteer_step(sid, vol.Tick(), now)
                return out
        return []

    # ------------------------------------------------------------------ calls
    def _set(self, call_id: str, state: CState, only_from: tuple[CState, ...]) -> list[Command]:
        call = self.calls.get(call_id)
        if call and call.state in only_from:
            self.calls[call_id] = replace(call, state=state)
        return []

    def _amd_decided(self, call_id: str, status: str, cause: str, now: float) -> list[Command]:
        call = self.calls.get(call_id)
        if call is None or call.state not in (CState.AMD, CState.RINGING, CState.DIALING):
            return []
        call = replace(call, answered=True)
        if status in ("HUMAN", "NOTSURE"):
            idle = self.idle_volunteers(call.campaign_id)
            if idle:
                v = idle[0]
                self.calls[call_id] = replace(call, state=CState.CONNECTING, session_id=v.session_id)
                nv, cmds = vol.step(v, vol.VoterConnected(call_id), now)
                self.volunteers[v.session_id] = nv
                return [Connect(call_id, v.session_id), *cmds]
            self.calls[call_id] = replace(call, state=CState.ABANDONING, outcome="abandoned")
            return [PlayAbandonMessage(call_id), RecordOutcome(call_id, "abandoned", abandoned=True),
                    Log("call.abandoned", {"call_id": call_id, "amd": status})]
        if status == "MACHINE":
            config = self.campaigns.get(call.campaign_id, CampaignConfig(call.campaign_id))
            if config.voicemail:
                self.calls[call_id] = replace(call, state=CState.MACHINE, outcome="voicemail_left")
                return [DropVoicemail(call_id), RecordOutcome(call_id, "voicemail_left")]
            self.calls[call_id] = replace(call, state=CState.MACHINE, outcome="machine")
            return [HangupCall(call_id, "machine"), RecordOutcome(call_id, "machine")]
        # HANGUP or anything unknown: the far end is gone or unusable.
        self.calls[call_id] = replace(call, state=CState.MACHINE, outcome="hangup_before_connect")
        return [HangupCall(call_id, f"amd_{status.lower()}"), RecordOutcome(call_id, "hangup_before_connect")]

    def _connect_failed(self, call_id: str, now: float) -> list[Command]:
        call = self.calls.get(call_id)
        if call is None or call.state is not CState.CONNECTING or call.session_id is None:
            return []
        # The volunteer's bridge vanished under us: give the voter to someone else, or abandon.
        out: list[Command] = []
        sid = call.session_id
        if sid in self.volunteers:
            out += self._volunteer_step(sid, vol.LegGone(), now)
        self.calls[call_id] = replace(call, state=CState.AMD, session_id=None)
        return out + self._amd_decided(call_id, "HUMAN", "reconnect", now)

    def _call_ended(self, call_id: str, cause: int, now: float) -> list[Command]:
        call = self.calls.pop(call_id, None)
        if call is None:
            return []
        out: list[Command] = []
        if call.outcome is None:
            if call.state in (CState.CONNECTING, CState.CONNECTED):
                outcome = "connected"
            elif call.answered:
                outcome = "hangup_before_connect"
            else:
                outcome = unanswered_outcome(cause)
            out.append(RecordOutcome(call_id, outcome))
        if call.session_id is not None and call.session_id in self.volunteers:
            out += self._volunteer_step(call.session_id, vol.VoterGone(call_id), now)
        return out

    # ------------------------------------------------------------------ volunteers
    def _volunteer_step(self, session_id: int, event: vol.VEvent, now: float) -> list[Command]:
        v = self.volunteers.get(session_id)
        if v is None:
            return []
        nv, cmds = vol.step(v, event, now)
        if nv.state is vol.VState.ENDED or nv.state is vol.VState.DISCONNECTED:
            del self.volunteers[session_id]
        else:
            self.volunteers[session_id] = nv
        return cmds

    # ------------------------------------------------------------------ pacing
    def _pace(self) -> list[Command]:
        """Lines to add per campaign: dial_ratio lines per idle volunteer, minus calls already out.

        Predictive pacing (issue 4) replaces this rule in ``bridge.predictive``; the seam is the count.
        """
        out: list[Command] = []
        for cid in self.campaigns:
            want = self.lines_wanted(cid)
            if want > 0:
                out.append(NeedContacts(cid, want))
        return out

    def lines_wanted(self, campaign_id: int) -> int:
        """New lines this campaign should place right now (the adapter asks again when it acts on a
        NeedContacts, since other events may have been handled in between)."""
        config = self.campaigns.get(campaign_id)
        if config is None or not config.active:
            return 0
        idle = len(self.idle_volunteers(campaign_id))
        return max(0, math.ceil(idle * config.dial_ratio) - self.in_flight(campaign_id))
