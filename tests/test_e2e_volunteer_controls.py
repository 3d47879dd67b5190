"""A volunteer's controls on the real Asterisk: end the voter's call by keypad and by API, the wrap-up limit
pausing them without dropping their line, resume, pause after the call, stop."""

from __future__ import annotations

import pytest

from bridge.ari import AriClient
from callin import drill
from phonebank.harness import ControllerProcess, Pbx, day_number, until
from phonebank.sim import SimNumber
from store.db import Store

pytestmark = pytest.mark.asterisk


async def test_volunteer_controls(pbx: Pbx, controller: ControllerProcess, ari: AriClient) -> None:
    voters = [SimNumber(day_number(4100 + i), "human", ring_s=1, talk_s=40, tone_hz=2800 + 40 * i) for i in range(3)]
    pbx.load_sim(voters)
    store = Store(pbx.settings.db_path)
    # app_amd stays selectable per effort: this effort uses it, so it runs live here too.
    cid = store.create_campaign("Controls", ring_timeout_s=15, wrapup_limit_s=2, amd_mode="app_amd")["id"]
    store.add_contacts(cid, [{"first_name": f"C{i}", "phone": n.number} for i, n in enumerate(voters)])
    status, session = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Lee"})
    assert status == 201
    sid = session["id"]

    def view() -> dict[str, object]:
        return controller.call("GET", f"/api/sessions/{sid}")[1]

    def state_is(state: str) -> dict[str, object] | None:
        v = view()
        return v if v["state"] == state else None

    # The simulated phone presses * twelve seconds after its code: by then it is talking to the first voter.
    await drill.volunteer(ari, pbx.rt, session["code"], stay_s=600, later_keys="*", later_keys_after_s=12)
    first = await until(lambda: state_is("talking"), 30, "the first voter")
    await until(lambda: state_is("wrapup"), 25, "the keypad * to end the call")
    call = store.call(str(first["call_id"]))
    assert call is not None and call["outcome"] == "connected" and call["amd_cause"].startswith("HUMAN-")
    assert call["ended_at"] - call["bridged_at"] < 30, "ended by the volunteer, not by the voter's 40 s"

    # No disposition: after the 2 s wrap-up limit the volunteer is paused, and still on the line.
    paused = await until(lambda: state_is("paused"), 10, "the wrap-up limit")
    assert paused["state_reason"] == "wrapup_timeout" and paused["phone_connected"]
    assert len(store.calls(cid)) == 1, "nothing dialled for a paused volunteer"
    status, _ = controller.call("POST", f"/api/sessions/{sid}/disposition", {"code": "not_home"})
    assert status == 201
    assert view()["state"] == "paused"
    status, resumed = controller.call("POST", f"/api/sessions/{sid}/resume")
    assert status == 200 and resumed["state"] in ("idle", "talking")

    # Second voter: the volunteer ends the call from the API.
    second = await until(
        lambda: (v := state_is("talking")) and v["call_id"] != first["call_id"] and v, 30, "the second voter"
    )
    status, _ = controller.call("POST", f"/api/sessions/{sid}/hangup")
    assert status == 200
    await until(lambda: state_is("wrapup"), 10, "the API hang-up")
    assert store.call(str(second["call_id"]))["outcome"] == "connected"  # type: ignore[index]
    status, _ = controller.call("POST", f"/api/sessions/{sid}/disposition", {"code": "supporter"})
    assert status == 201

    # Third voter: ask to pause after this call, then save: paused, not dialled for.
    third = await until(
        lambda: (v := state_is("talking")) and v["call_id"] != second["call_id"] and v, 30, "the third voter"
    )
    status, _ = controller.call("POST", f"/api/sessions/{sid}/pause")
    assert status == 200 and view()["state"] == "talking"
    status, _ = controller.call("POST", f"/api/sessions/{sid}/disposition", {"code": "undecided"})
    assert status == 201
    await until(lambda: state_is("paused"), 10, "pause after the call")
    await until(lambda: store.call(str(third["call_id"]))["ended_at"], 10, "Save & Next to end the voter's call")

    # Bad requests are refused clearly and change nothing.
    assert controller.call("POST", f"/api/sessions/{sid}/explode")[0] == 404
    assert controller.call("POST", f"/api/sessions/{sid}/disposition", {"code": "nonsense"})[0] == 409
    assert controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": ""})[0] == 400
    assert controller.call("GET", "/api/sessions/99999")[0] == 404

    # Stop: the line is hung up and the session ends.
    status, _ = controller.call("POST", f"/api/sessions/{sid}/stop")
    assert status == 200
    await until(lambda: (v := view())["status"] == "ended" and not v["phone_connected"], 10, "the session to end")
    assert len(store.dispositions(cid)) == 3
    store.close()
