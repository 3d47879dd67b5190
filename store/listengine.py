"""Who to call next: a pure function of the contact list, the effort's rules and the current time.

Rules enforced here, in this order for every contact:

* do-not-call / remove-number requests, from any effort, exclude the number everywhere;
* a number already being dialled (by any effort) is not dialled again, nor twice in one batch;
* final outcomes (conversation done, refused, wrong or disconnected number) end the contact;
* a scheduled callback waits until it is due and then goes first (it bypasses the attempt limit: they asked);
* otherwise at most ``max_attempts`` dials, and the next one only after the recycle interval of the last outcome
  (busy comes back sooner than no-answer); a call we cancelled while it rang counts for nothing;
* calling hours, 8am–9pm in the contact's local time. The time zone comes from the number
  (``phonenumbers.timezone``); when the number spans zones, or the address has a zone of its own, the call must fit
  every one of them, i.e. the narrower window;
* households: when the effort says so, contacts sharing a number are one dialable unit: one call for all of them,
  attempts counted together, finished when any of them finished.

No clock is read: ``now`` is an argument and must be timezone-aware.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from store.outcomes import DEFAULT_RECYCLE_S, ENDS_CONTACT, NOT_AN_ATTEMPT, RECYCLE_OF, Outcome, recycle_wait_s

__all__ = [
    "FINAL_OUTCOMES",
    "AttemptRecord",
    "Contact",
    "EffortRules",
    "Pick",
    "Skip",
    "effort_window",
    "eligibility",
    "in_calling_hours",
    "next_contacts",
    "next_window_start",
    "zones_for",
]


# The outcome vocabulary and the ends-the-contact set are the store's (store.outcomes): one spelling for the
# dialer, the store, this module and the panel.
FINAL_OUTCOMES = ENDS_CONTACT


class Skip(StrEnum):
    """Why a contact is not dialable now."""

    DO_NOT_CALL = "do_not_call"
    DIALING = "dialing"
    DONE = "done"
    CALLBACK_PENDING = "callback_pending"
    MAX_ATTEMPTS = "max_attempts"
    RECYCLE = "recycle"
    OUTSIDE_HOURS = "outside_hours"
    UNKNOWN_ZONE = "unknown_zone"
    HOUSEHOLD = "household"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    at: datetime
    outcome: Outcome


@dataclass(frozen=True)
class Contact:
    id: str
    # E.164, e.g. "+12025550123".
    phone: str
    # IANA zone of the postal address, when known (e.g. from the ZIP code).
    address_tz: str | None = None
    attempts: tuple[AttemptRecord, ...] = ()
    callback_at: datetime | None = None


def _default_recycle() -> dict[Outcome, timedelta]:
    # store.outcomes' one table; a due callback is dialled at once (it bypasses the wait, not calling hours).
    table = {o: timedelta(seconds=DEFAULT_RECYCLE_S[kind]) for o, kind in RECYCLE_OF.items()}
    return {**table, Outcome.CALLBACK: timedelta(0)}


@dataclass(frozen=True)
class EffortRules:
    max_attempts: int = 3
    recycle: Mapping[Outcome, timedelta] = field(default_factory=_default_recycle)
    one_call_per_household: bool = False
    calling_start: time = time(8, 0)
    calling_end: time = time(21, 0)
    # Stop starting calls this long before calling_end, so a conversation does not run past it.
    last_call_margin: timedelta = timedelta(0)

    @classmethod
    def from_effort(cls, effort: Mapping[str, Any]) -> EffortRules:
        """The rules of a stored effort (a campaigns row): what ``Store.claim_contacts`` applies to it."""
        start, end = effort_window(effort.get("calling_hours_start"), effort.get("calling_hours_end"))
        recycle = {o: timedelta(seconds=recycle_wait_s(o, effort) or 0) for o in RECYCLE_OF}
        return cls(
            max_attempts=int(effort.get("max_attempts") or 3),
            recycle={**recycle, Outcome.CALLBACK: timedelta(0)},
            one_call_per_household=bool(effort.get("household_once")),
            calling_start=start,
            calling_end=end,
        )


@dataclass(frozen=True, slots=True)
class Pick:
    contact_id: str
    phone: str
    # Every contact reached by this call: the one picked, plus its household when households are on.
    household: tuple[str, ...]
    reason: str  # "callback", "fresh" or "retry"


@lru_cache(maxsize=65536)
def zones_for(phone: str, address_tz: str | None = None) -> tuple[str, ...]:
    """Time zones the callee may be in: the number's (one or several) plus the address's."""
    zones: list[str] = []
    try:
        num = phonenumbers.parse(phone, None)
        zones = [z for z in pn_timezone.time_zones_for_number(num) if z != "Etc/Unknown"]
    except phonenumbers.NumberParseException:
        zones = []
    if address_tz and address_tz not in zones:
        zones.append(address_tz)
    return tuple(zones)


def in_calling_hours(zones: Iterable[str], now: datetime, rules: EffortRules) -> bool:
    """True when ``now`` is inside the calling window in every zone (the narrower window wins)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    end = datetime.combine(datetime.min, rules.calling_end) - rules.last_call_margin
    end_t = end.time()
    found = False
    for z in zones:
        try:
            local = now.astimezone(ZoneInfo(z)).time()
        except (ZoneInfoNotFoundError, ValueError):
            return False
        found = True
        if not (rules.calling_start <= local < end_t):
            return False
    return found


# The legal window, in the callee's local time: an effort may narrow it, never widen it.
LEGAL_START = time(8, 0)
LEGAL_END = time(21, 0)


def _parse_hhmm(text: str | None) -> time | None:
    try:
        hh, mm = str(text).strip().split(":")
        return time(int(hh), int(mm))
    except (ValueError, TypeError):
        return None


def effort_window(start: str | None, end: str | None) -> tuple[time, time]:
    """An effort's calling hours ('HH:MM' strings) clamped to 8:00–21:00; unreadable values mean the legal window."""
    s = _parse_hhmm(start) or LEGAL_START
    e = _parse_hhmm(end) or LEGAL_END
    return max(s, LEGAL_START), min(e, LEGAL_END)


def next_window_start(zones: Iterable[str], now: datetime, rules: EffortRules) -> datetime | None:
    """The first moment at or after ``now`` that is inside the calling window in every zone; None when there is
    none in the next two days (windows that never overlap, unknown zones)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zs = tuple(zones)
    if not zs:
        return None
    if in_calling_hours(zs, now, rules):
        return now
    candidates: list[datetime] = []
    for z in zs:
        try:
            tz = ZoneInfo(z)
        except (ZoneInfoNotFoundError, ValueError):
            return None
        local = now.astimezone(tz)
        for days in range(3):
            day = (local + timedelta(days=days)).date()
            # fold=0: in a DST gap or overlap, take the earlier reading; the check below has the last word.
            candidates.append(datetime.combine(day, rules.calling_start, tzinfo=tz).astimezone(now.tzinfo))
    for t in sorted(c for c in candidates if c > now):
        if in_calling_hours(zs, t, rules):
            return t
    return None


def _attempt_state(
    attempts: Iterable[AttemptRecord], callback_at: datetime | None, rules: EffortRules, now: datetime
) -> tuple[Skip | None, str]:
    ordered = sorted((a for a in attempts if a.outcome not in NOT_AN_ATTEMPT), key=lambda a: a.at)
    if any(a.outcome in FINAL_OUTCOMES for a in ordered):
        return Skip.DONE, ""
    if ordered and ordered[-1].outcome is Outcome.CONNECTED:
        # Put through, the volunteer's result not saved yet (the store's status 'connected'): not dialled.
        return Skip.DIALING, ""
    if callback_at is not None:
        if callback_at > now:
            return Skip.CALLBACK_PENDING, ""
        # A callback is due unless we already called after it fell due.
        if not ordered or ordered[-1].at < callback_at:
            return None, "callback"
    if len(ordered) >= rules.max_attempts:
        return Skip.MAX_ATTEMPTS, ""
    if ordered:
        last = ordered[-1]
        if now < last.at + rules.recycle.get(last.outcome, timedelta(0)):
            return Skip.RECYCLE, ""
        return None, "retry"
    return None, "fresh"


def eligibility(
    contact: Contact,
    rules: EffortRules,
    now: datetime,
    *,
    do_not_call: Collection[str] = (),
    dialing: Collection[str] = (),
) -> tuple[Skip | None, str]:
    """(None, reason) when dialable now (reason: "callback", "fresh", "retry"); (Skip, "") when not.

    Households are not considered here: see next_contacts.
    """
    if contact.phone in do_not_call:
        return Skip.DO_NOT_CALL, ""
    if contact.phone in dialing:
        return Skip.DIALING, ""
    skip, reason = _attempt_state(contact.attempts, contact.callback_at, rules, now)
    if skip is not None:
        return skip, ""
    zones = zones_for(contact.phone, contact.address_tz)
    if not zones:
        return Skip.UNKNOWN_ZONE, ""
    if not in_calling_hours(zones, now, rules):
        return Skip.OUTSIDE_HOURS, ""
    return None, reason


def _sort_key(c: Contact, reason: str, rules: EffortRules) -> tuple[int, float, int, float, str]:
    counted = sorted((a for a in c.attempts if a.outcome not in NOT_AN_ATTEMPT), key=lambda a: a.at)
    # When the contact fell due: its last attempt plus that outcome's wait (the store's next_attempt_at).
    due = (counted[-1].at + rules.recycle.get(counted[-1].outcome, timedelta(0))).timestamp() if counted else 0.0
    cb = c.callback_at.timestamp() if (reason == "callback" and c.callback_at) else float("inf")
    # Callbacks first (earliest due first), then fewest attempts, then the longest due — the order of the store's
    # queue index (contacts_queue: attempts, next_attempt_at, id).
    return (0 if reason == "callback" else 1, cb, len(counted), due, c.id)


def next_contacts(
    contacts: Iterable[Contact],
    rules: EffortRules,
    now: datetime,
    *,
    limit: int,
    do_not_call: Collection[str] = (),
    dialing: Collection[str] = (),
) -> list[Pick]:
    """Up to ``limit`` contacts to dial now, best first, never two with the same number.

    ``do_not_call``: E.164 numbers suppressed across every effort. ``dialing``: numbers with a call in progress in
    any effort.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    dnc = set(do_not_call)
    busy = set(dialing)
    candidates: list[tuple[tuple[int, float, int, float, str], Pick]] = []
    if rules.one_call_per_household:
        groups: dict[str, list[Contact]] = {}
        for c in contacts:
            groups.setdefault(c.phone, []).append(c)
        for phone, members in groups.items():
            members.sort(key=lambda m: m.id)
            merged = Contact(
                id=members[0].id,
                phone=phone,
                address_tz=next((m.address_tz for m in members if m.address_tz), None),
                attempts=tuple(a for m in members for a in m.attempts),
                callback_at=min((m.callback_at for m in members if m.callback_at), default=None),
            )
            # A contact who asked for the callback is the one to ask for.
            if merged.callback_at is not None:
                merged = Contact(
                    next(m.id for m in members if m.callback_at == merged.callback_at),
                    phone,
                    merged.address_tz,
                    merged.attempts,
                    merged.callback_at,
                )
            skip, reason = eligibility(merged, rules, now, do_not_call=dnc, dialing=busy)
            if skip is None:
                pick = Pick(merged.id, phone, tuple(m.id for m in members), reason)
                candidates.append((_sort_key(merged, reason, rules), pick))
    else:
        for c in contacts:
            skip, reason = eligibility(c, rules, now, do_not_call=dnc, dialing=busy)
            if skip is None:
                candidates.append((_sort_key(c, reason, rules), Pick(c.id, c.phone, (c.id,), reason)))
    candidates.sort(key=lambda kv: kv[0])
    out: list[Pick] = []
    taken: set[str] = set()
    for _, pick in candidates:
        if len(out) >= limit:
            break
        if pick.phone in taken:
            continue
        taken.add(pick.phone)
        out.append(pick)
    return out
