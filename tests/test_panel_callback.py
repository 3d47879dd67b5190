"""A caller schedules a callback from the screen: the contact waits for that time."""

from __future__ import annotations

import time

from phonebank.harness import day_number
from tests.fakes import PanelKit


async def test_callback_from_the_personal_phone_screen(panel: PanelKit) -> None:
    cid = panel.store.create_campaign("Callbacks", dial_mode="personal")["id"]
    panel.store.add_contacts(cid, [{"first_name": "Cal", "phone": day_number(4242)}])
    client, csrf = await panel.client("caller", name="Robin")
    resp = await client.post("/api/sessions", json={"campaign_id": cid}, headers={"X-CSRF-Token": csrf})
    sid = (await resp.json())["id"]
    held = await (await client.post(f"/api/personal/{sid}/next", headers={"X-CSRF-Token": csrf})).json()
    assert held["contact"]["first_name"] == "Cal"
    bad = await client.post(
        f"/api/personal/{sid}/disposition",
        headers={"X-CSRF-Token": csrf},
        json={"code": "callback", "callback_at": "tomorrow-ish", "stop": True},
    )
    assert bad.status == 400 and "callback_at" in (await bad.json())["error"]
    missing = await client.post(
        f"/api/personal/{sid}/disposition", headers={"X-CSRF-Token": csrf}, json={"code": "callback", "stop": True}
    )
    assert missing.status == 400
    when = time.time() + 3 * 3600
    ok = await client.post(
        f"/api/personal/{sid}/disposition",
        headers={"X-CSRF-Token": csrf},
        json={"code": "callback", "callback_at": when, "notes": "after dinner", "stop": True},
    )
    assert ok.status == 200, await ok.text()
    contact = panel.store.contacts(cid)[0]
    assert contact["status"] == "pending" and abs(contact["next_attempt_at"] - when) < 1
    assert [d["code"] for d in panel.store.dispositions(cid)] == ["callback"]


def test_voter_clock_from_the_number_never_the_number() -> None:
    from datetime import UTC, datetime

    from panel.localtime import voter_clock

    winter = datetime(2026, 12, 2, 15, 0, tzinfo=UTC).timestamp()
    summer = datetime(2026, 7, 2, 15, 0, tzinfo=UTC).timestamp()
    chicago = voter_clock("+13125550100", winter)
    assert chicago == {
        "zone": "America/Chicago",
        "zones": [{"zone": "America/Chicago", "abbr": "CST", "utc_offset_min": -360, "time": "9:00 AM", "day": "Wed"}],
    }
    assert voter_clock("+13125550100", summer)["zones"][0]["utc_offset_min"] == -300  # daylight saving
    assert "5550100" not in repr(chicago)
    # A number in two zones (Alaska): both shown, none assumed for picking a time.
    alaska = voter_clock("+19075550100", winter)
    assert alaska["zone"] == "" and [z["zone"] for z in alaska["zones"]] == ["America/Adak", "America/Anchorage"]
    # Toll-free numbers span the continent, and garbage has no zone: unknown, not a guess.
    assert voter_clock("+18005550100", winter) == {"zone": "", "zones": []}
    assert voter_clock("not a number", winter) == {"zone": "", "zones": []}


async def test_callback_form_and_about_pane_show_the_voters_time(panel: PanelKit) -> None:
    """The caller's screen gets the voter's zone and time (for the About pane and the callback form), not the
    number; the form no longer sends callers to an About pane that had no time on it."""
    from bridge import dialer as d
    from panel.views import session_view

    cid = panel.store.create_campaign("Local time", dial_mode="power", join_code="ABCDEFG-7654321", status="active")[
        "id"
    ]
    panel.store.add_contacts(cid, [{"first_name": "Dee", "phone": "+13125550177", "city": "Chicago"}])
    contact = panel.store.contacts(cid)[0]
    client, csrf = await panel.client("caller", name="Casey", campaign_id=cid)
    created = await client.post("/api/sessions", json={"campaign_id": cid}, headers={"X-CSRF-Token": csrf})
    assert created.status == 201, await created.text()
    sid = (await created.json())["id"]
    panel.store.insert_call("pb-localtime", cid, contact["id"], 1, "pb-localtime", time.time())
    panel.ctl.dialer.volunteers[sid] = d.vol.Volunteer(sid, cid, state=d.vol.VState.TALKING, call_id="pb-localtime")
    resp = await client.get(f"/api/sessions/{sid}")
    assert resp.status == 200
    text = await resp.text()
    local = (await resp.json())["contact"]["local_time"]
    assert local["zone"] == "America/Chicago" and local["zones"][0]["abbr"] in ("CST", "CDT")
    assert local["zones"][0]["time"] and "5550177" not in text
    # Without the profile permission the About pane is not sent, but the callback form still needs the time.
    view = session_view(panel.ctl, sid, "+12025550100", permissions={"make_calls"})
    assert view and view["contact"]["city"] == "" and view["contact"]["local_time"]["zone"] == "America/Chicago"
    page = await (await client.get(f"/call/{cid}/s/{sid}")).text()
    assert 'id="callback-zone"' in page and 'id="callback-now"' in page
    assert "their time is on the About pane" not in page
    js = await (await client.get("/static/caller.js")).text()
    assert '"Their time"' in js and "local_time" in js and "wallTimeIn(when, voterClock.zone)" in js
