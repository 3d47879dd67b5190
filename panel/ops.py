"""``/healthz`` and ``/metrics`` (Prometheus) for whoever runs the phone bank.

* ``/healthz``: public, says nothing private: 200 when the store answers and the controller is connected to
  Asterisk (ARI), else 503 with which part is down. For the reverse proxy, systemd and uptime checks.
* ``/metrics``: Prometheus text format through ``prometheus_client``. Not public: it needs
  ``Authorization: Bearer <token>`` with the metrics token (``PHONEBANK_METRICS_TOKEN``, else generated into
  ``secrets.json``; read-only, only this page) or the API token. Prometheus sends it with ``authorization:
  {credentials_file: ...}``. Both pages are answered by a middleware placed first, before the panel's login
  machinery: a health check needs no session, and the panel's own bearer check knows only the API token.

Cheap to scrape and free between scrapes: a custom collector reads the controller's in-memory state (the dialer's
volunteers, calls and 30-day abandon ledger, the AMD verdict counts, the ARI client's connection count, the
event-loop lag probe) only when Prometheus asks; nothing is updated on the call path for it except two counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from bridge import dialer as d
from bridge.stats import Histogram, LoopLag
from panel.keys import API_TOKEN, CONTROLLER, STORE, Handler

log = structlog.get_logger(__name__)

# The metrics token (read-only access to /metrics); empty: only the API token opens it.
METRICS_TOKEN: web.AppKey[str] = web.AppKey("metrics_token", str)
LOOP_LAG: web.AppKey[LoopLag] = web.AppKey("loop_lag", LoopLag)
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("metrics_registry", CollectorRegistry)


def _histogram(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=h.cumulative(), sum_value=h.total)


class ControllerCollector(Collector):
    """Reads the controller's state at scrape time (it runs on the event loop, like the controller)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        ctl = self.app[CONTROLLER]
        dialer = ctl.dialer
        # The panel's read-only copy of the live state where the controller offers one.
        snap = ctl.snapshot() if hasattr(ctl, "snapshot") else None
        volunteers = list(snap.volunteers.values()) if snap is not None else list(dialer.volunteers.values())
        live_calls = list(snap.calls) if snap is not None else list(dialer.calls.values())
        names = {cid: str(row.get("name", "")) for cid, row in getattr(ctl, "_campaign_rows", {}).items()}

        def effort(cid: int) -> list[str]:
            return [str(cid), names.get(cid, "")]

        vols = GaugeMetricFamily(
            "phonebank_volunteers",
            "Volunteers in the dialer by effort and state",
            labels=["effort", "effort_name", "state"],
        )
        for (cid, state), n in sorted(Counter((v.campaign_id, str(v.state)) for v in volunteers).items()):
            vols.add_metric([*effort(cid), state], n)
        yield vols

        calls = GaugeMetricFamily(
            "phonebank_calls",
            "Voter calls the dialer tracks now, by effort and state (dialing, ringing and amd are in flight)",
            labels=["effort", "effort_name", "state"],
        )
        for (cid, state), n in sorted(Counter((c.campaign_id, str(c.state)) for c in live_calls).items()):
            calls.add_metric([*effort(cid), state], n)
        yield calls
        yield GaugeMetricFamily(
            "phonebank_calls_in_flight",
            "Calls dialing, ringing or being judged by AMD",
            value=sum(1 for c in live_calls if c.state in d.IN_FLIGHT),
        )

        today = int(time.time() // d.DAY_S)
        answers = GaugeMetricFamily(
            "phonebank_live_answers_30d", "Voters answered in person, last 30 days", labels=["effort", "effort_name"]
        )
        abandons = GaugeMetricFamily(
            "phonebank_abandons_30d",
            "Answered voters no volunteer took, last 30 days",
            labels=["effort", "effort_name"],
        )
        rate = GaugeMetricFamily(
            "phonebank_abandon_rate_30d",
            "Abandons / live answers over 30 days (the governor's figure; the legal limit is 0.03)",
            labels=["effort", "effort_name"],
        )
        for cid, history in sorted(dialer.history.items()):
            ab, live = history.ledger.totals(today)
            answers.add_metric(effort(cid), live)
            abandons.add_metric(effort(cid), ab)
            rate.add_metric(effort(cid), ab / live if live else 0.0)
        yield answers
        yield abandons
        yield rate

        stats = getattr(ctl, "amd_stats", None)
        if stats is not None:
            verdicts = CounterMetricFamily(
                "phonebank_amd_verdicts", "AMD verdicts since the controller started", labels=["verdict"]
            )
            for status, n in sorted(stats.verdicts.items()):
                verdicts.add_metric([status], n)
            yield verdicts
            yield _histogram(
                "phonebank_amd_verdict_seconds", "Answer to AMD verdict (the detector's listening)", stats.latency
            )

        connects = getattr(ctl.ari, "connects", 0)
        yield CounterMetricFamily(
            "phonebank_ari_reconnects", "ARI event connections made after the first", value=max(connects - 1, 0)
        )
        facts = getattr(ctl, "facts", None)
        if facts is not None:
            yield GaugeMetricFamily(
                "phonebank_store_writes_queued",
                "Call facts waiting for the database to take writes",
                value=len(facts.pending),
            )
            yield GaugeMetricFamily(
                "phonebank_store_down", "1 while the database refuses writes", value=int(facts.down)
            )
        connected = getattr(ctl.ari, "connected", None)
        yield GaugeMetricFamily(
            "phonebank_ari_connected",
            "1 while the controller is connected to Asterisk",
            value=1 if connected is not None and connected.is_set() else 0,
        )

        lag = self.app.get(LOOP_LAG)
        if lag is not None:
            yield _histogram(
                "phonebank_event_loop_lag_seconds", "How late the event loop woke a 250 ms timer", lag.histogram
            )
            yield GaugeMetricFamily(
                "phonebank_event_loop_lag_max_seconds",
                "Worst event-loop lag, last 60 s",
                value=lag.max_since(time.monotonic() - 60),
            )


def _authorized(request: web.Request) -> bool:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return False
    given = auth[7:].strip().encode()
    tokens = [request.app.get(METRICS_TOKEN, ""), request.app[API_TOKEN]]
    # Every token compared (no early exit), each in constant time.
    return sum(hmac.compare_digest(given, t.encode()) for t in tokens if t) > 0


async def healthz(request: web.Request) -> web.Response:
    ctl = request.app[CONTROLLER]
    checks: dict[str, bool] = {}
    try:
        request.app[STORE].conn.execute("SELECT 1").fetchone()
        checks["store"] = True
    except Exception:
        log.exception("ops.healthz_store_failed")
        checks["store"] = False
    connected = getattr(ctl.ari, "connected", None)
    checks["ari"] = connected is not None and connected.is_set()
    # Reads may work while writes do not (a lock held elsewhere, a full disk): the controller's own writes say.
    facts = getattr(ctl, "facts", None)
    checks["store_writes"] = facts is None or not facts.down
    ok = all(checks.values())
    body: dict[str, Any] = {"ok": ok, **checks}
    if facts is not None and (facts.down or facts.dropped):
        body["store_error"] = facts.error  # SQLite's words ("database is locked", "database or disk is full")
        body["writes_queued"] = len(facts.pending)
        body["writes_dropped"] = facts.dropped
    return web.json_response(body, status=200 if ok else 503, headers={"Cache-Control": "no-store"})


async def metrics(request: web.Request) -> web.Response:
    if not _authorized(request):
        return web.json_response(
            {"error": "metrics need Authorization: Bearer <metrics token>"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


ROUTES = {"/healthz": healthz, "/metrics": metrics}
STORE_DOWN_ERROR = (
    "The database is not accepting changes right now (disk full or locked); nothing was saved. "
    "Calls on the line go on; try again in a minute."
)


@web.middleware
async def store_down_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """While the database refuses writes, a request that would write is refused with a clear 503 before it
    tries (nothing is half-saved, and the loop does not wait out the store's busy timeout per request); one that
    runs into the refusal itself gets the same answer, and takes the store down for the controller too."""
    ctl = request.app[CONTROLLER]
    facts = getattr(ctl, "facts", None)
    if request.method not in ("GET", "HEAD", "OPTIONS") and facts is not None and facts.down:
        return web.json_response({"error": STORE_DOWN_ERROR, "code": "store_down"}, status=503)
    try:
        return await handler(request)
    except sqlite3.OperationalError as exc:
        if facts is not None:
            facts.refused(exc, f"{request.method} {request.path}")
        else:
            log.error("store.write_failed", what=f"{request.method} {request.path}", error=str(exc))
        return web.json_response({"error": STORE_DOWN_ERROR, "code": "store_down"}, status=503)


@web.middleware
async def ops_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = ROUTES.get(request.path)
    if route is None or request.method not in ("GET", "HEAD"):
        return await handler(request)
    return await route(request)


async def _loop_lag(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[LOOP_LAG].run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application) -> None:
    """Register /healthz and /metrics on the panel app (call before the app starts)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ControllerCollector(app))
    app[REGISTRY] = registry
    app[LOOP_LAG] = LoopLag()
    app.middlewares.insert(0, ops_middleware)
    app.middlewares.insert(1, store_down_middleware)
    app.cleanup_ctx.append(_loop_lag)
