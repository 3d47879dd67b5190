"""Computer audio end to end on the real Asterisk, in a real browser: headless Debian Chromium whose fake
microphone plays a tone signature joins a session with JsSIP over WSS, Start calling, a simulated voter answers;
audio crosses both ways (the voter's recording holds the browser's tone, the browser hears the voter's tone);
Save & Next to a second voter; closing the tab ends the leg, the session is paused and nothing more is dialled.
No voter number reaches the page, its session WebSocket or any SIP message it receives.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest
from playwright.async_api import Page, WebSocket, WebSocketRoute, async_playwright, expect

from bridge.ari import AriClient
from phonebank import webrtc_drill
from phonebank.harness import ControllerProcess, Pbx, day_number, read_wav_samples, tone_ratio, until
from phonebank.sim import SimNumber
from store import users as u
from store.db import Store

pytestmark = pytest.mark.asterisk

VOTERS = [SimNumber(day_number(5300 + i), "human", ring_s=1, talk_s=120, tone_hz=3000 + 150 * i) for i in range(3)]
PASSWORD = "webrtc-caller-password"
# What the browser's analyser must see at the voter's tone, against the median of the speech band (power ratio).
BROWSER_HEARS_RATIO = 100.0
# What the voter's recording must hold at the browser's tone (tone_ratio, as for the drilled phones).
VOTER_HEARS_RATIO = 1000.0

# Runs in the page (Playwright's evaluate is not subject to the page's CSP): the remote audio's spectrum for a
# few seconds, power at ``hz`` against the median bin of 300-3400 Hz.
HEAR_TONE_JS = """async ([hz, ms]) => {
  const el = document.getElementById("webphone-audio");
  if (!el || !el.srcObject) return -1;
  const ctx = new AudioContext();
  await ctx.resume();
  const src = ctx.createMediaStreamSource(el.srcObject);
  const an = ctx.createAnalyser();
  an.fftSize = 4096;
  an.smoothingTimeConstant = 0;
  src.connect(an);
  const bins = new Float32Array(an.frequencyBinCount);
  const acc = new Float64Array(an.frequencyBinCount);
  const end = performance.now() + ms;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    an.getFloatFrequencyData(bins);
    for (let i = 0; i < bins.length; i++) acc[i] += Math.pow(10, bins[i] / 10);
  }
  const binHz = ctx.sampleRate / an.fftSize;
  const at = (f) => { const i = Math.round(f / binHz); return Math.max(acc[i - 1], acc[i], acc[i + 1]); };
  const band = [];
  for (let i = Math.round(300 / binHz); i < Math.round(3400 / binHz); i++) band.push(acc[i]);
  band.sort((a, b) => a - b);
  const median = band[Math.floor(band.length / 2)] || 1e-30;
  await ctx.close();
  return at(hz) / median;
}"""


def _number_forms(n: SimNumber) -> list[str]:
    digits = n.number.lstrip("+")
    return [n.number, digits, digits[1:]]  # E.164, without +, national


async def _state(controller: ControllerProcess, sid: int) -> dict[str, object]:
    status, view = await asyncio.to_thread(controller.call, "GET", f"/api/sessions/{sid}")
    assert status == 200, view
    return view


async def _login(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")


async def test_computer_audio_both_ways_then_closing_the_tab_pauses(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient, tmp_path: Path
) -> None:
    pbx.load_sim(VOTERS)
    await ari.post("asterisk/variable", variable="PB_SIM_HEARD", value="1")  # the voters record what they hear
    store = Store(pbx.settings.db_path)
    cid = int(store.create_campaign("Computer audio", ring_timeout_s=15, wrapup_limit_s=120)["id"])
    store.add_contacts(
        cid,
        [
            {
                "first_name": f"Voter{i}",
                "last_name": "Webrtc",
                "phone": n.number,
                "city": "Washington",
                "state": "DC",
                "zip": "20001",
            }
            for i, n in enumerate(VOTERS)
        ],
    )
    username = f"webrtc-caller-{cid}"
    u.create_user(store, username, PASSWORD, "caller", name="Wendy Webrtc", campaign_id=cid)
    mic = webrtc_drill.make_mic_wav(tmp_path / "mic.wav")
    base = controller.api

    frames: list[str] = []  # every frame the browser receives: session pushes and SIP alike
    sip_sockets: list[str] = []

    def on_ws(ws: WebSocket) -> None:
        if "/ws/session/" not in ws.url:
            sip_sockets.append(ws.url)
        ws.on(
            "framereceived",
            lambda payload: frames.append(payload if isinstance(payload, str) else payload.decode("utf-8", "replace")),
        )

    async with async_playwright() as pw:
        browser = await webrtc_drill.launch(pw, mic)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            page.on("websocket", on_ws)
            pages_html: list[str] = []
            await _login(page, base, username)
            await page.goto(f"{base}/call/{cid}")
            await page.click("#audio-computer")
            await page.click("#choose-audio")
            sid = int(re.search(r"/s/(\d+)", page.url).group(1))  # type: ignore[union-attr]

            # The check: the fake microphone moves the meter; then connect.
            await expect(page.locator("#webphone-heard")).to_have_text("We can hear your microphone.", timeout=15000)
            await page.click("#webphone-connect")
            await expect(page.locator("#webphone-status")).to_have_text("Connected", timeout=30000)
            await expect(page.locator("#phone-status")).to_have_attribute("data-connected", "true", timeout=20000)
            assert sip_sockets and all(s.startswith("wss://127.0.0.1:") for s in sip_sockets), sip_sockets
            assert (await _state(controller, sid))["phone_connected"] is True

            # Start calling: a voter answers and is put through.
            await page.click("#start-calling")
            name = page.locator("#voter-name")
            await expect(name).to_be_visible(timeout=45000)
            first = await _state(controller, sid)
            assert first["state"] == "talking"
            voter1 = next(
                n
                for n in VOTERS
                if store.contact(int(store.call(str(first["call_id"]))["contact_id"]))["phone"] == n.number
            )  # type: ignore[index]

            # The browser hears the voter: energy arrives (getStats) and it is this voter's tone (spectrum).
            before = await page.evaluate("window.pbWebphone.inboundAudio()")
            assert before and before["packetsReceived"] > 0
            # The simulated voter greets, waits 3 s, then plays its tone for the rest of the call.
            heard_ratio = 0.0
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline and heard_ratio < BROWSER_HEARS_RATIO:
                heard_ratio = await page.evaluate(HEAR_TONE_JS, [voter1.tone_hz, 1500])
            after = await page.evaluate("window.pbWebphone.inboundAudio()")
            assert after["totalAudioEnergy"] > before["totalAudioEnergy"], (before, after)
            assert heard_ratio >= BROWSER_HEARS_RATIO, f"the browser did not hear the voter's tone: {heard_ratio:.1f}"
            # A tone nobody plays is not there (the measure is not fooled by broadband noise).
            assert await page.evaluate(HEAR_TONE_JS, [1234, 1000]) < BROWSER_HEARS_RATIO

            pages_html.append(await page.content())
            # Save & Next: the result is saved and the next voter comes through on the same leg.
            await page.locator("input[name=code][value=supporter]").check()
            await page.click("#save-next")
            await until(
                lambda: [
                    d for d in store.dispositions(cid) if d["call_id"] == first["call_id"] and d["code"] == "supporter"
                ],
                15,
                "the first result saved",
            )
            second = None
            for _ in range(200):
                v = await _state(controller, sid)
                if v["state"] == "talking" and v["call_id"] != first["call_id"]:
                    second = v
                    break
                await asyncio.sleep(0.25)
            assert second is not None, "no second voter on the same leg"
            await expect(name).to_be_visible(timeout=15000)
            assert (await _state(controller, sid))["phone_connected"] is True
            pages_html.append(await page.content())

            # Close the tab: JsSIP hangs up on pagehide; the session is paused (as when a phone hangs up).
            closed_at = time.time()
            await page.close()
            gone = None
            for _ in range(160):  # BYE is immediate; Asterisk's rtp_timeout (~20 s) is the fallback
                v = await _state(controller, sid)
                if not v["phone_connected"]:
                    gone = v
                    break
                await asyncio.sleep(0.25)
            assert gone is not None, "the session still has a leg after the tab closed"
            print(
                f"leg gone {time.time() - closed_at:.1f} s after the tab closed; browser heard the voter's tone "
                f"at {heard_ratio:.0f}x the band median"
            )
            assert gone["state"] in ("disconnected", "paused"), gone
            # The page said goodbye (BYE on pagehide), rather than Asterisk noticing 20 s without audio.
            assert gone["state_reason"] == "computer_audio_closed", gone
            dialled = len(store.calls(cid))
            await asyncio.sleep(8)
            assert len(store.calls(cid)) == dialled, "something was dialled for a session without audio"
            assert not [c for c in store.calls(cid) if (c["originated_at"] or 0) > closed_at + 1]
            await context.close()
        finally:
            await browser.close()

    # The voter heard the browser: the fake microphone's tone is in the first voter's recording of what it heard.
    heard_files = sorted(pbx.rt.host_path(f"{pbx.rt.sim_dir}/vm").glob(f"heard-{voter1.digits}-*-in.wav"))
    assert heard_files, "the voter recorded nothing"
    samples, rate = read_wav_samples(heard_files[-1])
    mic_ratio = tone_ratio(samples, rate, webrtc_drill.MIC_TONE_HZ)
    assert mic_ratio > VOTER_HEARS_RATIO, f"the voter did not hear the browser's microphone: {mic_ratio:.1f}"
    assert tone_ratio(samples, rate, 1234) < mic_ratio / 100
    print(
        f"voter heard the browser's tone at ratio {mic_ratio:.0f} (an unplayed tone: "
        f"{tone_ratio(samples, rate, 1234):.1f})"
    )

    # Privacy: no voter's number in the pages, the session pushes, or any SIP message the browser got.
    assert any("SIP/2.0" in f for f in frames), "the SIP traffic was not captured"
    for n in VOTERS:
        for form in _number_forms(n):
            assert not any(form in html for html in pages_html), form
            leaked = [f for f in frames if form in f]
            assert not leaked, f"voter number {form} reached the browser: {leaked[0][:300]}"


async def test_lost_audio_pauses_the_session_and_the_page_reconnects(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient, tmp_path: Path
) -> None:
    """On a call, the page's network drops (its WebSockets close: it says it reconnects, and does, and the call
    goes on); then no audio reaches Asterisk for 20 s: the leg is hung up, the session paused as when a phone
    hangs up and nothing dialled for it; the page redials on its own and the leg is back."""
    voters = [SimNumber(day_number(5400 + i), "human", ring_s=1, talk_s=120, tone_hz=3000 + 150 * i) for i in range(3)]
    pbx.load_sim(voters)
    store = Store(pbx.settings.db_path)
    cid = int(store.create_campaign("Computer audio drops", ring_timeout_s=15, wrapup_limit_s=300)["id"])
    store.add_contacts(cid, [{"first_name": f"Drop{i}", "phone": n.number} for i, n in enumerate(voters)])
    username = f"webrtc-drop-{cid}"
    u.create_user(store, username, PASSWORD, "caller", name="Dora Drop", campaign_id=cid)
    mic = webrtc_drill.make_mic_wav(tmp_path / "mic.wav")
    async with async_playwright() as pw:
        browser = await webrtc_drill.launch(pw, mic)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            # The SIP WebSocket goes through Playwright, so the test can cut it as a network drop would.
            sip_routes: list[WebSocketRoute] = []

            def through(ws: WebSocketRoute) -> None:
                ws.connect_to_server()
                sip_routes.append(ws)

            await page.route_web_socket(re.compile(r"^wss://127\.0\.0\.1:\d+/ws$"), through)
            await _login(page, controller.api, username)
            await page.goto(f"{controller.api}/call/{cid}")
            await page.click("#audio-computer")
            await page.click("#choose-audio")
            sid = int(re.search(r"/s/(\d+)", page.url).group(1))  # type: ignore[union-attr]
            await expect(page.locator("#webphone-connect")).to_be_enabled(timeout=15000)
            await page.click("#webphone-connect")
            await expect(page.locator("#phone-status")).to_have_attribute("data-connected", "true", timeout=30000)
            await page.click("#start-calling")
            await expect(page.locator("#voter-name")).to_be_visible(timeout=45000)

            # The network drops the SIP WebSocket (both ends see it close); the voice path is UDP and goes on.
            assert sip_routes, "the SIP WebSocket did not go through the route"
            first_route = sip_routes[-1]
            await first_route.close(code=1001, reason="network drop")
            await expect(page.locator("#webphone-error")).to_contain_text("reconnecting on our own", timeout=20000)
            await until(lambda: len(sip_routes) > 1, 30, "JsSIP opening a new WebSocket")
            await expect(page.locator("#webphone-status")).to_have_text("Connected", timeout=30000)
            await expect(page.locator("#webphone-error")).to_be_hidden(timeout=30000)
            assert (await _state(controller, sid))["phone_connected"] is True, "the leg is up after the drop"

            # Now the voice path dies while signalling stays up (no RTP, RTCP or ICE checks reach Asterisk any
            # more, as when a NAT binding expires): Asterisk's rtp_timeout hangs up.
            await page.evaluate("window.pbWebphone.connection().close()")
            stopped_at = time.time()
            paused = None
            for _ in range(200):  # ~20 s of rtp_timeout, checked every 0.25 s
                v = await _state(controller, sid)
                if not v["phone_connected"]:
                    paused = v
                    break
                await asyncio.sleep(0.25)
            assert paused is not None, "Asterisk kept a leg that sent no audio"
            assert paused["state"] == "disconnected" and paused["state_reason"] == "no_audio", paused
            paused_at = time.time()
            assert paused_at - stopped_at > 10, "hung up for silence, not for something else"

            # The page heard the hang-up and redials on its own (fresh audio from the microphone).
            back = None
            for _ in range(160):
                v = await _state(controller, sid)
                if v["phone_connected"]:
                    back = v
                    break
                await asyncio.sleep(0.25)
            assert back is not None, "the page did not reconnect the leg"
            back_at = time.time()
            await expect(page.locator("#webphone-status")).to_have_text("Connected", timeout=15000)
            assert not [c for c in store.calls(cid) if paused_at < (c["originated_at"] or 0) < back_at - 0.5], (
                "a voter was dialled while the session had no audio"
            )
            await context.close()
        finally:
            await browser.close()
