"""A captain coaches a caller on the real Asterisk: a drilled volunteer talks to a simulated voter, a drilled captain
calls in with a coach code and listens, then whispers, then barges, then hangs up. Each party plays its own
signature tone, so the recordings say who heard whom."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from bridge.ari import AriClient
from callin import drill
from phonebank.harness import ControllerProcess, Pbx, day_number, read_wav_samples, tone_ratio, until
from phonebank.sim import SimNumber, stage_file
from store.db import Store

pytestmark = pytest.mark.asterisk

VOTER_HZ, VOLUNTEER_HZ, CAPTAIN_HZ = 2900, 2300, 3300
HEARD = 5000  # a tone played for seconds scores ~10^7; one nobody played a few hundred at most (tone_ratio)
NOT_HEARD = 2000


def tone_wav(path: Path, hz: int, seconds: float) -> Path:
    rate = 8000
    t = np.arange(int(rate * seconds)) / rate
    samples = (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def relative_power(samples: np.ndarray, rate: int, freq: float, reference: float) -> float:
    """Power at ``freq`` over the power at ``reference`` (a tone that plays all along)."""
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1.0 / rate)
    return float(spectrum[np.abs(freqs - freq) <= 2.0].max() / spectrum[np.abs(freqs - reference) <= 2.0].max())


def samples_after(path: Path, start: int) -> tuple[np.ndarray, int]:
    samples, rate = read_wav_samples(path)
    return samples[start:], rate


async def test_captain_listens_whispers_barges_then_leaves(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient, tmp_path: Path
) -> None:
    voter = SimNumber(day_number(1850), "human", ring_s=1, talk_s=40, tone_hz=VOTER_HZ, audio="human-hello-1")
    pbx.load_sim([voter])
    await ari.post("asterisk/variable", variable="PB_SIM_HEARD", value="1")  # the voter records what it hears
    store = Store(pbx.settings.db_path)
    cid = int(store.create_campaign("Coaching", ring_timeout_s=15, wrapup_limit_s=120)["id"])
    volunteer_tone = stage_file(pbx.rt, tone_wav(tmp_path / "vol.wav", VOLUNTEER_HZ, 60), "coach-vol.wav")
    captain_tone = stage_file(pbx.rt, tone_wav(tmp_path / "cap.wav", CAPTAIN_HZ, 60), "coach-cap.wav")

    status, session = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Vera"})
    assert status == 201, session
    sid = session["id"]
    # The volunteer talks (their tone) from a moment after joining to the end; "5" is a key the call ignores.
    vol_leg = await drill.volunteer(
        ari, pbx.rt, session["code"], stay_s=120, later_keys="5", later_keys_after_s=0.5, say=volunteer_tone
    )
    await until(lambda: controller.call("GET", f"/api/sessions/{sid}")[1]["phone_connected"], 20, "volunteer joins")
    store.add_contacts(cid, [{"first_name": "Val", "last_name": "Voter", "phone": voter.number}])
    await until(
        lambda: controller.call("GET", f"/api/sessions/{sid}")[1]["state"] == "talking", 30, "voter put through"
    )
    (call,) = store.calls(cid)

    # Bad input is a clear 400, a session of no such caller here a 404.
    assert controller.call("POST", f"/api/efforts/{cid}/coach", {"session_id": sid, "mode": "shout"})[0] == 400
    assert controller.call("POST", f"/api/efforts/{cid}/coach", {"session_id": "x", "mode": "listen"})[0] == 400
    assert controller.call("POST", f"/api/efforts/{cid}/coach", {"session_id": sid + 99, "mode": "listen"})[0] == 404

    status, coach = controller.call("POST", f"/api/efforts/{cid}/coach", {"session_id": sid, "mode": "listen"})
    assert status == 201, coach
    assert set(coach) == {"coach_id", "code", "mode", "session_id", "leg", "callin_number"}  # no voter in sight
    cap_leg = await drill.volunteer(
        ari, pbx.rt, coach["code"], stay_s=120, later_keys="5", later_keys_after_s=0.5, say=captain_tone
    )
    # The dashboard shows who is coached, and the volunteer is still talking (nothing changed for the call).
    await until(lambda: _coached(controller, cid) == {sid: "listen"}, 15, "the dashboard to show the coaching")
    assert controller.call("GET", f"/api/sessions/{sid}")[1]["state"] == "talking"

    await asyncio.sleep(6)  # listening: the captain hears both, nobody hears the captain
    listened_to = read_wav_samples(vol_leg.heard_wav)[0].size
    status, _ = controller.call("POST", f"/api/efforts/{cid}/coach", {"mode": "whisper"})
    assert status == 200
    await until(lambda: _coached(controller, cid) == {sid: "whisper"}, 10, "whisper on the dashboard")
    await asyncio.sleep(6)
    # Barge: all three talk.
    voter_files = sorted(pbx.rt.host_path(f"{pbx.rt.sim_dir}/vm").glob(f"heard-{voter.digits}-*-in.wav"))
    assert voter_files, "the voter records nothing"
    voter_file = voter_files[-1]
    before_barge = read_wav_samples(voter_file)[0].size
    status, _ = controller.call("POST", f"/api/efforts/{cid}/coach", {"mode": "barge"})
    assert status == 200
    await until(lambda: _coached(controller, cid) == {sid: "barge"}, 10, "barge on the dashboard")
    await asyncio.sleep(5)

    # The captain hangs up: the call goes on.
    await ari.delete(f"channels/{cap_leg.channel_id}")
    await until(lambda: _coached(controller, cid) == {sid: ""}, 10, "the coaching to end")
    await asyncio.sleep(2)
    view = controller.call("GET", f"/api/sessions/{sid}")[1]
    assert view["state"] == "talking" and view["call_id"] == call["id"]
    assert store.call(call["id"])["ended_at"] is None
    await ari.post("asterisk/variable", variable="PB_SIM_HEARD", value="")

    # The captain heard the voter and the volunteer.
    cap, rate = read_wav_samples(cap_leg.heard_wav)
    assert tone_ratio(cap, rate, VOTER_HZ) > HEARD, "the captain did not hear the voter"
    assert tone_ratio(cap, rate, VOLUNTEER_HZ) > HEARD, "the captain did not hear the volunteer"
    # The volunteer: not the captain while they listened; the captain's whisper after.
    vol_all, rate = read_wav_samples(vol_leg.heard_wav)
    assert tone_ratio(vol_all[:listened_to], rate, CAPTAIN_HZ) < NOT_HEARD, "the volunteer heard a listening captain"
    assert tone_ratio(vol_all[listened_to:], rate, CAPTAIN_HZ) > HEARD, "the whisper did not reach the volunteer"
    assert tone_ratio(vol_all, rate, VOTER_HZ) > HEARD
    # The voter heard the volunteer and never the captain.
    voter_all, rate = read_wav_samples(voter_file)
    voter_heard = voter_all[:before_barge]
    assert tone_ratio(voter_heard, rate, VOLUNTEER_HZ) > HEARD
    assert tone_ratio(voter_heard, rate, CAPTAIN_HZ) < NOT_HEARD, "the voter heard the captain before the barge"
    barged = tone_ratio(voter_all[before_barge:], rate, CAPTAIN_HZ)
    assert barged > HEARD, "the barge did not reach the voter"
    print(
        f"captain heard voter {tone_ratio(cap, rate, VOTER_HZ):.0f}, "
        f"volunteer {tone_ratio(cap, rate, VOLUNTEER_HZ):.0f}; "
        f"volunteer heard captain listening {tone_ratio(vol_all[:listened_to], rate, CAPTAIN_HZ):.1f}, "
        f"whispering {tone_ratio(vol_all[listened_to:], rate, CAPTAIN_HZ):.0f}; "
        f"voter heard volunteer {tone_ratio(voter_heard, rate, VOLUNTEER_HZ):.0f}, "
        f"captain {tone_ratio(voter_heard, rate, CAPTAIN_HZ):.1f}, barging {barged:.0f}"
    )
    store.close()


def _coached(controller: ControllerProcess, cid: int) -> dict[int, str]:
    status, coaching = controller.call("GET", f"/api/efforts/{cid}/coach")
    assert status == 200, coaching
    return {int(k): v for k, v in coaching["coached"].items()}


async def test_softphone_captain_listens_barges_and_listens_again_and_reaches_nothing_else(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient, tmp_path: Path
) -> None:
    """A captain on a SIP softphone (pjsua2) coaches through the account the dashboard made for this coaching: it
    hears both sides while listening, the voter hears it only while it barges (a live barge -> listen switch on
    the same leg), and the account reaches nothing but this coaching (toll fraud) and dies with it."""
    from tests.test_e2e_softphone import Softphone, register_code

    voter = SimNumber(day_number(1851), "human", ring_s=1, talk_s=60, tone_hz=VOTER_HZ, audio="human-hello-1")
    pbx.load_sim([voter])
    await ari.post("asterisk/variable", variable="PB_SIM_HEARD", value="1")
    store = Store(pbx.settings.db_path)
    cid = int(store.create_campaign("Coaching by softphone", ring_timeout_s=15, wrapup_limit_s=120)["id"])
    volunteer_tone = stage_file(pbx.rt, tone_wav(tmp_path / "vol.wav", VOLUNTEER_HZ, 80), "coach-sp-vol.wav")
    status, session = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Vera"})
    assert status == 201, session
    sid = session["id"]
    other = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Otto"})[1]
    vol_leg = await drill.volunteer(
        ari, pbx.rt, session["code"], stay_s=120, later_keys="5", later_keys_after_s=0.5, say=volunteer_tone
    )
    await until(lambda: controller.call("GET", f"/api/sessions/{sid}")[1]["phone_connected"], 20, "volunteer joins")
    store.add_contacts(cid, [{"first_name": "Val", "last_name": "Voter", "phone": voter.number}])
    await until(
        lambda: controller.call("GET", f"/api/sessions/{sid}")[1]["state"] == "talking", 30, "voter put through"
    )
    (call,) = store.calls(cid)

    status, coach = controller.call(
        "POST", f"/api/efforts/{cid}/coach", {"session_id": sid, "mode": "listen", "audio": "softphone"}
    )
    assert status == 201, coach
    sip = coach["sip"]
    assert coach["leg"] == "softphone" and "code" not in coach and sip["transport"] == "udp"
    assert len(sip["username"]) >= 32 and len(sip["password"]) >= 32
    heard = tmp_path / "captain.wav"
    ua = Softphone(
        sip["sip_server"], sip["username"], sip["password"], "--call", sip["dial"], "--record", str(heard),
        "--tone", str(CAPTAIN_HZ), "--seconds", "90",
    )  # fmt: skip
    try:
        await until(lambda: ua.first("call", state="CONFIRMED"), 20, "the captain's softphone call to be answered")
        await until(lambda: _coached(controller, cid).get(sid) == "listen", 15, "the dashboard to show the coaching")
        coach_bridge = await ari.get(f"bridges/pb-coach-{coach['coach_id']}")
        chans = [await ari.get(f"channels/{ch}") for ch in coach_bridge["channels"]]
        (cap_chan,) = [c["id"] for c in chans if c["name"].startswith(f"PJSIP/{sip['username']}-")]

        # Toll fraud: the same account dialling a voter, another caller's code, an extension, abroad, while its
        # leg is up, is hung up; nothing is dialled, no other bridge gets anything.
        before = {c["id"] for c in await ari.get("channels")}
        for target in (voter.digits, other["code"], "callin", "9011441234567"):
            rogue = Softphone(sip["sip_server"], sip["username"], sip["password"], "--call", target, "--seconds", "4")
            try:
                events = await rogue.finish(30)
            finally:
                rogue.kill()
            assert not any(e["event"] == "call" and e["state"] == "CONFIRMED" for e in events), (target, events)
        assert {c["id"] for c in await ari.get("channels")} == before, "nothing was dialled, nothing is left over"
        assert len(store.calls(cid)) == 1, "no voter call was placed"
        assert store.session(other["id"])["channel_id"] is None  # type: ignore[index]
        vol_bridge = await ari.get(f"bridges/{store.session(sid)['bridge_id']}")  # type: ignore[index]
        assert len(vol_bridge["channels"]) == 2, "the caller's bridge holds the caller and the voter only"

        await asyncio.sleep(6)  # listening
        listened_to = read_wav_samples(vol_leg.heard_wav)[0].size
        voter_file = sorted(pbx.rt.host_path(f"{pbx.rt.sim_dir}/vm").glob(f"heard-{voter.digits}-*-in.wav"))[-1]
        before_barge = read_wav_samples(voter_file)[0].size
        assert controller.call("POST", f"/api/efforts/{cid}/coach", {"mode": "barge"})[0] == 200
        await until(lambda: _coached(controller, cid)[sid] == "barge", 10, "barge on the dashboard")
        await asyncio.sleep(5)
        # Back to listening, live: the same leg leaves the caller's bridge; no new call from the softphone.
        assert controller.call("POST", f"/api/efforts/{cid}/coach", {"mode": "listen"})[0] == 200
        await until(lambda: _coached(controller, cid)[sid] == "listen", 10, "listen again on the dashboard")
        back_to_listen = read_wav_samples(voter_file)[0].size
        await asyncio.sleep(6)
        assert len([e for e in ua.events if e["event"] == "call" and e["state"] == "CONFIRMED"]) == 1
        assert not ua.first("ended"), "the captain's leg stayed up through the switches"
        after_listen = read_wav_samples(voter_file)[0].size
        vol_bridge = await ari.get(f"bridges/{store.session(sid)['bridge_id']}")  # type: ignore[index]
        assert len(vol_bridge["channels"]) == 2, "the captain left the caller's bridge"

        # The captain hangs up: the call goes on, the account is gone.
        await ari.delete(f"channels/{cap_chan}")
        await until(lambda: _coached(controller, cid)[sid] == "", 15, "the coaching to end")
        await ua.finish(30)  # the softphone saw the hang-up and closed its recording
    finally:
        ua.kill()
    await asyncio.sleep(1)
    view = controller.call("GET", f"/api/sessions/{sid}")[1]
    assert view["state"] == "talking" and view["call_id"] == call["id"]
    assert store.call(call["id"])["ended_at"] is None  # type: ignore[index]
    await ari.post("asterisk/variable", variable="PB_SIM_HEARD", value="")
    assert await register_code(sip["sip_server"], sip["username"], sip["password"]) != 200, "account revoked"

    cap, cap_rate = read_wav_samples(heard)
    heard_voter, heard_volunteer = tone_ratio(cap, cap_rate, VOTER_HZ), tone_ratio(cap, cap_rate, VOLUNTEER_HZ)
    assert heard_voter > HEARD, "the captain did not hear the voter"
    assert heard_volunteer > HEARD, "the captain did not hear the volunteer"
    vol_all, rate = read_wav_samples(vol_leg.heard_wav)
    assert tone_ratio(vol_all[:listened_to], rate, CAPTAIN_HZ) < NOT_HEARD, "the volunteer heard a listening captain"
    voter_all, rate = read_wav_samples(voter_file)
    assert tone_ratio(voter_all[:before_barge], rate, VOLUNTEER_HZ) > HEARD
    assert tone_ratio(voter_all[:before_barge], rate, CAPTAIN_HZ) < NOT_HEARD, "the voter heard a listening captain"
    barged = tone_ratio(voter_all[before_barge:back_to_listen], rate, CAPTAIN_HZ)
    assert barged > HEARD, "the barge did not reach the voter"
    # After the switch back: the recording's size lags what Asterisk heard by up to one 32 KiB write (2 s), so
    # from 3 s on. The volunteer's steady tone alone leaves tone_ratio's median near zero (any bin looks loud), so
    # this part is measured against the volunteer's tone instead: while barging the two are alike.
    after = voter_all[back_to_listen + 3 * rate : after_listen + 2 * rate]  # the captain was still on the line
    assert after.size >= 2 * rate, "too little of the voter's recording after the switch back"
    barge_rel = relative_power(voter_all[before_barge:back_to_listen], rate, CAPTAIN_HZ, VOLUNTEER_HZ)
    relistened = relative_power(after, rate, CAPTAIN_HZ, VOLUNTEER_HZ)
    assert barge_rel > 1e-2, "the barge was not heard beside the volunteer"
    assert relistened < 1e-4, "the voter still heard the captain after the switch back to listen"
    print(
        f"softphone captain heard voter {heard_voter:.0f}, volunteer {heard_volunteer:.0f}; voter heard captain "
        f"listening {tone_ratio(voter_all[:before_barge], rate, CAPTAIN_HZ):.1f}, barging {barged:.0f}, "
        f"(against the volunteer {barge_rel:.2g}), listening again {relistened:.2g}"
    )
    store.close()


async def test_browser_captain_joins_from_the_dashboard_and_hears_the_call(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient, tmp_path: Path
) -> None:
    """A captain coaches from the results dashboard with computer audio (headless Chromium, JsSIP over WSS, as in
    tests/test_e2e_webrtc.py): picks the caller, "This browser", Listen; their leg joins the coaching and the page
    hears the voter's and the volunteer's tones; Stop ends the coaching and the call goes on."""
    from playwright.async_api import async_playwright, expect

    from phonebank import webrtc_drill
    from store import users as u
    from tests.test_e2e_webrtc import HEAR_TONE_JS

    voter = SimNumber(day_number(1852), "human", ring_s=1, talk_s=90, tone_hz=VOTER_HZ, audio="human-hello-1")
    pbx.load_sim([voter])
    store = Store(pbx.settings.db_path)
    cid = int(store.create_campaign("Coaching from the browser", ring_timeout_s=15, wrapup_limit_s=120)["id"])
    volunteer_tone = stage_file(pbx.rt, tone_wav(tmp_path / "vol.wav", VOLUNTEER_HZ, 100), "coach-br-vol.wav")
    status, session = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Vera"})
    assert status == 201, session
    sid = session["id"]
    await drill.volunteer(
        ari, pbx.rt, session["code"], stay_s=150, later_keys="5", later_keys_after_s=0.5, say=volunteer_tone
    )
    await until(lambda: controller.call("GET", f"/api/sessions/{sid}")[1]["phone_connected"], 20, "volunteer joins")
    store.add_contacts(cid, [{"first_name": "Val", "last_name": "Voter", "phone": voter.number}])
    await until(
        lambda: controller.call("GET", f"/api/sessions/{sid}")[1]["state"] == "talking", 30, "voter put through"
    )
    (call,) = store.calls(cid)
    password = "captain-browser-password"
    u.create_user(store, f"captain-{cid}", password, "manager", name="Cora Captain")
    hear_js = HEAR_TONE_JS.replace('"webphone-audio"', '"coach-audio"')

    async with async_playwright() as pw:
        browser = await webrtc_drill.launch(pw, webrtc_drill.make_mic_wav(tmp_path / "mic.wav"))
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{controller.api}/login")
            await page.fill("input[name=username]", f"captain-{cid}")
            await page.fill("input[name=password]", password)
            await page.click("button[type=submit]")
            await page.goto(f"{controller.api}/admin/efforts/{cid}/results")
            await page.select_option("#coach-session", str(sid))
            await page.check("input[name=audio][value=webrtc]")
            await page.click("#coach-form button[value=listen]")
            status_line = page.locator("#coach-status")
            await expect(status_line).to_contain_text("Connected: you are on the call", timeout=30000)
            await until(lambda: _coached(controller, cid).get(sid) == "listen", 10, "the coaching on the dashboard")
            (coaching,) = [b for b in await ari.get("bridges") if b["id"].startswith("pb-coach-")]
            names = [(await ari.get(f"channels/{ch}"))["name"] for ch in coaching["channels"]]
            assert any(n.startswith("PJSIP/pbsipc") for n in names), names

            heard: dict[int, float] = {}
            for hz in (VOTER_HZ, VOLUNTEER_HZ):
                deadline = asyncio.get_running_loop().time() + 25
                heard[hz] = 0.0
                while asyncio.get_running_loop().time() < deadline and heard[hz] < 100:
                    heard[hz] = await page.evaluate(hear_js, [hz, 1500])
            assert heard[VOTER_HZ] >= 100, f"the browser captain did not hear the voter: {heard}"
            assert heard[VOLUNTEER_HZ] >= 100, f"the browser captain did not hear the volunteer: {heard}"
            assert await page.evaluate(hear_js, [1234, 1000]) < 100  # not fooled by broadband noise

            await page.click("#coach-stop")
            await expect(status_line).to_have_text("Coaching ended.", timeout=10000)
            await until(lambda: _coached(controller, cid).get(sid) == "", 10, "the coaching to end")
        finally:
            await browser.close()
    view = controller.call("GET", f"/api/sessions/{sid}")[1]
    assert view["state"] == "talking" and view["call_id"] == call["id"]
    assert not [b for b in await ari.get("bridges") if b["id"].startswith("pb-coach-")]
    print(f"browser captain heard voter {heard[VOTER_HZ]:.0f}, volunteer {heard[VOLUNTEER_HZ]:.0f}")
    store.close()
