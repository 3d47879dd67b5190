"""Why nothing is dialled for a waiting caller, and when that changes: one answer for the caller's screen
(``panel.views.session_view``) and the organisers' dashboard (``panel.results``).

``explain`` is pure (tested with tables): the effort's row, what the list holds (``Store.queue_outlook``, which
applies the claim's own rules — calling hours included — read only) and what the controller knows live (calls
out, Asterisk reachable, the trunk refusing calls, the predictive plan). ``Reasons`` caches the answer per effort
for a few seconds, so pushes and dashboards never rerun the list's queries on every frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The reasons are messages (store.messages): English as a str, and in the viewer's language where the panel shows
# them (the dashboard, the calling screen).
from store.messages import M_, N_

# How long an answer is reused. The list's answer changes when a claim comes back, a call ends or the clock
# reaches ``until``: a few seconds late is fine on a waiting screen.
CACHE_S = 5.0
# Consecutive dials the carrier failed (refused, congestion, no response: bridge.dialer.carrier_failed) before we
# say the trunk is down and the dialer backs off.
TRUNK_FAILURES = 3

# US zones by the name people use; others are named by their city.
_ZONE_NAMES = {
    "America/New_York": N_("Eastern"),
    "America/Detroit": N_("Eastern"),
    "America/Indiana/Indianapolis": N_("Eastern"),
    "America/Kentucky/Louisville": N_("Eastern"),
    "America/Chicago": N_("Central"),
    "America/Indiana/Knox": N_("Central"),
    "America/Menominee": N_("Central"),
    "America/North_Dakota/Center": N_("Central"),
    "America/Denver": N_("Mountain"),
    "America/Boise": N_("Mountain"),
    "America/Phoenix": N_("Arizona"),
    "America/Los_Angeles": N_("Pacific"),
    "America/Anchorage": N_("Alaska"),
    "America/Juneau": N_("Alaska"),
    "America/Adak": N_("Hawaii-Aleutian"),
    "Pacific/Honolulu": N_("Hawaii"),
    "America/Puerto_Rico": N_("Atlantic"),
    "Pacific/Guam": N_("Chamorro"),
}


@dataclass(frozen=True)
class Waiting:
    code: str  # dialing | outside_hours | callback | recycle | in_calls | exhausted | paused | closed | draft
    #            | not_started | window_over | asterisk_down | store_down | trunk_down | governor | caller_dials
    #            | no_callers
    text: str  # one sentence, the same for callers and organisers
    until: float | None = None  # when it is expected to change (epoch s), if known
    dialing: bool = False  # calls are being placed: nothing to fix

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "text": self.text, "until": self.until, "dialing": self.dialing}


@dataclass(frozen=True)
class Live:
    """What the controller knows now about one effort."""

    in_flight: int = 0  # calls ringing or being judged
    callers: int = 1  # volunteers waiting, talking or writing up (the pool calls are dialled for)
    asterisk_up: bool = True
    # The database refuses writes (disk full, locked): the dialer holds every effort (bridge.dialer.Hold).
    store_down: bool = False
    trunk_error: str | None = None  # set after TRUNK_FAILURES refused dials in a row
    plan_reason: str = ""  # the predictive engine's, for predictive efforts


def zone_name(zone: str) -> str:
    return _ZONE_NAMES.get(zone) or zone.rsplit("/", 1)[-1].replace("_", " ")


def in_words(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return M_("%(n)s min", n=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return M_("%(h)s h %(m)s min", h=hours, m=minutes) if minutes else M_("%(h)s h", h=hours)
    return M_("%(n)s days", n=round(hours / 24))


_WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
_MONTHS: tuple[str, ...] = (
    *(N_("Jan"), N_("Feb"), N_("Mar"), N_("Apr"), N_("May"), N_("Jun")),
    *(N_("Jul"), N_("Aug"), N_("Sep"), N_("Oct"), N_("Nov"), N_("Dec")),
)


def when(at: float, now: float, zone: str | None) -> str:
    """'9:00 AM Central time (in 5 h 10 min)'; a later day is named ('tomorrow', 'Thu Dec 3')."""
    try:
        tz: Any = ZoneInfo(zone) if zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        tz, zone = UTC, None
    local, today = datetime.fromtimestamp(at, tz), datetime.fromtimestamp(now, tz)
    hour, minute = local.strftime("%I").lstrip("0"), local.strftime("%M")
    if local.hour < 12:
        clock = M_("%(hour)s:%(minute)s AM", hour=hour, minute=minute)
    else:
        clock = M_("%(hour)s:%(minute)s PM", hour=hour, minute=minute)
    if not zone:
        where = "UTC"
    elif zone in _ZONE_NAMES:
        where = M_("%(zone)s time", zone=M_(_ZONE_NAMES[zone]))
    else:
        where = M_("%(city)s time", city=zone_name(zone))
    wait = in_words(at - now)
    days = (local.date() - today.date()).days
    if days <= 0:
        return M_("%(clock)s %(zone)s (in %(wait)s)", clock=clock, zone=where, wait=wait)
    if days == 1:
        return M_("tomorrow %(clock)s %(zone)s (in %(wait)s)", clock=clock, zone=where, wait=wait)
    return M_(
        "%(weekday)s %(month)s %(day)s %(clock)s %(zone)s (in %(wait)s)",
        weekday=M_(_WEEKDAYS[local.weekday()]),
        month=M_(_MONTHS[local.month - 1]),
        day=local.day,
        clock=clock,
        zone=where,
        wait=wait,
    )


def explain(campaign: dict[str, Any], outlook: Callable[[], dict[str, Any]], live: Live, now: float) -> Waiting:
    """Why a caller of this effort waits. ``outlook`` (Store.queue_outlook) is only asked when the list decides."""
    if not live.asterisk_up:
        return Waiting("asterisk_down", N_("The phone system is unreachable; calls resume as soon as it is back."))
    if live.store_down:
        return Waiting(
            "store_down",
            N_(
                "The database is refusing writes (disk full or locked), so no new calls are placed; calls on the line "
                "go on. The organisers have been told on their dashboard."
            ),
        )
    status = campaign.get("status")
    if status == "draft":
        return Waiting("draft", N_("This effort is not finished yet: the organisers have not opened it for calls."))
    if status == "paused":
        return Waiting("paused", N_("The organisers have paused this effort; calls resume when they restart it."))
    if status == "closed":
        return Waiting("closed", N_("This effort is closed: there are no more calls to make."))
    start, end = campaign.get("start_at"), campaign.get("end_at")
    if start and now < float(start):
        return Waiting(
            "not_started",
            M_("This effort starts calling at %(when)s.", when=when(float(start), now, None)),
            until=float(start),
        )
    if end and now >= float(end):
        return Waiting("window_over", N_("This effort's calling time is over."))
    if campaign.get("dial_mode") == "personal":
        return Waiting("caller_dials", N_("Callers start each call themselves."), dialing=True)
    if live.in_flight:
        if live.in_flight == 1:
            text = M_("Calling %(n)s number…", n=1)
        else:
            text = M_("Calling %(n)s numbers…", n=live.in_flight)
        if live.plan_reason.startswith("abandon budget spent"):
            return Waiting(
                "governor",
                M_(
                    "%(calling)s The abandon rate is at its limit, so we dial only one number per waiting caller "
                    "until it comes down.",
                    calling=text,
                ),
                dialing=True,
            )
        return Waiting("dialing", text, dialing=True)
    if live.trunk_error:
        return Waiting(
            "trunk_down",
            M_(
                "Calls are not getting through: the phone line refuses them (%(error)s). The organisers have been "
                "told on their dashboard.",
                error=live.trunk_error,
            ),
        )
    o = outlook()
    kind, at, zone = o.get("kind"), o.get("at"), o.get("zone")
    if kind == "due":
        if not live.callers:
            return Waiting("no_callers", N_("Numbers are ready to call as soon as a caller is waiting."))
        return Waiting("dialing", N_("Dialling the next voter…"), dialing=True)
    if kind == "outside_hours" and at:
        return Waiting(
            "outside_hours",
            M_(
                "Everyone left on the list is outside calling hours; the next can be called from %(when)s.",
                when=when(at, now, zone),
            ),
            until=at,
        )
    if kind == "callback" and at:
        return Waiting(
            "callback",
            M_(
                "Everyone left is waiting for a callback or a retry; the next callback is due at %(when)s.",
                when=when(at, now, zone),
            ),
            until=at,
        )
    if kind == "recycle" and at:
        return Waiting(
            "recycle",
            M_(
                "Everyone left was tried recently and waits before the next try; the next is due at %(when)s.",
                when=when(at, now, zone),
            ),
            until=at,
        )
    if kind == "in_calls":
        return Waiting("in_calls", N_("The last numbers on the list are being dialled now."))
    return Waiting("exhausted", N_("The list is finished: nobody is left to call."))


class TrunkWatch:
    """Refused dials in a row per effort (originate errors from Asterisk, congestion from the trunk)."""

    def __init__(self) -> None:
        self._failures: dict[int, tuple[int, str]] = {}

    def failed(self, campaign_id: int, why: str) -> None:
        n, _ = self._failures.get(campaign_id, (0, ""))
        self._failures[campaign_id] = (n + 1, why[:120])

    def ok(self, campaign_id: int) -> None:
        self._failures.pop(campaign_id, None)

    def error(self, campaign_id: int) -> str | None:
        n, why = self._failures.get(campaign_id, (0, ""))
        return why if n >= TRUNK_FAILURES else None


class Reasons:
    """The waiting reason per effort for a controller. The list's part (``Store.queue_outlook``) is cached per
    effort for CACHE_S seconds (and until the moment it named has passed); the rest is the controller's live
    state, read afresh each time at no cost."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._outlooks: dict[int, tuple[float, dict[str, Any]]] = {}

    def outlook(self, store: Any, campaign_id: int, now: float) -> dict[str, Any]:
        hit = self._outlooks.get(campaign_id)
        if (
            hit is not None
            and now - hit[0] < CACHE_S
            and (hit[1].get("at") is None or now < hit[1]["at"] or hit[1].get("kind") == "due")
        ):
            return hit[1]
        fresh = store.queue_outlook(campaign_id, now)
        self._outlooks[campaign_id] = (now, fresh)
        return fresh

    def forget(self, campaign_id: int) -> None:
        """The list changed (contacts added, a claim came back empty): ask the store next time."""
        self._outlooks.pop(campaign_id, None)

    def for_effort(self, ctl: Any, campaign_id: int) -> Waiting | None:
        """``ctl``: the controller (bridge.ari_app.Controller). None for an effort that does not exist."""
        campaign = ctl.store.campaign(campaign_id)
        if campaign is None:
            return None
        now = self.clock()
        snap = ctl.snapshot()  # its counts: importing bridge.dialer here would close a circle (dialer imports us)
        in_flight = snap.in_flight(campaign_id)
        connected = getattr(ctl.ari, "connected", None)
        plan = ""
        if in_flight and campaign.get("dial_mode") == "predictive" and campaign_id in ctl.dialer.campaigns:
            plan = ctl.dialer.plan(campaign_id, now).reason
        pool = snap.in_pool(campaign_id)
        live = Live(
            in_flight=in_flight,
            callers=pool,
            asterisk_up=connected is None or connected.is_set(),
            store_down=bool(getattr(ctl, "store_down", False)),
            trunk_error=ctl.trunk.error(campaign_id) or ctl.dialer.trunk_error(campaign_id),
            plan_reason=plan,
        )
        return explain(campaign, lambda: self.outlook(ctl.store, campaign_id, now), live, now)
