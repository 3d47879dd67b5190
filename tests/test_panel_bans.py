"""Banning a caller from an effort by email or phone: their login stops, their open session is stopped through the
controller (the line drops), they cannot sign in again, and the ban is per effort."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.ari_app import Leg
from store import bans
from store.db import StoreError
from tests.fakes import PanelKit

CODE = "BANTEST-1234567"


async def _shift_caller(panel: PanelKit, cid: int, email: str, phone: str) -> tuple[Any, str, int]:
    user, password = panel.make_user("caller", name="Casey", email=email, phone=phone, campaign_id=cid)
    client, csrf = await panel.login(user["username"], password)
    resp = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "phone"}, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    return client, csrf, int(resp.headers["Location"].rsplit("/", 1)[1])


@pytest.mark.parametrize(("kind", "value"), [("email", " Casey@Example.org "), ("phone", "(202) 555-0142")])
async def test_ban_ends_login_and_session_and_refuses_sign_in(
    panel: PanelKit, monkeypatch: pytest.MonkeyPatch, kind: str, value: str
) -> None:
    cid = panel.store.create_campaign("GOTV", join_code=CODE)["id"]
    other = panel.store.create_campaign("Other")["id"]
    client, _, sid = await _shift_caller(panel, cid, "casey@example.org", "+12025550142")
    bystander, _, bystander_sid = await _shift_caller(panel, cid, "bo@example.org", "+12025550143")
    # The caller is on the line (as the controller holds it after the call-in).
    panel.ctl.legs[sid] = Leg(sid, cid, "vol-casey", "br-casey")
    stops: list[tuple[int, str]] = []
    real_action = panel.ctl.volunteer_action

    async def spy(session_id: int, action: str) -> None:
        stops.append((session_id, action))
        await real_action(session_id, action)

    monkeypatch.setattr(panel.ctl, "volunteer_action", spy)

    admin, csrf = await panel.client("admin")
    assert 'id="bans-link"' in await (await admin.get(f"/admin/efforts/{cid}/results")).text()
    page = await admin.get(f"/admin/efforts/{cid}/bans")
    assert page.status == 200 and "Nobody is banned" in await page.text()
    bad = await admin.post(f"/admin/efforts/{cid}/bans", data={"_csrf": csrf, "kind": kind, "value": "nope"})
    assert bad.status == 400 and bans.bans(panel.store, cid) == []
    resp = await admin.post(
        f"/admin/efforts/{cid}/bans", data={"_csrf": csrf, "kind": kind, "value": value, "reason": "rude to voters"}
    )
    html = await resp.text()
    assert resp.status == 200 and "1 open session stopped" in html and "rude to voters" in html
    assert stops == [(sid, "stop")]  # the stop reached the controller, for that caller only
    assert ("DELETE", "channels/vol-casey", {}) in panel.ctl.ari.calls  # type: ignore[attr-defined]
    assert panel.store.session(sid)["status"] == "ended"  # type: ignore[index]
    assert panel.store.session(bystander_sid)["status"] == "open"  # type: ignore[index]

    # Their open login no longer works: the caller screens send them to log in.
    gone = await client.get(f"/call/{cid}", allow_redirects=False)
    assert gone.status in (302, 303) and "/login" in gone.headers["Location"]
    assert (await bystander.get(f"/call/{cid}")).status == 200
    # Logging in again with the same shift login: refused with a clear message, and the login ends again.
    user = panel.store._one("SELECT username FROM users WHERE email = 'casey@example.org'")
    assert user is not None
    again = await panel.anonymous()
    form = {"username": user["username"], "password": "correct horse battery", "_csrf": await panel.pre_csrf(again)}
    refused = await again.post("/login", data=form, allow_redirects=False)
    assert refused.status == 403 and "removed you" in await refused.text()
    assert (await again.get(f"/call/{cid}", allow_redirects=False)).status in (302, 303)  # no login made
    wrong = await again.post("/login", data={**form, "password": "guess"}, allow_redirects=False)
    assert wrong.status == 401 and "removed you" not in await wrong.text()  # a guesser learns nothing
    # Signing in to the effort again with that email or phone: refused.
    anon = await panel.anonymous()
    pre = await panel.pre_csrf(anon)
    signin = await anon.post(
        f"/join/{CODE}",
        data={"name": "Casey", "email": "CASEY@example.org", "phone": "+1 202 555 0142", "_csrf": pre},
    )
    assert signin.status == 403 and "removed you" in await signin.text()
    # The ban is this effort's only.
    assert not bans.is_banned(panel.store, other, "casey@example.org", "+12025550142")

    # Lifting it lets them sign in again.
    (b,) = bans.bans(panel.store, cid)
    await admin.post(
        f"/admin/efforts/{cid}/bans", data={"_csrf": csrf, "kind": b["kind"], "value": b["value"], "action": "unban"}
    )
    assert bans.bans(panel.store, cid) == []
    assert (await again.get(f"/call/{cid}", allow_redirects=False)).status in (302, 303)  # that login stays ended
    fresh, _ = await panel.login(user["username"], "correct horse battery")
    assert (await fresh.get(f"/call/{cid}")).status == 200


async def test_only_effort_managers_ban(panel: PanelKit) -> None:
    cid = panel.store.create_campaign("GOTV")["id"]
    caller, csrf = await panel.client("caller")
    resp = await caller.post(
        f"/admin/efforts/{cid}/bans", data={"_csrf": csrf, "kind": "email", "value": "x@example.org"}
    )
    assert resp.status in (302, 303, 403)
    assert bans.bans(panel.store, cid) == []


def test_ban_values_are_checked(panel: PanelKit) -> None:
    cid = panel.store.create_campaign("GOTV")["id"]
    for kind, value in (("name", "Casey"), ("email", "casey"), ("phone", "12"), ("email", "a b@example.org")):
        with pytest.raises(StoreError):
            bans.ban(panel.store, cid, kind, value)
    assert bans.ban(panel.store, cid, "phone", "202-555-0142") == []
    assert bans.is_banned(panel.store, cid, phone="+1 (202) 555-0142")


async def test_an_account_not_tied_to_the_effort_is_refused_there_only(panel: PanelKit) -> None:
    """An ordinary caller account (no effort of its own) keeps its login, but this effort's screens refuse it."""
    cid = panel.store.create_campaign("GOTV")["id"]
    other = panel.store.create_campaign("Other")["id"]
    client, _ = await panel.client("caller", email="kim@example.org")
    assert (await client.get(f"/call/{cid}")).status == 200
    bans.ban(panel.store, cid, "email", "KIM@example.org")
    assert (await client.get(f"/call/{other}")).status == 200  # the open login goes on for other efforts
    assert (await client.get(f"/call/{cid}")).status == 403
    again, _ = await panel.client("caller", email="kim@example.org")
    assert (await again.get(f"/call/{other}")).status == 200
    refused = await again.get(f"/call/{cid}")
    assert refused.status == 403 and "removed you" in await refused.text()
    assert (await again.get(f"/call/{other}")).status == 200  # the account keeps its other efforts
