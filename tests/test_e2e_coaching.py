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
    assert set(coach) == {"coach_id", "code", "mode", "session_id", "callin_number"}  # no voter in sight
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
