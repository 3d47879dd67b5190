"""The dashboard's coach action (panel/results.py): who may, what a captain gets back, what the page shows."""

from __future__ import annotations

from bridge.volunteer import VState
from callin.entry import CODE_LENGTH
from tests.fakes import PanelKit
from tests.test_panel_results import go_live, seed


async def test_coach_a_caller_from_the_dashboard(panel: PanelKit) -> None:
    s = seed(panel)
    go_live(panel, s)
    cid, alice, bob = s["cid"], s["alice"], s["bob"]
    url = f"/api/efforts/{cid}/coach"
    captain, csrf = await panel.client("manager")
    headers = {"X-CSRF-Token": csrf}
    html = await (await captain.get(f"/admin/efforts/{cid}/results")).text()
    assert 'id="coach"' in html and f'<option value="{alice}">Alice</option>' in html

    resp = await captain.post(url, json={"session_id": alice, "mode": "listen"}, headers=headers)
    assert resp.status == 201
    got = await resp.json()
    assert set(got) == {"coach_id", "code", "mode", "session_id", "leg", "callin_number"}
    assert len(got["code"]) == CODE_LENGTH and got["mode"] == "listen" and got["session_id"] == alice
    text = await resp.text()
    assert not [n for n in range(101, 107) if f"5550{n}" in text]  # no voter's number (the seed's)
    assert (await (await captain.get(url)).json())["coached"] == {str(alice): "listen", str(bob): ""}
    html = await (await captain.get(f"/admin/efforts/{cid}/results")).text()
    assert "coached: listen" in html
    # Coaching changes nothing for the call.
    v = panel.ctl.dialer.volunteers[alice]
    assert v.state is VState.TALKING and v.call_id == "c7" and v.coached == "listen"

    # One captain per caller.
    other, other_csrf = await panel.client("manager")
    resp = await other.post(url, json={"session_id": alice, "mode": "barge"}, headers={"X-CSRF-Token": other_csrf})
    assert resp.status == 409 and "another captain" in (await resp.json())["error"]
    resp = await other.post(url, json={"mode": "stop"}, headers={"X-CSRF-Token": other_csrf})
    assert resp.status == 404

    # Bad input: a clear 400 or 404, nothing changed.
    for body, status in (
        ({"session_id": alice, "mode": "shout"}, 400),
        ({"session_id": "abc", "mode": "listen"}, 400),
        ({"mode": 5}, 400),
        ({"session_id": alice + 100, "mode": "listen"}, 404),
    ):
        resp = await captain.post(url, json=body, headers=headers)
        assert resp.status == status, body
    resp = await captain.post(url, data="[1]", headers={**headers, "Content-Type": "application/json"})
    assert resp.status == 400
    assert panel.ctl.dialer.volunteers[alice].coached == "listen"

    assert (await captain.post(url, json={"mode": "whisper"}, headers=headers)).status == 200
    assert panel.ctl.dialer.volunteers[alice].coached == "whisper"
    assert (await captain.post(url, json={"mode": "stop"}, headers=headers)).status == 200
    assert panel.ctl.coaches == {} and panel.ctl.dialer.volunteers[alice].coached == ""
    assert panel.ctl.dialer.volunteers[alice].state is VState.TALKING


async def test_only_captains_coach(panel: PanelKit) -> None:
    s = seed(panel)
    go_live(panel, s)
    url = f"/api/efforts/{s['cid']}/coach"
    caller, csrf = await panel.client("caller")
    resp = await caller.post(url, json={"session_id": s["alice"], "mode": "listen"}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 403 and panel.ctl.coaches == {}
    assert (await caller.get(url)).status == 403
    anon = await panel.anonymous()
    assert (await anon.post(url, json={"session_id": s["alice"], "mode": "listen"})).status in (401, 403)


async def test_captain_coaches_with_a_softphone_or_this_browser(panel: PanelKit) -> None:
    s = seed(panel)
    go_live(panel, s)
    url = f"/api/efforts/{s['cid']}/coach"
    captain, csrf = await panel.client("manager")
    headers = {"X-CSRF-Token": csrf}
    html = await (await captain.get(f"/admin/efforts/{s['cid']}/results")).text()
    for audio in ("phone", "webrtc", "softphone"):
        assert f'name="audio" value="{audio}"' in html
    resp = await captain.post(url, json={"session_id": s["alice"], "mode": "listen", "audio": "fax"}, headers=headers)
    assert resp.status == 400 and "audio" in (await resp.json())["error"] and panel.ctl.coaches == {}

    resp = await captain.post(
        url, json={"session_id": s["alice"], "mode": "listen", "audio": "softphone"}, headers=headers
    )
    assert resp.status == 201 and resp.headers["Cache-Control"] == "no-store"
    got = await resp.json()
    assert set(got) == {"coach_id", "mode", "session_id", "leg", "sip"} and got["leg"] == "softphone"
    sip = got["sip"]
    assert sip["kind"] == "softphone" and sip["transport"] == "udp" and sip["dial"]
    assert len(sip["username"]) >= 32 and len(sip["password"]) >= 32  # 128 and 192 random bits
    assert not [n for n in range(101, 107) if f"5550{n}" in await resp.text()]  # no voter's number
    assert panel.ctl.dialer.volunteers[s["alice"]].coached == "listen"
    # A mode switch keeps the account (no re-joining); Stop deletes it.
    assert (await captain.post(url, json={"mode": "barge"}, headers=headers)).status == 200
    ari = panel.ctl.ari
    deleted = [p for m, p, _ in ari.calls if m == "DELETE" and p.endswith(sip["username"])]  # type: ignore[attr-defined]
    assert deleted == []
    assert (await captain.post(url, json={"mode": "stop"}, headers=headers)).status == 200
    deleted = [p for m, p, _ in ari.calls if m == "DELETE" and p.endswith(sip["username"])]  # type: ignore[attr-defined]
    assert {p.split("/")[-2] for p in deleted} == {"endpoint", "aor", "auth"}
    assert panel.ctl.dialer.volunteers[s["alice"]].coached == ""
