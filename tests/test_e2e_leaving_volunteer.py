"""A volunteer leaving while a voter's phone rings for them, on the real Asterisk (issue 13, item 2): Stop right
after Save & Next cancels the ringing call and puts the contact back, nobody is abandoned; with a second volunteer
still there, the line rings on and its answer goes to them."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.ari import AriClient
from callin import drill
from phonebank.harness import ControllerProcess, Pbx, day_number, until
from phonebank.sim import SimNumber
from store.db import Store

pytestmark = pytest.mark.asterisk


def session_view(ctl: ControllerProcess, sid: int) -> dict[str, Any]:
    status, view = ctl.call("GET", f"/api/sessions/{sid}")
    assert status == 200, view
    return view


async def join(ctl: ControllerProcess, ari: AriClient, pbx: Pbx, cid: int, name: str) -> int:
    status, session = ctl.call("POST", "/api/sessions", {"campaign_id": cid, "name": name})
    assert status == 201, session
    await drill.volunteer(ari, pbx.rt, session["code"], stay_s=600)
    sid = int(session["id"])
    await until(lambda: session_view(ctl, sid)["state"] == "idle", 30, f"{name} on the line, waiting")
    return sid


async def test_stop_right_after_save_and_next_cancels_the_ringing_call(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient
) -> None:
    first = SimNumber(day_number(5100), "human", ring_s=1, talk_s=60, tone_hz=2900)
    # Answers 9 s after it starts ringing: the case the rehearsal found abandoned.
    second = SimNumber(day_number(5101), "human", ring_s=9, talk_s=30, tone_hz=3000)
    pbx.load_sim([first, second])
    store = Store(pbx.settings.db_path)
    cid = int(
        store.create_campaign(
            "Stop cancels", org_name="Org", callback_number="2025550100", ring_timeout_s=30, amd_mode="off"
        )["id"]
    )
    sid = await join(controller, ari, pbx, cid, "Lee")
    store.add_contacts(
        cid, [{"first_name": "First", "phone": first.number}, {"first_name": "Second", "phone": second.number}]
    )

    talking = await until(
        lambda: (v := session_view(controller, sid))["state"] == "talking" and v, 30, "the first voter"
    )
    # Save & Next while talking: the first call ends, the second number is dialled at once.
    status, saved = controller.call("POST", f"/api/sessions/{sid}/disposition", {"code": "supporter"})
    assert status == 201, saved

    def ringing_second() -> dict[str, Any] | None:
        rows = [c for c in store.calls(cid) if c["id"] != talking["call_id"]]
        return rows[0] if rows and rows[0]["ringing_at"] and not rows[0]["ended_at"] else None

    call = await until(ringing_second, 15, "the second voter's phone ringing")
    status, _ = controller.call("POST", f"/api/sessions/{sid}/stop")
    assert status == 200

    ended = await until(lambda: (c := store.call(call["id"])) and c["ended_at"] and c, 10, "the ringing call ended")
    assert ended["outcome"] == "cancelled" and not ended["abandoned"]
    assert ended["answered_at"] is None, "hung up before the voter answered"
    contact = store.contact(int(call["contact_id"]))
    assert contact is not None
    assert contact["status"] == "pending" and contact["attempts"] == 0, "back in the queue, no attempt spent"
    # Past the moment the voter would have answered: still nobody abandoned, nothing else dialled.
    await until(lambda: session_view(controller, sid)["status"] == "ended", 10, "the session to end")
    assert store.campaign_stats(cid)["abandoned"] == 0
    assert len(store.calls(cid)) == 2
    store.close()


async def test_one_of_two_stops_and_the_answer_goes_to_the_other(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient
) -> None:
    voter = SimNumber(day_number(5200), "human", ring_s=8, talk_s=20, tone_hz=3100)
    pbx.load_sim([voter])
    store = Store(pbx.settings.db_path)
    cid = int(
        store.create_campaign(
            "One stops", org_name="Org", callback_number="2025550100", ring_timeout_s=30, amd_mode="off"
        )["id"]
    )
    lee = await join(controller, ari, pbx, cid, "Lee")
    sam = await join(controller, ari, pbx, cid, "Sam")
    # One number for two idle volunteers: one line out.
    store.add_contacts(cid, [{"first_name": "Only", "phone": voter.number}])
    call = await until(
        lambda: (rows := store.calls(cid)) and rows[0]["ringing_at"] and rows[0], 15, "the voter's phone ringing"
    )
    status, _ = controller.call("POST", f"/api/sessions/{lee}/stop")
    assert status == 200

    took = await until(
        lambda: (v := session_view(controller, sam))["state"] == "talking" and v,
        20,
        "the answer put through to the volunteer still there",
    )
    assert took["call_id"] == call["id"]
    row = store.call(call["id"])
    assert row is not None and row["outcome"] != "cancelled" and not row["abandoned"]
    assert row["session_id"] == sam
    assert session_view(controller, lee)["status"] == "ended"
    assert store.campaign_stats(cid)["abandoned"] == 0
    store.close()
