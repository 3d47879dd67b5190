"""The dashboard's coach action (panel/results.py): who may, what a captain gets back, what the page shows."""

from __future__ import annotations

import time

import pytest

from bridge import coaching as co
from bridge.volunteer import VState
from callin.entry import CODE_LENGTH
from store import users as u
from tests.fakes import API_TOKEN, PanelKit
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


ACTIONS = ["role_changed", "role_lost_permission", "banned", "logged_out", "disabled", "expired", "deleted"]


@pytest.mark.parametrize("action", ACTIONS)
async def test_taking_a_captains_right_away_ends_their_coaching(panel: PanelKit, action: str) -> None:
    """A joined coaching lasts as long as the caller's leg: whatever takes the captain's right to coach away ends
    it at once, their SIP account deleted; the admin actions through the panel, a user disabled or deleted
    elsewhere (ops, the store) at the controller's next check (the timers', here called directly)."""
    s = seed(panel)
    go_live(panel, s)
    cid, url = s["cid"], f"/api/efforts/{s['cid']}/coach"
    u.save_role(panel.store, "captain", ["view_results", "coach_callers"])
    role = "captain" if action == "role_lost_permission" else "manager"
    user, password = panel.make_user(role, email="cora@example.org")
    captain, csrf = await panel.login(user["username"], password)
    admin, admin_csrf = await panel.client("admin")
    resp = await captain.post(
        url, json={"session_id": s["alice"], "mode": "listen", "audio": "softphone"}, headers={"X-CSRF-Token": csrf}
    )
    assert resp.status == 201
    account = (await resp.json())["sip"]["username"]
    # The captain's own leg joined: a coaching that would otherwise last the whole call.
    chan = {"id": "cap-1", "name": f"PJSIP/{account}-00000001"}
    await panel.ctl.on_event({"type": "StasisStart", "args": ["coachleg", account], "channel": chan})
    assert panel.ctl.dialer.volunteers[s["alice"]].coached == "listen"
    await panel.ctl.recheck_coaches()  # a captain in good standing keeps coaching
    assert len(panel.ctl.coaches) == 1

    if action == "role_changed":
        form = {"op": "set_role", "user_id": str(user["id"]), "role": "admin", "_csrf": admin_csrf}
        assert (await admin.post("/admin/users", data=form, allow_redirects=False)).status == 302
    elif action == "role_lost_permission":
        form = {"op": "save_role", "role_name": "captain", "perm": "view_results", "_csrf": admin_csrf}
        assert (await admin.post("/admin/users", data=form, allow_redirects=False)).status == 302
    elif action == "banned":
        form = {"kind": "email", "value": "CORA@example.org", "_csrf": admin_csrf}
        assert (await admin.post(f"/admin/efforts/{cid}/bans", data=form)).status == 200
    elif action == "logged_out":
        assert (await captain.post("/logout", data={"_csrf": csrf}, allow_redirects=False)).status == 302
    else:
        if action == "disabled":
            panel.store.conn.execute("UPDATE users SET disabled = 1 WHERE id = ?", (user["id"],))
        elif action == "expired":  # a temporary (shift) account past its end
            panel.store.conn.execute("UPDATE users SET expires_at = ? WHERE id = ?", (time.time() - 1, user["id"]))
        else:
            panel.store.conn.execute("DELETE FROM auth_sessions WHERE user_id = ?", (user["id"],))
            panel.store.conn.execute("DELETE FROM users WHERE id = ?", (user["id"],))
        await panel.ctl.recheck_coaches()

    assert panel.ctl.coaches == {} and panel.ctl.dialer.volunteers[s["alice"]].coached == ""
    ari = panel.ctl.ari
    deletes = [p for m, p, _ in ari.calls if m == "DELETE"]  # type: ignore[attr-defined]
    assert {p.split("/")[-2] for p in deletes if p.endswith(account)} == {"endpoint", "aor", "auth"}
    assert "channels/cap-1" in deletes, "the captain's leg is hung up"
    assert panel.ctl.dialer.volunteers[s["alice"]].state is VState.TALKING, "the call goes on"
    if action == "banned":
        # Still logged in (an account keeps its other efforts), but no new coaching of this effort's callers.
        resp = await captain.post(
            url, json={"session_id": s["alice"], "mode": "listen"}, headers={"X-CSRF-Token": csrf}
        )
        assert resp.status == 403 and "no longer coach" in (await resp.json())["error"] and panel.ctl.coaches == {}


async def test_the_api_token_is_one_principal_that_cannot_stop_a_captains_coaching(panel: PanelKit) -> None:
    s = seed(panel)
    go_live(panel, s)
    url = f"/api/efforts/{s['cid']}/coach"
    user, password = panel.make_user("manager")
    captain, csrf = await panel.login(user["username"], password)
    resp = await captain.post(url, json={"session_id": s["alice"], "mode": "listen"}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 201
    script = await panel.anonymous()
    token = {"Authorization": f"Bearer {API_TOKEN}"}
    for body in ({"mode": "stop"}, {"mode": "barge"}):
        resp = await script.post(url, json=body, headers=token)
        assert resp.status == 404 and "not coaching" in (await resp.json())["error"]
    resp = await script.post(url, json={"session_id": s["alice"], "mode": "barge"}, headers=token)
    assert resp.status == 409 and "another captain" in (await resp.json())["error"]
    assert panel.ctl.dialer.volunteers[s["alice"]].coached == "listen"
    # The token coaches as co.TOKEN_USER, which no check dismisses (it is no stored user), and the captain's
    # Stop ends only the captain's coaching.
    resp = await script.post(url, json={"session_id": s["bob"], "mode": "whisper"}, headers=token)
    assert resp.status == 201
    await panel.ctl.recheck_coaches()
    assert {c.user_id for c in panel.ctl.coaches.values()} == {co.TOKEN_USER, user["id"]}
    assert (await captain.post(url, json={"mode": "stop"}, headers={"X-CSRF-Token": csrf})).status == 200
    assert [c.user_id for c in panel.ctl.coaches.values()] == [co.TOKEN_USER]
    assert panel.ctl.dialer.volunteers[s["bob"]].coached == "whisper"
