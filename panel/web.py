"""The panel's middlewares: who is asking (login cookie or API token), CSRF, body size, security headers.

Screens are server-rendered (Jinja2, autoescaped); the caller's screen and the dashboard get live updates pushed
over a WebSocket (``panel/push.py``). Every route declares the permission it needs with ``@require``
(``panel/common.py``); anonymous browsers are sent to the login page, the JSON API answers 401/403.
Cookie-authenticated writes must carry the login's CSRF token (form field ``_csrf`` or header ``X-CSRF-Token``);
scripts use the API bearer token instead, which a browser never sends on its own, so it needs no CSRF token.
The composition root (``panel/app.py``) puts these in front of every route.
"""

from __future__ import annotations

import hmac
import re
import secrets

import structlog
from aiohttp import web

from panel.common import SECURITY_HEADERS, is_api, json_error, secure
from panel.keys import API_TOKEN, COOKIE, PRE_COOKIE, PRE_CSRF, STORE, USER, VIA, Handler
from store import users as u

log = structlog.get_logger(__name__)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Bodies beyond this are refused except on the routes that take uploads (lists, recordings).
MAX_BODY = 1024 * 1024
UPLOAD_PATHS = re.compile(r"^/admin/efforts/\d+/(list/upload|settings)$")


# ---------------------------------------------------------------------------------------------- middlewares
@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is asking: a logged-in user (cookie), the API token (bearer), or nobody."""
    request[USER] = None
    request[VIA] = None
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        if hmac.compare_digest(auth[7:].strip().encode(), request.app[API_TOKEN].encode()):
            request[USER] = {
                "id": None,
                "username": "api",
                "name": "API",
                "role": "admin",
                "permissions": set(u.PERMISSIONS),
                "campaign_id": None,
                "csrf": "",
            }
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
    resp.set_cookie(PRE_COOKIE, request[PRE_CSRF], httponly=True, samesite="Lax", secure=secure(request), path="/")


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    if (request.content_length or 0) > MAX_BODY and not UPLOAD_PATHS.match(request.path):
        return json_error(413, f"request body over {MAX_BODY // 1024} KiB")
    return await handler(request)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in SAFE_METHODS and request[VIA] is None and not is_api(request):
        # Anonymous forms (log in, get a shift login): the token must match the pre-login cookie.
        form = (
            await request.post()
            if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
            else {}
        )
        sent, cookie = str(form.get("_csrf", "")), request.cookies.get(PRE_COOKIE, "")
        if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
            log.warning("panel.csrf_rejected", path=request.path, user_id=None)
            raise web.HTTPForbidden(text="This form has expired: reload the page and try again.")
    user = request[USER]
    if request.method not in SAFE_METHODS and request[VIA] == "cookie" and user is not None:
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            sent = str(form.get("_csrf", ""))
        if not sent or not hmac.compare_digest(sent.encode(), user["csrf"].encode()):
            log.warning("panel.csrf_rejected", path=request.path, user_id=user["id"])
            if is_api(request):
                return json_error(403, "CSRF token missing or wrong")
            raise web.HTTPForbidden(text="CSRF token missing or wrong: reload the page and try again.")
    return await handler(request)


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
