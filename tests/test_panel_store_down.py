"""The panel while the store refuses writes (panel/ops.py): /healthz and /metrics say so, a write is refused with a
clear 503 (never a 500, nothing half-saved), reads go on; all of it back to normal once the queue is written out."""

from __future__ import annotations

import sqlite3

from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import API_TOKEN, PanelKit


async def test_store_down_is_loud_and_refuses_writes(panel: PanelKit) -> None:
    client = await panel.anonymous()
    api = {"Authorization": f"Bearer {API_TOKEN}"}
    cid = panel.store.create_campaign("Locked")["id"]
    panel.ctl.facts.update_call("no-such-call", ended_at=1.0)  # written (no row: a no-op), the store is up
    assert not panel.ctl.store_down

    other = sqlite3.connect(str(panel.store.path), isolation_level=None, timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    try:
        panel.ctl.facts.update_session(1, state="idle")  # refused: queued, the store is down
        assert panel.ctl.store_down
        resp = await client.get("/healthz")
        body = await resp.json()
        assert resp.status == 503 and body["store_writes"] is False and body["store"] is True
        assert "locked" in body["store_error"] and body["writes_queued"] == 1
        metrics = await client.get("/metrics", headers=api)
        samples = {s.name: s.value for f in text_string_to_metric_families(await metrics.text()) for s in f.samples}
        assert samples["phonebank_store_down"] == 1 and samples["phonebank_store_writes_queued"] == 1
        # A write is refused before it is tried; a read is answered.
        refused = await client.post("/api/sessions", headers=api, json={"campaign_id": cid, "name": "Kim"})
        assert refused.status == 503
        assert (await refused.json())["code"] == "store_down"
        assert (await client.get(f"/api/campaigns/{cid}/stats", headers=api)).status == 200
    finally:
        other.execute("ROLLBACK")
        other.close()

    assert panel.ctl.facts.flush() == 1 and not panel.ctl.store_down
    resp = await client.get("/healthz")
    assert (await resp.json())["store_writes"] is True
    created = await client.post("/api/sessions", headers=api, json={"campaign_id": cid, "name": "Kim"})
    assert created.status == 201, await created.text()
