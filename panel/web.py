"""The panel's web foundation: templates, login sessions, roles, CSRF, and the app that serves it all.

Screens are server-rendered (Jinja2, autoescaped); the caller's screen and the dashboard get live updates pushed
over a WebSocket (``panel/push.py``). Every route declares the permission it needs with ``@require``; anonymous
browsers are sent to the login page, the JSON API answers 401/403. Cookie-authenticated writes must carry the
login's CSRF token (form field ``_csrf`` or header ``X-CSRF-Token``); scripts use the API bearer token instead,
which a browser never sends on its own, so it needs no CSRF token.
"""

from __future__ import annotations

import functools
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import structlog
from aiohttp import web

from bridge.ari_app import Controller
from store import users as u
from store.db import Store

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "pb_login"
STORE: web.AppKey[Store] = web.AppKey("store", Store)
CONTROLLER: web.AppKey[Controller] = web.AppKey("controller", Controller)
CALLIN_NUMBER: web.AppKey[str] = web.AppKey("callin_number", str)
API_TOKEN: web.AppKey[str] = web.AppKey("api_token", str)
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("templates", jinja2.Environment)
# Puts an uploaded recording (a WAV file on this machine) where Asterisk can play it and returns the name
# Asterisk plays it by; the service wires it to the running instance.
StageMedia = Callable[[Path, str], str]
STAGE_MEDIA: web.AppKey[StageMedia] = web.AppKey("stage_media", object)  # type: ignore[arg-type]
# Who is asking (None: nobody) and how they proved it ("cookie", "token" or None).
USER: web.RequestKey[dict[str, Any] | None] = web.RequestKey("user", dict)  # type: ignore[arg-type]
VIA: web.RequestKey[str | None] = web.RequestKey("via", str)  # type: ignore[arg-type]
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


# ---------------------------------------------------------------------------------------------- middlewares
@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is asking: a logged-in user (cookie), the API token (bearer), or nobody."""
    request[USER] = None
    request[VIA] = None
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        if hmac.compare_digest(auth[7:].strip().encode(), request.app[API_TOKEN].encode()):
            request[USER] = {"id": None, "username": "api", "name": "API", "role": "admin",
                               "permissions": set(u.PERMISSIONS), "campaign_id": None, "csrf": ""}
            request[VIA] = "token"
        else:
            return json_error(401, "bad API token")
    elif token := request.cookies.get(COOKIE):
        user = u.login_for_token(request.app[STORE], token)
        if user is not None:
            request[USER] = user
            request[VIA] = "cookie"
    return await handler(request)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in SAFE_METHODS and request[VIA] == "cookie":
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            sent = str(form.get("_csrf", ""))
        if not sent or not hmac.compare_digest(sent.encode(), request[USER]["csrf"].encode()):
            log.warning("panel.csrf_rejected", path=request.path, user_id=request[USER]["id"])
            if _is_api(request):
                return json_error(403, "CSRF token missing or wrong")
            raise web.HTTPForbidden(text="CSRF token missing or wrong: reload the page and try again.")
    return await handler(request)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    resp = await handler(request)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault("Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                            "connect-src 'self'; media-src 'self' data: blob:; frame-ancestors 'none'")
    return resp


# ---------------------------------------------------------------------------------------------- access control
def require(*permissions: str) -> Callable[[Handler], Handler]:
    """The route needs a user holding every one of ``permissions`` (none listed: any logged-in user)."""

    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = request[USER]
            if user is None:
                if _is_api(request) or request.headers.get("Upgrade", "").lower() == "websocket":
                    return json_error(401, "log in first")
                raise web.HTTPFound(f"/login?next={quote(request.path_qs)}")
            missing = [p for p in permissions if p not in user["permissions"]]
            if missing:
                log.info("panel.forbidden", path=request.path, user_id=user["id"], missing=missing)
                if _is_api(request):
                    return json_error(403, f"your role lacks: {', '.join(missing)}")
                return render(request, "error.html", status=403, title="Not allowed",
                              message=f"Your role ({user['role']}) cannot do this: it needs "
                                      f"{', '.join(u.PERMISSIONS[p].lower() for p in missing)}.")
            return await fn(request)

        return guarded

    return wrap


def can(request: web.Request, permission: str) -> bool:
    user = request[USER]
    return bool(user and permission in user["permissions"])


# ---------------------------------------------------------------------------------------------- rendering
def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    env = request.app[TEMPLATES]
    user = request[USER]
    html = env.get_template(template).render(
        request=request, user=user, csrf=(user or {}).get("csrf", ""),
        can=lambda p: can(request, p), **context)
    return web.Response(text=html, status=status, content_type="text/html")


def _fmt_time(ts: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return time.strftime(fmt, time.localtime(ts)) if ts else ""


def make_templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)
    env.filters["time"] = _fmt_time
    env.filters["tojson_attr"] = lambda v: json.dumps(v)
    return env


def set_login_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", secure=request.secure, path="/",
                        max_age=u.LOGIN_TTL_S)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: a login link must not bounce anyone to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


# ---------------------------------------------------------------------------------------------- login
async def login_page(request: web.Request) -> web.StreamResponse:
    if request[USER] is not None:
        raise web.HTTPFound(safe_next(request.query.get("next")))
    return render(request, "login.html", next=safe_next(request.query.get("next")), error="", username="")


async def login_post(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    store = request.app[STORE]
    user = u.authenticate(store, username, password)
    if user is None:
        log.info("panel.login_failed")
        return render(request, "login.html", status=401, next=target, username=username,
                      error="That login and password do not match (or the login has expired).")
    token, _ = u.start_login(store, user["id"])
    log.info("panel.login", user_id=user["id"], role=user["role"])
    if target == "/" and user["role"] == "caller" and user["campaign_id"]:
        target = f"/call/{user['campaign_id']}"
    resp = web.HTTPFound(target)
    set_login_cookie(resp, request, token)
    raise resp


@require()
async def logout(request: web.Request) -> web.StreamResponse:
    if token := request.cookies.get(COOKIE):
        u.end_login(request.app[STORE], token)
    resp = web.HTTPFound("/login")
    resp.del_cookie(COOKIE, path="/")
    raise resp


@require()
async def account(request: web.Request) -> web.StreamResponse:
    return render(request, "account.html")


@require()
async def home(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    if can(request, "manage_efforts") or can(request, "view_results"):
        raise web.HTTPFound("/admin/efforts")
    if user.get("campaign_id"):
        raise web.HTTPFound(f"/call/{user['campaign_id']}")
    return render(request, "error.html", status=200, title="Welcome",
                  message="Open the link your organiser sent you to join a phone bank.")


# ---------------------------------------------------------------------------------------------- the app
def _stage_beside_store(store: Store) -> StageMedia:
    """Without a PBX (tests, previews): keep uploads in the data dir."""

    def stage(src: Path, name: str) -> str:
        dest = store.path.parent / "media" / name
        if dest != src:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src.read_bytes())
        return str(dest.with_suffix(""))

    return stage


def make_app(ctl: Controller, callin_number: str, api_token: str,
             stage_media: StageMedia | None = None) -> web.Application:
    """The whole panel: login, admin screens, caller screens, live push, JSON API."""
    from panel import admin, api, caller, feedback, push, results  # each adds its own routes

    app = web.Application(middlewares=[security_headers, auth_middleware, csrf_middleware],
                          client_max_size=64 * 1024 * 1024)
    app[CONTROLLER] = ctl
    app[STORE] = ctl.store
    app[CALLIN_NUMBER] = callin_number
    app[API_TOKEN] = api_token
    app[TEMPLATES] = make_templates()
    app[STAGE_MEDIA] = stage_media or _stage_beside_store(ctl.store)
    u.ensure_roles(ctl.store)
    app.router.add_get("/", home)
    app.router.add_get("/account", account)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_post)
    app.router.add_post("/logout", logout)
    app.router.add_static("/static", HERE / "static")
    for module in (api, push, admin, caller, results, feedback):
        module.setup(app)
    return app
