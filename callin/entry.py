"""Call-in code entry, pure: ``step(entry, event, now) -> (entry, commands)``.

A volunteer's call is answered, asked for their session code (keypad), and — once the code matches a
session waiting for its phone — handed over to the dialer for the whole shift. Three wrong or missing codes end
the call politely.

A keyed code is not looked up at once: ``CheckCode`` asks the call-in guard (``callin.guard``, limits across
calls), which answers with ``Validated`` (looked up), ``Hold`` (the caller waits — tarpit or overall pace — and
the core asks again when the time has come) or ``Locked`` (this number is locked out: no lookup, goodbye).

Languages: until a code is known nothing says which language the caller speaks, so the prompts before it (enter
your code, wrong code, one moment) and a refusal's goodbye are said in each of the call-in's languages in turn
(``Entry.languages``, the setting PHONEBANK_CALLIN_LANGUAGES, "en,es" by default), the channel itself in the first;
keying a digit cuts the prompts short (``StopPrompts``). A code that opens a session sets the channel's language to
the session's (``SetLanguage``, before ``Join``), so the welcome, the beeps and anything else played to it from then
on are in the volunteer's language (bridge.language; docs/OPERATIONS.md, "Languages on the phone").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from callin import guard as g

# Ten digits: the guard's overall pace lets through at most a few thousand guesses a day, against 9e9 codes
# (docs/OPERATIONS.md, "Call-in codes").
CODE_LENGTH = 10
MAX_TRIES = 3
DIGIT_TIMEOUT_S = 10.0

PROMPT = "sound:agent-pass"  # "Please enter your password followed by the pound key."
WRONG = "sound:auth-incorrect"  # "Login incorrect."
WELCOME = "sound:agent-loginok"  # "Agent logged in."
GOODBYE = "sound:vm-goodbye"  # "Goodbye."
HOLD = "sound:one-moment-please"  # "One moment please."
# A channel nobody set a language on speaks Asterisk's default (config/asterisk/asterisk.conf defaultlanguage).
DEFAULT_LANGUAGE = "en"


class EState(StrEnum):
    COLLECTING = "collecting"
    VALIDATING = "validating"
    HOLDING = "holding"  # the guard holds the code back (tarpit or pace); asked again at the deadline
    JOINED = "joined"
    RECORDING = "recording"  # the code was an admin's: record the effort's voicemail message
    COACHING = "coaching"  # the code was a captain's: their leg goes to the coaching (bridge.coaching)
    REFUSED = "refused"


@dataclass(frozen=True)
class Entry:
    channel_id: str
    state: EState = EState.COLLECTING
    digits: str = ""
    tries: int = 0
    deadline: float = 0.0
    caller: str = ""  # the calling number (caller ID), for the guard's limits per number
    submitted_at: float = 0.0
    held: bool = False  # this code was held already ("one moment please" is said once)
    # The call-in's languages, the prompts before a code is known said in each (the first is the channel's own).
    languages: tuple[str, ...] = (DEFAULT_LANGUAGE,)


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
    language: str = ""  # the session's language, as Asterisk names it ("": the call-in's first)


@dataclass(frozen=True)
class RecordingCode:
    """No session has the code, but an admin asked to record a message with it."""

    code: str


@dataclass(frozen=True)
class CoachCode:
    """No session has the code, but a captain asked to coach a caller with it."""

    coach_id: str


@dataclass(frozen=True)
class Hold:
    """The guard will not have the code looked up before ``until``."""

    until: float


@dataclass(frozen=True)
class Locked:
    """The calling number is locked out: the code is not looked up."""


@dataclass(frozen=True)
class Tick:
    """The timer ``get_timer`` asked for is due (a tick before it changes nothing)."""


EntryEvent = Started | Digit | Validated | RecordingCode | CoachCode | Hold | Locked | Tick


# commands
@dataclass(frozen=True)
class Play:
    channel_id: str
    media: tuple[str, ...]
    lang: str = ""  # play in this language ("": the channel's)


@dataclass(frozen=True)
class SetLanguage:
    """Every sound played to the channel from now on is in ``lang`` (ARI: CHANNEL(language))."""

    channel_id: str
    lang: str


@dataclass(frozen=True)
class StopPrompts:
    """The caller is keying: the prompts still playing or queued stop (barge-in)."""

    channel_id: str


@dataclass(frozen=True)
class CheckCode:
    """Ask the guard, then (if it lets it through) look the code up."""

    channel_id: str
    code: str
    caller: str
    submitted_at: float


@dataclass(frozen=True)
class Join:
    channel_id: str
    session_id: int


@dataclass(frozen=True)
class Refuse:
    """Say goodbye and hang up (a locked-out number first hears "I'm sorry, please try again later"), in each of
    ``languages`` in turn (no code is known, so no language either, as for the prompts); () is the channel's."""

    channel_id: str
    locked: bool = False
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class StartRecording:
    channel_id: str
    code: str


@dataclass(frozen=True)
class StartCoaching:
    channel_id: str
    coach_id: str


EntryCommand = Play | SetLanguage | StopPrompts | CheckCode | Join | Refuse | StartRecording | StartCoaching


def get_timer(e: Entry) -> float | None:
    """When this entry next needs a ``Tick`` (aioquic's get_timer): the digit timeout while collecting, the end of
    the guard's hold while holding. None before ``Started`` (no deadline yet) and while nothing is timed."""
    if e.state in (EState.COLLECTING, EState.HOLDING) and e.deadline > 0:
        return e.deadline
    return None


def step(e: Entry, event: EntryEvent, now: float) -> tuple[Entry, list[EntryCommand]]:
    match event:
        case Started():
            first = _first_language(e)
            cmds: list[EntryCommand] = [] if first == DEFAULT_LANGUAGE else [SetLanguage(e.channel_id, first)]
            return replace(e, deadline=now + _prompted_timeout(e)), [*cmds, *_prompts(e, PROMPT)]
        case Digit(d) if e.state is EState.COLLECTING:
            # The first key of a try stops the prompts (the rest of a bilingual prompt is not waited for).
            stop: list[EntryCommand] = [] if e.digits else [StopPrompts(e.channel_id)]
            if d == "*":
                return replace(e, digits="", deadline=now + DIGIT_TIMEOUT_S), stop
            if d == "#":
                return _submit(e, now) if e.digits else (e, stop)
            if not d.isdigit():
                return e, []
            e = replace(e, digits=e.digits + d, deadline=now + DIGIT_TIMEOUT_S)
            if len(e.digits) >= CODE_LENGTH:
                e, cmds = _submit(e, now)
                return e, [*stop, *cmds]
            return e, stop
        case Validated(session_id, language) if e.state is EState.VALIDATING:
            if session_id is not None:
                # The session's language for everything the volunteer hears from here on (welcome, beeps); the
                # channel is in the call-in's first language already.
                first = _first_language(e)
                spoken = language or first
                switch: list[EntryCommand] = [] if spoken == first else [SetLanguage(e.channel_id, spoken)]
                return replace(e, state=EState.JOINED), [*switch, Join(e.channel_id, session_id)]
            return _wrong(e, now)
        case RecordingCode(code) if e.state is EState.VALIDATING:
            return replace(e, state=EState.RECORDING), [StartRecording(e.channel_id, code)]
        case CoachCode(coach_id) if e.state is EState.VALIDATING:
            return replace(e, state=EState.COACHING), [StartCoaching(e.channel_id, coach_id)]
        case Hold(until) if e.state is EState.VALIDATING:
            held = [] if e.held else _prompts(e, HOLD)
            return replace(e, state=EState.HOLDING, deadline=until, held=True), held
        case Locked() if e.state is EState.VALIDATING:
            return replace(e, state=EState.REFUSED, digits=""), [_refuse(e, locked=True)]
        case Tick() if e.state is EState.HOLDING and now >= e.deadline:
            return replace(e, state=EState.VALIDATING), [CheckCode(e.channel_id, e.digits, e.caller, e.submitted_at)]
        case Tick() if e.state is EState.COLLECTING and now >= e.deadline:
            # Silence counts as a try, so a forgotten phone does not hold a line for ever.
            return _wrong(e, now)
    return e, []


def guard_answer(decision: g.Decision) -> EntryEvent | None:
    """The guard's answer to a ``CheckCode`` as the entry's next event; None: look the code up now."""
    match decision:
        case g.Hold(until, _):
            return Hold(until)
        case g.Locked():
            return Locked()
    return None


@dataclass(frozen=True)
class CodeFacts:
    """What the store says about a keyed code, once the guard let it be looked up."""

    session_id: int | None  # the open session with this code, if any
    language: str = ""  # that session's language (the panel's when the volunteer joined)
    has_leg: bool = False  # that session's phone is connected already (a code joins one leg only)
    recording: bool = False  # an admin asked to record the effort's message with this code
    coach_id: str | None = None  # a captain asked to coach a caller with this code (not keyed yet)


def code_checked(code: str, caller: str, facts: CodeFacts) -> tuple[EntryEvent, g.GuardEvent]:
    """The entry's next event and what the guard learns: a right code (or a recording code) is ``Right``, anything
    else ``Wrong``."""
    ok = facts.session_id is not None and not facts.has_leg
    if not ok and facts.recording:
        return RecordingCode(code), g.Right(caller)
    if not ok and facts.coach_id is not None:
        return CoachCode(facts.coach_id), g.Right(caller)
    validated = Validated(facts.session_id, facts.language) if ok else Validated(None)
    return validated, (g.Right(caller) if ok else g.Wrong(caller))


def _submit(e: Entry, now: float) -> tuple[Entry, list[EntryCommand]]:
    e = replace(e, state=EState.VALIDATING, submitted_at=now, held=False)
    return e, [CheckCode(e.channel_id, e.digits, e.caller, now)]


def _wrong(e: Entry, now: float) -> tuple[Entry, list[EntryCommand]]:
    tries = e.tries + 1
    if tries >= MAX_TRIES:
        return replace(e, state=EState.REFUSED, tries=tries, digits=""), [_refuse(e)]
    return (
        replace(e, state=EState.COLLECTING, tries=tries, digits="", deadline=now + _prompted_timeout(e)),
        _prompts(e, WRONG, PROMPT),
    )


def _first_language(e: Entry) -> str:
    """The channel's own language while no code is known (the call-in's first)."""
    return e.languages[0] if e.languages else DEFAULT_LANGUAGE


def _prompted_timeout(e: Entry) -> float:
    """The time to the first key after prompts said in each of the call-in's languages: one allowance per language.
    The silence timer runs from when the prompts are queued, and the last language's prompt starts only after the
    others: after a wrong code ("Login incorrect" + the prompt, about 8 s in English and 10 s in Spanish) a single
    allowance ran out before the Spanish prompt had begun, charging a Spanish caller a silent try unasked."""
    return DIGIT_TIMEOUT_S * max(len(e.languages), 1)


def _refuse(e: Entry, locked: bool = False) -> Refuse:
    """A refusal comes before any code is known: said in each of the call-in's languages, as the prompts are."""
    return Refuse(e.channel_id, locked, e.languages if len(e.languages) > 1 else ())


def _prompts(e: Entry, *media: str) -> list[EntryCommand]:
    """``media`` said in each of the call-in's languages in turn (no code yet: nothing says which is the caller's).
    One language: the channel's own, as it is."""
    if len(e.languages) <= 1:
        return [Play(e.channel_id, media)]
    return [Play(e.channel_id, media, language) for language in e.languages]
