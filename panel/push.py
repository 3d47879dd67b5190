"""Live updates pushed to browsers over WebSockets (no polling).

The controller tells the hub when a volunteer's or an effort's state changes; the hub wakes every socket
watching that session or effort, which then sends a fresh view. Views are built by the same code the JSON API
uses, so a voter's phone number reaches a caller's browser only for personal-phone efforts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import WSMsgType, web

from panel import i18n, results
from panel.common import json_error, require, session_id, user_of
from panel.keys import CALLIN_NUMBER, CONTROLLER, COOKIE, PUBLIC_URL, STORE, VIA
from panel.views import session_view
from store.users import login_for_token

log = structlog.get_logger(__name__)

# Coalesce bursts (a call ending touches the volunteer and the effort within milliseconds).
PUSH_DEBOUNCE_S = 0.05
# A dashboard's numbers are SQL aggregates over the effort: at most one recompute a second per dashboard, however
# many calls end in it (they run on the event loop the calls do).
DASHBOARD_MIN_INTERVAL_S = 1.0
# Dashboards also refresh on a clock: durations (talk time, time waiting) grow without any event.
DASHBOARD_REFRESH_S = 5.0
# A caller's socket also re-checks the login this often when nothing happens (logged out elsewhere, expired).
SESSION_REFRESH_S = 30.0


class Hub:
    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Event]] = defaultdict(set)

    def publish(self, session_id: int | None, campaign_id: int) -> None:
        keys = [f"campaign:{campaign_id}"] + ([f"session:{session_id}"] if session_id is not None else [])
        for key in keys:
            for wake in self._watchers.get(key, ()):
                wake.set()

    @contextlib.contextmanager
    def watch(self, key: str) -> Any:
        wake = asyncio.Event()
        self._watchers[key].add(wake)
        try:
            yield wake
        finally:
            self._watchers[key].discard(wake)
            if not self._watchers[key]:
                del self._watchers[key]


HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)
routes = web.RouteTableDef()


def same_origin(request: web.Request) -> bool:
    """Browsers send Origin on WebSocket handshakes; a page elsewhere must not read our pushes with the
    volunteer's cookie. Scripts without an Origin (the API token, tests) pass."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    public = request.app[PUBLIC_URL]
    return (
        origin == f"{request.scheme}://{request.host}"
        or (bool(public) and origin == public)
        or urlsplit(origin).netloc == request.host
    )


def still_logged_in(request: web.Request) -> bool:
    if request[VIA] != "cookie":
        return True
    return login_for_token(request.app[STORE], request.cookies.get(COOKIE, "")) is not None


async def stream(
    request: web.Request,
    key: str,
    view: Callable[[], Awaitable[dict[str, Any] | None]],
    refresh_s: float | None = None,
    min_interval_s: float = PUSH_DEBOUNCE_S,
) -> web.StreamResponse:
    """Send ``view()`` now and after every change to ``key`` (and every ``refresh_s``) until the socket closes
    or the login behind it ends (logged out, expired, disabled)."""
    if not same_origin(request):
        log.warning("push.cross_origin_refused", origin=request.headers.get("Origin", ""), path=request.path)
        return web.Response(status=403, text="cross-origin WebSocket refused")
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    hub = request.app[HUB]

    async def drain() -> None:  # the browser sends nothing we need; reading notices it closing
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break

    reader = asyncio.create_task(drain())
    with hub.watch(key) as wake:
        try:
            while not ws.closed and not reader.done():
                wake.clear()
                if not still_logged_in(request):
                    await ws.close(code=4401, message=b"logged out")
                    break
                payload = await view()
                if payload is None:
                    break
                await ws.send_json(payload)
                waiter = asyncio.create_task(wake.wait())
                await asyncio.wait({waiter, reader}, timeout=refresh_s, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                await asyncio.sleep(min_interval_s)
        except (ConnectionResetError, RuntimeError):
            pass  # the browser went away mid-send
        finally:
            reader.cancel()
            await ws.close()
    return ws


@routes.get("/ws/session/{sid}")
@require("make_calls")
async def session_socket(request: web.Request) -> web.StreamResponse:
    sid = session_id(request)
    ctl = request.app[CONTROLLER]

    async def view() -> dict[str, Any] | None:
        v = session_view(ctl, sid, request.app[CALLIN_NUMBER], user_of(request)["permissions"])
        return {"type": "session", "session": v} if v else None

    return await stream(request, f"session:{sid}", view, refresh_s=SESSION_REFRESH_S)


@routes.get("/ws/campaign/{cid}")
@require("view_results")
async def campaign_socket(request: web.Request) -> web.StreamResponse:
    try:
        cid = int(request.match_info["cid"])
    except ValueError:
        return json_error(404, "no such effort")
    if request.app[STORE].campaign(cid) is None:
        return json_error(404, "no such effort")

    async def view() -> dict[str, Any]:
        return {"type": "dashboard", "dashboard": results.dashboard_data(request.app, cid, i18n.choose(request))}

    return await stream(
        request, f"campaign:{cid}", view, refresh_s=DASHBOARD_REFRESH_S, min_interval_s=DASHBOARD_MIN_INTERVAL_S
    )
