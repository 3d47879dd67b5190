"""The database refuses writes mid-shift (issue 11, §2), on the real Asterisk: another process holds an EXCLUSIVE
lock on the store (what a stuck backup script or a sqlite3 shell left in a transaction does; a full disk fails the
same writes with "database or disk is full" and takes the same path).

What it proves: the controller says so loudly (``store.write_failed`` / ``store.down`` logged as errors,
/healthz 503 with SQLite's reason, the waiting volunteer's screen — and so the dashboard — says "store_down"); it
keeps the call on the line (the voter and the volunteer talk on, the hang-up is handled); it places no new call
while it could not record it (the dialer's STORE_DOWN hold, even when a contact falls due); a panel write is
refused with a clear 503, not a 500 and not a half-save; and once the lock goes every fact it learned meanwhile is
in the store (the call's end, its outcome, the volunteer's wrap-up), nothing it had already saved changed, the
refused result can be saved, and dialling resumes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bridge.ari import AriClient
from callin import drill
from phonebank.harness import ControllerProcess, Pbx, day_number, until
from phonebank.sim import SimNumber
from store.db import Store
from tests.test_e2e_restart import assert_kept, snapshot

pytestmark = pytest.mark.asterisk

TALK_S = 12


def health(ctl: ControllerProcess) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(ctl.api + "/healthz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def log_events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


async def test_store_locked_mid_shift(pbx: Pbx, controller: ControllerProcess, ari: AriClient) -> None:
    first = SimNumber(day_number(7300), "human", ring_s=1, talk_s=TALK_S, tone_hz=3100)
    due_later = SimNumber(day_number(7301), "human", ring_s=1, talk_s=120, tone_hz=3150)
    pbx.load_sim([first, due_later])
    store = Store(pbx.settings.db_path)
    cid = int(store.create_campaign("Store down", ring_timeout_s=20, status="paused")["id"])
    store.add_contacts(cid, [{"first_name": n, "phone": x.number} for n, x in (("A", first), ("B", due_later))])
    # The second voter is not callable yet: they fall due while the store is locked.
    due_at = time.time() + 3600
    store.conn.execute("UPDATE contacts SET next_attempt_at = ? WHERE phone = ?", (due_at, due_later.number))
    sids = []
    for name in ("Ana", "Ben"):
        status, s = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": name})
        assert status == 201, s
        sids.append(s["id"])
        await drill.volunteer(ari, pbx.rt, s["code"], stay_s=600)

    def view(sid: int) -> dict[str, Any]:
        return dict(controller.call("GET", f"/api/sessions/{sid}")[1])

    for sid in sids:
        await until(partial(lambda s: view(s)["state"] == "idle", sid), 30, "joined")
    store.update_campaign(cid, status="active")

    talking = await until(
        lambda: next((v for v in map(view, sids) if v["state"] == "talking"), None), 30, "a voter put through"
    )
    talker, waiter = talking["id"], next(s for s in sids if s != talking["id"])
    call_id = talking["call_id"]
    await until(lambda: (store.call(call_id) or {}).get("bridged_at"), 10, "the bridge recorded")
    # The second voter falls due while the store is locked, after the first has hung up (when the controller has
    # learned the store is down: a claim before that is refused too, at the cost of a short wait).
    due_at = time.time() + TALK_S + 3
    store.conn.execute("UPDATE contacts SET next_attempt_at = ? WHERE phone = ?", (due_at, due_later.number))
    before = snapshot(pbx)

    other = sqlite3.connect(str(pbx.settings.db_path), isolation_level=None, timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    locked_at = time.time()
    try:
        # The voter hangs up after TALK_S: the controller learns it, and cannot write it.
        await until(lambda: view(talker)["state"] == "wrapup", TALK_S + 15, "the voter to hang up")
        status, body = await until(lambda: (h := health(controller))[0] == 503 and h, 10, "/healthz unhealthy")
        assert body["store_writes"] is False and "locked" in body["store_error"] and body["writes_queued"] > 0
        # The store answers reads: the screens still work, and the waiting volunteer is told why.
        w = await until(
            lambda: (view(waiter).get("waiting") or {}).get("code") == "store_down" and view(waiter),
            10,
            "the store-down reason on the waiting volunteer's screen",
        )
        assert "database" in w["waiting"]["text"]
        # A result cannot be saved now: refused clearly, nothing half-saved.
        status, refused = controller.call(
            "POST", f"/api/sessions/{talker}/disposition", {"call_id": call_id, "code": "undecided"}
        )
        assert status == 503 and refused["code"] == "store_down" and "nothing was saved" in refused["error"]
        # The stored row is untouched while locked (the facts are queued in the controller).
        assert other.execute("SELECT ended_at FROM calls WHERE id = ?", (call_id,)).fetchone()[0] is None
        # Even with a voter due and a volunteer waiting, nothing is dialled.
        await asyncio.sleep(max(due_at + 3 - time.time(), 0))
        channels = [ch["id"] for ch in await ari.get("channels") if ch["id"].startswith("pbc-")]
        assert channels == [], channels
        events = log_events(controller.log_path)
        assert any(e.get("event") == "store.down" and e["level"] == "error" for e in events)
        assert any(e.get("event") == "dialer.hold" and e.get("hold") == "store_down" for e in events)
        assert not [e for e in events if e.get("event") == "store.write_failed" and e.get("what") == "NeedContacts"]
    finally:
        other.execute("ROLLBACK")
        other.close()

    await until(lambda: health(controller)[0] == 200, 10, "/healthz healthy again")
    # Every fact learned while locked is in the store now; nothing saved before changed.
    ended = store.call(call_id)
    assert ended is not None and ended["ended_at"] and ended["outcome"] == "connected" and ended["hangup_cause"] == 16
    assert ended["ended_at"] > locked_at
    assert store.session(talker)["state"] == "wrapup"  # type: ignore[index]
    leg = store.conn.execute("SELECT ended_at FROM legs WHERE channel_id = ?", (call_id,)).fetchone()
    assert leg[0] and leg[0] > locked_at
    assert_kept(before, snapshot(pbx))
    events = log_events(controller.log_path)
    recovered = [e for e in events if e.get("event") == "store.recovered"]
    assert recovered and recovered[0]["written_late"] > 0 and recovered[0]["dropped"] == 0
    # The refused result is saved now, and dialling resumes: the voter who fell due is called.
    status, saved = controller.call(
        "POST", f"/api/sessions/{talker}/disposition", {"call_id": call_id, "code": "undecided"}
    )
    assert status == 201, saved
    await until(lambda: len(store.calls(cid)) == 2, 20, "the next call after the store came back")
    assert all(c["originated_at"] < locked_at or c["originated_at"] > ended["ended_at"] for c in store.calls(cid))
    store.close()
