"""Kill the controller mid-call (SIGKILL): everything already recorded is still there, and on restart it
takes the volunteer and the voter back from Asterisk instead of dropping them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridge.ari import AriClient
from callin import drill
from phonebank.harness import ControllerProcess, Pbx, day_number, db_rows, until
from phonebank.sim import SimNumber
from store.db import Store

pytestmark = pytest.mark.asterisk

TABLES = ("campaigns", "contacts", "sessions", "calls", "legs", "volunteers")


def snapshot(pbx: Pbx) -> dict[str, dict[Any, dict[str, Any]]]:
    out = {}
    for table in TABLES:
        key = "channel_id" if table == "legs" else "id"
        out[table] = {row[key]: row for row in db_rows(pbx.settings.db_path, f"SELECT * FROM {table}")}
    return out


def assert_kept(before: dict[str, dict[Any, dict[str, Any]]], after: dict[str, dict[Any, dict[str, Any]]]) -> None:
    """Every row and every value written before is still there (later writes may only fill blanks)."""
    for table, rows in before.items():
        for key, row in rows.items():
            assert key in after[table], f"{table} row {key} lost"
            for col, value in row.items():
                if value is not None and table not in ("sessions", "contacts"):
                    assert after[table][key][col] == value, f"{table}.{col} of {key} changed"
                elif value is not None and col in ("id", "code", "campaign_id", "phone", "created_at"):
                    assert after[table][key][col] == value


async def test_kill_controller_mid_call(pbx: Pbx, controller: ControllerProcess, ari: AriClient) -> None:
    voters = [SimNumber(day_number(2100 + i), "human", ring_s=1, talk_s=14, tone_hz=2700 + 50 * i) for i in range(2)]
    pbx.load_sim(voters)
    store = Store(pbx.settings.db_path)
    cid = store.create_campaign("Restart", ring_timeout_s=15)["id"]
    store.add_contacts(cid, [{"first_name": f"R{i}", "phone": n.number} for i, n in enumerate(voters)])
    status, session = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Kim"})
    assert status == 201
    await drill.volunteer(ari, pbx.rt, session["code"], stay_s=600)
    sid = session["id"]

    view = await until(
        lambda: (v := controller.call("GET", f"/api/sessions/{sid}")[1])["state"] == "talking" and v,
        30,
        "the volunteer to be talking",
    )
    call_id = view["call_id"]
    before = snapshot(pbx)
    assert before["calls"][call_id]["bridged_at"] and before["calls"][call_id]["amd_status"] == "HUMAN"
    assert before["sessions"][sid]["state"] == "talking"

    controller.kill()
    after_kill = snapshot(pbx)
    assert_kept(before, after_kill)
    assert after_kill["calls"][call_id] == before["calls"][call_id]
    # Asterisk kept both legs up while nobody was in control.
    channel_ids = {ch["id"] for ch in await ari.get("channels")}
    assert call_id in channel_ids

    controller.start()
    restored = controller.call("GET", f"/api/sessions/{sid}")[1]
    assert restored["state"] == "talking" and restored["call_id"] == call_id and restored["phone_connected"]
    # Nothing else was dialled for a volunteer who is still talking.
    assert len(store.calls(cid)) == 1

    # The conversation ends normally and is recorded as such; the volunteer goes on.
    await until(
        lambda: controller.call("GET", f"/api/sessions/{sid}")[1]["state"] == "wrapup", 30, "the voter to hang up"
    )
    ended = store.call(call_id)
    assert ended is not None and ended["outcome"] == "connected" and ended["ended_at"] and ended["hangup_cause"] == 16
    status, _ = controller.call("POST", f"/api/sessions/{sid}/disposition", {"code": "undecided"})
    assert status == 201
    await until(lambda: len(store.calls(cid)) == 2, 10, "the next call")
    assert_kept(before, snapshot(pbx))
    store.close()
    await asyncio.sleep(0)
