"""The organisers' planning page (the simulator behind ``phonebank forecast``)."""

from __future__ import annotations

import re

from tests.fakes import PanelKit

GOOD = {
    "list_size": "400",
    "answer_rate": "25",
    "machine_share": "40",
    "conversations": "30",
    "shift_hours": "1",
    "shifts": "1",
    "talk_mean": "90",
    "wrap_mean": "15",
}


async def test_forecast_page_answers_and_checks_input(panel: PanelKit) -> None:
    cid = panel.store.create_campaign("Plan me")["id"]
    panel.store.add_contacts(cid, [{"phone": f"+1202555{1000 + i}"} for i in range(37)])
    manager, csrf = await panel.client("manager")
    page = await (await manager.get(f"/admin/forecast?effort={cid}")).text()
    assert 'name="list_size" value="37"' in page  # prefilled from the effort's list
    bad = await manager.post("/admin/forecast", data={**GOOD, "answer_rate": "250", "shifts": "x", "_csrf": csrf})
    text = await bad.text()
    assert bad.status == 400 and "between 1 and 100" in text and "a number, please" in text
    assert 'value="250"' in text  # the input is kept
    ok = await manager.post("/admin/forecast", data={**GOOD, "_csrf": csrf})
    html = await ok.text()
    assert ok.status == 200 and 'id="forecast-result"' in html
    volunteers = re.search(r'<div class="n">(\d+)</div>\s*<div class="l">volunteers per shift', html)
    assert volunteers and 1 <= int(volunteers.group(1)) <= 10


async def test_forecast_needs_results_permission(panel: PanelKit) -> None:
    caller, csrf = await panel.client("caller")
    assert (await caller.get("/admin/forecast")).status == 403
    assert (await caller.post("/admin/forecast", data={**GOOD, "_csrf": csrf})).status == 403
    anon = await panel.anonymous()
    resp = await anon.get("/admin/forecast", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")
