"""The volunteer's language reaches the phone: a session keeps the panel's language as the caller joins (cookie, else
the browser's), which the call-in then speaks (callin.entry, tests/test_e2e_spanish_callin.py). No Asterisk."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from tests.fakes import API_TOKEN, PanelKit


async def _join(client: TestClient, csrf: str, cid: int, **headers: str) -> int:
    resp = await client.post(
        f"/call/{cid}", data={"_csrf": csrf, "audio": "phone"}, headers=headers, allow_redirects=False
    )
    assert resp.status == 302, await resp.text()
    match = re.fullmatch(rf"/call/{cid}/s/(\d+)", resp.headers["Location"])
    assert match, resp.headers["Location"]
    return int(match.group(1))


async def test_a_session_keeps_the_language_its_caller_joined_in(panel: PanelKit) -> None:
    cid = int(panel.store.create_campaign("Bilingual")["id"])
    spanish, password = panel.make_user("caller", name="Lucía", campaign_id=cid)
    client, csrf = await panel.login(spanish["username"], password)
    sid = await _join(client, csrf, cid, **{"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert panel.store.session(sid)["language"] == "es"  # type: ignore[index]

    # The switcher's choice wins over the browser's; joining again (same session) brings the phone along.
    client.session.cookie_jar.update_cookies({"phonebank_lang": "en"})
    assert await _join(client, csrf, cid, **{"Accept-Language": "es"}) == sid
    assert panel.store.session(sid)["language"] == "en"  # type: ignore[index]

    english, password = panel.make_user("caller", name="Lucy", campaign_id=cid)
    client, csrf = await panel.login(english["username"], password)
    sid = await _join(client, csrf, cid)  # no preference said: English
    assert panel.store.session(sid)["language"] == "en"  # type: ignore[index]


async def test_the_api_takes_a_language_or_the_requests(panel: PanelKit) -> None:
    cid = int(panel.store.create_campaign("Scripted")["id"])
    client = await panel.anonymous()
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    for body, headers, expected in (
        ({"language": "es"}, {}, "es"),
        ({}, {"Accept-Language": "es"}, "es"),
        ({}, {}, "en"),
    ):
        resp = await client.post(
            "/api/sessions", json={"campaign_id": cid, "name": "Vol", **body}, headers={**auth, **headers}
        )
        assert resp.status == 201, await resp.text()
        assert panel.store.session((await resp.json())["id"])["language"] == expected  # type: ignore[index]
    for bad in ("klingon", ["es"], 5):
        resp = await client.post(
            "/api/sessions", json={"campaign_id": cid, "name": "Vol", "language": bad}, headers=auth
        )
        assert resp.status == 400 and "language" in (await resp.json())["error"]
