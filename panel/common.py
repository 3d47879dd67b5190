"""Helpers every screen uses: permissions (``@require``), rendering, JSON refusals, request bodies, templates.

A leaf like ``panel/keys.py``: it imports no screen module, so screens import it and never each other.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import structlog
from aiohttp import web

from panel import i18n
from panel.keys import CONTROLLER, COOKIE, PRE_CSRF, PUBLIC_URL, TEMPLATES, USER, Handler
from store import users as u

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; media-src 'self' data: blob:; frame-ancestors 'none'",
}


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def user_of(request: web.Request) -> dict[str, Any]:
    """The logged-in user of a route behind ``@require`` (which has already turned anonymous requests away)."""
    user = request[USER]
    if user is None:  # only reached by a route that forgot @require: refuse rather than act for nobody
        raise web.HTTPUnauthorized(text="log in first")
    return user


# ---------------------------------------------------------------------------------------------- refusals
def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


_HTTP_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
}


def json_refusal(status: int, message: str) -> web.HTTPException:
    """``json_error`` to raise: a lookup helper can stop the handler instead of returning (value, error)."""
    return _HTTP_ERRORS[status](text=json.dumps({"error": message}), content_type="application/json")


def page_refusal(request: web.Request, template: str, status: int, **context: Any) -> web.HTTPException:
    """A rendered page to raise, as ``json_refusal`` for the JSON API."""
    return _HTTP_ERRORS[status](text=render(request, template, status=status, **context).text, content_type="text/html")


# ---------------------------------------------------------------------------------------------- access control
def require(*permissions: str) -> Callable[[Handler], Handler]:
    """The route needs a user holding every one of ``permissions`` (none listed: any logged-in user)."""

    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = request[USER]
            if user is None:
                if is_api(request) or request.headers.get("Upgrade", "").lower() == "websocket":
                    return json_error(401, "log in first")
                raise web.HTTPFound(f"/login?next={quote(request.path_qs)}")
            missing = [p for p in permissions if p not in user["permissions"]]
            if missing:
                log.info("panel.forbidden", path=request.path, user_id=user["id"], missing=missing)
                if is_api(request):
                    return json_error(403, f"your role lacks: {', '.join(missing)}")
                return render(
                    request,
                    "error.html",
                    status=403,
                    title=i18n.N_("Not allowed"),
                    message=i18n.M_(
                        "Your role (%(role)s) cannot do this: it needs %(needs)s.",
                        role=i18n.M_(user["role"]),
                        needs=tuple(i18n.M_(u.PERMISSIONS[p]) for p in missing),
                    ),
                )
            return await fn(request)

        return guarded

    return wrap


def can(request: web.Request, permission: str) -> bool:
    user = request[USER]
    return bool(user and permission in user["permissions"])


# ---------------------------------------------------------------------------------------------- requests
async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body; anything else is a 400 with the reason."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise json_refusal(400, f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise json_refusal(400, "body must be a JSON object")
    return body


def session_id(request: web.Request) -> int:
    """The session in the path, if this user may reach it (404 otherwise: no hint that it exists)."""
    not_found = json_refusal(404, "no such session")
    try:
        sid = int(request.match_info["sid"])
    except ValueError as exc:
        raise not_found from exc
    user = user_of(request)
    if "manage_efforts" not in user["permissions"]:
        session = request.app[CONTROLLER].store.session(sid)
        if session is None or session["user_id"] is None or session["user_id"] != user["id"]:
            raise not_found
    return sid


# ---------------------------------------------------------------------------------------------- rendering
def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    env = request.app[TEMPLATES]
    user = request[USER]
    lang = i18n.choose(request)
    html = env.get_template(template).render(
        request=request,
        user=user,
        lang=lang,
        languages=[(code, i18n.name_of(code)) for code in i18n.available()],
        translations=i18n.translations(lang),
        csrf=user["csrf"] if user else request.get(PRE_CSRF, ""),
        can=lambda p: can(request, p),
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html")


def _fmt_time(ts: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return time.strftime(fmt, time.localtime(ts)) if ts else ""


_DIALABLE = re.compile(r"^\+?[\d\s().\-]{3,}$")


def callin_dialable(number: str) -> bool:
    """A call-in number a phone can dial (the DID), not the bare extension SIP softphones reach (the default
    ``callin``, when PHONEBANK_CALLIN_NUMBER is unset)."""
    return bool(_DIALABLE.match(number or "")) and sum(ch.isdigit() for ch in number) >= 3


@jinja2.pass_context
def _gettext(ctx: jinja2.runtime.Context, message: str) -> str:
    """The request's catalogue (``render`` puts it in the context; a render without one stays English)."""
    return str(ctx.get("translations", i18n.translations(i18n.DEFAULT)).gettext(message))


@jinja2.pass_context
def _ngettext(ctx: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return str(ctx.get("translations", i18n.translations(i18n.DEFAULT)).ngettext(singular, plural, n))


@jinja2.pass_context
def _translate(ctx: jinja2.runtime.Context, text: str) -> str:
    """A server message (``N_``, or ``M_`` with its values) or stored text the catalogue may know (the default
    term codes); anything else as typed. Not ``_()``: that formats with %, and an organiser's label may hold a %
    sign."""
    return i18n.translate(ctx.get("translations", i18n.translations(i18n.DEFAULT)), text)


def make_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    # One environment for every request; the language is per render, so the callables read it from the context.
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    # {% trans %} blocks span lines in the templates; trimmed, the msgid is one line (babel.toml says the same).
    env.policies["ext.i18n.trimmed"] = True
    env.filters["time"] = _fmt_time
    env.filters["translate"] = _translate
    env.filters["tojson_attr"] = lambda v: json.dumps(v)
    env.tests["callin_dialable"] = callin_dialable
    return env


# ---------------------------------------------------------------------------------------------- cookies, links
def secure(request: web.Request) -> bool:
    """Cookies are Secure over HTTPS, also behind a TLS proxy (then the public URL says https)."""
    return request.secure or request.app[PUBLIC_URL].startswith("https://")


def set_login_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="Lax", secure=secure(request), path="/", max_age=u.LOGIN_TTL_S
    )


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: a login link must not bounce anyone to another site."""
    if not target or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return default  # browsers and URL libraries drop tabs and newlines: "/\t/evil" would become "//evil"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//") or "\\" in target:
        return default
    return target
