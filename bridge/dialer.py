"""The dialer core, sans-IO: ``Dialer.handle(event, now) -> commands``.

It owns the calls in flight and the volunteers on line, decides how many lines each campaign dials, and
what happens to an answered call once AMD has judged it: a live answer goes to the volunteer who has
waited longest, or is abandoned (message, hang-up, recorded) when nobody is free; a machine gets the
voicemail drop or a hang-up. When a volunteer leaves the pool (stop, phone gone, pause), the lines still
ringing beyond what the pacing would dial for the volunteers left are hung up, newest first ("cancelled":
the contact goes straight back to the queue), so no answer rings into nobody.

No clocks, no sockets: the adapter (``ari_app``) feeds it events and carries out its commands, and the tests
drive it with tables. It owns its timers the way aioquic's connection does: ``get_timer()`` says when it next
needs to be woken (the pacing tick, a volunteer's wrap-up limit, our detector's no-verdict and listening windows)
and ``handle_timer(now)`` does what is due then; the adapter only sleeps until that time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from bridge import predictive as pr
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
    PlayVoicemail,
    PullBack,
    RecordOutcome,
    RecordVerdict,
    StopListening,
    VolunteerChanged,
)
from bridge.waiting import TRUNK_FAILURES
from store.outcomes import Outcome


class CState(StrEnum):
    DIALING = "dialing"
    RINGING = "ringing"
    AMD = "amd"  # answered, detector listening
    CONNECTING = "connecting"  # being added to a volunteer's bridge
    CONNECTED = "connected"
    MACHINE = "machine"
    ABANDONING = "abandoning"
    # Hung up by us while still ringing: its volunteer left and nobody else would take an answer.
    CANCELLED = "cancelled"
    # No "ended": a call that ends leaves Dialer.calls (its outcome is recorded), so every call there is live.


IN_FLIGHT = (CState.DIALING, CState.RINGING, CState.AMD)
# Lines that can still be withdrawn without anyone having heard us.
UNANSWERED = (CState.DIALING, CState.RINGING)
# Volunteers who will take a voter now or soon: the pool the pacing dials for.
IN_POOL = (vol.VState.IDLE, vol.VState.TALKING, vol.VState.WRAPUP)
# A call we hung up while it rang: the contact goes straight back to the queue (no attempt, no recycle delay).
CANCELLED_OUTCOME = Outcome.CANCELLED

# Q.850 causes as the trunk (or the simulated network) reports them for calls never answered.
BUSY_CAUSES = {17, 21}
NO_ANSWER_CAUSES = {18, 19, 0, 16}
CONGESTION_CAUSES = {34, 38, 41, 42, 44, 47, 58}
UNALLOCATED_CAUSES = {1, 2, 3, 22, 27, 28}


# After TRUNK_FAILURES carrier failures in a row an effort stops dialling for a while, then places one call at a
# time (a probe) until one gets through (answered, or the voter's own busy / no answer), each failure doubling the
# pause up to the cap. The same count makes the waiting reason say the trunk is down (bridge.waiting).
TRUNK_BACKOFF_S = 5.0
TRUNK_BACKOFF_MAX_S = 60.0


def carrier_failed(outcome: Outcome, rang: bool) -> bool:
    """An unanswered dial the carrier, not the voter, is to blame for: a network cause (congestion, a carrier's
    5xx) or, never having rung, no answer at all (no response: a dead trunk times out, a refused dial ends at
    once). Busy and unallocated are the number's own answers."""
    return outcome in (Outcome.CONGESTION, Outcome.FAILED) or (not rang and outcome is Outcome.NO_ANSWER)


def trunk_backoff_s(failures: int) -> float:
    """The pause before the next probe after ``failures`` carrier failures in a row (0 below the threshold)."""
    if failures < TRUNK_FAILURES:
        return 0.0
    return min(TRUNK_BACKOFF_S * 2 ** (failures - TRUNK_FAILURES), TRUNK_BACKOFF_MAX_S)


def unanswered_outcome(cause: int) -> Outcome:
    if cause in BUSY_CAUSES:
        return Outcome.BUSY
    if cause in UNALLOCATED_CAUSES:
        return Outcome.UNALLOCATED
    if cause in CONGESTION_CAUSES:
        return Outcome.CONGESTION
    if cause in NO_ANSWER_CAUSES:
        return Outcome.NO_ANSWER
    return Outcome.FAILED


DAY_S = 86400.0
# Pacing decides on a tick as well as on events (predictive only on the tick; power re-checks on it, e.g. for
# contacts that became callable): twice a second.
PACE_EVERY_S = 0.5
# Our detector's windows on an answered call (app_amd decides inside Asterisk and has none here). No verdict this
# long after the tap (no audio reached it): put through as a person, the cheaper mistake (stored as HUMAN with the
# cause AMD_TIMEOUT_CAUSE). The detector decides by its own max_analysis_ms (bridge/amd.py), 7 s, so this only
# catches lost audio or a lost verdict. 7 s (not 5.5) so that a person answering with a 4-5 s sentence has finished
# it before the detector must decide (docs/AMD.md).
AMD_VERDICT_S = 7.5
# How long the tap stays on a voter put through as a person: the detector's late-correction window is 10 s of audio
# after its verdict, which comes by the no-verdict deadline at the latest.
AMD_LISTEN_S = 17.5
AMD_TIMEOUT_CAUSE = "OURS-timeout-0"


@dataclass(frozen=True)
class CampaignConfig:
    campaign_id: int
    active: bool = True
    dial_ratio: float = 1.0
    wrapup_limit: float = 60.0
    voicemail: bool = False  # drop a message on machines (else hang up)
    # "power" (dial_ratio lines per idle volunteer) or "predictive": bridge.predictive decides either way. Any
    # other mode ("personal": the volunteer dials from their own phone) places no lines.
    mode: str = "power"
    pacing: pr.PacingConfig = field(default_factory=pr.PacingConfig)
    ring_timeout: float = 25.0

    def engine_config(self) -> pr.PacingConfig | None:
        """The pacing engine's settings for this effort (None: the dialer places no lines for it). The mode and
        the power ratio come from the effort's own columns; the rest (max_lines, the governor) from pacing."""
        if self.mode not in pr.Mode.__members__.values():
            return None
        return replace(self.pacing, mode=pr.Mode(self.mode), power_ratio=self.dial_ratio)


@dataclass(frozen=True)
class Call:
    call_id: str
    campaign_id: int
    contact_id: int
    state: CState = CState.DIALING
    answered: bool = False
    session_id: int | None = None
    outcome: Outcome | None = None
    placed_at: float = 0.0
    answered_at: float | None = None
    decided_at: float | None = None
    bridged_at: float | None = None
    verdict: str = ""  # HUMAN / MACHINE as AMD said
    # Our detector's windows (DetectorListening): a verdict is due by verdict_due, the tap comes off at listen_until.
    verdict_due: float | None = None
    listen_until: float | None = None
    awaiting_cue: bool = False  # a voicemail waits for the detector's beep (DropVoicemail on_cue)


@dataclass
class CampaignHistory:
    """What the predictive engine learns from: recent dials and conversations, and the abandon ledger."""

    window: pr.HistoryWindow
    ledger: pr.AbandonLedger = field(default_factory=pr.AbandonLedger)
    talk_s: dict[int, float] = field(default_factory=dict)  # session -> its last conversation, until wrap-up ends
    _stats: pr.HistoryStats | None = None
    _stats_size: tuple[int, int] = (-1, -1)

    def stats(self) -> pr.HistoryStats:
        # Rebuilt only when the history has grown: decisions run every tick.
        size = (len(self.window.attempts), len(self.window.conversations))
        if self._stats is None or size != self._stats_size:
            self._stats, self._stats_size = self.window.stats(), size
        return self._stats


def attempt_of(call: Call, ended_at: float) -> pr.Attempt:
    """A finished dial as the pacing history records it."""
    ring = (call.answered_at if call.answered_at is not None else ended_at) - call.placed_at
    if call.verdict in ("HUMAN", "NOTSURE"):
        outcome = pr.Outcome.HUMAN
    elif call.answered_at is not None or call.answered:
        outcome = pr.Outcome.MACHINE
    else:
        outcome = pr.Outcome.NO_ANSWER
    detect = (call.decided_at - call.answered_at) if call.decided_at and call.answered_at else 0.0
    return pr.Attempt(ring_s=max(ring, 0.0), outcome=outcome, detect_s=max(detect, 0.0))


# ---------------------------------------------------------------- events
@dataclass(frozen=True)
class CampaignUpdated:
    config: CampaignConfig


@dataclass(frozen=True)
class VolunteerJoined:
    session_id: int
    campaign_id: int
    # Joined from the panel: wait for the volunteer's "Start calling" before dialing for them.
    paused: bool = False
    leg: str = "phone"  # the kind of leg that joined (bridge.volunteer.Volunteer.leg)


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
class LateMachine:
    """The detector, still listening after its "human" verdict, heard a beep or a machine's monologue."""

    call_id: str
    cause: str = ""


@dataclass(frozen=True)
class DetectorListening:
    """Our detector hears the answered voter from now on (the adapter tapped their audio)."""

    call_id: str


@dataclass(frozen=True)
class DetectorHeard:
    """Our detector concluded something on a call it listens to: ``kind`` is bridge.amd's event kind ("human",
    "machine", "beep", "greeting_end"), ``cause`` what is stored with a verdict (rule and ms of audio)."""

    call_id: str
    kind: str
    cause: str = ""


@dataclass(frozen=True)
class DetectorDone:
    """The adapter took our detector's tap off the call (a machine verdict, the voicemail cue, a failed tap)."""

    call_id: str


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
class CallLost:
    """Asterisk lost the call itself (it restarted or crashed while the call was out; the adapter learns it on
    reconnecting). Not the voter's doing and says nothing about the trunk: a call not yet with a volunteer is
    ``pbx_lost`` (its attempt given back), one being talked on stays ``connected``."""

    call_id: str


class Hold(StrEnum):
    """Why no effort may place a call now, whatever the pacing says (the dialer's own pause, for all efforts).

    * PBX_DOWN: the controller lost Asterisk (ARI): an Originate could not even be sent.
    * STORE_DOWN: the database refuses writes (disk full, locked): a call placed now could not be recorded — not
      its claim, not its outcome — and a PBX controller must never dial a voter it cannot account for.
    Calls already out are kept: they are finished and their facts queued (bridge.write_queue) until it is back."""

    PBX_DOWN = "pbx_down"
    STORE_DOWN = "store_down"


@dataclass(frozen=True)
class HoldChanged:
    """A hold starts (``on``) or ends."""

    hold: Hold
    on: bool


@dataclass(frozen=True)
class Tick:
    """The pacing tick and every volunteer's timer at once (tables drive this; the adapter calls handle_timer)."""


@dataclass(frozen=True)
class HistoryLoaded:
    """A campaign's past from the store, so pacing and the 30-day abandon governor survive restarts."""

    campaign_id: int
    attempts: tuple[pr.Attempt, ...] = ()
    conversations: tuple[tuple[float, float], ...] = ()
    days: tuple[tuple[int, int, int], ...] = ()  # (day number, abandoned, live answers)


Event = (
    CampaignUpdated
    | VolunteerJoined
    | VolunteerEvent
    | CallPlaced
    | CallRinging
    | CallAnswered
    | AmdDecided
    | LateMachine
    | DetectorListening
    | DetectorHeard
    | DetectorDone
    | CallBridged
    | ConnectFailed
    | CallEnded
    | CallLost
    | HoldChanged
    | Tick
    | HistoryLoaded
)


class Dialer:
    def __init__(self) -> None:
        self.campaigns: dict[int, CampaignConfig] = {}
        self.volunteers: dict[int, vol.Volunteer] = {}
        self.calls: dict[str, Call] = {}
        self.history: dict[int, CampaignHistory] = {}
        self.next_pace = 0.0  # when the pacing tick is next due (handle_timer)
        # Per effort: carrier failures in a row, when the next probe may go, why and when the last one failed.
        self.trunk: dict[int, tuple[int, float, str, float]] = {}
        # Per effort: when each contact first failed at the carrier, and when a call last got through. A number
        # that fails there again after other calls have got through since is that number's trouble (a far
        # network's "no circuit"), not the trunk's: it gets its own outcome (an attempt spent, its retry wait) and
        # counts neither for nor against the trunk. Without this, one bad number — its attempt given back and
        # at the head of the queue again at once — was redialled for ever and, failing three times in a row,
        # paused the whole effort. Lives with the controller's run.
        self.carrier_failed_at: dict[int, dict[int, float]] = {}
        self.got_through_at: dict[int, float] = {}
        # Why the dialer places no call at all now (Hold); empty: pacing decides.
        self.holds: frozenset[Hold] = frozenset()
        # Per effort: the last pacing decision and everything it was made from (see plan).
        self._plans: dict[int, tuple[tuple[Any, ...], pr.HistoryStats | None, pr.Decision]] = {}

    def _history(self, campaign_id: int) -> CampaignHistory:
        h = self.history.get(campaign_id)
        if h is None:
            ring = self.campaigns.get(campaign_id, CampaignConfig(campaign_id)).ring_timeout
            h = self.history[campaign_id] = CampaignHistory(pr.HistoryWindow(ring_timeout_s=ring))
        return h

    # ------------------------------------------------------------------ queries
    def idle_volunteers(self, campaign_id: int) -> list[vol.Volunteer]:
        idle = [v for v in self.volunteers.values() if v.campaign_id == campaign_id and v.state is vol.VState.IDLE]
        return sorted(idle, key=lambda v: (v.since, v.session_id))

    def in_flight(self, campaign_id: int) -> int:
        return sum(1 for c in self.calls.values() if c.campaign_id == campaign_id and c.state in IN_FLIGHT)

    def restore(
        self,
        session_id: int,
        campaign_id: int,
        now: float,
        voter: Call | None = None,
        *,
        stored_state: str = "idle",
        stored_reason: str = "",
        stored_call_id: str | None = None,
    ) -> list[Command]:
        """After a controller restart: a volunteer found in their bridge, maybe with a voter, in the state the
        store last had for them — a pause (on a break, timed out, or not yet started from the panel) stays a
        pause, and a result still to write keeps its call. Restored without pacing, so no line is dialled
        before the whole picture is back."""
        limit = self.campaigns.get(campaign_id, CampaignConfig(campaign_id)).wrapup_limit
        v = vol.Volunteer(session_id, campaign_id, since=now, wrapup_limit=limit)
        cmds: list[Command] = []
        if voter is not None:
            self.calls[voter.call_id] = replace(voter, state=CState.CONNECTED, answered=True, session_id=session_id)
            v, cmds = vol.step(v, vol.VoterConnected(voter.call_id), now)
        elif stored_state == vol.VState.PAUSED:
            v = replace(v, state=vol.VState.PAUSED, reason=stored_reason, call_id=stored_call_id)
            cmds = [VolunteerChanged(session_id, v.state.value, stored_reason, stored_call_id)]
        elif stored_state in (vol.VState.WRAPUP, vol.VState.TALKING) and stored_call_id:
            # The voter left while we were down: the volunteer still owes the result (wrap-up starts over).
            v = replace(v, state=vol.VState.WRAPUP, call_id=stored_call_id)
            cmds = [VolunteerChanged(session_id, v.state.value, "restored", stored_call_id)]
        else:
            cmds = [VolunteerChanged(session_id, v.state.value, "restored")]
        self.volunteers[session_id] = v
        return cmds

    # ------------------------------------------------------------------ the one entry point
    def handle(self, event: Event, now: float) -> list[Command]:
        cmds = self._handle(event, now)
        if isinstance(event, Tick):
            self.next_pace = now + PACE_EVERY_S
        return [*cmds, *self._pace(now, tick=isinstance(event, Tick))]

    # ------------------------------------------------------------------ timers (aioquic style)
    def get_timer(self) -> float | None:
        """The earliest time the dialer needs ``handle_timer``; None: nothing is timed (no effort dials, nobody
        in wrap-up, no detector listening)."""
        times = [t for c in self.calls.values() for t in self._call_timers(c)]
        times += [t for v in self.volunteers.values() if (t := vol.next_timer(v)) is not None]
        if any(c.active and c.engine_config() is not None for c in self.campaigns.values()):
            times.append(self.next_pace)
        return min(times, default=None)

    def handle_timer(self, now: float) -> list[Command]:
        """Everything due by ``now``: detector windows first (a voter waiting in silence), then volunteers'
        timers, then the pacing tick."""
        out: list[Command] = []
        for call in list(self.calls.values()):
            if call.state is CState.AMD and call.verdict_due is not None and call.verdict_due <= now:
                # No audio reached the detector, or its verdict was lost: a person, the cheaper mistake.
                self.calls[call.call_id] = replace(call, verdict_due=None)
                out.append(Log("amd.no_verdict", {"call_id": call.call_id}, level="warning"))
                out += self._amd_decided(call.call_id, "HUMAN", AMD_TIMEOUT_CAUSE, now)
            elif call.listen_until is not None and call.listen_until <= now:
                # The late-correction window is over.
                self.calls[call.call_id] = replace(call, listen_until=None, verdict_due=None)
                out.append(StopListening(call.call_id))
        if now >= self.next_pace:
            return [*out, *self.handle(Tick(), now)]
        for sid, v in list(self.volunteers.items()):
            due = vol.next_timer(v)
            if due is not None and due <= now:
                out += self._volunteer_step(sid, vol.Tick(), now)
        return [*out, *self._pace(now, tick=False)]

    @staticmethod
    def _call_timers(c: Call) -> list[float]:
        out = [c.verdict_due] if c.verdict_due is not None and c.state is CState.AMD else []
        return out + ([c.listen_until] if c.listen_until is not None else [])

    def _handle(self, event: Event, now: float) -> list[Command]:
        match event:
            case CampaignUpdated(config):
                self.campaigns[config.campaign_id] = config
                for sid, v in self.volunteers.items():
                    if v.campaign_id == config.campaign_id:
                        self.volunteers[sid] = replace(v, wrapup_limit=config.wrapup_limit)
                return []
            case VolunteerJoined(session_id, campaign_id, paused, leg):
                limit = self.campaigns.get(campaign_id, CampaignConfig(campaign_id)).wrapup_limit
                state = vol.VState.PAUSED if paused else vol.VState.IDLE
                reason = "ready_to_start" if paused else "joined"
                v = vol.Volunteer(
                    session_id, campaign_id, state=state, since=now, wrapup_limit=limit, reason=reason, leg=leg
                )
                self.volunteers[session_id] = v
                return [VolunteerChanged(session_id, v.state.value, reason)]
            case VolunteerEvent(session_id, vevent):
                return self._volunteer_step(session_id, vevent, now)
            case CallPlaced(call_id, campaign_id, contact_id):
                self.calls[call_id] = Call(call_id, campaign_id, contact_id, placed_at=now)
                return [Originate(call_id, campaign_id, contact_id)]
            case CallRinging(call_id):
                return self._set(call_id, CState.RINGING, only_from=(CState.DIALING,))
            case CallAnswered(call_id):
                self._trunk_ok(call_id)
                call = self.calls.get(call_id)
                if call and call.state in (CState.DIALING, CState.RINGING):
                    self.calls[call_id] = replace(call, state=CState.AMD, answered=True, answered_at=now)
                return []
            case AmdDecided(call_id, status, cause):
                return self._amd_decided(call_id, status.upper(), cause, now)
            case LateMachine(call_id, _):
                return self._late_machine(call_id, now)
            case DetectorListening(call_id):
                call = self.calls.get(call_id)
                if call is not None:
                    self.calls[call_id] = replace(
                        call, verdict_due=now + AMD_VERDICT_S, listen_until=now + AMD_LISTEN_S
                    )
                return []
            case DetectorHeard(call_id, kind, cause):
                return self._detector_heard(call_id, kind, cause, now)
            case DetectorDone(call_id):
                call = self.calls.get(call_id)
                if call is not None:
                    self.calls[call_id] = replace(call, verdict_due=None, listen_until=None, awaiting_cue=False)
                return []
            case CallBridged(call_id):
                call = self.calls.get(call_id)
                if call and call.state is CState.CONNECTING:
                    self.calls[call_id] = replace(call, state=CState.CONNECTED, bridged_at=now)
                return []
            case ConnectFailed(call_id):
                return self._connect_failed(call_id, now)
            case CallEnded(call_id, cause):
                return self._call_ended(call_id, cause, now)
            case CallLost(call_id):
                return self._call_ended(call_id, 0, now, lost=True)
            case HoldChanged(hold, on):
                before = self.holds
                self.holds = before | {hold} if on else before - {hold}
                if self.holds == before:
                    return []
                fields: dict[str, object] = {"hold": hold.value, "holds": sorted(h.value for h in self.holds)}
                return [Log("dialer.hold" if on else "dialer.hold_released", fields, level="error" if on else "info")]
            case Tick():
                out: list[Command] = []
                for sid in list(self.volunteers):
                    out += self._volunteer_step(sid, vol.Tick(), now)
                return out
            case HistoryLoaded(campaign_id, attempts, conversations, days):
                h = self._history(campaign_id)
                for a in attempts:
                    h.window.add_attempt(a)
                for talk, wrap in conversations:
                    h.window.add_conversation(talk, wrap)
                for day, abandoned, live in days:
                    h.ledger.record(day, abandoned=abandoned, live=live)
                return []
        return []

    # ------------------------------------------------------------------ calls
    def _set(self, call_id: str, state: CState, only_from: tuple[CState, ...]) -> list[Command]:
        call = self.calls.get(call_id)
        if call and call.state in only_from:
            self.calls[call_id] = replace(call, state=state)
        return []

    def _amd_decided(self, call_id: str, status: str, cause: str, now: float, again: bool = False) -> list[Command]:
        """``again``: a live answer already counted, put through a second time (its volunteer vanished)."""
        call = self.calls.get(call_id)
        if call is None or call.state not in (CState.AMD, CState.RINGING, CState.DIALING):
            return []
        call = replace(
            call,
            answered=True,
            decided_at=now,
            verdict=status,
            verdict_due=None,
            answered_at=call.answered_at if call.answered_at is not None else now,
        )
        ledger = self._history(call.campaign_id).ledger
        # Put through first, stored after: the voter is waiting in silence. A hand-over decides nothing new.
        verdict: list[Command] = [] if again else [RecordVerdict(call_id, status, cause)]
        if status in ("HUMAN", "NOTSURE"):
            idle = self.idle_volunteers(call.campaign_id)
            ledger.record(int(now // DAY_S), abandoned=0 if idle else 1, live=0 if again else 1)
            if not again:
                # Into the history at the verdict, as the simulator records it: kept until hang-up, a live answer
                # would be missing for its whole conversation, and early in a shift (most of them still talking)
                # the answer rate would look far lower than it is and the forecast would overdial.
                self._history(call.campaign_id).window.add_attempt(attempt_of(call, now))
            if idle:
                v = idle[0]
                self.calls[call_id] = replace(call, state=CState.CONNECTING, session_id=v.session_id)
                nv, cmds = vol.step(v, vol.VoterConnected(call_id), now)
                self.volunteers[v.session_id] = nv
                return [Connect(call_id, v.session_id), *cmds, *verdict]
            self.calls[call_id] = replace(call, state=CState.ABANDONING, outcome=Outcome.ABANDONED)
            return [
                PlayAbandonMessage(call_id),
                RecordOutcome(call_id, Outcome.ABANDONED, abandoned=True),
                Log("call.abandoned", {"call_id": call_id, "amd": status}),
                *verdict,
            ]
        if status == "MACHINE":
            config = self.campaigns.get(call.campaign_id, CampaignConfig(call.campaign_id))
            if config.voicemail:
                self.calls[call_id] = replace(call, state=CState.MACHINE, outcome=Outcome.VOICEMAIL_LEFT)
                return [self._drop_voicemail(call_id), RecordOutcome(call_id, Outcome.VOICEMAIL_LEFT), *verdict]
            self.calls[call_id] = replace(call, state=CState.MACHINE, outcome=Outcome.MACHINE)
            return [HangupCall(call_id, "machine"), RecordOutcome(call_id, Outcome.MACHINE), *verdict]
        # HANGUP or anything unknown: the far end is gone or unusable.
        self.calls[call_id] = replace(call, state=CState.MACHINE, outcome=Outcome.HANGUP_BEFORE_CONNECT)
        return [
            HangupCall(call_id, f"amd_{status.lower()}"),
            RecordOutcome(call_id, Outcome.HANGUP_BEFORE_CONNECT),
            *verdict,
        ]

    def _drop_voicemail(self, call_id: str) -> DropVoicemail:
        """While our detector listens, the message waits for its beep; the tap then stays until that cue (or the
        hang-up), so its listening window no longer applies."""
        call = self.calls[call_id]
        if call.listen_until is None:
            return DropVoicemail(call_id)
        self.calls[call_id] = replace(call, listen_until=None, awaiting_cue=True)
        return DropVoicemail(call_id, on_cue=True)

    def _detector_heard(self, call_id: str, kind: str, cause: str, now: float) -> list[Command]:
        """Our detector's events: the verdict while the call is judged, a late correction once it was put through
        (the tap stays for a voicemail's cue, else comes off), the cue for a voicemail waiting for it."""
        call = self.calls.get(call_id)
        if call is None:
            return []
        out: list[Command] = []
        if kind in ("human", "machine") and call.state is CState.AMD:
            out = self._amd_decided(call_id, "HUMAN" if kind == "human" else "MACHINE", cause, now)
            # After "human" the detector keeps listening for its late-correction window (handle_timer).
            if kind == "human":
                return out
        elif kind == "machine" and call.state in (CState.CONNECTING, CState.CONNECTED):
            out = [
                Log(
                    "call.machine_pulled_back", {"call_id": call_id, "amd_cause": cause, "session_id": call.session_id}
                ),
                *self._late_machine(call_id, now),
                RecordVerdict(call_id, "MACHINE", cause, late=True),
            ]
        elif kind in ("beep", "greeting_end") and call.awaiting_cue:
            self.calls[call_id] = replace(call, awaiting_cue=False)
            return [
                Log("call.voicemail_cue", {"call_id": call_id, "cue": kind, "amd_cause": cause}),
                PlayVoicemail(call_id),
                StopListening(call_id),
            ]
        else:
            return []
        now_call = self.calls.get(call_id)
        if now_call is not None and not now_call.awaiting_cue:
            self.calls[call_id] = replace(now_call, listen_until=None, verdict_due=None)
            out.append(StopListening(call_id))
        return out

    def _late_machine(self, call_id: str, now: float) -> list[Command]:
        call = self.calls.get(call_id)
        if call is None or call.state not in (CState.CONNECTING, CState.CONNECTED) or call.session_id is None:
            return []
        # It was counted as a live answer; it was not one.
        self._history(call.campaign_id).ledger.record(int(now // DAY_S), live=-1)
        config = self.campaigns.get(call.campaign_id, CampaignConfig(call.campaign_id))
        outcome = Outcome.VOICEMAIL_LEFT if config.voicemail else Outcome.MACHINE
        self.calls[call_id] = replace(call, state=CState.MACHINE, verdict="MACHINE", outcome=outcome)
        out: list[Command] = [PullBack(call_id, call.session_id)]
        out += self._volunteer_step(call.session_id, vol.VoterWithdrawn(call_id, "machine_pulled_back"), now)
        out.append(self._drop_voicemail(call_id) if config.voicemail else HangupCall(call_id, "machine_late"))
        out.append(RecordOutcome(call_id, outcome))
        return out

    def _connect_failed(self, call_id: str, now: float) -> list[Command]:
        call = self.calls.get(call_id)
        if call is None or call.state is not CState.CONNECTING or call.session_id is None:
            return []
        # The volunteer's bridge vanished under us: give the voter to someone else, or abandon.
        sid = call.session_id
        v = self.volunteers.get(sid)
        if v is not None and v.state is vol.VState.TALKING and v.call_id == call_id:
            return self._volunteer_step(sid, vol.LegGone(), now)  # which hands the voter on
        out = self._volunteer_step(sid, vol.LegGone(), now) if v is not None else []
        self.calls[call_id] = replace(call, state=CState.AMD, session_id=None)
        return out + self._amd_decided(call_id, "HUMAN", "reconnect", now, again=True)

    def _call_ended(self, call_id: str, cause: int, now: float, lost: bool = False) -> list[Command]:
        """``lost``: Asterisk lost the call (CallLost), not the voter's or the trunk's doing."""
        call = self.calls.pop(call_id, None)
        if call is None:
            return []
        h = self._history(call.campaign_id)
        out: list[Command] = []
        outcome: Outcome | None = None
        if call.outcome is None and lost:
            outcome = Outcome.CONNECTED if call.state is CState.CONNECTED else Outcome.PBX_LOST
            out.append(RecordOutcome(call_id, outcome))
        elif call.outcome is None:
            through = True  # the voter's own answer (answered, busy, no answer...): the call got through
            if call.state is CState.CONNECTED:
                outcome = Outcome.CONNECTED
            elif call.answered:
                outcome = Outcome.HANGUP_BEFORE_CONNECT
            else:
                outcome = unanswered_outcome(cause)
                if carrier_failed(outcome, rang=call.state is CState.RINGING):
                    through = False
                    failed_at = self.carrier_failed_at.setdefault(call.campaign_id, {})
                    first = failed_at.setdefault(call.contact_id, now)
                    if self.got_through_at.get(call.campaign_id, float("-inf")) <= first:
                        out += self._trunk_failed(call.campaign_id, f"{outcome} (cause {cause})", now)
                        outcome = Outcome.TRUNK_FAILED
                    # else: the trunk carried other calls since this number first failed there: its own outcome
            if through:
                self._trunk_through(call)
                self.got_through_at[call.campaign_id] = now
            out.append(RecordOutcome(call_id, outcome))
        if (
            call.state is not CState.CANCELLED
            and outcome not in (Outcome.TRUNK_FAILED, Outcome.PBX_LOST)
            and call.verdict not in ("HUMAN", "NOTSURE")
        ):
            # A line we withdrew, or one the carrier or Asterisk failed, says nothing about how this list answers.
            # A live answer went in at its verdict (_amd_decided).
            h.window.add_attempt(attempt_of(call, now))
        if call.session_id is not None and call.state is CState.CONNECTED:
            h.talk_s[call.session_id] = now - (call.bridged_at or call.decided_at or now)
        if call.session_id is not None and call.session_id in self.volunteers:
            # Gone before it reached the bridge: the volunteer never heard anyone, so no wrap-up.
            gone = (
                vol.VoterWithdrawn(call_id, "voter_hung_up_before_connect")
                if call.state is CState.CONNECTING
                else vol.VoterGone(call_id)
            )
            out += self._volunteer_step(call.session_id, gone, now)
        return out

    def _trunk_failed(self, campaign_id: int, why: str, now: float) -> list[Command]:
        failures = self.trunk.get(campaign_id, (0, 0.0, "", 0.0))[0] + 1
        pause = trunk_backoff_s(failures)
        self.trunk[campaign_id] = (failures, now + pause, why, now)
        if not pause:
            return []
        return [
            Log(
                "trunk.backoff",
                {"campaign_id": campaign_id, "failures": failures, "pause_s": pause, "why": why},
                level="warning",
            )
        ]

    def _trunk_ok(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None:
            # Answered: the carrier carries calls. Not on ringing: a carrier may send 180 and then fail the call.
            self._trunk_through(call)

    def _trunk_through(self, call: Call) -> None:
        """A call got through: the carrier works — if the call was placed after its last failure. An older call
        answered now says nothing about the trunk since (a trunk failing half its calls would otherwise never
        be paused)."""
        state = self.trunk.get(call.campaign_id)
        if state is not None and call.placed_at >= state[3]:
            del self.trunk[call.campaign_id]

    def trunk_error(self, campaign_id: int) -> str | None:
        """Why the carrier is taken to be down for this effort (None: it is not)."""
        failures, _, why, _ = self.trunk.get(campaign_id, (0, 0.0, "", 0.0))
        if failures < TRUNK_FAILURES:
            return None
        return f"{failures} calls in a row failed at the carrier, the last with {why}"

    # ------------------------------------------------------------------ volunteers
    def _volunteer_step(self, session_id: int, event: vol.VEvent, now: float) -> list[Command]:
        v = self.volunteers.get(session_id)
        if v is None:
            return []
        nv, cmds = vol.step(v, event, now)
        handover = self.calls.get(v.call_id or "")
        if not (
            isinstance(event, (vol.Stop, vol.LegGone))
            and v.state is vol.VState.TALKING
            and handover
            and handover.state is CState.CONNECTING
        ):
            handover = None
        else:
            # Leaving as their voter is being put through: that voter never heard them, so they go to another
            # idle volunteer (or hear the abandon message), not a bare hang-up.
            cmds = [c for c in cmds if not (isinstance(c, HangupCall) and c.call_id == handover.call_id)]
        if v.state is vol.VState.WRAPUP and nv.state is not vol.VState.WRAPUP:
            h = self._history(v.campaign_id)
            talk = h.talk_s.pop(session_id, None)
            if talk is not None:
                h.window.add_conversation(talk, now - v.since)
        if nv.state is vol.VState.ENDED or nv.state is vol.VState.DISCONNECTED:
            del self.volunteers[session_id]
        else:
            self.volunteers[session_id] = nv
        if handover is not None:
            self.calls[handover.call_id] = replace(handover, state=CState.AMD, session_id=None)
            cmds = [*cmds, *self._amd_decided(handover.call_id, "HUMAN", "handover", now, again=True)]
        if v.state in IN_POOL and nv.state not in IN_POOL:
            # Stop, phone gone, pause: the lines dialled for them must not ring into nobody.
            cmds = [*cmds, *self._cancel_excess(v.campaign_id, now)]
        return cmds

    def _cancel_excess(self, campaign_id: int, now: float) -> list[Command]:
        """Hang up the ringing lines the pacing would not place for the volunteers left, newest first.

        Only never-answered lines: hanging up an answered one would itself be an abandon. Answers from the
        lines kept go to any idle volunteer of the effort, as always."""
        ours = [
            c for c in self.calls.values() if c.campaign_id == campaign_id and c.state in UNANSWERED and not c.answered
        ]
        # Newest first; placed at the same moment, the later placed (dict order) goes first.
        ringing = [c for _, c in sorted(enumerate(ours), key=lambda ic: (ic[1].placed_at, ic[0]), reverse=True)]
        if not ringing:
            return []
        out: list[Command] = []
        for call in ringing[: self.excess_lines(campaign_id, now, ringing)]:
            self.calls[call.call_id] = replace(call, state=CState.CANCELLED, outcome=CANCELLED_OUTCOME)
            out += [
                HangupCall(call.call_id, CANCELLED_OUTCOME),
                RecordOutcome(call.call_id, CANCELLED_OUTCOME),
                Log("call.cancelled", {"call_id": call.call_id, "campaign_id": campaign_id}),
            ]
        return out

    def excess_lines(self, campaign_id: int, now: float, ringing: list[Call]) -> int:
        """How many of ``ringing`` (newest first) the volunteers still in the pool cannot take, by the pacing
        rule of the effort's mode: the line count it would dial for them now."""
        pool = [v for v in self.volunteers.values() if v.campaign_id == campaign_id and v.state in IN_POOL]
        if not pool:
            return len(ringing)
        # The engine is asked, not second-guessed (power and predictive alike): a ringing line is worth keeping
        # when, without it (and the newer ones), the engine would dial again.
        for kept in range(len(ringing)):
            without = frozenset(c.call_id for c in ringing[: kept + 1])
            if self.plan(campaign_id, now, without=without).new_calls >= 1:
                return kept
        return len(ringing)

    # ------------------------------------------------------------------ pacing
    def _pace(self, now: float, tick: bool) -> list[Command]:
        """Lines to add per campaign. Power campaigns react to every event; predictive ones decide on the
        tick (twice a second), which keeps the engine's forecast off the path of an answered call."""
        out: list[Command] = []
        for cid, config in self.campaigns.items():
            if config.mode == "predictive" and not tick:
                continue
            want = self.lines_wanted(cid, now)
            if want > 0:
                out.append(NeedContacts(cid, want))
        return out

    def lines_wanted(self, campaign_id: int, now: float) -> int:
        """New lines this campaign should place right now (the adapter asks again when it acts on a
        NeedContacts, since other events may have been handled in between)."""
        config = self.campaigns.get(campaign_id)
        if config is None or not config.active or self.holds:
            return 0
        failures, retry_at, _, _ = self.trunk.get(campaign_id, (0, 0.0, "", 0.0))
        if failures >= TRUNK_FAILURES:
            # The carrier is failing calls: none during the pause, then one probe at a time until one gets through.
            if now < retry_at or self.in_flight(campaign_id):
                return 0
            return min(1, self.plan(campaign_id, now).new_calls)
        return self.plan(campaign_id, now).new_calls

    def plan(self, campaign_id: int, now: float, without: frozenset[str] = frozenset()) -> pr.Decision:
        """The pacing engine's decision for this campaign in its mode (power or predictive), from the live state
        and its history (``without``: as if these calls were not out). The simulator (bridge.pacing_sim) makes
        the same ``pr.plan`` call on its own state."""
        config = self.campaigns.get(campaign_id, CampaignConfig(campaign_id))
        engine = config.engine_config()
        if engine is None:
            return pr.Decision(0, f"{config.mode}: the volunteer dials")
        h = self._history(campaign_id)
        # Only the predictive forecast reads the history: power decides on every event and skips building it.
        stats = h.stats() if engine.mode is pr.Mode.PREDICTIVE else None
        state, counts = self.live_state(campaign_id, now, without), h.ledger.counts(int(now // DAY_S))
        # The forecast is 10-40 ms of numpy at 50-100 volunteers, on the event loop the calls share, and the same
        # decision is often asked twice: the tick's NeedContacts asks again when the adapter carries it out
        # (lines_wanted, same clock reading, usually nothing changed in between). The last decision per effort
        # is kept with all it was made from (config, live state with its ages, the history's stats by identity:
        # rebuilt only when the history grows, abandon counts); anything different is a fresh decision.
        key = (engine, state, counts)
        hit = self._plans.get(campaign_id)
        if hit is not None and hit[1] is stats and hit[0] == key:
            return hit[2]
        decision = pr.plan(engine, state, stats, counts)
        self._plans[campaign_id] = (key, stats, decision)
        return decision

    def live_state(self, campaign_id: int, now: float, without: frozenset[str] = frozenset()) -> pr.LiveState:
        status = {
            vol.VState.IDLE: pr.VolunteerStatus.IDLE,
            vol.VState.TALKING: pr.VolunteerStatus.TALKING,
            vol.VState.WRAPUP: pr.VolunteerStatus.WRAPUP,
        }
        volunteers = tuple(
            pr.Volunteer(status[v.state], max(now - v.since, 0.0))
            for v in self.volunteers.values()
            if v.campaign_id == campaign_id and v.state in status
        )
        calls = []
        for c in self.calls.values():
            if c.campaign_id != campaign_id or c.call_id in without:
                continue
            if c.state in (CState.DIALING, CState.RINGING):
                calls.append(pr.Call(pr.CallStatus.RINGING, max(now - c.placed_at, 0.0)))
            elif c.state is CState.AMD:
                calls.append(pr.Call(pr.CallStatus.AMD, max(now - (c.answered_at or now), 0.0)))
        return pr.LiveState(volunteers, tuple(calls))


def history_from_rows(rows: Iterable[Mapping[str, Any]]) -> HistoryLoaded | None:
    """Rebuild a campaign's pacing history from its stored calls (oldest first)."""
    attempts: list[pr.Attempt] = []
    conversations: list[tuple[float, float]] = []
    days: dict[int, list[int]] = {}
    cid = 0
    for r in rows:
        cid = int(r["campaign_id"])
        if r["ended_at"] is None or r.get("outcome") == Outcome.CANCELLED:
            continue
        call = Call(
            str(r["id"]),
            cid,
            0,
            placed_at=float(r["originated_at"]),
            answered_at=r["answered_at"],
            decided_at=r["amd_decided_at"],
            verdict=str(r["amd_status"] or ""),
            answered=r["answered_at"] is not None,
        )
        attempts.append(attempt_of(call, float(r["ended_at"])))
        if call.verdict in ("HUMAN", "NOTSURE"):
            day = days.setdefault(int(float(r["amd_decided_at"] or r["ended_at"]) // DAY_S), [0, 0])
            day[0] += int(bool(r["abandoned"]))
            day[1] += 1
        if r["bridged_at"] is not None and r.get("disposed_at") is not None:
            talk = float(r["ended_at"]) - float(r["bridged_at"])
            wrap = float(r["disposed_at"]) - float(r["ended_at"])
            conversations.append((max(talk, 0.0), max(wrap, 0.0)))
    if not cid:
        return None
    return HistoryLoaded(
        cid, tuple(attempts), tuple(conversations), tuple((d, a, lv) for d, (a, lv) in sorted(days.items()))
    )
