"""/healthz and /metrics (issue 11, section 3): the Prometheus text parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from bridge import dialer as d
from bridge import volunteer as vol
from bridge.ari_app import Controller
from bridge.stats import Histogram, LoopLag
from panel import ops
from panel.app import make_app
from phonebank.offline import FakeAri
from store.db import Store
from tests.fakes import API_TOKEN, PanelKit

METRICS = "metrics-only-token"


@pytest.fixture
async def kit(tmp_path: Path) -> AsyncIterator[PanelKit]:
    """The panel as ``phonebank run`` makes it: a metrics token set before the app starts."""
    store = Store(tmp_path / "ops.db")
    ctl = Controller(ari=FakeAri(), store=store)  # type: ignore[arg-type]
    app = make_app(ctl, "+12025550100", API_TOKEN)
    app[ops.METRICS_TOKEN] = METRICS
    panel = PanelKit(store, ctl, TestServer(app))
    await panel.server.start_server()
    try:
        yield panel
    finally:
        await panel.close()


def _families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _samples(families: dict[str, object], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for fam in families.values():
        for s in fam.samples:  # type: ignore[attr-defined]
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


async def test_healthz_says_which_part_is_down(panel: PanelKit) -> None:
    client = await panel.anonymous()
    resp = await client.get("/healthz")
    assert resp.status == 503  # the fake ARI never connected
    assert await resp.json() == {"ok": False, "store": True, "ari": False, "store_writes": True}
    panel.ctl.ari.connected = asyncio.Event()  # type: ignore[attr-defined]
    panel.ctl.ari.connected.set()  # type: ignore[attr-defined]
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["ok"] is True
    assert "pb_pre" not in {c.key for c in client.session.cookie_jar}  # answered before the login machinery


async def test_metrics_need_a_token(kit: PanelKit) -> None:
    panel = kit
    client = await panel.anonymous()
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    admin, _ = await panel.client("admin")  # a panel login is not enough: scrapers use a token
    assert (await admin.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"})).status == 200
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"})).status == 200
    # The metrics token opens nothing else.
    resp = await client.get("/api/campaigns/1/stats", headers={"Authorization": f"Bearer {METRICS}"})
    assert resp.status == 401


async def test_metrics_read_the_controller_state(kit: PanelKit) -> None:
    panel = kit
    ctl = panel.ctl
    effort = panel.store.create_campaign("Get out the vote")["id"]
    ctl.refresh_campaigns()
    dialer = ctl.dialer
    now = time.time()
    dialer.volunteers.update(
        {
            1: vol.Volunteer(1, effort, vol.VState.IDLE),
            2: vol.Volunteer(2, effort, vol.VState.IDLE),
            3: vol.Volunteer(3, effort, vol.VState.TALKING),
            4: vol.Volunteer(4, effort, vol.VState.PAUSED),
        }
    )
    dialer.calls.update(
        {
            "c1": d.Call("c1", effort, 11, state=d.CState.RINGING),
            "c2": d.Call("c2", effort, 12, state=d.CState.AMD),
            "c3": d.Call("c3", effort, 13, state=d.CState.CONNECTED),
        }
    )
    dialer._history(effort).ledger.record(int(now // d.DAY_S), abandoned=2, live=100)
    ctl.amd_stats.record("HUMAN", now - 1.2, now)
    ctl.amd_stats.record("MACHINE", now - 3.1, now)
    ctl.amd_stats.record("NOTSURE", None, now)  # a tap that failed: counted, no latency
    ctl.ari.connects = 3  # type: ignore[attr-defined]
    panel.server.app[ops.LOOP_LAG].record(0.3, time.monotonic())

    client = await panel.anonymous()
    resp = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    fams = _families(await resp.text())
    e = (("effort", str(effort)), ("effort_name", "Get out the vote"))

    assert _samples(fams, "phonebank_volunteers") == {
        (*e, ("state", "idle")): 2,
        (*e, ("state", "paused")): 1,
        (*e, ("state", "talking")): 1,
    }
    assert _samples(fams, "phonebank_calls")[(*e, ("state", "ringing"))] == 1
    assert _samples(fams, "phonebank_calls_in_flight") == {(): 2}  # ringing + amd; a connected call is not
    assert _samples(fams, "phonebank_live_answers_30d") == {e: 100}
    assert _samples(fams, "phonebank_abandons_30d") == {e: 2}
    assert _samples(fams, "phonebank_abandon_rate_30d") == {e: 0.02}
    assert _samples(fams, "phonebank_amd_verdicts_total") == {
        (("verdict", "HUMAN"),): 1,
        (("verdict", "MACHINE"),): 1,
        (("verdict", "NOTSURE"),): 1,
    }
    assert fams["phonebank_amd_verdict_seconds"].type == "histogram"  # type: ignore[attr-defined]
    buckets = _samples(fams, "phonebank_amd_verdict_seconds_bucket")
    assert buckets[(("le", "1.5"),)] == 1 and buckets[(("le", "4.0"),)] == 2 and buckets[(("le", "+Inf"),)] == 2
    assert _samples(fams, "phonebank_amd_verdict_seconds_count") == {(): 2}
    assert abs(_samples(fams, "phonebank_amd_verdict_seconds_sum")[()] - 4.3) < 1e-6
    assert _samples(fams, "phonebank_ari_reconnects_total") == {(): 2}
    assert _samples(fams, "phonebank_ari_connected") == {(): 0}
    assert _samples(fams, "phonebank_event_loop_lag_max_seconds")[()] >= 0.3
    assert (
        _samples(fams, "phonebank_event_loop_lag_seconds_bucket")[(("le", "0.25"),)]
        < _samples(fams, "phonebank_event_loop_lag_seconds_bucket")[(("le", "0.5"),)]
    )


async def test_loop_lag_probe_sees_a_blocked_loop() -> None:
    lag = LoopLag(interval_s=0.01)
    task = asyncio.create_task(lag.run())
    await asyncio.sleep(0.05)
    time.sleep(0.2)  # noqa: ASYNC251 (on purpose: something holding the event loop, as an import on it did)
    await asyncio.sleep(0.05)
    task.cancel()
    assert lag.max_since(0.0) >= 0.15
    assert sum(lag.histogram.counts) >= 3


def test_histogram_buckets_are_cumulative() -> None:
    h = Histogram((1.0, 2.0))
    for v in (0.5, 1.0, 1.5, 9.0):
        h.observe(v)
    assert h.cumulative() == [("1.0", 2), ("2.0", 3), ("+Inf", 4)]
    assert h.total == 12.0
