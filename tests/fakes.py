"""Test doubles shared by the unit tests: a fake ARI and the panel on a fake-ARI controller."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bridge.ari_app import Controller
from panel.app import make_app
from phonebank.offline import FakeAri
from store import users as u
from store.db import Store

CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')
API_TOKEN = "test-api-token"


@dataclass
class PanelKit:
    """The whole panel app (pages, API, push) on a store in a temp dir and a controller with a fake ARI.

    ``client(role)`` gives a logged-in browser-like client (its own cookie jar) and its CSRF token."""

    store: Store
    ctl: Controller
    server: TestServer
    clients: list[TestClient] = field(default_factory=list)

    async def anonymous(self) -> TestClient:
        client = TestClient(self.server)
        await client.start_server()
        self.clients.append(client)
        return client

    def make_user(self, role: str, username: str | None = None, **fields: Any) -> tuple[dict[str, Any], str]:
        password = "correct horse battery"
        user = u.create_user(
            self.store, username or f"{role}{len(self.clients) + 1}-{id(fields) % 997}", password, role, **fields
        )
        return user, password

    async def login(self, username: str, password: str) -> tuple[TestClient, str]:
        client = await self.anonymous()
        resp = await client.post(
            "/login",
            data={"username": username, "password": password, "_csrf": await self.pre_csrf(client)},
            allow_redirects=False,
        )
        assert resp.status == 302, await resp.text()
        return client, await self.csrf(client)

    async def client(self, role: str, **fields: Any) -> tuple[TestClient, str]:
        user, password = self.make_user(role, **fields)
        return await self.login(user["username"], password)

    @staticmethod
    async def pre_csrf(client: TestClient) -> str:
        """Before logging in, forms carry a token tied to a cookie the first page sets."""
        resp = await client.get("/login")
        match = CSRF_RE.search(await resp.text())
        assert match, "no csrf meta tag on the login page"
        return match.group(1)

    @staticmethod
    async def csrf(client: TestClient) -> str:
        """Every page carries the login's CSRF token in a meta tag (the page's scripts send it back)."""
        resp = await client.get("/account")
        match = CSRF_RE.search(await resp.text())
        assert match, "no csrf meta tag on the page"
        return match.group(1)

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        await self.server.close()


async def start_panel(tmp_path: Path, callin_number: str = "+12025550100") -> PanelKit:
    store = Store(tmp_path / "panel.db")
    ctl = Controller(ari=FakeAri(), store=store)
    app = make_app(ctl, callin_number, API_TOKEN)
    server = TestServer(app)
    await server.start_server()
    return PanelKit(store, ctl, server)
