"""Edge cases of the adapter against a fake ARI (the real-Asterisk tests cover the normal path)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bridge import dialer as d
from bridge.ari_app import Controller
from bridge.commands import NeedContacts
from phonebank.harness import day_number
from store.db import Store
from tests.fakes import FakeAri


async def test_concurrent_dial_requests_never_exceed_the_ratio(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Race")["id"]
    store.add_contacts(cid, [{"phone": day_number(1000 + i)} for i in range(20)])
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store)  # type: ignore[arg-type]
    ctl.refresh_campaigns()
    for sid in range(1, 4):
        ctl.dialer.volunteers[sid] = d.vol.Volunteer(sid, cid, since=float(sid))
    # Three requests computed at the same moment (events and the ticker racing): each is stale by the
    # time it runs, and originates yield to the loop.
    await asyncio.gather(*(ctl.run([NeedContacts(cid, 3)]) for _ in range(3)))
    originates = [c for c in ari.calls if c[0] == "POST" and c[1].startswith("channels/pbc-")]
    assert len(originates) == 3
    assert len(store.calls(cid)) == 3
    assert sum(1 for c in store.contacts(cid) if c["status"] == "dialing") == 3


async def test_originate_params_carry_campaign_amd_and_ring_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Params", ring_timeout_s=22, caller_id="+12025550100", amd_mode="app_amd",
                                amd_params={"greeting": 1800, "bogus": 1})["id"]
    store.add_contacts(cid, [{"phone": day_number(1000)}])
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store, dial_template="PJSIP/{e164}@trunk")  # type: ignore[arg-type]
    ctl.refresh_campaigns()
    ctl.dialer.volunteers[1] = d.vol.Volunteer(1, cid)
    await ctl.run([NeedContacts(cid, 1)])
    (_, _, params) = next(c for c in ari.calls if c[1].startswith("channels/pbc-"))
    assert params["endpoint"] == f"PJSIP/{day_number(1000)}@trunk"
    assert params["timeout"] == 22 and params["callerId"] == "+12025550100"
    assert params["extension"] == "amd" and params["context"] == "pb-outbound"
    # app_amd gets the campaign's AMD() arguments, unknown keys dropped.
    assert params["body"]["variables"]["PB_AMD"] == "2500,1800,800,5000,100,50,3,256,5000"


async def test_our_detector_is_the_default_route(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Default")["id"]
    store.add_contacts(cid, [{"phone": day_number(1000)}])
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store)  # type: ignore[arg-type]
    ctl.refresh_campaigns()
    ctl.dialer.volunteers[1] = d.vol.Volunteer(1, cid)
    await ctl.run([NeedContacts(cid, 1)])
    (_, _, params) = next(c for c in ari.calls if c[1].startswith("channels/pbc-"))
    assert params["app"] == "phonebank" and params["appArgs"] == "outbound-ours"
    assert "context" not in params
