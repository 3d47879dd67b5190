"""How failed logins are slowed down without letting a stranger lock the owner out.

Counting failures per login alone (the old rule: 8 a minute for ``admin`` and then everyone waits) lets anybody
lock the admin out by typing wrong passwords. So the rules are, in the order they are checked:

* **address + login** (the guesser): the first ``PAIR_FREE`` failures cost nothing; after that each failure makes
  that pair wait twice as long as the last time (2 s, 4 s, 8 s … up to 15 min) before a try is even looked at.
  While it waits, every try is refused unchecked, right password or not, so waiting out a delay is the only way
  on and the answer gives nothing away. Failures are forgotten an hour after the last one, or on a success.
* **address** (spraying many logins from one place): ``ADDRESS_PER_MINUTE`` failures a minute and
  ``ADDRESS_PER_HOUR`` an hour across all logins, looser because a room of volunteers may share one address.
* **login** (guessing one login from many addresses): once it has ``LOGIN_HOT`` failures in ten minutes, tries
  from addresses it has not signed in from lately take turns, ``LOGIN_SPACING_S`` apart (the request waits its
  turn; one that would wait over ``LOGIN_MAX_WAIT_S`` is asked to retry). This slows the guessing; it never
  shuts the door, and an address the login signed in from in the last 30 days goes straight through.

Hand-written rather than a rate-limit library: the pair's doubling delay, the per-login turn-taking and the
"known address" pass are the point, and the in-memory state is three small dicts pruned as they grow (a restart
forgets it, which only ever makes the panel more lenient for a while).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

PAIR_FREE = 5
PAIR_BASE_S = 2.0
PAIR_MAX_S = 900.0
PAIR_FORGET_S = 3600.0
ADDRESS_PER_MINUTE = 30
ADDRESS_PER_HOUR = 200
LOGIN_HOT = 20
LOGIN_HOT_WINDOW_S = 600.0
LOGIN_SPACING_S = 2.0
LOGIN_MAX_WAIT_S = 10.0
KNOWN_FOR_S = 30 * 86400.0
KNOWN_PER_LOGIN = 16
# Past this many tracked keys the oldest are dropped: many addresses must not grow memory without end.
MAX_KEYS = 50_000


@dataclass(frozen=True)
class Verdict:
    """``allowed``: check the password after waiting ``delay_s``; otherwise refuse and say "retry in ``retry_s``"."""

    allowed: bool
    delay_s: float = 0.0
    retry_s: float = 0.0
    rule: str = ""


@dataclass
class _Pair:
    failures: int = 0
    last: float = 0.0
    until: float = 0.0


@dataclass
class _Login:
    failures: deque[float] = field(default_factory=deque)
    next_turn: float = 0.0
    known: dict[str, float] = field(default_factory=dict)  # address -> last sign-in


class LoginThrottle:
    def __init__(self) -> None:
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._addresses: dict[str, deque[float]] = {}
        self._logins: dict[str, _Login] = {}

    @staticmethod
    def _login_key(login: str) -> str:
        return login.strip().lower()

    def check(self, address: str, login: str, now: float) -> Verdict:
        """May a try from ``address`` for ``login`` be checked now, and after how long a wait?"""
        login = self._login_key(login)
        pair = self._pairs.get((address, login))
        if pair is not None and now - pair.last >= PAIR_FORGET_S:
            del self._pairs[(address, login)]
            pair = None
        if pair is not None and now < pair.until:
            return Verdict(False, retry_s=pair.until - now, rule="pair")
        hits = self._addresses.get(address)
        if hits:
            while hits and hits[0] <= now - 3600:
                hits.popleft()
            recent = [t for t in hits if t > now - 60]
            if len(recent) >= ADDRESS_PER_MINUTE:
                return Verdict(False, retry_s=recent[-ADDRESS_PER_MINUTE] + 60 - now, rule="address")
            if len(hits) >= ADDRESS_PER_HOUR:
                return Verdict(False, retry_s=hits[-ADDRESS_PER_HOUR] + 3600 - now, rule="address")
        entry = self._logins.get(login)
        if entry is None:
            return Verdict(True)
        while entry.failures and entry.failures[0] <= now - LOGIN_HOT_WINDOW_S:
            entry.failures.popleft()
        known = entry.known.get(address)
        if len(entry.failures) < LOGIN_HOT or (known is not None and now - known < KNOWN_FOR_S):
            return Verdict(True)
        turn = max(now, entry.next_turn)
        if turn - now > LOGIN_MAX_WAIT_S:
            return Verdict(False, retry_s=turn - now, rule="login")
        entry.next_turn = turn + LOGIN_SPACING_S
        return Verdict(True, delay_s=turn - now, rule="login")

    def failed(self, address: str, login: str, now: float) -> None:
        login = self._login_key(login)
        pair = self._pairs.setdefault((address, login), _Pair())
        pair.failures += 1
        pair.last = now
        if pair.failures > PAIR_FREE:
            pair.until = now + min(PAIR_BASE_S * 2 ** (pair.failures - PAIR_FREE - 1), PAIR_MAX_S)
        self._addresses.setdefault(address, deque()).append(now)
        self._logins.setdefault(login, _Login()).failures.append(now)
        if len(self._pairs) + len(self._addresses) + len(self._logins) > MAX_KEYS:
            self._prune(now)

    def succeeded(self, address: str, login: str, now: float) -> None:
        """The owner got in from here: this pair starts afresh, and this address counts as known for the login."""
        login = self._login_key(login)
        self._pairs.pop((address, login), None)
        entry = self._logins.setdefault(login, _Login())
        entry.known[address] = now
        if len(entry.known) > KNOWN_PER_LOGIN:
            del entry.known[min(entry.known, key=entry.known.__getitem__)]

    def _prune(self, now: float) -> None:
        self._pairs = {k: p for k, p in self._pairs.items() if now - p.last < PAIR_FORGET_S}
        self._addresses = {a: h for a, h in self._addresses.items() if h and h[-1] > now - 3600}
        self._logins = {
            k: e
            for k, e in self._logins.items()
            if (e.failures and e.failures[-1] > now - LOGIN_HOT_WINDOW_S)
            or any(now - t < KNOWN_FOR_S for t in e.known.values())
        }
        # Still too many (a flood from fresh addresses): keep the newest half of each.
        for name in ("_pairs", "_addresses"):
            table = getattr(self, name)
            if len(table) > MAX_KEYS // 3:
                keep = sorted(table.items(), key=lambda kv: kv[1].last if isinstance(kv[1], _Pair) else kv[1][-1])
                setattr(self, name, dict(keep[len(keep) // 2 :]))


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header's whole seconds (at least one)."""
    return str(max(1, math.ceil(seconds)))


class RateLimiter:
    """Sliding-window counts in memory: slows password guessing and sign-up floods, which would otherwise
    also take the event loop the calls run on (each Argon2 check costs ~0.1 s of CPU)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str, limit: int, window_s: float, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        hits = self._hits[key]
        while hits and hits[0] <= now - window_s:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        return True

    def count(self, key: str, window_s: float, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        return sum(1 for t in self._hits.get(key, ()) if t > now - window_s)
