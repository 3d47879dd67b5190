"""A thin asyncio ARI client on aiohttp: REST calls, the events WebSocket, reconnect with backoff.

Events are dispatched in the order Asterisk sent them, one queue per channel, so the events of one
channel are never reordered while slow handling of one call does not hold up the others.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
import structlog

log = structlog.get_logger(__name__)

Event = dict[str, Any]
Handler = Callable[[Event], Awaitable[None]]


class AriError(Exception):
    """Base of all ARI failures."""


class AriHttpError(AriError):
    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {message}")
        self.status = status
        self.message = message


class AriNotFound(AriHttpError):
    """The channel, bridge or playback is gone (404) — usually a hangup racing our command."""


class AriConflict(AriHttpError):
    """The object is in the wrong state for the request (409/422), e.g. channel not in Stasis."""


class AriUnavailable(AriError):
    """Asterisk did not answer (connection refused, timeout)."""


def event_key(event: Event) -> str:
    """Ordering key: events of one channel share a queue; everything else goes through one queue."""
    chan = event.get("channel") or event.get("peer")
    if isinstance(chan, dict) and "id" in chan:
        return f"channel:{chan['id']}"
    return "global"


class AriPort(Protocol):
    """What the controller (``bridge/ari_app.py``) uses of an ARI client: ``AriClient`` against Asterisk, or the
    stand-in that records requests (``phonebank.offline.FakeAri``) for the panel's tests and screenshots."""

    app: str  # the Stasis application's name

    @property
    def connected(self) -> asyncio.Event | None:
        """Set while the event WebSocket is up and the controller has resynced over it; None: a stand-in with no
        event stream (never "connected")."""

    async def get(self, path: str, **params: Any) -> Any: ...

    async def post(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any: ...

    async def put(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any: ...

    async def delete(self, path: str, **params: Any) -> Any: ...

    def inject(self, event: Event) -> None: ...

    async def run_events(
        self,
        handler: Handler,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        *,
        subscribe_all: bool = True,
        max_backoff: float = 10.0,
    ) -> None: ...

    async def close(self) -> None: ...


class AriClient:
    def __init__(self, base_url: str, user: str, password: str, app: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth_header = {"Authorization": f"Basic {token}"}
        self._session: aiohttp.ClientSession | None = None
        self._queues: dict[str, asyncio.Queue[Event | None]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._handler: Handler | None = None
        self._on_connect: Callable[[], Awaitable[None]] | None = None
        self.connected = asyncio.Event()
        self.connects = 0  # event WebSocket connections made (the first + reconnects), for /metrics

    async def __aenter__(self) -> AriClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._auth_header, timeout=aiohttp.ClientTimeout(total=15))

    async def close(self) -> None:
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ REST
    async def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: dict[str, Any] | None = None
    ) -> Any:
        await self.open()
        assert self._session is not None
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            async with self._session.request(method, url, params=clean, json=body) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    try:
                        message = json.loads(text).get("message", text)
                    except (ValueError, AttributeError):
                        message = text
                    cls: type[AriHttpError] = AriHttpError
                    if resp.status == 404:
                        cls = AriNotFound
                    elif resp.status in (409, 412, 422):
                        cls = AriConflict
                    raise cls(method, path, resp.status, message)
                if not text:
                    return None
                return json.loads(text)
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise AriUnavailable(f"{method} {path}: {exc!r}") from exc

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        return await self.request("POST", path, params=params, body=body)

    async def put(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        return await self.request("PUT", path, params=params, body=body)

    async def delete(self, path: str, **params: Any) -> Any:
        return await self.request("DELETE", path, params=params)

    # ------------------------------------------------------------------ events
    async def run_events(
        self,
        handler: Handler,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        *,
        subscribe_all: bool = True,
        max_backoff: float = 10.0,
    ) -> None:
        """Receive events forever; reconnect with capped exponential backoff and jitter (``reconnect_delay``).
        ``on_connect`` runs after each (re)connect so the caller can resync state from GET /channels and /bridges;
        if it fails (Asterisk still starting up), the connection is dropped and tried again like any other."""
        self._handler = handler
        self._on_connect = on_connect
        await self.open()
        assert self._session is not None
        ws_url = self.base_url.replace("http", "ws", 1) + "/events"
        params = {"app": self.app, "subscribeAll": "true" if subscribe_all else "false"}
        failures = 0  # connection attempts failed in a row
        down_since: float | None = None
        while True:
            try:
                async with self._session.ws_connect(
                    ws_url, params=params, heartbeat=20, timeout=aiohttp.ClientWSTimeout(ws_close=5)
                ) as ws:
                    down_s = round(time.monotonic() - down_since, 2) if down_since is not None else None
                    log.info("ari.connected", url=ws_url, attempts=failures + 1, down_s=down_s)
                    self.connects += 1
                    if on_connect is not None:
                        await on_connect()
                    # Connected means in sync: set once the resync is done, so that /healthz, the controller's
                    # readiness and the screens say "up" only when the controller has taken stock of Asterisk.
                    self.connected.set()
                    failures, down_since = 0, None
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            self._dispatch(json.loads(msg.data))
                        elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                            break
                error = "closed"
            except (TimeoutError, aiohttp.ClientError, OSError, AriError) as exc:
                error = repr(exc)
            except Exception as exc:  # a failing resync must not end the event stream for good
                log.exception("ari.on_connect_failed")
                error = repr(exc)
            self.connected.clear()
            down_since = time.monotonic() if down_since is None else down_since
            delay = reconnect_delay(failures, max_backoff)
            failures += 1
            # The first loss is an error (calls may be gone); the retries while Asterisk stays away are warnings.
            level = log.error if failures == 1 else log.warning
            level("ari.disconnected", error=error, attempt=failures, retry_in=round(delay, 2))
            await asyncio.sleep(delay)

    def inject(self, event: Event) -> None:
        """Queue an event of the application's own (e.g. a detector's verdict) behind the channel's ARI events,
        so one handler sees everything about a channel in order."""
        self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        key = event_key(event)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            self._workers[key] = asyncio.create_task(self._work(key, queue))
        queue.put_nowait(event)
        if event.get("type") == "ChannelDestroyed" and key != "global":
            # Last event of a channel: let the worker drain and exit.
            queue.put_nowait(None)

    async def _work(self, key: str, queue: asyncio.Queue[Event | None]) -> None:
        try:
            while True:
                event = await queue.get()
                if event is None:
                    break
                assert self._handler is not None
                try:
                    await self._handler(event)
                except Exception:
                    log.exception("ari.handler_failed", event_type=event.get("type"), key=key)
        finally:
            self._queues.pop(key, None)
            self._workers.pop(key, None)


# Reconnect backoff: the first retry after about RECONNECT_BASE_S, doubling each failure up to the cap (run_events'
# max_backoff), each delay drawn between half and all of its step ("equal jitter"), so controllers that lost the
# same Asterisk do not all knock at once, and a restarting Asterisk is not hammered while it boots.
RECONNECT_BASE_S = 0.2


def reconnect_delay(failures: int, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before the next connection attempt after ``failures`` failed in a row (0: just lost)."""
    step = min(RECONNECT_BASE_S * 2 ** min(failures, 30), cap)
    return step / 2 + rand() * step / 2


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
