"""The carrier fails (issue 11, §2), on the real Asterisk: the PBX reaches a carrier — a second Asterisk instance
(phonebank.carrier) — over the SIP trunk as ops configure it (digest auth, registration). First the carrier answers
every call with 503, then it stops answering at all. Calls fail before their ring timeout, are recorded
``trunk_failed`` (never ``no_answer`` or ``congestion`` against the voter), the voters' attempts are given back,
the dialer pauses after three failures in a row and then probes one call at a time, and the volunteer's screen
(and the dashboard, the same bridge.waiting reason) says the trunk is down."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.ari import AriClient
from bridge.dialer import TRUNK_BACKOFF_S
from bridge.waiting import TRUNK_FAILURES
from callin import drill
from phonebank import sim
from phonebank.carrier import Carrier
from phonebank.harness import ControllerProcess, Pbx, day_number, until, wait_until
from store.db import Store

pytestmark = pytest.mark.asterisk

RING_TIMEOUT_S = 15  # the store's minimum (compliance)
VOTERS = 12


@pytest.fixture
def trunked(tmp_path: Path) -> Iterator[tuple[Carrier, Pbx]]:
    base = 40000 + (os.getpid() % 10) * 2000
    carrier = Carrier.start(tmp_path / "carrier", f"tcar{os.getpid()}", rtp_start=base)
    pbx: Pbx | None = None
    try:
        pbx = Pbx.start(
            tmp_path / "pbx",
            f"ttrk{os.getpid()}",
            extra_env={
                **carrier.trunk_env(),
                "PHONEBANK_RTP_START": str(base + 1000),
                "PHONEBANK_RTP_END": str(base + 1998),
            },
        )
        wait_until(carrier.registered, 30, 0.5, "the PBX's registration at the carrier")
        yield carrier, pbx
    finally:
        if pbx is not None:
            pbx.stop()
        try:
            carrier.stop()
        except Exception:  # already stopped by the test
            pass


async def test_a_failing_carrier_is_not_the_voters_fault(trunked: tuple[Carrier, Pbx], tmp_path: Path) -> None:
    carrier, pbx = trunked
    numbers = [day_number(6100 + i) for i in range(VOTERS)]
    # 503 Service Unavailable for every call (Q.850 34 on the PBX's side), straight away.
    carrier.load([sim.SimNumber(n, "congestion", ring_s=0) for n in numbers])
    store = Store(pbx.settings.db_path)
    cid = int(
        store.create_campaign(
            "Carrier down",
            org_name="Org",
            callback_number="2025550100",
            amd_mode="ours",
            ring_timeout_s=RING_TIMEOUT_S,
            max_attempts=3,
            status="paused",
        )["id"]
    )
    store.add_contacts(cid, [{"phone": n} for n in numbers])
    ctl = ControllerProcess(pbx, tmp_path / "controller.log")
    ctl.start()
    user, password = pbx.ari_credentials()
    try:
        status, session = ctl.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Ana"})
        assert status == 201, session
        async with AriClient(pbx.rt.ari_url(), user, password, "carrier-fault") as ari:
            await drill.volunteer(ari, pbx.rt, session["code"], stay_s=300)
        await until(
            lambda: ctl.call("GET", f"/api/sessions/{session['id']}")[1]["state"] == "idle",
            20,
            "the volunteer on the line",
        )
        store.update_campaign(cid, status="active")

        def calls() -> list[dict[str, Any]]:
            return [
                dict(r)
                for r in store.conn.execute(
                    "SELECT * FROM calls WHERE campaign_id = ? ORDER BY originated_at", (cid,)
                ).fetchall()
            ]

        def ended() -> list[dict[str, Any]]:
            return [c for c in calls() if c["ended_at"] and c["outcome"]]

        await until(lambda: len(ended()) >= TRUNK_FAILURES, 20, "three calls failed by the carrier")
        for c in ended():
            assert c["outcome"] == "trunk_failed", c
            assert c["ended_at"] - c["originated_at"] < RING_TIMEOUT_S, "failed by the carrier, not our timeout"

        def waiting() -> dict[str, Any] | None:
            view = ctl.call("GET", f"/api/sessions/{session['id']}")[1]
            return view.get("waiting")

        w = await until(lambda: (w := waiting()) and w["code"] == "trunk_down" and w, 10, "the trunk-down reason")
        assert "carrier" in w["text"] and "congestion" in w["text"]
        # The dialer backs off: nothing placed during the pause (a 503 comes back at once: without the pause the
        # volunteer's one line would go through the whole list in a second or two).
        placed = len(calls())
        await asyncio.sleep(TRUNK_BACKOFF_S * 0.6)
        assert len(calls()) == placed, "no call placed while the dialer backs off"

        # The trunk stops answering at all.
        carrier.stop()
        stopped_at = time.time()

        def late() -> list[dict[str, Any]]:
            return [c for c in ended() if c["originated_at"] > stopped_at]

        await until(
            lambda: late(),
            2 * TRUNK_BACKOFF_S + RING_TIMEOUT_S + 25,
            "a call placed after the carrier went silent to fail",
        )
        # No 503 now, no response at all: the probe is failed by its ring timeout (never having rung), or at once
        # once the trunk's qualify has marked the carrier unreachable.
        assert all(c["outcome"] == "trunk_failed" for c in late()), late()
        assert all(c["ended_at"] - c["originated_at"] <= RING_TIMEOUT_S + 2 for c in late()), late()
        out = [c for c in calls() if c["originated_at"] > stopped_at and not c["ended_at"]]
        assert len(out) <= 1, "still one probe at a time"

        # Nothing was held against the voters: no attempt spent, no outcome, nobody exhausted or put off.
        contacts = store.conn.execute("SELECT * FROM contacts WHERE campaign_id = ?", (cid,)).fetchall()
        for contact in contacts:
            assert contact["last_outcome"] is None, dict(contact)
            if contact["status"] != "dialing":  # a probe may be out
                assert contact["status"] == "pending" and contact["attempts"] == 0, dict(contact)
                assert not contact["next_attempt_at"], dict(contact)
        outcomes = {c["outcome"] for c in ended()}
        assert outcomes == {"trunk_failed"}, outcomes
        w = waiting()
        assert w is not None and w["code"] in ("trunk_down", "dialing"), w  # "dialing" while a probe is out
    finally:
        ctl.stop()
        store.close()
