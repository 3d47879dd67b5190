"""The call path end to end on the real Asterisk: drilled volunteers call in, the dialer calls simulated
voters, AMD judges, live answers are bridged and their audio reaches the volunteer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bridge.ari import AriClient
from callin import drill
from callin.entry import CODE_LENGTH
from phonebank.harness import ControllerProcess, Pbx, day_number, db_rows, read_wav_samples, tone_ratio, until
from phonebank.sim import SimNumber, stage_file
from store.db import Store

pytestmark = pytest.mark.asterisk


class Volunteers:
    """Plays the volunteers' browsers: posts a disposition whenever a volunteer is in wrap-up."""

    def __init__(self, ctl: ControllerProcess, session_ids: list[int]) -> None:
        self.ctl = ctl
        self.session_ids = session_ids
        self.disposed: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            for sid in self.session_ids:
                status, view = await asyncio.to_thread(self.ctl.call, "GET", f"/api/sessions/{sid}")
                if status == 200 and view["state"] == "wrapup":
                    status, saved = await asyncio.to_thread(
                        self.ctl.call,
                        "POST",
                        f"/api/sessions/{sid}/disposition",
                        {"code": "supporter", "answers": {"Will you vote?": "Yes"}, "notes": f"from {sid}"},
                    )
                    assert status == 201, saved
                    self.disposed.append(view["call_id"])
            await asyncio.sleep(0.3)

    def __enter__(self) -> Volunteers:
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def make_campaign(store: Store, name: str, numbers: list[SimNumber], **settings: Any) -> int:
    campaign = store.create_campaign(
        name,
        org_name="Fair Votes",
        callback_number="2025550100",
        ring_timeout_s=15,
        recycle_busy_s=600,
        recycle_noanswer_s=900,
        recycle_machine_s=1200,
        **settings,
    )
    store.add_contacts(
        campaign["id"],
        [
            {
                "first_name": f"Voter{i}",
                "last_name": n.behaviour,
                "phone": n.number,
                "city": "Washington",
                "state": "DC",
                "zip": "20001",
                "extra": {"behaviour": n.behaviour},
            }
            for i, n in enumerate(numbers)
        ],
    )
    return int(campaign["id"])


async def test_call_path_end_to_end(pbx: Pbx, controller: ControllerProcess, ari: AriClient) -> None:
    humans = [
        SimNumber(
            day_number(1100 + i),
            "human",
            ring_s=2,
            talk_s=5,
            tone_hz=2700 + 70 * i,
            audio="human-hello-1" if i % 2 else "human-hello-2",
        )
        for i in range(5)
    ]
    machines = [SimNumber(day_number(1200 + i), "machine", ring_s=2, audio="machine-greeting-2") for i in range(3)]
    busy = [SimNumber(day_number(1300 + i), "busy", ring_s=1) for i in range(2)]
    noanswer = [SimNumber(day_number(1400 + i), "noanswer") for i in range(2)]
    unallocated = [SimNumber(day_number(1500 + i), "unallocated") for i in range(2)]
    # Phase two: more live answers at once than volunteers, to force abandons.
    rush = [
        SimNumber(day_number(1600 + i), "human", ring_s=2, talk_s=4, tone_hz=3100 + 70 * i, audio="human-hello-1")
        for i in range(4)
    ]
    phase_one = humans + machines + busy + noanswer + unallocated
    pbx.load_sim(phase_one + rush)
    # A recording named after a number is what that number says when it answers.
    sim_dir = pbx.rt.host_path(pbx.rt.sim_dir)
    (sim_dir / f"{humans[1].digits}.wav").write_bytes((sim_dir / "human-hello-3.wav").read_bytes())

    store = Store(pbx.settings.db_path)
    voicemail = stage_file(pbx.rt, pbx.rt.host_path(pbx.rt.sim_dir) / "voicemail-demo.wav", "vm-e2e.wav")
    cid = make_campaign(store, "E2E", phase_one, machine_action="voicemail", voicemail_media=voicemail, max_attempts=3)

    # Two volunteers sign up; a third caller keys a wrong code.
    sessions = []
    for name in ("Ana", "Ben"):
        status, body = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": name})
        assert status == 201, body
        assert len(body["code"]) == CODE_LENGTH and body["callin_number"]
        sessions.append(body)
    drills = [await drill.volunteer(ari, pbx.rt, s["code"], stay_s=600) for s in sessions]
    wrong = await drill.volunteer(ari, pbx.rt, "0" * CODE_LENGTH, stay_s=600)

    def joined() -> bool:
        return all(controller.call("GET", f"/api/sessions/{s['id']}")[1]["phone_connected"] for s in sessions)

    await until(joined, 20, "both volunteers to join")

    def phase_done(numbers: list[SimNumber]) -> bool:
        phones = {n.number for n in numbers}
        rows = [c for c in store.contacts(cid) if c["phone"] in phones]
        live = store.live_calls()
        return (
            len(rows) == len(phones)
            and not live
            and all(
                c["status"] in ("done", "removed", "exhausted") or (c["status"] == "pending" and c["attempts"] >= 1)
                for c in rows
            )
        )

    with Volunteers(controller, [s["id"] for s in sessions]) as vols:
        await until(lambda: phase_done(phase_one), 240, "phase one to finish")
        # Power 3:1 and four people answering at the same moment: two must be abandoned.
        store.update_campaign(cid, dial_ratio=3.0)
        await asyncio.sleep(4)  # the controller reloads campaign settings every 3 s
        store.add_contacts(cid, [{"first_name": f"Rush{i}", "phone": n.number} for i, n in enumerate(rush)])
        await until(lambda: phase_done(phase_one + rush), 90, "phase two to finish")
        await until(
            lambda: all(controller.call("GET", f"/api/sessions/{s['id']}")[1]["state"] == "idle" for s in sessions),
            20,
            "volunteers back to idle",
        )
        disposed = list(vols.disposed)

    # The volunteers leave; their recordings close.
    for s in sessions:
        status, _ = controller.call("POST", f"/api/sessions/{s['id']}/stop")
        assert status == 200
    prefixes = tuple(d.drill_id for d in drills)
    for _ in range(40):
        if not any(ch["id"].startswith(prefixes) for ch in await ari.get("channels")):
            break
        await asyncio.sleep(0.25)
    else:
        raise AssertionError("volunteer legs still up after stop")
    await asyncio.sleep(2)

    calls = {c["id"]: c for c in store.calls(cid)}
    contacts = {c["id"]: c for c in store.contacts(cid)}
    by_phone = {c["phone"]: c for c in contacts.values()}
    call_of = {}
    for call in calls.values():
        call_of.setdefault(contacts[call["contact_id"]]["phone"], []).append(call)

    # Every number was dialled; every attempt has its timestamps and cause.
    assert set(by_phone) == {n.number for n in phase_one + rush}
    for call in calls.values():
        assert call["originated_at"] and call["ended_at"] and call["outcome"], call
        assert call["hangup_cause"] is not None

    # Live answers: bridged to a volunteer, or abandoned — never both, never neither.
    human_calls = [c for c in calls.values() if c["amd_status"] == "HUMAN"]
    assert len(human_calls) == len(humans) + len(rush)
    connected = [c for c in human_calls if c["bridged_at"]]
    abandoned = [c for c in human_calls if c["abandoned"]]
    assert len(connected) + len(abandoned) == len(human_calls)
    assert not [c for c in connected if c["abandoned"]]
    assert all(c["session_id"] in {s["id"] for s in sessions} for c in connected)
    assert all(c["outcome"] == "connected" for c in connected)
    assert {c["id"] for c in calls.values() if contacts[c["contact_id"]]["phone"] in {n.number for n in humans}} <= {
        c["id"] for c in connected
    }, "with one line per idle volunteer no live answer may be abandoned"
    assert len(abandoned) >= 1, "four answers for two volunteers must abandon some"
    assert all(c["outcome"] == "abandoned" and c["session_id"] is None for c in abandoned)
    for c in connected:
        assert c["bridged_at"] - c["amd_decided_at"] < 2.0, "compliance: connect within 2 s"
    asterisk_log = pbx.rt.host_path(f"{pbx.rt.inst}/log/messages.log").read_text(errors="replace")
    assert f"Playing '{pbx.rt.sounds_dir}/abandon-{cid}." in asterisk_log, "abandon message not played"
    assert f"Playing '{pbx.rt.sim_dir}/{humans[1].digits}." in asterisk_log, "per-number recording not used"
    stats = store.campaign_stats(cid)
    assert stats["abandoned"] == len(abandoned) and stats["connected"] == len(connected)

    # Audio really crossed: each voter's signature tone is in the recording of the volunteer they reached,
    # and the abandoned voters' tones are in nobody's.
    tone_of = {n.number: n.tone_hz for n in humans + rush}
    heard = {s["id"]: read_wav_samples(d.heard_wav) for s, d in zip(sessions, drills, strict=True)}
    for c in connected:
        samples, rate = heard[c["session_id"]]
        ratio = tone_ratio(samples, rate, tone_of[contacts[c["contact_id"]]["phone"]])
        assert ratio > 5000, f"voter tone not heard by volunteer {c['session_id']}: ratio {ratio:.1f}"
    for c in abandoned:
        for samples, rate in heard.values():
            assert tone_ratio(samples, rate, tone_of[contacts[c["contact_id"]]["phone"]]) < 2000

    # Machines: never bridged, voicemail left after the greeting, and the message is on the machine's tape.
    machine_calls = [c for c in calls.values() if contacts[c["contact_id"]]["phone"] in {n.number for n in machines}]
    assert len(machine_calls) == len(machines)
    for c in machine_calls:
        assert c["amd_status"] == "MACHINE" and c["bridged_at"] is None and c["session_id"] is None
        assert c["outcome"] == "voicemail_left" and c["voicemail_left"] == 1
    tapes = list((pbx.rt.host_path(pbx.rt.sim_dir) / "vm").glob(f"{day_number(1)[1:-4]}1*.wav"))
    assert len([t for t in tapes if t.stat().st_size > 8000 * 2 * 3]) >= len(machines)

    # Busy and no answer: recorded and scheduled for retry; unallocated: removed.
    for n in busy:
        (c,) = call_of[n.number]
        assert c["outcome"] == "busy" and c["hangup_cause"] == 17
        assert by_phone[n.number]["status"] == "pending" and by_phone[n.number]["next_attempt_at"] > time.time() + 300
    for n in noanswer:
        (c,) = call_of[n.number]
        assert c["outcome"] == "no_answer" and c["answered_at"] is None
        assert c["ended_at"] - c["originated_at"] >= 14.5, "compliance: ring at least 15 s"
        assert by_phone[n.number]["status"] == "pending" and by_phone[n.number]["next_attempt_at"] > time.time() + 600
    for n in unallocated:
        (c,) = call_of[n.number]
        assert c["outcome"] == "unallocated" and c["hangup_cause"] == 1
        assert by_phone[n.number]["status"] == "removed"

    # Every connected call got its disposition, with the survey answer.
    dispositions = store.dispositions(cid)
    assert sorted(d["call_id"] for d in dispositions) == sorted(c["id"] for c in connected)
    assert sorted(disposed) == sorted(c["id"] for c in connected)
    for d in dispositions:
        assert store.answers(d["id"]) == {"Will you vote?": "Yes"}
        assert contacts[d["contact_id"]]["status"] == "done"

    # Legs: every voter leg and both volunteer legs are recorded with their times.
    legs = db_rows(pbx.settings.db_path, "SELECT * FROM legs")
    voter_legs = {leg["channel_id"] for leg in legs if leg["kind"] == "voter"}
    assert set(calls) <= voter_legs
    vol_legs = [leg for leg in legs if leg["kind"] == "volunteer" and leg["session_id"] in {s["id"] for s in sessions}]
    assert len(vol_legs) == 2 and all(leg["answered_at"] and leg["bridged_at"] for leg in vol_legs)

    # The wrong code never joined anything and was sent away after three tries.
    wrong_leg = await until(
        lambda: [
            leg
            for leg in db_rows(
                pbx.settings.db_path,
                "SELECT * FROM legs WHERE channel_id = ?",
                (wrong.channel_id.replace("-leg", "-leg;2"),),
            )
            if leg["ended_at"]
        ],
        40,
        "the wrong-code caller to be hung up",
    )
    assert wrong_leg[0]["session_id"] is None
    store.close()
