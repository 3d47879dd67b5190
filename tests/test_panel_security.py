"""Hardening found in review: WebSocket origin and logout, profile permission on the server, personal-phone
claims after an effort closes, login throttling, body limits, headers on redirects."""

from __future__ import annotations

import asyncio

import aiohttp

from phonebank.harness import day_number
from store import users as u
from tests.fakes import PanelKit


def _personal_effort(panel: PanelKit, status: str = "active") -> int:
    cid = int(
        panel.store.create_campaign(
            "Personal", dial_mode="personal", status=status, calling_hours_start="00:00", calling_hours_end="23:59"
        )["id"]
    )
    panel.store.add_contacts(
        cid,
        [
            {"first_name": "Pat", "phone": day_number(3000 + i), "extra": {"party": "DEM", "age": "71"}}
            for i in range(3)
        ],
    )
    return cid


async def _session(panel: PanelKit, cid: int, role: str = "caller") -> tuple[object, str, int]:
    client, csrf = await panel.client(role, name="Robin")
    resp = await client.post("/api/sessions", json={"campaign_id": cid}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 201, await resp.text()
    return client, csrf, (await resp.json())["id"]


async def test_websocket_refuses_other_origins(panel: PanelKit) -> None:
    cid = panel.store.create_campaign("Ws origin")["id"]
    client, _, sid = await _session(panel, cid)
    for path in (f"/ws/session/{sid}", f"/ws/campaign/{cid}"):
        try:
            await client.ws_connect(path, headers={"Origin": "https://evil.example"})  # type: ignore[attr-defined]
            raise AssertionError(f"{path}: cross-origin socket accepted")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status in (403, 401)
    same = f"http://{client.host}:{client.port}"  # type: ignore[attr-defined]
    ws = await client.ws_connect(f"/ws/session/{sid}", headers={"Origin": same})  # type: ignore[attr-defined]
    assert (await ws.receive_json(timeout=3))["type"] == "session"
    await ws.close()


async def test_websocket_closes_when_the_login_ends(panel: PanelKit) -> None:
    cid = panel.store.create_campaign("Ws logout")["id"]
    client, _csrf, sid = await _session(panel, cid)
    ws = await client.ws_connect(f"/ws/session/{sid}")  # type: ignore[attr-defined]
    await ws.receive_json(timeout=3)
    panel.store.conn.execute("DELETE FROM auth_sessions")  # logged out everywhere (or expired)
    panel.ctl._notify(sid, cid)
    msg = await ws.receive(timeout=3)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert ws.close_code == 4401


async def test_about_pane_needs_view_profiles_on_the_server(panel: PanelKit) -> None:
    u.save_role(panel.store, "dialer_only", ["make_calls"])
    cid = _personal_effort(panel)
    client, csrf, sid = await _session(panel, cid, role="dialer_only")
    resp = await client.post(f"/api/personal/{sid}/next", headers={"X-CSRF-Token": csrf})  # type: ignore[attr-defined]
    view = await resp.json()
    assert resp.status == 200 and view["contact"]["first_name"] == "Pat"
    assert view["contact"]["extra"] == {} and "DEM" not in repr(view)


async def test_personal_phone_hands_out_no_numbers_once_closed_or_paused(panel: PanelKit) -> None:
    cid = _personal_effort(panel)
    client, csrf, sid = await _session(panel, cid)
    first = await client.post(f"/api/personal/{sid}/next", headers={"X-CSRF-Token": csrf})  # type: ignore[attr-defined]
    held = (await first.json())["contact"]["phone"]
    panel.store.update_campaign(cid, status="paused")
    # What the caller holds can still be saved; nothing new is handed out.
    saved = await client.post(
        f"/api/personal/{sid}/disposition",  # type: ignore[attr-defined]
        json={"code": "not_home"},
        headers={"X-CSRF-Token": csrf},
    )
    assert saved.status == 409 and "paused" in (await saved.json())["error"]
    for status in ("paused", "closed"):
        panel.store.update_campaign(cid, status=status)
        nxt = await client.post(f"/api/personal/{sid}/next", headers={"X-CSRF-Token": csrf})  # type: ignore[attr-defined]
        text = await nxt.text()
        assert nxt.status == 409 and held not in text and held[2:] not in text
    assert len(panel.store.dispositions(cid)) == 1


async def test_failed_logins_are_throttled(panel: PanelKit) -> None:
    _, password = panel.make_user("admin", username="target")
    client = await panel.anonymous()
    pre = await panel.pre_csrf(client)
    statuses = []
    for _ in range(8):
        resp = await client.post(
            "/login", data={"username": "target", "password": "guess", "_csrf": pre}, allow_redirects=False
        )
        statuses.append(resp.status)
    # Five free tries from one address for one login, then a delay that doubles with each further failure.
    assert statuses[:6] == [401] * 6 and statuses[6:] == [429, 429], statuses
    assert int(resp.headers["Retry-After"]) >= 1 and "wait" in await resp.text()
    # Even the right password waits out the delay from here: guessing must not be distinguishable.
    resp = await client.post(
        "/login", data={"username": "target", "password": password, "_csrf": pre}, allow_redirects=False
    )
    assert resp.status == 429


async def test_login_does_not_stall_the_event_loop(panel: PanelKit) -> None:
    _, password = panel.make_user("admin", username="loopy")
    clients = [await panel.anonymous() for _ in range(4)]
    pres = [await panel.pre_csrf(c) for c in clients]
    worst = 0.0

    async def ticker() -> None:
        nonlocal worst
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.01)
            worst = max(worst, loop.time() - t - 0.01)

    tick = asyncio.create_task(ticker())
    await asyncio.gather(
        *(
            c.post("/login", data={"username": "loopy", "password": password, "_csrf": p}, allow_redirects=False)
            for c, p in zip(clients, pres, strict=True)
        )
    )
    tick.cancel()
    # Four Argon2 checks (~0.1 s of CPU each) ran in threads: the loop kept ticking.
    assert worst < 0.25, worst


async def test_big_bodies_refused_outside_upload_routes(panel: PanelKit) -> None:
    client = await panel.anonymous()
    resp = await client.post("/login", data={"username": "x" * (2 * 1024 * 1024)})
    assert resp.status == 413


async def test_redirects_carry_security_headers(panel: PanelKit) -> None:
    client = await panel.anonymous()
    resp = await client.get("/admin/efforts", allow_redirects=False)
    assert resp.status == 302 and resp.headers["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in resp.headers


async def test_a_logged_in_caller_cannot_sign_sessions_in_another_name(panel: PanelKit) -> None:
    cid = panel.store.create_campaign("Names")["id"]
    client, csrf = await panel.client("caller", name="Real Name")
    resp = await client.post(
        "/api/sessions", json={"campaign_id": cid, "name": "Someone Else"}, headers={"X-CSRF-Token": csrf}
    )
    session = panel.store.session((await resp.json())["id"])
    assert session is not None and session["volunteer_name"] == "Real Name"
