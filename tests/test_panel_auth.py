"""Logins, roles and CSRF for the panel and its API (the pages' own checks live beside their tests)."""

from __future__ import annotations

from store import users as u
from tests.fakes import API_TOKEN, PanelKit


async def test_login_logout_and_bad_password(panel: PanelKit) -> None:
    _user, password = panel.make_user("admin", username="ada")
    client = await panel.anonymous()
    forged = await client.post("/login", data={"username": "ada", "password": password}, allow_redirects=False)
    assert forged.status == 403  # login CSRF: a form without the pre-login token is refused
    pre = await panel.pre_csrf(client)
    resp = await client.post("/login", data={"username": "ada", "password": "wrong password", "_csrf": pre},
                             allow_redirects=False)
    assert resp.status == 401
    assert "do not match" in await resp.text()
    assert "pb_login" not in {c.key for c in client.session.cookie_jar}
    resp = await client.post("/login", data={"username": "ADA ", "password": password, "_csrf": pre},
                             allow_redirects=False)
    assert resp.status == 302
    csrf = await panel.csrf(client)
    resp = await client.post("/logout", data={"_csrf": csrf}, allow_redirects=False)
    assert resp.status == 302
    resp = await client.get("/api/campaigns/1/stats")
    assert resp.status == 401


async def test_passwords_are_hashed_and_tokens_not_stored(panel: PanelKit) -> None:
    user, password = panel.make_user("caller", username="cal")
    row = panel.store._one("SELECT password_hash FROM users WHERE id = ?", (user["id"],))
    assert row and row["password_hash"].startswith("$argon2id$") and password not in row["password_hash"]
    token, _ = u.start_login(panel.store, user["id"])
    assert panel.store._one("SELECT 1 FROM auth_sessions WHERE token_hash = ?", (token,)) is None
    assert u.login_for_token(panel.store, token)["id"] == user["id"]


async def test_api_refuses_anonymous_bad_token_and_wrong_role(panel: PanelKit) -> None:
    cid = panel.store.create_campaign("Auth effort")["id"]
    anon = await panel.anonymous()
    assert (await anon.get(f"/api/campaigns/{cid}/stats")).status == 401
    assert (await anon.post("/api/sessions", json={"campaign_id": cid, "name": "x"})).status == 401
    bad = await anon.get(f"/api/campaigns/{cid}/stats", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401
    good = await anon.get(f"/api/campaigns/{cid}/stats", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert good.status == 200 and (await good.json())["attempts"] == 0
    caller, _csrf = await panel.client("caller")
    resp = await caller.get(f"/api/campaigns/{cid}/stats")
    assert resp.status == 403 and "view results" in (await resp.json())["error"].replace("_", " ")


async def test_csrf_required_on_cookie_writes(panel: PanelKit) -> None:
    cid = panel.store.create_campaign("Csrf effort")["id"]
    caller, csrf = await panel.client("caller", name="Cee")
    no_token = await caller.post("/api/sessions", json={"campaign_id": cid})
    assert no_token.status == 403 and "CSRF" in (await no_token.json())["error"]
    wrong = await caller.post("/api/sessions", json={"campaign_id": cid}, headers={"X-CSRF-Token": "forged"})
    assert wrong.status == 403
    assert panel.store.open_sessions() == []  # nothing written by the refused requests
    ok = await caller.post("/api/sessions", json={"campaign_id": cid}, headers={"X-CSRF-Token": csrf})
    assert ok.status == 201, await ok.text()
    # A form post without the token is refused too.
    resp = await caller.post("/logout", data={}, allow_redirects=False)
    assert resp.status == 403


async def test_callers_reach_only_their_own_sessions(panel: PanelKit) -> None:
    cid = panel.store.create_campaign("Own sessions")["id"]
    alice, a_csrf = await panel.client("caller", name="Alice")
    bob, _ = await panel.client("caller", name="Bob")
    created = await alice.post("/api/sessions", json={"campaign_id": cid}, headers={"X-CSRF-Token": a_csrf})
    sid = (await created.json())["id"]
    assert (await alice.get(f"/api/sessions/{sid}")).status == 200
    assert (await bob.get(f"/api/sessions/{sid}")).status == 404
    manager, _ = await panel.client("manager")
    assert (await manager.get(f"/api/sessions/{sid}")).status == 200


async def test_login_redirect_stays_on_site(panel: PanelKit) -> None:
    _user, password = panel.make_user("admin", username="redir")
    for target in ("//evil.example/x", "/\t/evil.example/x", "/\n/evil.example", "https://evil.example/",
                   "/\\evil.example", " //evil.example"):
        client = await panel.anonymous()
        resp = await client.post("/login", data={"username": "redir", "password": password, "next": target,
                                                 "_csrf": await panel.pre_csrf(client)}, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/", target
        resp = await client.get("/login", params={"next": target}, allow_redirects=False)
        assert resp.headers["Location"] == "/", target
    client = await panel.anonymous()
    resp = await client.post("/login", data={"username": "redir", "password": password, "next": "/admin/users?x=1",
                                             "_csrf": await panel.pre_csrf(client)}, allow_redirects=False)
    assert resp.headers["Location"] == "/admin/users?x=1"


async def test_security_headers(panel: PanelKit) -> None:
    client = await panel.anonymous()
    resp = await client.get("/login")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
