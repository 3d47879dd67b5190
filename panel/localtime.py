"""The voter's clock on the caller's screen: which time zone their number is in and what time it is there.

A callback time ("call me after six") only makes sense in the voter's own time. The zone comes from the number
exactly as calling hours find it (``store.listengine.zones_for``: ``phonenumbers`` time zones); the browser gets
the zone names, UTC offsets and the time there now, never the number.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from store.listengine import zones_for

# More distinct UTC offsets than this (a toll-free number "spans" the continent) tells the caller nothing.
MAX_OFFSETS = 3


def voter_clock(phone: str, now: float | None = None) -> dict[str, Any]:
    """``zones``: one entry per distinct UTC offset the number may be in (zone name, abbreviation, offset in
    minutes, the time and weekday there at ``now``), empty when unknown; ``zone``: the single zone a callback time
    is picked in, or "" when the number may be in several (the caller then picks in their own clock and sees each
    candidate's time)."""
    when = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    zones: list[dict[str, Any]] = []
    offsets: set[int] = set()
    for name in zones_for(phone):
        try:
            local = when.astimezone(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
        offset = local.utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        if minutes in offsets:
            continue
        offsets.add(minutes)
        zones.append(
            {
                "zone": name,
                "abbr": local.tzname() or "",
                "utc_offset_min": minutes,
                "time": local.strftime("%I:%M %p").lstrip("0"),
                "day": local.strftime("%a"),
            }
        )
    if len(zones) > MAX_OFFSETS:
        zones = []
    return {"zone": zones[0]["zone"] if len(zones) == 1 else "", "zones": zones}
