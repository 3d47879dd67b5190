"""Computer audio, the panel's side without a PBX: the JsSIP bundle it serves, the CSP, the audio choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from panel import webphone
from tests.fakes import PanelKit


def test_jssip_is_pinned_and_installed_by_make_not_committed() -> None:
    pkg = json.loads((webphone.REPO / "package.json").read_text())
    lock = json.loads((webphone.REPO / "package-lock.json").read_text())
    version = pkg["dependencies"]["jssip"]
    assert version[0].isdigit(), "an exact version, not a range"
    assert lock["packages"]["node_modules/jssip"]["version"] == version
    assert lock["packages"]["node_modules/jssip"]["integrity"].startswith("sha512-")
    assert "node_modules/" in (webphone.REPO / ".gitignore").read_text().splitlines()
    assert "npm ci" in (webphone.REPO / "Makefile").read_text()
    assert webphone.bundle_installed(), "make deps builds node_modules/.phonebank/jssip.min.js"


async def test_panel_serves_the_bundle(panel: PanelKit) -> None:
    client = await panel.anonymous()
    resp = await client.get(webphone.JSSIP_URL)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/javascript")
    body = await resp.text()
    version = json.loads((webphone.REPO / "package.json").read_text())["dependencies"]["jssip"]
    assert "var JsSIP=" in body and f'version:"{version}"' in body


async def test_missing_bundle_is_a_clear_404(panel: PanelKit, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(webphone, "JSSIP_BUNDLE", tmp_path / "nope.js")
    client = await panel.anonymous()
    resp = await client.get(webphone.JSSIP_URL)
    assert resp.status == 404
    assert "make deps" in await resp.text()


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("wss://127.0.0.1:8089/ws", "wss://127.0.0.1:8089"),
        ("wss://pbx.example.org/ws", "wss://pbx.example.org"),
        ("wss://[::1]:8089/ws", "wss://[::1]:8089"),
        ("ws://127.0.0.1:8088/ws", ""),  # never plain WebSocket: the page is https in production
        ("https://127.0.0.1:8089/ws", ""),
        ("wss://a.org/ws; script-src *", ""),  # nothing that could add a directive to the CSP
        ("wss://a.org:99999/ws", ""),
        ("", ""),
    ],
)
def test_ws_origin(url: str, origin: str) -> None:
    assert webphone.ws_origin(url) == origin


def test_csp_widens_connect_src_only() -> None:
    from aiohttp import web

    app = web.Application()
    base = webphone.csp(app)
    app[webphone.WEBRTC_WS_URL] = "wss://127.0.0.1:8089/ws"
    wide = webphone.csp(app)
    assert "connect-src 'self' wss://127.0.0.1:8089;" in wide
    assert wide.replace(" wss://127.0.0.1:8089", "") == base


# ---------------------------------------------------------------------------------------------- the audio step
WS_URL = "wss://127.0.0.1:8089/ws"


async def _caller(panel: PanelKit) -> tuple[int, TestClient, str]:
    cid = int(panel.store.create_campaign("Computer audio effort", join_code="ABCDEFG-7654321")["id"])
    user, password = panel.make_user("caller", name="Casey Caller", campaign_id=cid)
    client, csrf = await panel.login(user["username"], password)
    return cid, client, csrf


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webphone, "webrtc_ws_url", lambda app: WS_URL)


async def test_computer_audio_is_a_real_choice(panel: PanelKit, configured: None) -> None:
    cid, client, csrf = await _caller(panel)
    page = await (await client.get(f"/call/{cid}")).text()
    assert 'id="audio-computer"' in page and "coming soon" not in page
    assert 'id="audio-computer" disabled' not in page
    resp = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "computer"}, allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].endswith("?audio=computer")
    page_resp = await client.get(resp.headers["Location"])
    html = await page_resp.text()
    assert 'id="webphone"' in html and 'src="/vendor/jssip.min.js"' in html and 'src="/static/webphone.js"' in html
    assert html.index("/static/webphone.js") < html.index("/static/caller.js"), "it hears the first session view"
    policy = page_resp.headers["Content-Security-Policy"]
    assert "connect-src 'self' wss://127.0.0.1:8089;" in policy
    assert "script-src 'self';" in policy and "unsafe" not in policy
    # The call-in way stays on the page as the fallback.
    session = panel.store.open_sessions()[0]
    assert session["code"] in html


async def test_call_in_page_keeps_the_strict_csp(panel: PanelKit, configured: None) -> None:
    cid, client, csrf = await _caller(panel)
    resp = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "phone"}, allow_redirects=False)
    page_resp = await client.get(resp.headers["Location"])
    assert "connect-src 'self';" in page_resp.headers["Content-Security-Policy"]
    html = await page_resp.text()
    assert "webphone" not in html and "jssip" not in html
    # ...but it offers the switch (also the way back after leaving the page).
    assert f'href="{resp.headers["Location"]}?audio=computer">Use computer audio</a>' in html


async def test_computer_audio_refused_clearly_where_not_set_up(panel: PanelKit) -> None:
    cid, client, csrf = await _caller(panel)
    page = await (await client.get(f"/call/{cid}")).text()
    assert 'id="audio-computer" disabled' in page and "not set up on this server" in page
    resp = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "computer"}, allow_redirects=False)
    assert resp.status == 400
    assert "call in by phone" in await resp.text()
    assert panel.store.open_sessions() == []
    # A forged ?audio=computer on the session page changes nothing either.
    resp = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "phone"}, allow_redirects=False)
    page_resp = await client.get(resp.headers["Location"] + "?audio=computer")
    html = await page_resp.text()
    assert "webphone.js" not in html and "Use computer audio" not in html
    assert "connect-src 'self';" in page_resp.headers["Content-Security-Policy"]


async def test_unknown_audio_choice_is_a_clear_error(panel: PanelKit, configured: None) -> None:
    cid, client, csrf = await _caller(panel)
    resp = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "carrier-pigeon"}, allow_redirects=False)
    assert resp.status == 400
    assert "Choose how you will hear the voters" in await resp.text()
