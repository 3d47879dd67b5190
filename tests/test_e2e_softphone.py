"""A volunteer's own SIP softphone on the real Asterisk: PJSIP's user agent (pjsua2, nobody here wrote it)
registers with the session's per-session account, calls, joins the session without keying a code, hears a
simulated voter; after Stop its REGISTER is refused. And toll fraud: what such an account dials never reaches the
trunk, a voter or another session — only its own session's bridge."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bridge.ari import AriClient
from phonebank.harness import ControllerProcess, Pbx, day_number, read_wav_samples, tone_ratio, until
from phonebank.settings import REPO_ROOT
from phonebank.sim import SimNumber
from store.db import Store

pytestmark = pytest.mark.asterisk


class Softphone:
    """tests/sipua.py in its own process; its JSON events are read as they come."""

    def __init__(self, server: str, user: str, password: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            # "--x=value": a password may start with "-".
            [
                sys.executable,
                "-m",
                "tests.sipua",
                f"--server={server}",
                f"--user={user}",
                f"--password={password}",
                *args,
            ],
            stdin=subprocess.PIPE if "--stdin" in args else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO_ROOT,
        )
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.get_running_loop().run_in_executor(None, self._read)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def first(self, event: str, **match: Any) -> dict[str, Any] | None:
        return next(
            (e for e in self.events if e["event"] == event and all(e.get(k) == v for k, v in match.items())), None
        )

    async def finish(self, limit_s: float = 60) -> list[dict[str, Any]]:
        await asyncio.wait_for(asyncio.shield(self._reader), limit_s)
        self.proc.wait(10)
        return self.events

    def send(self, command: str) -> None:
        """A line for tests/sipua.py --stdin (register, call EXT, hangup, quit)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()


def account(controller: ControllerProcess, sid: int, kind: str = "softphone") -> dict[str, Any]:
    status, body = controller.call("POST", f"/api/sessions/{sid}/sip", {"kind": kind})
    assert status == 200, body
    return body


async def register_code(server: str, user: str, password: str) -> int:
    ua = Softphone(server, user, password, "--register", "--seconds", "0")
    try:
        events = await ua.finish(30)
    finally:
        ua.kill()
    reg = [e for e in events if e["event"] == "registered"]
    assert reg, events
    return int(reg[-1]["code"])


async def test_softphone_joins_without_code_and_hears_the_voter(
    pbx: Pbx, controller: ControllerProcess, tmp_path: Path
) -> None:
    voter = SimNumber(day_number(5301), "human", ring_s=1, talk_s=20, tone_hz=2350)
    pbx.load_sim([voter])
    store = Store(pbx.settings.db_path)
    cid = store.create_campaign("Softphone", ring_timeout_s=15, amd_mode="app_amd")["id"]
    store.add_contacts(cid, [{"first_name": "Vera", "phone": voter.number}])
    status, session = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Sofia"})
    assert status == 201
    sid = session["id"]

    creds = account(controller, sid)
    assert creds["kind"] == "softphone" and creds["transport"] == "udp" and creds["dial"]
    assert creds["sip_server"] == f"127.0.0.1:{pbx.settings.sip_port}"
    assert len(creds["username"]) >= 32 and len(creds["password"]) >= 22, "at least 128 random bits each"
    # Asking again revokes the first account: it can no longer register.
    first = creds
    creds = account(controller, sid)
    assert creds["username"] != first["username"]
    assert await register_code(first["sip_server"], first["username"], first["password"]) != 200

    heard = tmp_path / "heard.wav"
    ua = Softphone(
        creds["sip_server"],
        creds["username"],
        creds["password"],
        "--register",
        "--call",
        creds["dial"],
        "--record",
        str(heard),
        "--seconds",
        "40",
    )
    try:
        await until(lambda: ua.first("registered", code=200), 20, "the softphone's REGISTER to be accepted")
        await until(lambda: ua.first("call", state="CONFIRMED"), 20, "the softphone's call to be answered")

        def view() -> dict[str, Any]:
            return controller.call("GET", f"/api/sessions/{sid}")[1]

        # Joined with no code keyed: the session has its leg and dials for it.
        talking = await until(lambda: (v := view())["state"] == "talking" and v, 40, "the voter to be put through")
        assert talking["phone_connected"]
        legs = [
            dict(r)
            for r in store.conn.execute("SELECT * FROM legs WHERE session_id = ? AND kind = 'volunteer'", (sid,))
        ]
        assert any(leg["name"].startswith(f"PJSIP/{creds['username']}-") for leg in legs), legs
        # Let the voter's signature tone play for a while (greeting, 3 s pause, then the tone).
        await asyncio.sleep(9)
        status, _ = controller.call("POST", f"/api/sessions/{sid}/stop")
        assert status == 200
        await until(lambda: ua.first("ended"), 15, "Stop to hang up the softphone's leg")
        await ua.finish(30)
    finally:
        ua.kill()

    samples, rate = read_wav_samples(heard)
    assert tone_ratio(samples, rate, voter.tone_hz) > 1e4, "the softphone heard the voter's signature tone"
    assert store.session(sid)["status"] == "ended"  # type: ignore[index]
    # After Stop the account is gone: REGISTER is refused.
    assert await register_code(creds["sip_server"], creds["username"], creds["password"]) != 200


async def test_softphone_account_reaches_only_its_own_session(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient, tmp_path: Path
) -> None:
    voter = SimNumber(day_number(5302), "human", ring_s=1, talk_s=30, tone_hz=2450)
    pbx.load_sim([voter])
    store = Store(pbx.settings.db_path)
    # A paused effort: nothing is dialled, so any voter channel would be the softphone's doing.
    cid = store.create_campaign("Toll fraud", status="paused")["id"]
    store.add_contacts(cid, [{"first_name": "Vic", "phone": voter.number}])
    sessions = [controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": n})[1] for n in ("Ann", "Bo")]
    sid_a, sid_b = sessions[0]["id"], sessions[1]["id"]
    creds = account(controller, sid_a)

    # Dial a voter's number, the other session's code, an extension of the dialplan: each lands in A's own bridge.
    for target in (voter.digits, sessions[1]["code"], "callin", "9011441234567"):
        ua = Softphone(creds["sip_server"], creds["username"], creds["password"], "--call", target, "--seconds", "6")
        try:
            await until(lambda ua=ua: ua.first("call", state="CONFIRMED"), 20, f"the call to {target!r}")
            bridge = await until(lambda: (s := store.session(sid_a)) and s["bridge_id"], 10, "A's bridge")
            info = await ari.get(f"bridges/{bridge}")
            chans = [await ari.get(f"channels/{ch}") for ch in info["channels"]]
            assert [c["name"].rsplit("-", 1)[0] for c in chans] == [f"PJSIP/{creds['username']}"], chans
            everything = await ari.get("channels")
            assert not [c for c in everything if c["name"].startswith("Local/")], "nothing was dialled out"
            assert store.session(sid_b)["channel_id"] is None, "the other session got nothing"  # type: ignore[index]
            await ua.finish(30)
        finally:
            ua.kill()
    assert not store.calls(cid), "no voter call was placed"

    # A name nobody was given, and a good name with a wrong password: refused outright.
    for user, password in (("pbsip" + "0" * 32, "guess"), (creds["username"], "wrong-password")):
        ua = Softphone(creds["sip_server"], user, password, "--call", voter.digits, "--seconds", "5")
        try:
            events = await ua.finish(30)
        finally:
            ua.kill()
        ended = [e for e in events if e["event"] == "ended"]
        assert ended and ended[-1]["code"] in (401, 403, 407), events
        assert not any(e["event"] == "call" and e["state"] == "CONFIRMED" for e in events)

    # An ended session's account is revoked: neither REGISTER nor a call gets through.
    assert controller.call("POST", f"/api/sessions/{sid_a}/stop")[0] == 200
    assert await register_code(creds["sip_server"], creds["username"], creds["password"]) != 200
    ua = Softphone(creds["sip_server"], creds["username"], creds["password"], "--call", voter.digits, "--seconds", "5")
    try:
        events = await ua.finish(30)
    finally:
        ua.kill()
    assert not any(e["event"] == "call" and e["state"] == "CONFIRMED" for e in events), events
    # And an ended session gets no new account.
    assert controller.call("POST", f"/api/sessions/{sid_a}/sip", {"kind": "softphone"})[0] == 409
    assert controller.call("POST", f"/api/sessions/{sid_b}/sip", {"kind": "fax"})[0] == 400
    assert controller.call("POST", "/api/sessions/99999/sip", {"kind": "webrtc"})[0] == 404


async def test_failed_logins_ban_the_address_for_a_while(pbx: Pbx, tmp_path: Path) -> None:
    # Tight limits for the test: 3 failed attempts within 60 s ban the address for 8 s. Everything here comes from
    # 127.0.0.1, so the ban must be over before the test ends (it also shows it lifts).
    ctl = ControllerProcess(pbx, tmp_path / "controller.log", extra_env={"PHONEBANK_SIP_GUARD": "3/60/8"})
    ctl.start()
    try:
        store = Store(pbx.settings.db_path)
        cid = store.create_campaign("Guard", status="paused")["id"]
        sid = ctl.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Gus"})[1]["id"]
        creds = account(ctl, sid)
        server = creds["sip_server"]
        assert await register_code(server, creds["username"], creds["password"]) == 200
        for i in range(3):
            assert await register_code(server, f"pbsip{i:032x}", "guess") in (401, 403)
        guard_conf = pbx.host_path(f"{pbx.rt.inst}/etc/pjsip_guard.conf")
        await until(
            lambda: guard_conf.exists() and "deny = 127.0.0.1/32" in guard_conf.read_text(), 10, "the ban to be written"
        )
        # Banned: even the right credentials are refused (403) while it lasts.
        assert await register_code(server, creds["username"], creds["password"]) == 403
        await until(lambda: "deny" not in guard_conf.read_text(), 20, "the ban to run out")
        # The per-session account lived through res_pjsip's reloads (it is in memory, not in the file).
        assert await register_code(server, creds["username"], creds["password"]) == 200
        log = (tmp_path / "controller.log").read_text()
        assert "sip.address_banned" in log and creds["password"] not in log and creds["username"] not in log
    finally:
        ctl.stop()


async def test_register_and_we_call_you(pbx: Pbx, controller: ControllerProcess, tmp_path: Path) -> None:
    store = Store(pbx.settings.db_path)
    cid = store.create_campaign("Call me", status="paused")["id"]
    sid = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Rae"})[1]["id"]
    # Before any account (or registration) there is nothing to ring.
    assert controller.call("POST", f"/api/sessions/{sid}/sip/call")[0] == 409
    creds = account(controller, sid)
    ua = Softphone(
        creds["sip_server"], creds["username"], creds["password"], "--register", "--answer", "--seconds", "25"
    )
    try:
        await until(lambda: ua.first("registered", code=200), 20, "the softphone to register")
        status, body = controller.call("POST", f"/api/sessions/{sid}/sip/call")
        assert status == 202, body
        await until(lambda: ua.first("call", state="CONFIRMED"), 20, "the softphone to answer the PBX's call")
        joined = await until(
            lambda: (v := controller.call("GET", f"/api/sessions/{sid}")[1])["phone_connected"] and v,
            15,
            "the answered call to join the session",
        )
        assert joined["state"] in ("idle", "paused")
        s = store.session(sid)
        assert s is not None and s["bridge_id"] and s["channel_id"]
        # Already connected: no second call.
        assert controller.call("POST", f"/api/sessions/{sid}/sip/call")[0] == 409
        assert controller.call("POST", f"/api/sessions/{sid}/stop")[0] == 200
        await until(lambda: ua.first("ended"), 15, "Stop to hang the softphone up")
    finally:
        ua.kill()


async def test_silent_softphone_is_cut_after_20_s_and_the_session_pauses(
    pbx: Pbx, controller: ControllerProcess
) -> None:
    """No audio from the device (here: its process frozen with SIGSTOP, as a laptop lid closing would) for 20 s:
    Asterisk hangs the leg up (rtp_timeout) and the session pauses as when a phone hangs up, reason no_audio."""
    store = Store(pbx.settings.db_path)
    cid = store.create_campaign("Silence", status="paused")["id"]
    sid = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Sid"})[1]["id"]
    creds = account(controller, sid)
    ua = Softphone(creds["sip_server"], creds["username"], creds["password"], "--call", "join", "--seconds", "90")
    try:
        await until(
            lambda: controller.call("GET", f"/api/sessions/{sid}")[1]["phone_connected"], 20, "the softphone to join"
        )
        ua.proc.send_signal(signal.SIGSTOP)
        view = await until(
            lambda: (v := controller.call("GET", f"/api/sessions/{sid}")[1])["state"] == "disconnected" and v,
            40,
            "Asterisk to cut the silent leg",
        )
        assert view["state_reason"] == "no_audio" and not view["phone_connected"]
        assert store.session(sid)["status"] == "open", "paused, not ended: a fresh login joins again"  # type: ignore[index]
    finally:
        ua.proc.send_signal(signal.SIGCONT)
        ua.kill()


async def test_accounts_outlive_a_controller_restart(pbx: Pbx, controller: ControllerProcess) -> None:
    """Killed and restarted, the controller learns the accounts back from Asterisk: the joined softphone stays in
    its session, and Stop still revokes the account."""
    store = Store(pbx.settings.db_path)
    cid = store.create_campaign("Restart SIP", status="paused")["id"]
    sid = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Rex"})[1]["id"]
    creds = account(controller, sid)
    ua = Softphone(creds["sip_server"], creds["username"], creds["password"], "--call", "join", "--seconds", "60")
    try:
        await until(
            lambda: controller.call("GET", f"/api/sessions/{sid}")[1]["phone_connected"], 20, "the softphone to join"
        )
        controller.kill()
        controller.start()
        view = controller.call("GET", f"/api/sessions/{sid}")[1]
        assert view["phone_connected"], "the softphone's leg was taken back"
        assert controller.call("POST", f"/api/sessions/{sid}/stop")[0] == 200
        await until(lambda: ua.first("ended"), 15, "Stop to hang the softphone up")
    finally:
        ua.kill()
    assert await register_code(creds["sip_server"], creds["username"], creds["password"]) != 200
    assert "sip.accounts_restored" in controller.log_path.read_text()


async def test_a_new_device_takes_the_old_ones_place_in_the_bridge(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient
) -> None:
    """A fresh login while the old device is still on the line (the browser reconnecting, or switching from the
    phone): the new leg joins the same bridge and the old one is hung up; the session never pauses."""
    store = Store(pbx.settings.db_path)
    cid = store.create_campaign("Swap", status="paused")["id"]
    sid = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Val"})[1]["id"]
    first = account(controller, sid)
    old = Softphone(first["sip_server"], first["username"], first["password"], "--call", "join", "--seconds", "60")
    try:
        await until(
            lambda: controller.call("GET", f"/api/sessions/{sid}")[1]["phone_connected"], 20, "the first device to join"
        )
        bridge = store.session(sid)["bridge_id"]  # type: ignore[index]
        second = account(controller, sid)
        new = Softphone(
            second["sip_server"], second["username"], second["password"], "--call", "join", "--seconds", "20"
        )
        try:
            await until(lambda: old.first("ended"), 20, "the old device to be hung up")
            await until(
                lambda: (s := store.session(sid)) and s["channel_id"] and s["bridge_id"] == bridge,
                10,
                "the session to keep its bridge",
            )
            info = await ari.get(f"bridges/{bridge}")
            names = [(await ari.get(f"channels/{ch}"))["name"] for ch in info["channels"]]
            assert [n.rsplit("-", 1)[0] for n in names] == [f"PJSIP/{second['username']}"], names
            view = controller.call("GET", f"/api/sessions/{sid}")[1]
            assert view["phone_connected"] and view["state"] != "disconnected"
        finally:
            new.kill()
    finally:
        old.kill()
