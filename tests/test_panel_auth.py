"""Logins, roles and CSRF for the panel and its API (the pages' own checks live beside their tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.ari_app import Controller
from panel import throttle
from panel.app import make_app
from panel.proxy import client_ip, parse_proxies
from panel.proxy import middlewares as proxy_middlewares
from panel.throttle import LoginThrottle
from phonebank.offline import FakeAri
from store import users as u
from store.db import Store
from tests.fakes import API_TOKEN, PanelKit


async def test_login_logout_and_bad_password(panel: PanelKit) -> None:
    _user, password = panel.make_user("admin", username="ada")
    client = await panel.anonymous()
    forged = await client.post("/login", data={"username": "ada", "password": password}, allow_redirects=False)
    assert forged.status == 403  # login CSRF: a form without the pre-login token is refused
    pre = await panel.pre_csrf(client)
    resp = await client.post(
        "/login", data={"username": "ada", "password": "wrong password", "_csrf": pre}, allow_redirects=False
    )
    assert resp.status == 401
    assert "do not match" in await resp.text()
    assert "pb_login" not in {c.key for c in client.session.cookie_jar}
    resp = await client.post(
        "/login", data={"username": "ADA ", "password": password, "_csrf": pre}, allow_redirects=False
    )
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
    for target in (
        "//evil.example/x",
        "/\t/evil.example/x",
        "/\n/evil.example",
        "https://evil.example/",
        "/\\evil.example",
        " //evil.example",
    ):
        client = await panel.anonymous()
        resp = await client.post(
            "/login",
            data={"username": "redir", "password": password, "next": target, "_csrf": await panel.pre_csrf(client)},
            allow_redirects=False,
        )
        assert resp.status == 302 and resp.headers["Location"] == "/", target
        resp = await client.get("/login", params={"next": target}, allow_redirects=False)
        assert resp.headers["Location"] == "/", target
    client = await panel.anonymous()
    resp = await client.post(
        "/login",
        data={
            "username": "redir",
            "password": password,
            "next": "/admin/users?x=1",
            "_csrf": await panel.pre_csrf(client),
        },
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/admin/users?x=1"


async def test_security_headers(panel: PanelKit) -> None:
    client = await panel.anonymous()
    resp = await client.get("/login")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


# ---------------------------------------------------------------------------------------------- login throttle
async def _proxied_panel(tmp_path: Path) -> PanelKit:
    """The panel behind a reverse proxy on 127.0.0.1 (PHONEBANK_TRUSTED_PROXIES): browsers' addresses come from
    X-Forwarded-For, so one test can play an attacker and the owner at different addresses."""
    store = Store(tmp_path / "proxied.db")
    ctl = Controller(ari=FakeAri(), store=store)  # type: ignore[arg-type]
    server = TestServer(make_app(ctl, "+12025550100", API_TOKEN, trusted_proxies="127.0.0.1, 10.0.0.0/8"))
    await server.start_server()
    return PanelKit(store, ctl, server)


async def _try(client: Any, pre: str, password: str, address: str, login: str = "admin") -> Any:
    return await client.post(
        "/login",
        data={"username": login, "password": password, "_csrf": pre},
        headers={"X-Forwarded-For": address},
        allow_redirects=False,
    )


async def test_wrong_passwords_elsewhere_do_not_lock_the_owner_out(tmp_path: Path) -> None:
    """Issue 13 item 6: eight wrong passwords a minute for `admin` used to refuse the real password too."""
    kit = await _proxied_panel(tmp_path)
    try:
        _, password = kit.make_user("admin", username="admin")
        owner = await kit.anonymous()
        owner_pre = await kit.pre_csrf(owner)
        home = "198.51.100.7"
        assert (await _try(owner, owner_pre, password, home)).status == 302  # the owner's usual address
        attacker = await kit.anonymous()
        pre = await kit.pre_csrf(attacker)
        statuses = [(await _try(attacker, pre, f"guess {i}", "203.0.113.9")).status for i in range(10)]
        assert statuses[:6] == [401] * 6 and set(statuses[6:]) == {429}, statuses
        refused = await _try(attacker, pre, password, "203.0.113.9")
        assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1  # the guesser still waits
        # The owner, from their usual address and from a new one (a phone on another network), gets in.
        again = await kit.anonymous()
        assert (await _try(again, await kit.pre_csrf(again), password, home)).status == 302
        elsewhere = await kit.anonymous()
        assert (await _try(elsewhere, await kit.pre_csrf(elsewhere), password, "192.0.2.50")).status == 302
        # The proxy's own hops are skipped, and the entry our proxy added (the rightmost) is the one believed.
        spoof = await kit.anonymous()
        resp = await _try(spoof, await kit.pre_csrf(spoof), "guess", "198.51.100.7, 203.0.113.9, 10.1.2.3")
        assert resp.status == 429  # counted against 203.0.113.9, which is waiting, not against the owner's address
    finally:
        await kit.close()


async def test_forwarded_for_is_ignored_without_a_trusted_proxy(panel: PanelKit) -> None:
    """Anyone can send X-Forwarded-For: a panel with no trusted proxy counts the connecting address."""
    panel.make_user("admin", username="boss")
    client = await panel.anonymous()
    pre = await panel.pre_csrf(client)
    statuses = [(await _try(client, pre, "nope", f"192.0.2.{i}", "boss")).status for i in range(7)]
    assert statuses == [401] * 6 + [429]  # a fresh made-up address per try did not reset the count


def test_pair_delay_doubles_and_is_forgotten() -> None:
    t = LoginThrottle()
    now = 1000.0
    for _ in range(throttle.PAIR_FREE):
        assert t.check("a", "Admin", now).allowed
        t.failed("a", "Admin", now)
    assert t.check("a", "admin", now).allowed  # the sixth try is still checked...
    t.failed("a", "admin", now)
    v = t.check("a", "ADMIN ", now)  # ...and its failure starts the delay (the login's case does not matter)
    assert not v.allowed and v.rule == "pair" and v.retry_s == throttle.PAIR_BASE_S
    assert t.check("b", "admin", now).allowed and t.check("a", "other", now).allowed  # only that pair waits
    now += throttle.PAIR_BASE_S
    t.failed("a", "admin", now)
    assert t.check("a", "admin", now).retry_s == 2 * throttle.PAIR_BASE_S
    for _ in range(20):  # capped
        now += t.check("a", "admin", now).retry_s
        t.failed("a", "admin", now)
    assert t.check("a", "admin", now).retry_s == throttle.PAIR_MAX_S
    now += throttle.PAIR_FORGET_S
    assert t.check("a", "admin", now).allowed
    t.failed("a", "admin", now)
    assert t.check("a", "admin", now).allowed  # forgotten: one failure again, still free
    t.succeeded("a", "admin", now)  # and a success starts afresh
    for _ in range(throttle.PAIR_FREE):
        t.failed("a", "admin", now)
    assert t.check("a", "admin", now).allowed


def test_one_address_spraying_many_logins_is_stopped() -> None:
    t = LoginThrottle()
    now = 50.0
    for i in range(throttle.ADDRESS_PER_MINUTE):
        assert t.check("sprayer", f"user{i}", now + i).allowed
        t.failed("sprayer", f"user{i}", now + i)
    v = t.check("sprayer", "user-new", now + 30)
    assert not v.allowed and v.rule == "address" and v.retry_s == 30  # the first failure leaves the minute then
    assert t.check("neighbour", "user-new", now + 30).allowed
    assert t.check("sprayer", "user-new", now + 61).allowed
    later = now + 61
    for i in range(throttle.ADDRESS_PER_HOUR):  # slow spraying: under 30 a minute, but not all day
        t.failed("sprayer", f"slow{i}", later + i * 3)
    v = t.check("sprayer", "user-new", later + throttle.ADDRESS_PER_HOUR * 3)
    assert not v.allowed and v.rule == "address"


def test_a_login_guessed_from_many_addresses_is_slowed_not_shut() -> None:
    t = LoginThrottle()
    now = 10.0
    t.succeeded("home", "admin", now - 86400)  # the owner signed in from home yesterday
    for i in range(throttle.LOGIN_HOT):
        t.failed(f"bot{i}", "admin", now)
    # Tries from addresses the login has not signed in from take turns, LOGIN_SPACING_S apart...
    delays = [t.check(f"new{i}", "admin", now) for i in range(8)]
    assert all(v.allowed for v in delays[:6])
    assert [v.delay_s for v in delays[:6]] == [i * throttle.LOGIN_SPACING_S for i in range(6)]
    assert not delays[6].allowed and delays[6].rule == "login" and delays[6].retry_s <= 12  # ...and are told to retry
    # ...while the owner's usual address goes straight through; the queue drains as time passes.
    assert t.check("home", "admin", now) == throttle.Verdict(True)
    assert t.check("new-later", "admin", now + 60).allowed
    assert t.check("new-later", "admin", now + 60 + throttle.LOGIN_HOT_WINDOW_S) == throttle.Verdict(True)


async def test_client_address_from_trusted_proxies_only() -> None:
    """aiohttp-remotes' XForwardedFiltered behind the peer check of panel/proxy.py, run as the app runs it."""
    from aiohttp.test_utils import make_mocked_request

    async def addr(peer: str, xff: str | None, proxies: str) -> str:
        headers = {"X-Forwarded-For": xff} if xff is not None else {}
        transport = mock.Mock()
        transport.get_extra_info.side_effect = lambda key, default=None: (peer, 1234) if key == "peername" else default
        request = make_mocked_request("POST", "/login", headers=headers, transport=transport)
        seen: list[str] = []

        async def handler(req: web.Request) -> web.StreamResponse:
            seen.append(client_ip(req))
            return web.Response()

        wrapped = handler
        for mw in reversed(proxy_middlewares(proxies)):
            wrapped = (lambda m, h: lambda r: m(r, h))(mw, wrapped)
        await wrapped(request)
        return seen[0]

    assert await addr("203.0.113.9", "1.2.3.4", "") == "203.0.113.9"
    assert await addr("203.0.113.9", "1.2.3.4", "127.0.0.1") == "203.0.113.9"  # not from our proxy
    assert await addr("203.0.113.9", "garbage", "127.0.0.1") == "203.0.113.9"  # not read at all from strangers
    assert await addr("127.0.0.1", "1.2.3.4", "127.0.0.1") == "1.2.3.4"
    assert await addr("127.0.0.1", "6.6.6.6, 1.2.3.4", "127.0.0.1") == "1.2.3.4"  # the client's own claim is ignored
    assert await addr("127.0.0.1", "1.2.3.4, 10.0.0.5", "127.0.0.1,10.0.0.0/8") == "1.2.3.4"  # past a second proxy
    assert await addr("127.0.0.1", None, "127.0.0.1") == "127.0.0.1"
    assert await addr("::1", "2001:db8::1", "::1") == "2001:db8::1"
    # Garbage where an address should be is a clear 400, not the proxy's own address (whose shared address limits
    # one person could otherwise fill for everyone behind the proxy).
    with pytest.raises(web.HTTPBadRequest):
        await addr("127.0.0.1", "not-an-ip", "127.0.0.1")
    with pytest.raises(ValueError, match="not an address"):
        parse_proxies("127.0.0.1, proxy.example")
