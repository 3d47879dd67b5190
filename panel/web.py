"""The panel's web foundation: templates, login sessions, roles, CSRF, and the app that serves it all.

Screens are server-rendered (Jinja2, autoescaped); the caller's screen and the dashboard get live updates pushed
over a WebSocket (``panel/push.py``). Every route declares the permission it needs with ``@require``; anonymous
browsers are sent to the login page, the JSON API answers 401/403. Cookie-authenticated writes must carry the
login's CSRF token (form field ``_csrf`` or header ``X-CSRF-Token``); scripts use the API bearer token instead,
which a browser never sends on its own, so it needs no CSRF token.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import math
import re
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import structlog
from aiohttp import web

from bridge.ari_app import Controller
from panel.proxy import client_ip
from panel.proxy import middlewares as proxy_middlewares
from panel.throttle import LoginThrottle, retry_after
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
# Before login, forms carry a token matched against this cookie (double submit): no login CSRF.
PRE_COOKIE = "pb_pre"
PRE_CSRF: web.RequestKey[str] = web.RequestKey("pre_csrf", str)
PUBLIC_URL: web.AppKey[str] = web.AppKey("public_url", str)
LIMITER: web.AppKey[RateLimiter] = web.AppKey("limiter", object)  # type: ignore[arg-type]
LOGIN_THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("login_throttle", LoginThrottle)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Bodies beyond this are refused except on the routes that take uploads (lists, recordings).
MAX_BODY = 1024 * 1024
UPLOAD_PATHS = re.compile(r"^/admin/efforts/\d+/(list/upload|settings)$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


_HTTP_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound, 409: web.HTTPConflict}


def json_refusal(status: int, message: str) -> web.HTTPException:
    """``json_error`` to raise: a lookup helper can stop the handler instead of returning (value, error)."""
    return _HTTP_ERRORS[status](text=json.dumps({"error": message}), content_type="application/json")


def page_refusal(request: web.Request, template: str, status: int, **context: Any) -> web.HTTPException:
    """A rendered page to raise, as ``json_refusal`` for the JSON API."""
    return _HTTP_ERRORS[status](text=render(request, template, status=status, **context).text,
                                content_type="text/html")


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
    if request[USER] is not None:
        return await handler(request)
    pre = request.cookies.get(PRE_COOKIE, "")
    fresh = not pre
    request[PRE_CSRF] = pre or secrets.token_urlsafe(24)
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        if fresh:
            _set_pre_cookie(exc, request)
        raise
    if fresh and not resp.prepared:
        _set_pre_cookie(resp, request)
    return resp


def _set_pre_cookie(resp: web.StreamResponse, request: web.Request) -> None:
    resp.set_cookie(PRE_COOKIE, request[PRE_CSRF], httponly=True, samesite="Lax", secure=_secure(request),
                    path="/")


def _secure(request: web.Request) -> bool:
    """Cookies are Secure over HTTPS, also behind a TLS proxy (then the public URL says https)."""
    return request.secure or request.app[PUBLIC_URL].startswith("https://")


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    if (request.content_length or 0) > MAX_BODY and not UPLOAD_PATHS.match(request.path):
        return json_error(413, f"request body over {MAX_BODY // 1024} KiB")
    return await handler(request)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in SAFE_METHODS and request[VIA] is None and not _is_api(request):
        # Anonymous forms (log in, get a shift login): the token must match the pre-login cookie.
        form = await request.post() if request.content_type in ("application/x-www-form-urlencoded",
                                                                 "multipart/form-data") else {}
        sent, cookie = str(form.get("_csrf", "")), request.cookies.get(PRE_COOKIE, "")
        if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
            log.warning("panel.csrf_rejected", path=request.path, user_id=None)
            raise web.HTTPForbidden(text="This form has expired: reload the page and try again.")
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


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; media-src 'self' data: blob:; frame-ancestors 'none'",
}


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:  # redirects and errors raised by handlers get them too
        for k, v in SECURITY_HEADERS.items():
            exc.headers.setdefault(k, v)
        raise
    if not resp.prepared:
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
    return resp


class RateLimiter:
    """Sliding-window counts in memory: slows password guessing and sign-up floods, which would otherwise
    also take the event loop the calls run on (each Argon2 check costs ~0.1 s of CPU)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str, limit: int, window_s: float, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        hits = self._hits[key]
        while hits and hits[0] <= now - window_s:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        return True

    def count(self, key: str, window_s: float, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        return sum(1 for t in self._hits.get(key, ()) if t > now - window_s)


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
        request=request, user=user, csrf=user["csrf"] if user else request.get(PRE_CSRF, ""),
        can=lambda p: can(request, p), **context)
    return web.Response(text=html, status=status, content_type="text/html")


def _fmt_time(ts: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return time.strftime(fmt, time.localtime(ts)) if ts else ""


_DIALABLE = re.compile(r"^\+?[\d\s().\-]{3,}$")


def callin_dialable(number: str) -> bool:
    """A call-in number a phone can dial (the DID), not the bare extension SIP softphones reach (the default
    ``callin``, when PHONEBANK_CALLIN_NUMBER is unset)."""
    return bool(_DIALABLE.match(number or "")) and sum(ch.isdigit() for ch in number) >= 3


def make_templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)
    env.filters["time"] = _fmt_time
    env.filters["tojson_attr"] = lambda v: json.dumps(v)
    env.tests["callin_dialable"] = callin_dialable
    return env


def set_login_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", secure=_secure(request), path="/",
                        max_age=u.LOGIN_TTL_S)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: a login link must not bounce anyone to another site."""
    if not target or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return default  # browsers and URL libraries drop tabs and newlines: "/\t/evil" would become "//evil"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//") \
            or "\\" in target:
        return default
    return target


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
    throttle = request.app[LOGIN_THROTTLE]
    address = client_ip(request)
    verdict = throttle.check(address, username, time.monotonic())
    if not verdict.allowed:
        log.warning("panel.login_throttled", rule=verdict.rule, retry_s=round(verdict.retry_s))
        wait = retry_after(verdict.retry_s)
        resp = render(request, "login.html", status=429, next=target, username=username,
                      error=f"Too many failed attempts: wait {_wait_text(int(wait))} and try again.")
        resp.headers["Retry-After"] = wait
        return resp
    if verdict.delay_s:  # this login is being guessed from elsewhere: tries from new addresses take turns
        await asyncio.sleep(verdict.delay_s)
    user = await asyncio.to_thread(u.authenticate, store, username, password)
    if user is None:
        throttle.failed(address, username, time.monotonic())
        log.info("panel.login_failed")
        return render(request, "login.html", status=401, next=target, username=username,
                      error="That login and password do not match (or the login has expired).")
    throttle.succeeded(address, username, time.monotonic())
    token, _ = u.start_login(store, user["id"])
    log.info("panel.login", user_id=user["id"], role=user["role"])
    if target == "/" and user["role"] == "caller" and user["campaign_id"]:
        target = f"/call/{user['campaign_id']}"
    resp = web.HTTPFound(target)
    set_login_cookie(resp, request, token)
    raise resp


def _wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{math.ceil(seconds / 60)} minutes"


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
             stage_media: StageMedia | None = None, public_url: str = "",
             trusted_proxies: str = "") -> web.Application:
    """The whole panel: login, admin screens, caller screens, live push, JSON API.

    ``trusted_proxies``: addresses or networks of reverse proxies whose X-Forwarded-For names the browser."""
    from panel import admin, api, caller, feedback, forecast, ops, push, results, webphone  # each adds its routes

    app = web.Application(middlewares=[*proxy_middlewares(trusted_proxies), security_headers, body_limit,
                                       auth_middleware, csrf_middleware],
                          client_max_size=64 * 1024 * 1024)
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
    app.router.add_get("/", home)
    app.router.add_get("/account", account)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_post)
    app.router.add_post("/logout", logout)
    app.router.add_static("/static", HERE / "static")
    for module in (api, push, admin, caller, results, feedback, forecast, webphone, ops):
        module.setup(app)
    return app
