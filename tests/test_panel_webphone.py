"""Computer audio, the panel's side without a PBX: the JsSIP bundle it serves, the CSP, the audio choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


async def test_missing_bundle_is_a_clear_404(panel: PanelKit, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setattr(webphone, "JSSIP_BUNDLE", tmp_path / "nope.js")
    client = await panel.anonymous()
    resp = await client.get(webphone.JSSIP_URL)
    assert resp.status == 404
    assert "make deps" in await resp.text()


@pytest.mark.parametrize(("url", "origin"), [
    ("wss://127.0.0.1:8089/ws", "wss://127.0.0.1:8089"),
    ("wss://pbx.example.org/ws", "wss://pbx.example.org"),
    ("wss://[::1]:8089/ws", "wss://[::1]:8089"),
    ("ws://127.0.0.1:8088/ws", ""),          # never plain WebSocket: the page is https in production
    ("https://127.0.0.1:8089/ws", ""),
    ("wss://a.org/ws; script-src *", ""),     # nothing that could add a directive to the CSP
    ("wss://a.org:99999/ws", ""),
    ("", ""),
])
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
