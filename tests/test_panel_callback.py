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
    bad = await client.post(f"/api/personal/{sid}/disposition", headers={"X-CSRF-Token": csrf},
                            json={"code": "callback", "callback_at": "tomorrow-ish", "stop": True})
    assert bad.status == 400 and "callback_at" in (await bad.json())["error"]
    missing = await client.post(f"/api/personal/{sid}/disposition", headers={"X-CSRF-Token": csrf},
                                json={"code": "callback", "stop": True})
    assert missing.status == 400
    when = time.time() + 3 * 3600
    ok = await client.post(f"/api/personal/{sid}/disposition", headers={"X-CSRF-Token": csrf},
                           json={"code": "callback", "callback_at": when, "notes": "after dinner", "stop": True})
    assert ok.status == 200, await ok.text()
    contact = panel.store.contacts(cid)[0]
    assert contact["status"] == "pending" and abs(contact["next_attempt_at"] - when) < 1
    assert [d["code"] for d in panel.store.dispositions(cid)] == ["callback"]
