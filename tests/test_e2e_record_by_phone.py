"""An admin records the effort's voicemail by phone, on the real Asterisk: the settings page gives a code, a
drilled phone calls in, keys it, speaks after the beep and presses #; the message becomes the effort's
voicemail and is a real recording of what was said."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from bridge.ari import AriClient
from callin import drill
from phonebank.harness import ControllerProcess, Pbx, read_wav_samples, until
from store import recordings
from store.db import Store

pytestmark = pytest.mark.asterisk


async def test_voicemail_recorded_by_phone(pbx: Pbx, controller: ControllerProcess, ari: AriClient) -> None:
    store = Store(pbx.settings.db_path)
    cid = store.create_campaign("Record by phone", status="draft", machine_action="hangup")["id"]
    # The admin's "Record by phone" button makes this code (the page is tested in tests/test_panel_admin.py).
    code = recordings.request(store, cid)["code"]
    assert re.fullmatch(r"[1-9]\d{9}", code)
    speech = f"{pbx.rt.sim_dir}/voicemail-demo"
    leg = await drill.volunteer(ari, pbx.rt, code, stay_s=30, later_keys="#", later_keys_after_s=1.5, say=speech)
    campaign = await until(
        lambda: (c := store.campaign(cid)) and c["voicemail_media"] and c,
        40,
        "the recorded message to become the effort's voicemail",
    )
    assert campaign["machine_action"] == "voicemail"
    media = campaign["voicemail_media"]
    assert media.startswith(f"{pbx.rt.inst}/spool/recording/pb-rec-{code}-")
    samples, rate = read_wav_samples(pbx.rt.host_path(media + ".wav"))
    said, said_rate = read_wav_samples(pbx.rt.host_path(speech + ".wav"))
    seconds = len(samples) / rate
    # What was said (minus the beep's start and the # at the end) is on the recording, and it is not silence.
    assert seconds >= 0.8 * len(said) / said_rate, (seconds, len(said) / said_rate)
    assert float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) > 300
    # The code is spent: keyed again it is just a wrong code.
    assert recordings.pending(store, code) is None

    # The caller hears "message saved" and is sent off: the phone leg ends by itself.
    async def gone() -> bool:
        return leg.channel_id not in {c["id"] for c in await ari.get("channels")}

    for _ in range(60):
        if await gone():
            break
        await asyncio.sleep(0.25)
    else:
        raise AssertionError("the recording call was not ended after the message was saved")
    store.close()
