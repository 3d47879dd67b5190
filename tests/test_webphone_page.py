"""Computer audio's page in a real browser (Debian's Chromium, fake microphone) on the panel with a fake ARI:
the microphone check, every error a volunteer can act on, one tab per session. No PBX here: the SIP leg on the
real Asterisk is tests/test_e2e_webrtc.py."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright, expect

from panel import webphone
from phonebank import browser as pb_browser
from phonebank import webrtc_drill
from tests.fakes import PanelKit
from tests.pages import eventually


def _closed_port() -> int:
    """A loopback port nothing listens on: the 'PBX' whose WebSocket never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


WS_URL = f"wss://127.0.0.1:{_closed_port()}/ws"


@pytest.fixture
def mic_wav(tmp_path: Path) -> Path:
    return webrtc_drill.make_mic_wav(tmp_path / "mic.wav")


@pytest.fixture
async def chromium(mic_wav: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await webrtc_drill.launch(pw, mic_wav)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
def web_panel(panel: PanelKit, monkeypatch: pytest.MonkeyPatch) -> PanelKit:
    monkeypatch.setattr(webphone, "webrtc_ws_url", lambda app: WS_URL)
    return panel


async def _caller_page(panel: PanelKit, context: BrowserContext) -> tuple[Page, str]:
    """A caller logged in through the form, on the audio step; returns the page and the base URL."""
    cid = int(panel.store.create_campaign("Computer audio effort", join_code="ABCDEFG-7654321")["id"])
    user, password = panel.make_user("caller", name="Casey Caller", campaign_id=cid)
    base = str(panel.server.make_url("")).rstrip("/")
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", user["username"])
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.goto(f"{base}/call/{cid}")
    return page, base


def _csp_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    return errors


async def _fake_credentials(route: Route) -> None:
    await route.fulfill(
        status=200,
        content_type="application/json",
        body=json.dumps(
            {
                "kind": "webrtc",
                "username": "u" * 32,
                "password": "p" * 32,
                "domain": "127.0.0.1",
                "dial": "join",
                "ws_url": WS_URL,
                "transport": "wss",
                "ice_servers": [],
                "expires_at": 2**31,
            }
        ),
    )


async def test_microphone_check_then_connect_says_it_is_reconnecting(web_panel: PanelKit, chromium: Browser) -> None:
    context = await chromium.new_context()
    page, _ = await _caller_page(web_panel, context)
    csp = _csp_errors(page)
    await page.click("#audio-computer")
    await page.click("#choose-audio")
    await expect(page.locator("#webphone")).to_be_visible()
    # The fake microphone plays bursts of a tone: the meter moves and the page says it hears it.
    await expect(page.locator("#webphone-heard")).to_have_text("We can hear your microphone.", timeout=10000)
    await expect(page.locator("#webphone-connect")).to_be_enabled()
    await page.click("#webphone-test")
    await expect(page.locator("#webphone-heard-sound")).to_be_visible()
    # The call-in way is still there as the fallback, with the session code.
    code = web_panel.store.open_sessions()[0]["code"]
    assert code in re.sub(r"\s", "", await page.locator("#phone-panel").inner_text())

    # Connect: the credentials come from the panel (here: stubbed), the WebSocket to the PBX never opens.
    asked: list[dict[str, object]] = []

    async def credentials(route: Route) -> None:
        asked.append({"body": route.request.post_data_json, "csrf": route.request.headers.get("x-csrf-token")})
        await _fake_credentials(route)

    await page.route("**/api/sessions/*/sip", credentials)
    await page.click("#webphone-connect")
    await expect(page.locator("#webphone-error")).to_contain_text("reconnecting on our own", timeout=15000)
    # Never reached: the likeliest cause is a self-signed certificate the browser has not accepted yet.
    await expect(page.locator("#webphone-error")).to_contain_text("certificate")
    origin = WS_URL.removeprefix("wss://").removesuffix("/ws")
    await expect(page.locator("#webphone-cert-link")).to_have_attribute("href", f"https://{origin}/")
    await expect(page.locator("#webphone-status")).to_have_text("Reconnecting…")
    assert asked and asked[0]["body"] == {"kind": "webrtc"} and asked[0]["csrf"]
    assert csp == [], f"the page broke its own CSP: {csp}"
    await context.close()


async def test_blocked_microphone_says_how_to_unblock(web_panel: PanelKit, mic_wav: Path) -> None:
    async with async_playwright() as pw:
        browser = await webrtc_drill.launch(pw, mic_wav, grant=False)  # nobody clicks "Allow"
        try:
            context = await browser.new_context()
            page, _ = await _caller_page(web_panel, context)
            await page.click("#audio-computer")
            await page.click("#choose-audio")
            error = page.locator("#webphone-error")
            await expect(error).to_contain_text("blocked the microphone", timeout=10000)
            await expect(error).to_contain_text("address bar")
            await expect(page.locator("#webphone-retry-mic")).to_be_visible()
            await expect(page.locator("#webphone-connect")).to_be_disabled()
            # Unblocked in the browser's settings, then "Try again": the check goes on without a reload.
            await context.grant_permissions(["microphone"])
            await page.click("#webphone-retry-mic")
            await expect(page.locator("#webphone-heard")).to_have_text("We can hear your microphone.", timeout=10000)
            await expect(error).to_be_hidden()
        finally:
            await browser.close()


async def test_no_microphone_says_plug_one_in(web_panel: PanelKit, chromium: Browser) -> None:
    context = await chromium.new_context()
    # What Chromium answers on a machine without any audio input.
    await context.add_init_script(
        "navigator.mediaDevices.getUserMedia = () => "
        "Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));"
    )
    page, _ = await _caller_page(web_panel, context)
    await page.click("#audio-computer")
    await page.click("#choose-audio")
    await expect(page.locator("#webphone-error")).to_contain_text("No microphone found", timeout=10000)
    await expect(page.locator("#webphone-error")).to_contain_text("headset")
    await context.close()


async def test_a_second_tab_is_told_and_can_take_over(web_panel: PanelKit, chromium: Browser) -> None:
    context = await chromium.new_context()
    await context.route("**/api/sessions/*/sip", _fake_credentials)
    first, _ = await _caller_page(web_panel, context)
    await first.click("#audio-computer")
    await first.click("#choose-audio")
    await expect(first.locator("#webphone-connect")).to_be_enabled(timeout=10000)
    await first.click("#webphone-connect")
    await expect(first.locator("#webphone-status")).not_to_have_text("Microphone ready: test it, then connect")

    second = await context.new_page()
    await second.goto(first.url)
    await expect(second.locator("#webphone-error")).to_contain_text("already on in another tab", timeout=10000)
    await expect(second.locator("#webphone-takeover")).to_be_visible()
    await second.click("#webphone-takeover")
    await expect(first.locator("#webphone-error")).to_contain_text("moved to another tab", timeout=10000)
    assert (await first.evaluate("window.pbWebphone.state()"))["wanted"] is False
    await eventually(second, "window.pbWebphone.state().wanted")
    await context.close()


async def test_tablet_layout_with_touch(web_panel: PanelKit, chromium: Browser) -> None:
    """Chrome on an Android tablet, as far as desktop Chromium can play one (viewport, touch, user agent): the
    check and the buttons fit the screen and work by tapping. The real device is not in CI (docs/PANEL.md)."""
    context = await chromium.new_context(
        viewport=pb_browser.TABLET,
        has_touch=True,
        is_mobile=True,
        user_agent="Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
    )
    await context.route("**/api/sessions/*/sip", _fake_credentials)
    page, _ = await _caller_page(web_panel, context)
    await page.tap("#audio-computer")
    await page.tap("#choose-audio")
    await expect(page.locator("#webphone-heard")).to_have_text("We can hear your microphone.", timeout=10000)
    for button in ("#webphone-test", "#webphone-connect", "#webphone-mute"):
        box = await page.locator(button).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= pb_browser.TABLET["width"], button
        assert box["height"] >= 32, f"{button} is too small to tap"
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= pb_browser.TABLET["width"], "the page scrolls sideways on a tablet"
    await page.tap("#webphone-test")
    await page.tap("#webphone-connect")
    await expect(page.locator("#webphone-error")).to_contain_text("reconnecting on our own", timeout=15000)
    await context.close()


async def test_refused_credentials_are_said_and_not_retried(web_panel: PanelKit, chromium: Browser) -> None:
    context = await chromium.new_context()
    asked: list[str] = []

    async def refuse(route: Route) -> None:
        asked.append(route.request.url)
        await route.fulfill(
            status=409, content_type="application/json", body=json.dumps({"error": "the shift login has expired"})
        )

    await context.route("**/api/sessions/*/sip", refuse)
    page, _ = await _caller_page(web_panel, context)
    await page.click("#audio-computer")
    await page.click("#choose-audio")
    await expect(page.locator("#webphone-connect")).to_be_enabled(timeout=10000)
    await page.click("#webphone-connect")
    await expect(page.locator("#webphone-error")).to_have_text("Could not connect: the shift login has expired")
    await expect(page.locator("#webphone-status")).to_have_text("Not connected")
    await asyncio.sleep(3)  # longer than the first retry would wait
    assert len(asked) == 1, "a refusal that asking again cannot change was retried"
    await context.close()


async def test_spanish_browser_gets_the_computer_audio_card_in_spanish(web_panel: PanelKit, chromium: Browser) -> None:
    """What webphone.js writes comes from the page's translated strings (issue 14): an es browser reads Spanish."""
    context = await chromium.new_context(locale="es-ES")
    page, _ = await _caller_page(web_panel, context)
    csp = _csp_errors(page)
    await page.click("#audio-computer")
    await page.click("#choose-audio")
    await expect(page.locator("#webphone-heard")).to_have_text("Oímos su micrófono.", timeout=10000)
    await expect(page.locator("#webphone-status")).to_have_text("Micrófono listo: pruébelo y luego conecte")
    await page.route("**/api/sessions/*/sip", _fake_credentials)
    await page.click("#webphone-connect")
    await expect(page.locator("#webphone-error")).to_contain_text("reconectando solos", timeout=15000)
    await expect(page.locator("#webphone-status")).to_have_text("Reconectando…")
    await page.click("#webphone-mute")
    await expect(page.locator("#webphone-mute")).to_have_text("Activar sonido")
    assert csp == [], f"the page broke its own CSP: {csp}"
    await context.close()
