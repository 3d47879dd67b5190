"""Why a caller waits, on the real controller (issue 13, item 3): a volunteer on the line whose effort's numbers are
all outside their calling hours is told so and when they open, nothing is dialled; then the list finished, and the
effort paused."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.ari import AriClient
from callin import drill
from phonebank.harness import ControllerProcess, Pbx, day_number, until
from store.db import Store
from store.listengine import EffortRules, effort_window, next_window_start, zones_for

pytestmark = pytest.mark.asterisk


async def test_the_waiting_caller_is_told_why(pbx: Pbx, controller: ControllerProcess, ari: AriClient) -> None:
    number = day_number(5300)
    zone = zones_for(number)[0]
    local = datetime.now(ZoneInfo(zone))
    # A window that excludes the next hour there: later today, or tomorrow morning.
    window = ("20:00", "21:00") if local.hour < 19 else ("08:00", "09:00")
    store = Store(pbx.settings.db_path)
    cid = int(
        store.create_campaign(
            "Quiet",
            org_name="Org",
            callback_number="2025550100",
            amd_mode="off",
            calling_hours_start=window[0],
            calling_hours_end=window[1],
        )["id"]
    )
    store.add_contacts(cid, [{"first_name": "Night", "phone": number}])
    status, session = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Lee"})
    assert status == 201, session
    sid = int(session["id"])
    await drill.volunteer(ari, pbx.rt, session["code"], stay_s=300)

    def waiting(code: str) -> dict[str, Any] | None:
        view = controller.call("GET", f"/api/sessions/{sid}")[1]
        w = view.get("waiting") if view["state"] == "idle" else None
        return w if w and w["code"] == code else None

    w = await until(lambda: waiting("outside_hours"), 30, "the outside-hours reason")
    start, end = effort_window(*window)
    opens = next_window_start((zone,), datetime.now(ZoneInfo(zone)), EffortRules(calling_start=start, calling_end=end))
    assert opens is not None and abs(w["until"] - opens.timestamp()) < 1
    assert opens.strftime("%I:%M %p").lstrip("0") in w["text"] and not w["dialing"]
    assert store.calls(cid) == [], "nothing dialled"

    # The organisers finish the list (the contact is done elsewhere): the reason follows within the cache's 5 s.
    store.conn.execute("UPDATE contacts SET status = 'done' WHERE campaign_id = ?", (cid,))
    w = await until(lambda: waiting("exhausted"), 15, "the list-finished reason")
    assert "nobody is left to call" in w["text"]
    store.update_campaign(cid, status="paused")
    await until(lambda: waiting("paused"), 15, "the paused reason")
    store.close()
