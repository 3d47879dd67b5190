"""Our own answering-machine detector on live calls (amd_mode "ours"): Asterisk streams each answered voter's
audio to the controller over RTP; people are put through, machines get the voicemail message right after
their beep."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bridge.ari import AriClient
from callin import drill
from phonebank.harness import ControllerProcess, Pbx, read_wav_samples, tone_ratio, until
from phonebank.sim import SimNumber, stage_file
from store.db import Store
from tests.test_e2e_call_path import Volunteers

pytestmark = pytest.mark.asterisk

GREETING_S = {"human-hello-1": 0.91, "human-hello-2": 1.20, "human-hello-3": 1.07}
# The simulated callee answers, stays silent for a second, then greets.
LEAD_S = 1.0


async def test_our_detector_on_live_calls(pbx: Pbx, controller: ControllerProcess, ari: AriClient) -> None:
    humans = [SimNumber(f"+1202555{6100 + i}", "human", ring_s=1, talk_s=5, tone_hz=520 + 70 * i, audio=audio)
              for i, audio in enumerate(GREETING_S)]
    machines = [SimNumber(f"+1202555{6200 + i}", "machine", ring_s=1, audio=audio)
                for i, audio in enumerate(("machine-greeting-1", "machine-greeting-2"))]
    pbx.load_sim(humans + machines)
    store = Store(pbx.settings.db_path)
    voicemail = stage_file(pbx.rt, pbx.rt.host_path(pbx.rt.sim_dir) / "voicemail-demo.wav", "vm-ours.wav")
    cid = store.create_campaign("Our AMD", ring_timeout_s=15, amd_mode="ours", machine_action="voicemail",
                                voicemail_media=voicemail)["id"]
    store.add_contacts(cid, [{"first_name": f"O{i}", "phone": n.number} for i, n in enumerate(humans + machines)])
    status, session = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Ora"})
    assert status == 201
    leg = await drill.volunteer(ari, pbx.rt, session["code"], stay_s=600)

    with Volunteers(controller, [session["id"]]):
        await until(lambda: len([c for c in store.calls(cid) if c["ended_at"]]) == len(humans) + len(machines)
                    and not store.live_calls(), 120, "every voter called")
    controller.call("POST", f"/api/sessions/{session['id']}/stop")
    await asyncio.sleep(2)

    calls = {store.contact(c["contact_id"])["phone"]: c for c in store.calls(cid)}  # type: ignore[index]
    heard, rate = read_wav_samples(leg.heard_wav)
    for n in humans:
        c = calls[n.number]
        assert c["amd_status"] == "HUMAN" and c["amd_cause"].startswith("OURS-"), c
        assert c["bridged_at"] and c["outcome"] == "connected"
        assert tone_ratio(heard, rate, n.tone_hz) > 300, "the voter's audio reached the volunteer"
        greeting_end = LEAD_S + GREETING_S[n.audio]
        decided = c["amd_decided_at"] - c["answered_at"]
        print(f"human {n.audio}: decided {decided * 1000:.0f} ms after answer (greeting over at ~"
              f"{greeting_end * 1000:.0f} ms)")
        assert decided < greeting_end + 0.8, "people are judged quickly, before dead air makes them hang up"
    for n in machines:
        c = calls[n.number]
        assert c["amd_status"] == "MACHINE" and c["bridged_at"] is None and c["session_id"] is None, c
        assert c["outcome"] == "voicemail_left" and c["voicemail_left"] == 1
        # The machine records from its beep on: our message must start right there.
        (tape,) = (pbx.rt.host_path(pbx.rt.sim_dir) / "vm").glob(f"{n.digits}-*.wav")
        samples, tape_rate = read_wav_samples(tape)
        loud = np.flatnonzero(np.abs(samples) > 1000)
        assert loud.size, "the voicemail message is on the tape"
        lead = loud[0] / tape_rate
        print(f"machine {n.audio}: message starts {lead * 1000:.0f} ms into the tape (after the beep)")
        assert lead < 0.8
    store.close()
