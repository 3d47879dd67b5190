"""What the panel may read of the controller's live state: ``Controller.snapshot()``.

The panel used to reach into ``ctl.dialer.calls``, ``ctl.dialer.volunteers`` and ``ctl.legs``; it now reads this
copy, taken at one instant, so the dialer's insides can change without the screens noticing. The records in it
are the cores' own frozen dataclasses; the containers are read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bridge.dialer import IN_FLIGHT, IN_POOL, Call
from bridge.volunteer import Volunteer
from callin.guard import Guard


@dataclass(frozen=True)
class Snapshot:
    volunteers: Mapping[int, Volunteer]  # session id -> the dialer's live volunteer (sessions it holds)
    calls: tuple[Call, ...]  # voter calls not yet ended (an ended call leaves the dialer)
    legs: frozenset[int]  # sessions whose own phone leg is connected
    callin_guard: Guard  # the call-in code guessing limits' memory (the dashboard's alert)

    def volunteer(self, session_id: int) -> Volunteer | None:
        return self.volunteers.get(session_id)

    def calls_for(self, campaign_id: int) -> list[Call]:
        return [c for c in self.calls if c.campaign_id == campaign_id]

    def in_flight(self, campaign_id: int) -> int:
        """Calls dialing, ringing or being judged by AMD for one effort."""
        return sum(1 for c in self.calls if c.campaign_id == campaign_id and c.state in IN_FLIGHT)

    def in_pool(self, campaign_id: int) -> int:
        """Volunteers waiting, talking or writing up for one effort (the pool calls are dialled for)."""
        return sum(1 for v in self.volunteers.values() if v.campaign_id == campaign_id and v.state in IN_POOL)
