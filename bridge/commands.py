"""What the sans-IO core asks the adapter to do. The adapter turns each into ARI requests and store writes."""

from __future__ import annotations

from dataclasses import dataclass, field

from store.outcomes import Outcome


@dataclass(frozen=True)
class Originate:
    call_id: str
    campaign_id: int
    contact_id: int


@dataclass(frozen=True)
class Connect:
    """Put the voter's channel into the volunteer's bridge and beep the volunteer."""

    call_id: str
    session_id: int


@dataclass(frozen=True)
class PullBack:
    """Take a voter's channel back out of the volunteer's bridge (a machine caught late)."""

    call_id: str
    session_id: int


@dataclass(frozen=True)
class PlayAbandonMessage:
    call_id: str


@dataclass(frozen=True)
class DropVoicemail:
    """Leave the effort's message; ``on_cue``: our detector is still listening, so the message starts on its beep
    (or the end of the greeting) instead of at once."""

    call_id: str
    on_cue: bool = False


@dataclass(frozen=True)
class RecordVerdict:
    """The detector's verdict on an answered call (or the dialer's own, when none came in time), to be stored.
    ``late``: a correction after the call was put through (its first decision's time stays)."""

    call_id: str
    status: str
    cause: str
    late: bool = False


@dataclass(frozen=True)
class PlayVoicemail:
    """Our detector heard the machine's beep (or the end of its greeting): leave the effort's message now."""

    call_id: str


@dataclass(frozen=True)
class StopListening:
    """Take our detector's tap off the call: its listening window is over."""

    call_id: str


@dataclass(frozen=True)
class HangupCall:
    call_id: str
    reason: str


@dataclass(frozen=True)
class HangupVolunteer:
    session_id: int


@dataclass(frozen=True)
class NeedContacts:
    """The campaign wants ``count`` more lines: the adapter claims contacts and feeds CallPlaced back."""

    campaign_id: int
    count: int


@dataclass(frozen=True)
class RecordOutcome:
    """A call's classification, once known (the adapter persists it and applies the retry rules)."""

    call_id: str
    outcome: Outcome
    abandoned: bool = False


@dataclass(frozen=True)
class VolunteerChanged:
    session_id: int
    state: str
    reason: str = ""
    call_id: str | None = None


@dataclass(frozen=True)
class Log:
    event: str
    fields: dict[str, object] = field(default_factory=dict)
    level: str = "info"


Command = (
    Originate
    | Connect
    | PullBack
    | PlayAbandonMessage
    | DropVoicemail
    | RecordVerdict
    | PlayVoicemail
    | StopListening
    | HangupCall
    | HangupVolunteer
    | NeedContacts
    | RecordOutcome
    | VolunteerChanged
    | Log
)
