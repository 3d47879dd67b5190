"""Call-in code entry, pure: ``step(entry, event, now) -> (entry, commands)``.

A volunteer's call is answered, asked for their session code (keypad), and — once the code matches an
open session — handed over to the dialer for the whole shift. Three wrong or missing codes end the call
politely.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

CODE_LENGTH = 6
MAX_TRIES = 3
DIGIT_TIMEOUT_S = 10.0

PROMPT = "sound:agent-pass"  # "Please enter your password followed by the pound key."
WRONG = "sound:auth-incorrect"  # "Login incorrect."
WELCOME = "sound:agent-loginok"  # "Agent logged in."
GOODBYE = "sound:vm-goodbye"  # "Goodbye."


class EState(StrEnum):
    COLLECTING = "collecting"
    VALIDATING = "validating"
    JOINED = "joined"
    RECORDING = "recording"  # the code was an admin's: record the effort's voicemail message
    REFUSED = "refused"


@dataclass(frozen=True)
class Entry:
    channel_id: str
    state: EState = EState.COLLECTING
    digits: str = ""
    tries: int = 0
    deadline: float = 0.0


# events
@dataclass(frozen=True)
class Started:
    pass


@dataclass(frozen=True)
class Digit:
    digit: str


@dataclass(frozen=True)
class Validated:
    session_id: int | None  # None: no open session has this code


@dataclass(frozen=True)
class RecordingCode:
    """No session has the code, but an admin asked to record a message with it."""

    code: str


@dataclass(frozen=True)
class Tick:
    pass


EntryEvent = Started | Digit | Validated | RecordingCode | Tick


# commands
@dataclass(frozen=True)
class Play:
    channel_id: str
    media: tuple[str, ...]


@dataclass(frozen=True)
class CheckCode:
    channel_id: str
    code: str


@dataclass(frozen=True)
class Join:
    channel_id: str
    session_id: int


@dataclass(frozen=True)
class Refuse:
    """Say goodbye and hang up."""

    channel_id: str


@dataclass(frozen=True)
class StartRecording:
    channel_id: str
    code: str


EntryCommand = Play | CheckCode | Join | Refuse | StartRecording


def step(e: Entry, event: EntryEvent, now: float) -> tuple[Entry, list[EntryCommand]]:
    match event:
        case Started():
            return replace(e, deadline=now + DIGIT_TIMEOUT_S), [Play(e.channel_id, (PROMPT,))]
        case Digit(d) if e.state is EState.COLLECTING:
            if d == "*":
                return replace(e, digits="", deadline=now + DIGIT_TIMEOUT_S), []
            if d == "#":
                return _submit(e, now) if e.digits else (e, [])
            if not d.isdigit():
                return e, []
            e = replace(e, digits=e.digits + d, deadline=now + DIGIT_TIMEOUT_S)
            return _submit(e, now) if len(e.digits) >= CODE_LENGTH else (e, [])
        case Validated(session_id) if e.state is EState.VALIDATING:
            if session_id is not None:
                return replace(e, state=EState.JOINED), [Join(e.channel_id, session_id)]
            return _wrong(e, now)
        case RecordingCode(code) if e.state is EState.VALIDATING:
            return replace(e, state=EState.RECORDING), [StartRecording(e.channel_id, code)]
        case Tick() if e.state is EState.COLLECTING and now >= e.deadline:
            # Silence counts as a try, so a forgotten phone does not hold a line for ever.
            return _wrong(e, now)
    return e, []


def _submit(e: Entry, now: float) -> tuple[Entry, list[EntryCommand]]:
    return replace(e, state=EState.VALIDATING), [CheckCode(e.channel_id, e.digits)]


def _wrong(e: Entry, now: float) -> tuple[Entry, list[EntryCommand]]:
    tries = e.tries + 1
    if tries >= MAX_TRIES:
        return replace(e, state=EState.REFUSED, tries=tries, digits=""), [Refuse(e.channel_id)]
    return (replace(e, state=EState.COLLECTING, tries=tries, digits="", deadline=now + DIGIT_TIMEOUT_S),
            [Play(e.channel_id, (WRONG, PROMPT))])
