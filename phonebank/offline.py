"""The panel without a PBX: an ARI stand-in that records requests and places no calls.

Unit tests run the whole panel on it, and ``make screenshots`` renders the screens from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class FakeAri:
    """Records REST calls; originates take a while, as on a loaded PBX."""

    app = "phonebank"
    # No event stream: never "connected" (the health check says so; the waiting reasons do not blame Asterisk).
    connected: asyncio.Event | None = None

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.injected: list[dict[str, Any]] = []

    async def post(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        self.calls.append(("POST", path, {**params, "body": body}))
        if path.startswith("channels/") and path.count("/") == 1:
            await asyncio.sleep(0.05)
        return {}

    async def get(self, path: str, **params: Any) -> Any:
        return []

    async def put(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        # Recorded without the body: a SIP account's password must not sit in test output either.
        self.calls.append(("PUT", path, params))
        return [] if body is None else body.get("fields", [])

    async def delete(self, path: str, **params: Any) -> Any:
        self.calls.append(("DELETE", path, params))

    def inject(self, event: dict[str, Any]) -> None:
        self.injected.append(event)

    async def run_events(
        self,
        handler: Callable[[dict[str, Any]], Awaitable[None]],
        on_connect: Callable[[], Awaitable[None]] | None = None,
        *,
        subscribe_all: bool = True,
        max_backoff: float = 10.0,
    ) -> None:
        """No events ever come: waits until cancelled."""
        await asyncio.Event().wait()

    async def close(self) -> None:
        pass
