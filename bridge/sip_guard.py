"""Failed SIP authentications, throttled per address, pure: ``step(guard, event, now) -> (guard, commands)``.

Asterisk's security log (res_security_log) records each failed REGISTER or INVITE with its remote address. Too many
failed attempts from one address within a window ban it for a while: the adapter writes the banned addresses as a
PJSIP ACL (pjsip_guard.conf) and reloads res_pjsip over ARI, so Asterisk answers that address 403 to everything.
Per-session accounts already have 128-bit names and 192-bit passwords, so guessing is hopeless; the ban keeps the
log and the CPU quiet and stops scanners that try common names on the softphone port.

A failed attempt naming one of our own valid accounts is not counted: nobody can name one without being given it
(128 random bits), and such failures come from its own device while Asterisk does not have it, i.e. after Asterisk
restarted and before the controller pushed it again (bridge.sip_accounts.lost). Counting them would let a few
softphones behind one office address, all re-registering at once, ban that address for everyone (with the default
limits, a phone that retries every few seconds bans itself). Asterisk names the account in the attempt's
InvalidAccountID event only (cut to 36 characters), and the attempt's ChallengeResponseFailed that follows says
"<unknown>": the whole attempt (its SessionID) is excused.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace

# Events that mean "someone tried credentials that did not work" (an unknown account, a wrong password).
FAILURES = ("InvalidAccountID", "ChallengeResponseFailed", "InvalidPassword", "FailedACL")
_FIELD = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Limits:
    failures: int = 10  # failed attempts from one address ...
    window_s: float = 60.0  # ... within this many seconds ...
    ban_s: float = 600.0  # ... ban it this long
    exempt: tuple[str, ...] = ()  # never banned (a reverse proxy every WebSocket comes through, a monitoring host)

    @classmethod
    def parse(cls, spec: str, exempt: str = "") -> Limits:
        """ "failures/window_s/ban_s", e.g. "10/60/600"; empty for the defaults."""
        keep = tuple(a.strip() for a in exempt.split(",") if a.strip())
        if not spec.strip():
            return cls(exempt=keep)
        try:
            n, window, ban = (float(x) for x in spec.split("/"))
        except ValueError as exc:
            raise ValueError(f"SIP guard limits must be failures/window_s/ban_s, e.g. 10/60/600: {spec!r}") from exc
        if n < 1 or window <= 0 or ban <= 0:
            raise ValueError(f"SIP guard limits must be positive: {spec!r}")
        return cls(int(n), window, ban, keep)


@dataclass(frozen=True)
class Failure:
    address: str
    attempt: str  # Asterisk's SessionID: one failed attempt logs several events under one id
    account: str = ""  # the account name it tried (AccountID)


@dataclass(frozen=True)
class Tick:
    pass


GuardEvent = Failure | Tick


@dataclass(frozen=True)
class Banned:
    """The ban list changed: these addresses are banned now (the adapter rewrites the whole ACL)."""

    addresses: tuple[str, ...]
    added: str = ""  # the address just banned, if any (for the log)


@dataclass(frozen=True)
class Guard:
    limits: Limits = field(default_factory=Limits)
    recent: tuple[tuple[str, str, float], ...] = ()  # (address, attempt, at) within the window
    bans: tuple[tuple[str, float], ...] = ()  # (address, until)
    excused: tuple[tuple[str, str, float], ...] = ()  # (address, attempt, at): attempts that named a valid account


def parse_line(line: str) -> Failure | None:
    """One line of Asterisk's security log -> a failed attempt, if it is one."""
    if "SecurityEvent=" not in line:
        return None
    fields = dict(_FIELD.findall(line))
    if fields.get("SecurityEvent") not in FAILURES or fields.get("Service") != "PJSIP":
        return None
    # RemoteAddress="IPV4/UDP/203.0.113.9/5060"
    parts = fields.get("RemoteAddress", "").split("/")
    if len(parts) < 3 or not parts[2]:
        return None
    return Failure(parts[2], fields.get("SessionID", ""), fields.get("AccountID", ""))


def names_ours(account: str, ours: Collection[str]) -> bool:
    """Does a logged AccountID name one of ``ours``? Asterisk cuts it (36 of our 37 characters): a prefix that long
    is still more than 100 random bits, as unguessable as the whole name."""
    if account in ours:
        return True
    return len(account) >= 32 and any(name.startswith(account) for name in ours)


def step(g: Guard, event: GuardEvent, now: float, ours: Collection[str] = ()) -> tuple[Guard, list[Banned]]:
    """``ours``: the names of the accounts valid now (an attempt naming one is not counted: see the docstring)."""
    window_start = now - g.limits.window_s
    recent = tuple(r for r in g.recent if r[2] > window_start)
    bans = tuple(b for b in g.bans if b[1] > now)
    excused = tuple(x for x in g.excused if x[2] > window_start)
    out: list[Banned] = []
    match event:
        case Failure(address, attempt, account):
            banned = {a for a, _ in bans}
            valid = names_ours(account, ours)
            if attempt and valid:
                excused = (*excused, (address, attempt, now))
                recent = tuple(r for r in recent if (r[0], r[1]) != (address, attempt))
            if (
                address in g.limits.exempt
                or address in banned
                or valid
                or any((a, t) == (address, attempt) for a, t, _ in excused)
            ):
                return replace(g, recent=recent, bans=bans, excused=excused), _changed(g, bans)
            if not any(a == address and t == attempt and attempt for a, t, _ in recent):
                recent = (*recent, (address, attempt, now))
            if sum(1 for a, _, _ in recent if a == address) >= g.limits.failures:
                bans = (*bans, (address, now + g.limits.ban_s))
                recent = tuple(r for r in recent if r[0] != address)
                return replace(g, recent=recent, bans=bans, excused=excused), [
                    Banned(tuple(a for a, _ in bans), added=address)
                ]
        case Tick():
            pass
    out = _changed(g, bans)
    return replace(g, recent=recent, bans=bans, excused=excused), out


def _changed(g: Guard, bans: tuple[tuple[str, float], ...]) -> list[Banned]:
    """A ban ran out: say the new list."""
    if {a for a, _ in bans} != {a for a, _ in g.bans}:
        return [Banned(tuple(a for a, _ in bans))]
    return []


def acl_config(addresses: tuple[str, ...]) -> str:
    """pjsip_guard.conf for the banned addresses."""
    head = "; Written by the phone bank controller (bridge/sip_guard.py): addresses banned for failed SIP logins.\n"
    if not addresses:
        return head + "; nobody is banned now\n"
    lines = [head, "[pb-guard]", "type = acl"]
    for address in sorted(addresses):
        lines.append(f"deny = {address}/{128 if ':' in address else 32}")
    return "\n".join(lines) + "\n"
