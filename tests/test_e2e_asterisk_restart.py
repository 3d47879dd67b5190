"""Asterisk restarts mid-shift (issue 11, §2), on a real Asterisk of the test's own (never the session-wide one
other tests share): it is killed outright (SIGKILL, as a crash: no hang-up events reach the controller) and
started again, as systemd's Restart= would.

What it proves: the controller notices at once (/healthz 503, the dialer held: nothing is dialled into a dead
PBX), reconnects by itself with backoff (logged), and on reconnecting marks what Asterisk lost — the voter being
talked to stays ``connected`` (they talked), the line that was ringing is ``pbx_lost`` and its voter keeps their
attempt — pauses both volunteers as ``phone_system_restarted`` and tells their screens over the push channel;
the volunteers call in again with the same codes and calls resume; afterwards nothing is stuck (no call open in
the store that Asterisk does not have) and no call is counted twice (attempts match the calls that count)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.ari import AriClient
from bridge.volunteer import PBX_LOST_REASON
from callin import drill
from phonebank.harness import ControllerProcess, Pbx, day_number, until, wait_until
from phonebank.sim import SimNumber
from store.db import Store
from store.outcomes import NOT_AN_ATTEMPT

pytestmark = pytest.mark.asterisk


@pytest.fixture
def own_pbx(tmp_path: Path) -> Iterator[Pbx]:
    # Its own instance name, data dir and RTP range (the session-wide instance's range is 30000-59999).
    rtp = 20000 + (os.getpid() % 10) * 1000
    pbx = Pbx.start(
        tmp_path / "pbx",
        f"tast{os.getpid()}",
        extra_env={"PHONEBANK_RTP_START": str(rtp), "PHONEBANK_RTP_END": str(rtp + 998)},
    )
    try:
        yield pbx
    finally:
        pbx.stop()


def crash(pbx: Pbx) -> None:
    pid = int(pbx.host_path(f"{pbx.rt.inst}/run/asterisk.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pbx.rt.running(), 20, 0.2, "Asterisk gone")


def health(ctl: ControllerProcess) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

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


async def test_asterisk_restart_mid_shift(own_pbx: Pbx, tmp_path: Path) -> None:
    pbx = own_pbx
    talker = SimNumber(day_number(7100), "human", ring_s=1, talk_s=300, tone_hz=2900)
    ringer = SimNumber(day_number(7101), "noanswer", ring_s=60)
    later = [SimNumber(day_number(7110 + i), "human", ring_s=1, talk_s=300, tone_hz=3000 + 50 * i) for i in range(2)]
    pbx.load_sim([talker, ringer, *later])
    store = Store(pbx.settings.db_path)
    cid = int(store.create_campaign("Restart mid-shift", ring_timeout_s=40, max_attempts=3, status="paused")["id"])
    # The contacts are claimed in list order: the first voter talks, the second rings for the second volunteer.
    store.add_contacts(cid, [{"first_name": f"V{i}", "phone": n.number} for i, n in enumerate([talker, ringer])])
    ctl = ControllerProcess(pbx, tmp_path / "controller.log")
    ctl.start()
    user, password = pbx.ari_credentials()
    pushed: dict[int, list[dict[str, Any]]] = {}

    def view(sid: int) -> dict[str, Any]:
        return dict(ctl.call("GET", f"/api/sessions/{sid}")[1])

    try:
        sids, codes = [], []
        for name in ("Ana", "Ben"):
            status, s = ctl.call("POST", "/api/sessions", {"campaign_id": cid, "name": name})
            assert status == 201, s
            sids.append(s["id"])
            codes.append(s["code"])
        async with AriClient(pbx.rt.ari_url(), user, password, "restart-drill") as ari:
            for code in codes:
                await drill.volunteer(ari, pbx.rt, code, stay_s=600)
        for sid in sids:
            await until(partial(lambda s: view(s)["state"] == "idle", sid), 30, "joined")

        # Their screens, as their browsers hold them: the push channel.
        http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {pbx.settings.api_token()}"})
        sockets = [await http.ws_connect(f"{ctl.api.replace('http', 'ws', 1)}/ws/session/{sid}") for sid in sids]

        async def listen(sid: int, ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    pushed.setdefault(sid, []).append(json.loads(msg.data)["session"])

        listeners = [asyncio.create_task(listen(sid, ws)) for sid, ws in zip(sids, sockets, strict=True)]
        store.update_campaign(cid, status="active")

        def calls() -> dict[str, dict[str, Any]]:
            return {c["id"]: c for c in store.calls(cid)}

        talking = await until(
            lambda: next(
                (v for v in (ctl.call("GET", f"/api/sessions/{s}")[1] for s in sids) if v["state"] == "talking"), None
            ),
            30,
            "a volunteer talking",
        )
        talk_call = talking["call_id"]
        idle_sid = next(s for s in sids if s != talking["id"])
        ring_call = await until(
            lambda: next((c["id"] for c in calls().values() if c["ringing_at"] and c["id"] != talk_call), None),
            30,
            "the second line ringing",
        )
        assert calls()[ring_call]["answered_at"] is None

        crash(pbx)
        crashed_at = time.time()
        # Said at once: /healthz is unhealthy, and nothing is dialled while the PBX is away.
        status, body = await until(lambda: (h := health(ctl))[0] == 503 and h, 10, "/healthz to say ARI is down")
        assert body["ari"] is False and body["store"] is True
        await asyncio.sleep(3)  # the controller keeps trying (backoff) while Asterisk is away
        pbx.rt.up()
        pbx.load_sim([talker, ringer, *later])
        await until(lambda: health(ctl)[0] == 200, 60, "the controller reconnected")

        # What was lost is marked: the conversation was one, the ringing line is nobody's attempt.
        await until(lambda: (c := calls())[talk_call]["ended_at"] and c[ring_call]["ended_at"], 20, "calls ended")
        c = calls()
        assert c[talk_call]["outcome"] == "connected" and c[talk_call]["hangup_cause_txt"] == "lost: Asterisk restarted"
        assert c[ring_call]["outcome"] == "pbx_lost"
        contacts = {
            r["phone"]: dict(r) for r in store.conn.execute("SELECT * FROM contacts WHERE campaign_id = ?", (cid,))
        }
        rang = contacts[ringer.number]
        assert rang["attempts"] == 0 and rang["last_outcome"] is None and rang["status"] == "pending", rang
        assert contacts[talker.number]["status"] == "connected"  # waiting for Ana's or Ben's result, as ever

        # Both volunteers paused, with why, and their screens were told without asking.
        for sid in sids:
            v = ctl.call("GET", f"/api/sessions/{sid}")[1]
            assert v["state"] == "disconnected" and v["state_reason"] == PBX_LOST_REASON, v
            assert not v["phone_connected"]
            await until(
                partial(
                    lambda s: any(
                        p["state"] == "disconnected" and p["state_reason"] == PBX_LOST_REASON for p in pushed.get(s, [])
                    ),
                    sid,
                ),
                10,
                "the push to the volunteer's screen",
            )
        # The one waiting for a voter was told the phone system was away while it was.
        assert any((p.get("waiting") or {}).get("code") == "asterisk_down" for p in pushed[idle_sid]), pushed[idle_sid]
        # Nothing was dialled into the dead PBX nor before anyone was back on the line.
        assert not [x for x in calls().values() if x["originated_at"] > crashed_at]

        events = log_events(ctl.log_path)
        lost = [e for e in events if e.get("event") == "ari.disconnected"]
        assert lost and lost[0]["level"] == "error" and all("retry_in" in e for e in lost)
        assert len(lost) >= 2 and max(e["attempt"] for e in lost) >= 2, "retried with backoff while Asterisk was away"
        assert any(e.get("event") == "dialer.hold" and e.get("hold") == "pbx_down" for e in events)

        # The callers re-join with the same codes; calls resume.
        store.add_contacts(cid, [{"first_name": f"L{i}", "phone": n.number} for i, n in enumerate(later)])
        async with AriClient(pbx.rt.ari_url(), user, password, "restart-drill") as ari:
            for code in codes:
                await drill.volunteer(ari, pbx.rt, code, stay_s=600)
            for sid in sids:
                await until(partial(lambda s: view(s)["phone_connected"], sid), 30, "back on the line")
            await until(
                lambda: any(ctl.call("GET", f"/api/sessions/{s}")[1]["state"] == "talking" for s in sids),
                40,
                "a voter put through after the restart",
            )
            # No stuck state: every call the store has open is a channel Asterisk has.
            channels = {ch["id"] for ch in await ari.get("channels")}
        open_calls = {x["id"] for x in calls().values() if not x["ended_at"]}
        assert open_calls and open_calls <= channels
        assert talk_call not in open_calls and ring_call not in open_calls
        # No call counted twice: each contact's attempts are exactly its calls that count as one.
        for contact in store.conn.execute("SELECT * FROM contacts WHERE campaign_id = ?", (cid,)).fetchall():
            mine = [x for x in calls().values() if x["contact_id"] == contact["id"]]
            counted = [x for x in mine if x["outcome"] not in NOT_AN_ATTEMPT]
            assert contact["attempts"] == len(counted), (dict(contact), mine)
            assert sum(1 for x in mine if not x["ended_at"]) <= 1
        assert sum(1 for x in calls().values() if x["outcome"] == "connected" and x["ended_at"]) == 1
        for task in listeners:
            task.cancel()
        for ws in sockets:
            await ws.close()
        await http.close()
    finally:
        ctl.stop()
        store.close()


async def test_softphone_keeps_its_login_across_an_asterisk_restart(own_pbx: Pbx, tmp_path: Path) -> None:
    """A volunteer on a SIP softphone (pjsua2, tests/sipua.py) is on the line when Asterisk crashes. Once the
    controller is back it pushes the session's account again, same name and credentials: the phone's next REGISTER
    (its refresh timer's, brought forward here by the test) is accepted and its call joins the session's bridge
    again, with no new login fetched from the screen (even with a controller restart in between). A REGISTER
    refused while Asterisk did not have the account does not get the phone's address banned (the guard here bans
    at the first counted failure), and no secret reaches the log."""
    from tests.test_e2e_softphone import Softphone  # a pjsua2 device in its own process

    pbx = own_pbx
    store = Store(pbx.settings.db_path)
    cid = int(store.create_campaign("Softphone restart", status="paused")["id"])  # no voter: the leg is the point
    ctl = ControllerProcess(pbx, tmp_path / "controller.log", extra_env={"PHONEBANK_SIP_GUARD": "1/60/600"})
    ctl.start()
    assert ctl.proc is not None
    ua: Softphone | None = None
    user, password = pbx.ari_credentials()
    try:
        status, s = ctl.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Sofia"})
        assert status == 201, s
        sid = s["id"]
        status, creds = ctl.call("POST", f"/api/sessions/{sid}/sip", {"kind": "softphone"})
        assert status == 200, creds

        def view() -> dict[str, Any]:
            return dict(ctl.call("GET", f"/api/sessions/{sid}")[1])

        ua = Softphone(creds["sip_server"], creds["username"], creds["password"], "--register", "--stdin")
        await until(lambda: ua.first("registered", code=200), 20, "the softphone registered")
        # A controller restart first: it learns the account back from Asterisk, digest included, which is all it
        # has to push it again after the Asterisk restart below.
        ctl.stop()
        ctl.start()
        assert ctl.proc is not None
        restored = [e for e in log_events(ctl.log_path) if e.get("event") == "sip.accounts_restored"]
        assert restored and restored[-1]["count"] == 1, restored
        ua.send(f"call {creds['dial']}")
        await until(lambda: view()["phone_connected"], 20, "the softphone's leg joined")

        crash(pbx)
        # The window between Asterisk being back and the controller pushing the account, held open: the controller
        # is stopped (SIGSTOP) while Asterisk starts and the phone tries to register, and refused.
        ctl.proc.send_signal(signal.SIGSTOP)
        try:
            pbx.rt.up()
            seen = len(ua.events)
            ua.send("register")
            refused = await until(
                lambda: next((e for e in ua.events[seen:] if e["event"] == "registered"), None), 20, "a REGISTER"
            )
        finally:
            ctl.proc.send_signal(signal.SIGCONT)
        assert refused["code"] in (401, 403), refused
        await until(lambda: health(ctl)[0] == 200, 60, "the controller reconnected")
        await until(lambda: view()["state_reason"] == PBX_LOST_REASON, 20, "the session paused")
        events = log_events(ctl.log_path)
        pushed = [e for e in events if e.get("event") == "sip.account_pushed_again"]
        assert [e["session_id"] for e in pushed] == [sid], pushed

        # The same login, untouched: the phone registers again and calls in to its own session's bridge.
        ua.send("hangup")  # the call Asterisk dropped without a BYE
        seen = len(ua.events)
        ua.send("register")
        await until(
            lambda: next((e for e in ua.events[seen:] if e["event"] == "registered"), None), 20, "the new REGISTER"
        )
        assert [e["code"] for e in ua.events[seen:] if e["event"] == "registered"][-1] == 200, ua.events[seen:]
        ua.send(f"call {creds['dial']}")
        back = await until(lambda: (v := view())["phone_connected"] and v, 20, "the leg joined again")
        assert back["state"] != "disconnected", back
        bridge = store.session(sid)["bridge_id"]  # type: ignore[index]
        async with AriClient(pbx.rt.ari_url(), user, password, "restart-drill") as ari:
            members = [await ari.get(f"channels/{ch}") for ch in (await ari.get(f"bridges/{bridge}"))["channels"]]
            # The account's state in Asterisk: the auth carries the digest, never the password.
            auth = {
                f["attribute"]: f["value"]
                for f in await ari.get(f"asterisk/config/dynamic/res_pjsip/auth/{creds['username']}")
            }
        assert [m["name"].rsplit("-", 1)[0] for m in members] == [f"PJSIP/{creds['username']}"], members
        assert auth.get("auth_type") == "md5" and not auth.get("password"), auth
        assert auth["md5_cred"] not in ctl.log_path.read_text()
        assert creds["password"] not in ctl.log_path.read_text()

        events = log_events(ctl.log_path)
        assert not [e for e in events if e.get("event") == "sip.address_banned"]
        assert not [e for e in events if e.get("event") == "sip.account_created"][1:], "no second login was made"
    finally:
        if ua is not None:
            ua.kill()
        ctl.stop()
        store.close()
