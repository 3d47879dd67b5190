"""The softphone choice on the caller's audio step (fake ARI): a SIP login for this shift only, shown once with a
QR code and the number to dial; asking again replaces it; nobody else's session; the JSON route's refusals."""

from __future__ import annotations

import re

from tests.fakes import API_TOKEN, PanelKit
from tests.test_panel_caller import _caller_for, _effort


async def test_softphone_login_for_this_shift_only(panel: PanelKit) -> None:
    cid = _effort(panel)
    client, csrf, _ = await _caller_for(panel, cid)
    chose = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "sip"}, allow_redirects=False)
    assert chose.status == 302
    match = re.fullmatch(rf"/call/{cid}/s/(\d+)/softphone", chose.headers["Location"])
    assert match, chose.headers["Location"]
    sid = int(match.group(1))
    page = await client.get(chose.headers["Location"])
    html = await page.text()
    assert page.status == 200 and 'id="softphone-get"' in html and 'id="sip-password"' not in html
    before = len(panel.ctl.ari.calls)  # type: ignore[attr-defined]
    # A GET made nothing; the POST (with CSRF) does.
    assert (await client.post(chose.headers["Location"], data={})).status == 403
    shown = await client.post(chose.headers["Location"], data={"_csrf": csrf})
    html = await shown.text()
    assert shown.status == 200 and shown.headers["Cache-Control"] == "no-store"
    user = re.search(r'id="sip-user">([^<]+)<', html).group(1)  # type: ignore[union-attr]
    password = re.search(r'id="sip-password">([^<]+)<', html).group(1)  # type: ignore[union-attr]
    assert user.startswith("pbsip") and len(user) == 37 and len(password) >= 32
    assert "<svg" in html and 'id="sip-dial">join<' in html and 'id="softphone-continue"' in html
    puts = [c for c in panel.ctl.ari.calls[before:] if c[0] == "PUT"]  # type: ignore[attr-defined]
    assert [p[1].rsplit("/", 2)[-2] for p in puts] == ["auth", "aor", "endpoint"]
    assert panel.ctl.sip_accounts[user].session_id == sid
    # Asking again: a new login, the old one deleted.
    again = await (await client.post(chose.headers["Location"], data={"_csrf": csrf})).text()
    assert user not in again and user not in panel.ctl.sip_accounts
    deletes = [c[1] for c in panel.ctl.ari.calls if c[0] == "DELETE"]  # type: ignore[attr-defined]
    assert f"asterisk/config/dynamic/res_pjsip/endpoint/{user}" in deletes

    # Another caller cannot reach this session's softphone page or route.
    other, other_csrf, _ = await _caller_for(panel, cid)
    assert (await other.get(chose.headers["Location"])).status == 404
    assert (await other.post(chose.headers["Location"], data={"_csrf": other_csrf})).status == 404
    assert (
        await other.post(f"/api/sessions/{sid}/sip", json={"kind": "softphone"}, headers={"X-CSRF-Token": other_csrf})
    ).status == 404


async def test_sip_route_answers_and_refuses(panel: PanelKit) -> None:
    cid = _effort(panel)
    client = await panel.anonymous()
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    sid = (await (await client.post("/api/sessions", json={"campaign_id": cid, "name": "Ada"}, headers=auth)).json())[
        "id"
    ]
    panel.ctl.sip_public = {
        "ws_url": "wss://pbx.example.org:8089/ws",
        "sip_server": "pbx.example.org:5060",
        "domain": "pbx.example.org",
        "ice_servers": [{"urls": ["stun:stun.example.org"]}],
    }
    resp = await client.post(f"/api/sessions/{sid}/sip", json={"kind": "webrtc"}, headers=auth)
    body = await resp.json()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert body["ws_url"] == "wss://pbx.example.org:8089/ws" and body["transport"] == "wss"
    assert body["ice_servers"] == [{"urls": ["stun:stun.example.org"]}] and body["dial"] == "join"
    assert body["expires_at"] > 0 and body["sip_server"] == ""
    assert (await client.post(f"/api/sessions/{sid}/sip", json={"kind": "fax"}, headers=auth)).status == 400
    assert (await client.post(f"/api/sessions/{sid}/sip", data=b"nope", headers=auth)).status == 400
    assert (await client.post("/api/sessions/99999/sip", json={"kind": "webrtc"}, headers=auth)).status == 404
    assert (await client.post(f"/api/sessions/{sid}/stop", headers=auth)).status == 200
    assert not panel.ctl.sip_accounts, "stopping revoked the account"
    assert (await client.post(f"/api/sessions/{sid}/sip", json={"kind": "webrtc"}, headers=auth)).status == 409


async def test_call_my_softphone_button(panel: PanelKit) -> None:
    cid = _effort(panel)
    client, csrf, _ = await _caller_for(panel, cid)
    chose = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "sip"}, allow_redirects=False)
    page = chose.headers["Location"]
    # No login yet: a clear refusal on the page, nothing rung.
    refused = await client.post(f"{page}/call", data={"_csrf": csrf})
    assert refused.status == 409 and "softphone login" in await refused.text()
    await client.post(page, data={"_csrf": csrf})
    rung = await client.post(f"{page}/call", data={"_csrf": csrf})
    assert rung.status == 200 and 'id="softphone-notice"' in await rung.text()
    user = next(iter(panel.ctl.sip_accounts))
    originate = [c for c in panel.ctl.ari.calls if c[0] == "POST" and c[1] == "channels"]  # type: ignore[attr-defined]
    assert originate and originate[-1][2]["endpoint"] == f"PJSIP/{user}"
    assert originate[-1][2]["appArgs"] == f"sipleg,{user}"
