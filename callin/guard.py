"""Guessing the call-in code, made slow and visible: ``step(guard, event, now) -> (guard, decisions)``, pure.

Every code keyed at the call-in passes here before it is looked up, and its result comes back here. The guard
keeps, across calls (and across restarts: the adapter stores it as JSON), the recent wrong codes per calling
number and overall, and answers each code submitted with ``Check`` (look it up now), ``Hold`` (not before a
time) or ``Locked`` (never: this number is locked out).

Three measures, all over a sliding window (an hour by default):

* tarpit per calling number — every code from a number with ``n`` recent wrong codes waits
  ``tarpit_base_s * 2**(n-1)`` (capped) before it is looked up, right or wrong alike, so the wait tells nothing;
* lockout per calling number — ``lock_after`` wrong codes in the window lock that number out for ``lock_s``;
* overall pace — once ``alarm_wrong`` wrong codes from all numbers together fall in the window (caller ID can
  be spoofed, so per-number limits alone bound nothing), codes are looked up at most one per ``alarm_spacing_s``
  overall; the others wait their turn.

There is deliberately no global lockout: an attacker could then lock every volunteer out for the price of a few
calls. Overall, the guard slows everyone down instead of refusing anyone, which bounds the guesses an hour to
``alarm_wrong + 3600 / alarm_spacing_s + 1`` however many numbers or lines the attacker has (docs/OPERATIONS.md
turns that into the code length). The pace goes by the time of the last lookup, not by reserved turns: a caller
who hangs up while held takes no turn from anyone. A right code forgives nothing: a volunteer could otherwise
guess between keyings of their own code.

A number that keyed a right code (not withheld) is trusted for ``trust_s``: it skips the overall pace, so
volunteers calling back from their usual phone are not queued behind an attack. Its own tarpit and lockout still
apply, so each trusted number an attacker manages to fake adds at most ``lock_after`` guesses per lockout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from store.messages import M_

ANONYMOUS = "anonymous"  # no or withheld caller ID: all such callers share one number's limits


@dataclass(frozen=True)
class Limits:
    window_s: float = 3600.0
    tarpit_base_s: float = 2.0
    tarpit_max_s: float = 30.0
    lock_after: int = 6  # two whole calls of wrong codes (3 tries each)
    lock_s: float = 3600.0
    alarm_wrong: int = 20
    alarm_spacing_s: float = 10.0
    trust_s: float = 30 * 86400.0

    @classmethod
    def from_json(cls, raw: str) -> Limits:
        """From ``{"tarpit_base_s": 0.2, ...}`` (settings); unknown keys are refused, not ignored."""
        values = json.loads(raw) if raw.strip() else {}
        if not isinstance(values, dict):
            raise ValueError("call-in limits must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown call-in limits: {', '.join(sorted(unknown))}")
        limits = cls(**{k: type(getattr(cls, k))(v) for k, v in values.items()})
        if limits.window_s <= 0 or limits.lock_after < 1 or limits.alarm_wrong < 1 or limits.alarm_spacing_s < 0:
            raise ValueError("call-in limits: window_s > 0, lock_after >= 1, alarm_wrong >= 1, alarm_spacing_s >= 0")
        return limits

    def guesses_per_hour(self) -> float:
        """The most codes the whole call-in looks up in an hour while under attack (see module docstring)."""
        paced = 3600 / self.alarm_spacing_s if self.alarm_spacing_s else float("inf")
        return self.alarm_wrong + paced + 1


@dataclass(frozen=True)
class Guard:
    limits: Limits = field(default_factory=Limits)
    wrong: tuple[tuple[str, float], ...] = ()  # (number, when) of each wrong code in the window, oldest first
    locked: tuple[tuple[str, float], ...] = ()  # (number, until)
    last_check: float = 0.0  # when the last code was looked up (the overall pace counts from it)
    alarm: bool = False
    trusted: tuple[tuple[str, float], ...] = ()  # (number, until): numbers that keyed a right code lately


# events
@dataclass(frozen=True)
class Submit:
    """A code was keyed at ``submitted_at`` (repeated after a Hold with the same time)."""

    number: str
    submitted_at: float


@dataclass(frozen=True)
class Wrong:
    number: str


@dataclass(frozen=True)
class Right:
    number: str


GuardEvent = Submit | Wrong | Right


# decisions
@dataclass(frozen=True)
class Check:
    """Look the code up now."""


@dataclass(frozen=True)
class Hold:
    until: float
    reason: str  # "tarpit" (this number's wrong codes) or "pace" (wrong codes overall)


@dataclass(frozen=True)
class Locked:
    until: float


@dataclass(frozen=True)
class LockedOut:
    """A number was just locked out (for the log)."""

    number: str
    until: float
    wrong: int


@dataclass(frozen=True)
class Alarm:
    """Wrong codes overall just reached (``on``) or fell below the alarm threshold."""

    on: bool
    wrong: int


Decision = Check | Hold | Locked | LockedOut | Alarm


def number_of(caller: str | None) -> str:
    caller = (caller or "").strip()
    return caller if caller and caller.lower() not in ("anonymous", "unknown", "restricted") else ANONYMOUS


def step(g: Guard, event: GuardEvent, now: float) -> tuple[Guard, list[Decision]]:
    g, out = _expire(g, now)
    lim = g.limits
    match event:
        case Submit(number, submitted_at):
            until = _locked_until(g, number)
            if until is not None:
                return g, [*out, Locked(until)]
            n = sum(1 for num, _ in g.wrong if num == number)
            if n and submitted_at + tarpit_s(lim, n) > now:
                return g, [*out, Hold(submitted_at + tarpit_s(lim, n), "tarpit")]
            trusted = any(num == number for num, _ in g.trusted)
            if g.alarm and not trusted and now < g.last_check + lim.alarm_spacing_s:
                return g, [*out, Hold(g.last_check + lim.alarm_spacing_s, "pace")]
            # A trusted number's lookup does not count against the pace: it takes nobody's turn.
            return (g if trusted and g.alarm else replace(g, last_check=now)), [*out, Check()]
        case Wrong(number):
            g = replace(g, wrong=(*g.wrong, (number, now)))
            mine = sum(1 for num, _ in g.wrong if num == number)
            if mine >= lim.lock_after and _locked_until(g, number) is None:
                g = replace(g, locked=(*g.locked, (number, now + lim.lock_s)))
                out.append(LockedOut(number, now + lim.lock_s, mine))
            if not g.alarm and len(g.wrong) >= lim.alarm_wrong:
                g = replace(g, alarm=True)
                out.append(Alarm(True, len(g.wrong)))
            return g, out
        case Right(number) if number != ANONYMOUS:
            # Trusted from now on; its wrong codes stay (a right code forgives nothing).
            trust = (*(t for t in g.trusted if t[0] != number), (number, now + lim.trust_s))
            return replace(g, trusted=trust), out
    return g, out


def tarpit_s(lim: Limits, wrong: int) -> float:
    """How long a code from a number with ``wrong`` recent wrong codes waits before it is looked up."""
    return 0.0 if wrong <= 0 else min(lim.tarpit_base_s * 2 ** (wrong - 1), lim.tarpit_max_s)


def _locked_until(g: Guard, number: str) -> float | None:
    return next((until for num, until in g.locked if num == number), None)


def _expire(g: Guard, now: float) -> tuple[Guard, list[Decision]]:
    lim = g.limits
    wrong = tuple(w for w in g.wrong if w[1] > now - lim.window_s)
    locked = tuple(x for x in g.locked if x[1] > now)
    trusted = tuple(x for x in g.trusted if x[1] > now)
    out: list[Decision] = []
    alarm = g.alarm
    if alarm and len(wrong) < lim.alarm_wrong:
        alarm = False
        out.append(Alarm(False, len(wrong)))
    if (wrong, locked, alarm, trusted) == (g.wrong, g.locked, g.alarm, g.trusted):
        return g, out
    return replace(g, wrong=wrong, locked=locked, alarm=alarm, trusted=trusted), out


@dataclass(frozen=True)
class Summary:
    wrong_last_window: int
    numbers_locked: int
    alarm: bool
    window_s: float


def summary(g: Guard, now: float) -> Summary:
    g, _ = _expire(g, now)
    return Summary(len(g.wrong), len(g.locked), g.alarm, g.limits.window_s)


def alert(g: Guard, now: float) -> str:
    """What the admin dashboard says, or "" when all is quiet: shown once a number is locked out or the alarm is
    on (wrong codes from all numbers past the threshold)."""
    s = summary(g, now)
    if not (s.alarm or s.numbers_locked):
        return ""
    # Messages (store.messages), so the dashboard can show them in its viewer's language; English as a str.
    n, minutes = s.wrong_last_window, f"{s.window_s / 60:g}"
    if s.window_s == 3600 and n == 1:
        wrong = M_("%(n)s wrong call-in code in the last hour,", n=n)
    elif s.window_s == 3600:
        wrong = M_("%(n)s wrong call-in codes in the last hour,", n=n)
    elif n == 1:
        wrong = M_("%(n)s wrong call-in code in the last %(minutes)s minutes,", n=n, minutes=minutes)
    else:
        wrong = M_("%(n)s wrong call-in codes in the last %(minutes)s minutes,", n=n, minutes=minutes)
    if s.numbers_locked == 1:
        locked = M_("%(n)s number locked out.", n=1)
    else:
        locked = M_("%(n)s numbers locked out.", n=s.numbers_locked)
    text = M_("%(wrong)s %(locked)s", wrong=wrong, locked=locked)
    if s.alarm:
        guessing = M_(
            "Someone may be guessing codes: every caller's code is checked at most one per %(s)s s until it calms "
            "down, so volunteers calling in may wait.",
            s=f"{g.limits.alarm_spacing_s:g}",
        )
        text = M_("%(counts)s %(alarm)s", counts=text, alarm=guessing)
    return text


def to_json(g: Guard) -> str:
    """What the store keeps (the limits come from settings, not from here)."""
    return json.dumps(
        {"wrong": g.wrong, "locked": g.locked, "last_check": g.last_check, "alarm": g.alarm, "trusted": g.trusted}
    )


def from_json(raw: str | None, limits: Limits) -> Guard:
    """The stored guard under the current limits; a missing or unreadable one starts empty."""
    try:
        data: dict[str, Any] = json.loads(raw or "{}")
        return Guard(
            limits=limits,
            wrong=tuple((str(n), float(t)) for n, t in data.get("wrong", [])),
            locked=tuple((str(n), float(t)) for n, t in data.get("locked", [])),
            last_check=float(data.get("last_check", 0.0)),
            alarm=bool(data.get("alarm", False)),
            trusted=tuple((str(n), float(t)) for n, t in data.get("trusted", [])),
        )
    except (ValueError, TypeError, AttributeError):
        return Guard(limits=limits)
