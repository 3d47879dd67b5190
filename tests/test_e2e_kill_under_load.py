"""The controller is killed under load (issue 11, §2), on the real Asterisk: VOLUNTEERS callers on the line
(drilled phones calling in with their codes), a list of people, machines, busy and unanswered numbers, a power
dial at one line per caller, results being saved through the API — then SIGKILL (no clean-up code runs, as when
the machine loses power), and a new controller started on the same store.

What it proves: every fact the controller reported before it died — the API's answers (who was talking to which
call, every result it answered 201 for) and the push channel's events — is in the store afterwards; nothing
written before the kill changed; on restart every caller whose phone is still on the line is taken back (and
every voter still in a caller's bridge with them, on the same call); the calls nobody can account for are ended
and recorded; dialling resumes; no call is counted twice (each contact's attempts are exactly its calls that
count, none has two calls open) and nothing is stuck (every call open in the store is a channel Asterisk has).

Load: 50 callers by default (PHONEBANK_KILL_VOLUNTEERS), with the carrier simulated inside the same Asterisk and
the detector off (amd_mode "off": answered calls go straight to a caller), so the 2-core test machine carries it
next to the rest of the suite; bench/capacity.py measures the PBX's ceiling with the carrier outside."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from typing import Any

import aiohttp
import pytest

from bridge.ari import AriClient
from callin import drill
from phonebank.harness import ControllerProcess, Pbx, day_number, until
from phonebank.sim import SimNumber
from store.db import Store
from store.outcomes import NOT_AN_ATTEMPT
from tests.test_e2e_restart import assert_kept, snapshot

pytestmark = pytest.mark.asterisk

VOLUNTEERS = int(os.environ.get("PHONEBANK_KILL_VOLUNTEERS", "50"))
WATCHED = 5  # callers whose screens (push channel) the test holds open


def network(n: int, seed: int = 11) -> list[SimNumber]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.choices(["human", "noanswer", "busy", "machine"], [6, 2, 1, 1])[0]
        out.append(
            SimNumber(
                day_number(7400 + i),
                kind,
                ring_s=rng.uniform(1, 4) if kind != "noanswer" else 30,
                talk_s=rng.uniform(6, 45),
                tone_hz=0,
            )
        )
    return out


def check_counts(store: Store, cid: int) -> None:
    """No call counted twice: each contact's attempts are its calls that count as one; none has two calls open."""
    calls: dict[int, list[dict[str, Any]]] = {}
    for c in store.calls(cid):
        calls.setdefault(int(c["contact_id"]), []).append(c)
    for contact in store.conn.execute("SELECT * FROM contacts WHERE campaign_id = ?", (cid,)).fetchall():
        mine = calls.get(int(contact["id"]), [])
        counted = [c for c in mine if c["outcome"] not in NOT_AN_ATTEMPT]
        assert contact["attempts"] == len(counted), (dict(contact), mine)
        assert sum(1 for c in mine if not c["ended_at"]) <= 1, mine


async def test_kill_controller_under_load(pbx: Pbx, controller: ControllerProcess, ari: AriClient) -> None:
    voters = network(3 * VOLUNTEERS)
    pbx.load_sim(voters)
    store = Store(pbx.settings.db_path)
    cid = int(
        store.create_campaign("Killed under load", ring_timeout_s=20, amd_mode="off", status="paused", max_attempts=3)[
            "id"
        ]
    )
    store.add_contacts(cid, [{"first_name": f"L{i}", "phone": v.number} for i, v in enumerate(voters)])
    sids, codes, legs = [], {}, {}
    for i in range(VOLUNTEERS):
        status, s = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": f"Caller {i}"})
        assert status == 201, s
        sids.append(int(s["id"]))
        codes[int(s["id"])] = s["code"]
        legs[int(s["id"])] = (await drill.volunteer(ari, pbx.rt, s["code"], stay_s=900, delay_s=1.0)).channel_id

    def views() -> dict[int, dict[str, Any]]:
        return {sid: controller.call("GET", f"/api/sessions/{sid}")[1] for sid in sids}

    # With 50 call-ins keying codes at once on a loaded 2-core box a digit is now and then lost and the code
    # refused: that caller calls in again, as a person would.
    called_again = 0
    for attempt in range(3):
        try:
            await until(lambda: all(v["phone_connected"] for v in views().values()), 30, "callers on the line", 1.0)
            break
        except AssertionError as exc:
            if attempt == 2:
                missing = {
                    sid: (v["state"], v.get("state_reason")) for sid, v in views().items() if not v["phone_connected"]
                }
                raise AssertionError(f"callers never on the line: {missing}; see {controller.log_path}") from exc
        for sid, v in views().items():
            if not v["phone_connected"]:
                with contextlib.suppress(Exception):
                    await ari.delete(f"channels/{legs[sid]}")
                legs[sid] = (await drill.volunteer(ari, pbx.rt, codes[sid], stay_s=900, delay_s=1.0)).channel_id
                called_again += 1

    # Screens of a few callers, as their browsers hold them.
    pushed: list[dict[str, Any]] = []
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {pbx.settings.api_token()}"})
    sockets = [
        await http.ws_connect(f"{controller.api.replace('http', 'ws', 1)}/ws/session/{sid}") for sid in sids[:WATCHED]
    ]

    async def listen(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                pushed.append(json.loads(msg.data)["session"])

    listeners = [asyncio.create_task(listen(ws)) for ws in sockets]
    store.update_campaign(cid, status="active")

    # The shift runs: the test saves results for callers in wrap-up, and keeps every answer it was given.
    reported: list[dict[str, Any]] = []  # session views the API answered
    saved: list[dict[str, Any]] = []  # results the API answered 201 for
    for _ in range(25):
        await asyncio.sleep(1.5)
        now_views = views()
        reported += now_views.values()
        for sid, v in now_views.items():
            if v["state"] == "wrapup" and v.get("call_id"):
                status, body = controller.call(
                    "POST", f"/api/sessions/{sid}/disposition", {"call_id": v["call_id"], "code": "undecided"}
                )
                if status == 201:
                    saved.append({**body, "call_id": v["call_id"], "session_id": sid})
        if sum(1 for v in now_views.values() if v["state"] == "talking") >= VOLUNTEERS // 3 and saved:
            break
    talking_at_kill = {sid: v["call_id"] for sid, v in views().items() if v["state"] == "talking"}
    assert talking_at_kill, "some callers talking when the controller dies"
    for task in listeners:
        task.cancel()
    for ws in sockets:
        await ws.close()
    await http.close()

    controller.kill()
    before = snapshot(pbx)

    # Every fact reported is in the store.
    calls = before["calls"]
    for v in [*reported, *pushed]:
        if v["state"] == "talking" and v.get("call_id"):
            row = calls.get(v["call_id"])
            assert row is not None and row["session_id"] == v["id"] and row["answered_at"], (v, row)
    assert saved, "some results saved during the shift"
    for body in saved:
        row = store.conn.execute("SELECT * FROM dispositions WHERE id = ?", (body["id"],)).fetchone()
        assert row is not None and (row["call_id"], row["session_id"]) == (body["call_id"], body["session_id"]), body
    for sid, call_id in talking_at_kill.items():
        assert calls[call_id]["session_id"] == sid
        assert before["sessions"][sid]["current_call_id"] == call_id

    # Asterisk kept the calls up while nobody was in control; a new controller takes them back.
    in_asterisk = {ch["id"] for ch in await ari.get("channels")}
    still_talking = {sid: c for sid, c in talking_at_kill.items() if c in in_asterisk}
    assert still_talking, "voters still on the line with their callers for the new controller to take back"
    controller.start(timeout=60)
    after = views()
    print(
        f"kill under load: {VOLUNTEERS} callers ({called_again} called in again),"
        f" {len(before['calls'])} calls placed, {len(saved)} results saved,"
        f" {len(talking_at_kill)} talking at the kill, {len(still_talking)} taken back on the same call"
    )
    for v in after.values():
        assert v["phone_connected"] and v["state"] != "disconnected", v
    for sid, call_id in still_talking.items():
        v = after[sid]
        # The voter may hang up in between: then the caller is writing up that same call.
        assert v["call_id"] == call_id and v["state"] in ("talking", "wrapup"), (v, call_id)
    assert_kept(before, snapshot(pbx))
    check_counts(store, cid)

    # Dialling resumes, and nothing is stuck or counted twice afterwards either.
    placed = len(store.calls(cid))
    await until(lambda: len(store.calls(cid)) > placed, 30, "new calls after the restart")
    await asyncio.sleep(3)
    channels = {ch["id"] for ch in await ari.get("channels")}
    open_calls = {c["id"] for c in store.calls(cid) if not c["ended_at"]}
    assert open_calls <= channels, open_calls - channels
    check_counts(store, cid)
    assert_kept(before, snapshot(pbx))
    store.update_campaign(cid, status="paused")
    store.close()
