"""Captains coaching callers, pure: ``step(coaches, event, now) -> (coaches, commands)``.

A captain (permission ``coach_callers``) picks a caller on the live dashboard and a mode: ``listen`` (hears the
voter and the volunteer, nobody hears them), ``whisper`` (only the volunteer hears them) or ``barge`` (all three
talk). The captain's audio is their own leg, of one of three kinds (``LegKind``): they call in with a one-off
coach code, or their browser (WebRTC) or SIP softphone calls from a SIP account made for this one coaching
(``OpenAccount``; revoked by ``RevokeAccount`` the moment the coaching ends or its time to join runs out). Either
way the leg sits in its own holding bridge; the adapter joins it to the volunteer's audio as the commands say (ARI
snoop for listen and whisper, the volunteer's own bridge for barge). A mode change moves the leg already there: the
captain never joins again. One captain per caller, one caller per captain.

A coaching lasts no longer than the captain's right to coach: the panel reports a captain who lost it
(``CaptainDismissed``: their permission or role taken away, their user disabled, deleted or banned, or they logged
out) and the coaching ends at once, its account revoked. The panel's API token is one principal, ``TOKEN_USER``.

The volunteer's core hears of it (``bridge.volunteer.Coached``) only to show it: their state and the pacing do
not change. Nothing here holds a voter's number: the captain coaches a session, never a contact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Mode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


class LegKind(StrEnum):
    PHONE = "phone"  # calls in and keys a coach code
    WEBRTC = "webrtc"  # the dashboard's own page, computer audio
    SOFTPHONE = "softphone"


# A code nobody keyed goes after this long: codes are secrets, the fewer alive the better.
CODE_TTL_S = 300.0
# A SIP account nobody called from goes after this long: setting up a softphone takes longer than keying a code.
ACCOUNT_TTL_S = 900.0


# The captain the panel's API token coaches as: there is one token, so one principal; stored users' ids start at 1,
# so its Stop or mode change reaches only the token's own coaching, never a captain's.
TOKEN_USER = 0


def join_ttl(leg: LegKind) -> float:
    return CODE_TTL_S if leg is LegKind.PHONE else ACCOUNT_TTL_S


@dataclass(frozen=True)
class Coaching:
    coach_id: str  # names the adapter's holding bridge and snoop; never the code (a secret)
    code: str
    user_id: int
    session_id: int
    mode: Mode
    expires_at: float
    channel_id: str | None = None  # the captain's leg, once they called in
    leg: LegKind = LegKind.PHONE
    account: str = ""  # the SIP account (endpoint name) of a webrtc/softphone leg; "" for a phoned-in one


Coaches = dict[str, Coaching]  # coach id -> coaching


# events
@dataclass(frozen=True)
class Requested:
    coach_id: str
    code: str
    user_id: int
    session_id: int
    mode: Mode
    leg: LegKind = LegKind.PHONE
    account: str = ""  # webrtc/softphone: the fresh account's name (randomness comes from the adapter)


@dataclass(frozen=True)
class CaptainJoined:
    coach_id: str
    channel_id: str


@dataclass(frozen=True)
class ModeChanged:
    coach_id: str
    mode: Mode


@dataclass(frozen=True)
class AccountPushed:
    """The coaching's SIP account now exists in Asterisk (the adapter made it while other events ran: the coaching
    may have ended meanwhile, and its revocation found nothing yet to delete)."""

    coach_id: str
    username: str


@dataclass(frozen=True)
class CaptainDismissed:
    """The captain may no longer coach (permission or role taken away, user disabled, deleted or banned, logged
    out): their coaching ends now."""

    user_id: int


@dataclass(frozen=True)
class CaptainLeft:
    """The captain's leg hung up (or they pressed Stop coaching on the dashboard)."""

    coach_id: str


@dataclass(frozen=True)
class VolunteerGone:
    session_id: int


@dataclass(frozen=True)
class VolunteerLegReplaced:
    """The caller's leg changed (computer audio after the phone, say): the snoop was on the old one."""

    session_id: int


@dataclass(frozen=True)
class Tick:
    pass


Event = (
    Requested
    | AccountPushed
    | CaptainJoined
    | ModeChanged
    | CaptainLeft
    | CaptainDismissed
    | VolunteerGone
    | VolunteerLegReplaced
    | Tick
)


# commands
@dataclass(frozen=True)
class Attach:
    """Put the captain's leg on the volunteer's audio in ``mode`` (replacing any earlier attachment)."""

    coach_id: str
    channel_id: str
    session_id: int
    mode: Mode


@dataclass(frozen=True)
class Release:
    """Take the captain off the volunteer's audio, hang up their leg if any, delete the holding bridge."""

    coach_id: str
    channel_id: str | None


@dataclass(frozen=True)
class Coached:
    """Tell the volunteer's core (and so the dashboard) who is coached, in which mode ("" : nobody any more)."""

    session_id: int
    mode: str


@dataclass(frozen=True)
class Refused:
    coach_id: str
    reason: str  # "caller_coached": another captain is on them; "coaching_gone": it ended before it started


@dataclass(frozen=True)
class OpenAccount:
    """Make the SIP account the captain's browser or softphone calls from (its calls reach only this coaching)."""

    coach_id: str
    username: str
    leg: LegKind
    expires_at: float


@dataclass(frozen=True)
class RevokeAccount:
    """Delete the account: from now on it can neither register nor call."""

    coach_id: str
    username: str


Command = Attach | Release | Coached | Refused | OpenAccount | RevokeAccount


def by_code(coaches: Coaches, code: str) -> Coaching | None:
    """A coach code not keyed yet (a code joins one leg only)."""
    if not code:
        return None  # a SIP captain has no code
    return next((c for c in coaches.values() if c.code == code and c.channel_id is None), None)


def by_account(coaches: Coaches, username: str) -> Coaching | None:
    """The coaching a call from this SIP account joins: only one not joined yet (an account joins one leg only,
    a second call from it while the first is up is refused)."""
    if not username:
        return None
    return next((c for c in coaches.values() if c.account == username and c.channel_id is None), None)


def of_session(coaches: Coaches, session_id: int) -> Coaching | None:
    return next((c for c in coaches.values() if c.session_id == session_id), None)


def of_captain(coaches: Coaches, user_id: int) -> Coaching | None:
    """The captain's coaching (a captain coaches one caller at a time)."""
    return next((c for c in coaches.values() if c.user_id == user_id), None)


def by_channel(coaches: Coaches, channel_id: str) -> Coaching | None:
    """The coaching whose captain's leg this channel is."""
    return next((c for c in coaches.values() if c.channel_id == channel_id), None)


def mark(coaches: Coaches, session_id: int) -> str:
    """The caller's coached mark as the coachings stand now ("" : nobody on them). The adapter carries a
    ``Coached`` out after awaits during which other steps ran: it shows this, not the command's older mode."""
    c = of_session(coaches, session_id)
    return c.mode.value if c is not None else ""


def next_timer(coaches: Coaches) -> float | None:
    """The first code to expire unkeyed."""
    return min((c.expires_at for c in coaches.values() if c.channel_id is None), default=None)


def _end(coaches: Coaches, c: Coaching) -> list[Command]:
    del coaches[c.coach_id]
    revoke: list[Command] = [RevokeAccount(c.coach_id, c.account)] if c.account else []
    return [*revoke, Release(c.coach_id, c.channel_id), Coached(c.session_id, "")]


def _end_captains(coaches: Coaches, user_id: int) -> list[Command]:
    """End every coaching of this captain's (at most one: a captain coaches one caller at a time)."""
    cmds: list[Command] = []
    for c in [c for c in coaches.values() if c.user_id == user_id]:
        cmds += _end(coaches, c)
    return cmds


def step(coaches: Coaches, event: Event, now: float) -> tuple[Coaches, list[Command]]:
    out = dict(coaches)
    match event:
        case Requested(coach_id, code, user_id, session_id, mode, leg, account):
            other = of_session(out, session_id)
            if other is not None and other.user_id != user_id:
                return coaches, [Refused(coach_id, "caller_coached")]
            if (leg is LegKind.PHONE) != (not account):
                return coaches, [Refused(coach_id, "bad_leg")]  # a phoned-in leg has a code, a SIP leg an account
            cmds = _end_captains(out, user_id)  # a captain coaches one caller at a time: the new request wins
            expires = now + join_ttl(leg)
            out[coach_id] = Coaching(coach_id, code, user_id, session_id, mode, expires, None, leg, account)
            opened: list[Command] = [OpenAccount(coach_id, account, leg, expires)] if account else []
            return out, [*cmds, *opened, Coached(session_id, mode)]
        case AccountPushed(coach_id, username):
            if coach_id in out and out[coach_id].account == username:
                return coaches, []
            # Ended while the account was being made (a second request of the captain's, the caller leaving, the
            # captain dismissed): the revocation ran before the account existed, so delete it again now.
            return coaches, [RevokeAccount(coach_id, username), Refused(coach_id, "coaching_gone")]
        case CaptainJoined(coach_id, channel_id) if coach_id in out and out[coach_id].channel_id is None:
            c = out[coach_id] = replace(out[coach_id], channel_id=channel_id)
            return out, [Attach(coach_id, channel_id, c.session_id, c.mode)]
        case ModeChanged(coach_id, mode) if coach_id in out and out[coach_id].mode is not mode:
            c = out[coach_id] = replace(out[coach_id], mode=mode)
            cmds = [Attach(coach_id, c.channel_id, c.session_id, mode)] if c.channel_id else []
            return out, [*cmds, Coached(c.session_id, mode.value)]
        case CaptainLeft(coach_id) if coach_id in out:
            return out, _end(out, out[coach_id])
        case CaptainDismissed(user_id):
            return out, _end_captains(out, user_id)
        case VolunteerGone(session_id) if (gone := of_session(out, session_id)) is not None:
            return out, _end(out, gone)
        case VolunteerLegReplaced(session_id) if (moved := of_session(out, session_id)) and moved.channel_id:
            return out, [Attach(moved.coach_id, moved.channel_id, session_id, moved.mode)]
        case Tick():
            cmds = []
            for c in [c for c in out.values() if c.channel_id is None and now >= c.expires_at]:
                cmds += _end(out, c)
            return out, cmds
    return coaches, []
