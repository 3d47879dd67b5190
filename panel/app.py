"""The panel's composition root: the one place that builds the aiohttp app and wires every screen into it.

Who imports whom (no circles; ``tests/test_import_layers.py`` checks it):

    app ──> login, admin, caller, api, push, results, bans, feedback, forecast, webphone, ops   (screens)
    screens ──> views (session and SIP account views), common (helpers), keys (app/request keys)
    web (middlewares) ──> common ──> keys ──> bridge.ari_app (Controller), store

Each screen module declares its routes in its own ``routes = web.RouteTableDef()``; this module registers them
in a fixed order, fills the app keys, and starts what runs beside the app (the upload sweeper, the push hub).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bridge.ari_app import Controller
from panel import admin, api, bans, caller, feedback, forecast, list_worker, login, ops, push, results, webphone
from panel.common import HERE, make_templates
from panel.keys import (
    API_TOKEN,
    CALLIN_NUMBER,
    CONTROLLER,
    LIMITER,
    LOGIN_THROTTLE,
    PUBLIC_URL,
    STAGE_MEDIA,
    STORE,
    TEMPLATES,
    StageMedia,
)
from panel.proxy import middlewares as proxy_middlewares
from panel.throttle import LoginThrottle, RateLimiter
from panel.web import auth_middleware, body_limit, csrf_middleware, security_headers
from store import results as r
from store import users as u
from store.db import Store

# Registration order: aiohttp tries routes under one path prefix in the order they were added.
SCREENS = (login, api, push, admin, caller, results, bans, feedback, forecast, webphone)


def _stage_beside_store(store: Store) -> StageMedia:
    """Without a PBX (tests, previews): keep uploads in the data dir."""

    def stage(src: Path, name: str) -> str:
        dest = store.path.parent / "media" / name
        if dest != src:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src.read_bytes())
        return str(dest.with_suffix(""))

    return stage


def make_app(
    ctl: Controller,
    callin_number: str,
    api_token: str,
    stage_media: StageMedia | None = None,
    public_url: str = "",
    trusted_proxies: str = "",
) -> web.Application:
    """The whole panel: login, admin screens, caller screens, live push, JSON API, health and metrics.

    ``trusted_proxies``: addresses or networks of reverse proxies whose X-Forwarded-For names the browser."""
    app = web.Application(
        middlewares=[
            *proxy_middlewares(trusted_proxies),
            security_headers,
            body_limit,
            auth_middleware,
            csrf_middleware,
        ],
        client_max_size=64 * 1024 * 1024,
    )
    app[PUBLIC_URL] = public_url.rstrip("/")
    app[LIMITER] = RateLimiter()
    app[LOGIN_THROTTLE] = LoginThrottle()
    app[CONTROLLER] = ctl
    app[STORE] = ctl.store
    app[CALLIN_NUMBER] = callin_number
    app[API_TOKEN] = api_token
    app[TEMPLATES] = make_templates()
    app[STAGE_MEDIA] = stage_media or _stage_beside_store(ctl.store)
    u.ensure_roles(ctl.store)

    # Live push: the controller tells the hub of every change; sockets watching that session or effort wake.
    hub = push.Hub()
    app[push.HUB] = hub
    ctl.observers.append(hub.publish)
    # The dashboard's caches (panel/results.py).
    app[results.SUMMARY_CACHE] = {}
    app[results.CALL_FIGURES] = r.CallFigures()
    # Uploaded lists nobody imported are deleted after a day (panel/admin.py).
    app.cleanup_ctx.append(admin.upload_sweeper)
    # Lists are read, checked and imported in a process of their own (panel/list_worker.py).
    app.cleanup_ctx.append(list_worker.pool_ctx)

    for screen in SCREENS:
        app.router.add_routes(screen.routes)
    app.router.add_static("/static", HERE / "static")
    # /healthz and /metrics: a middleware in front of the login machinery (panel/ops.py).
    ops.setup(app)
    return app
