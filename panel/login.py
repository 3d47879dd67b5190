"""Logging in and out, the account page, and where ``/`` sends each user."""

from __future__ import annotations

import asyncio
import math
import time

import structlog
from aiohttp import web

from panel import i18n
from panel.common import can, render, require, safe_next, secure, set_login_cookie, user_of
from panel.i18n import M_, N_
from panel.keys import CONTROLLER, COOKIE, LOGIN_THROTTLE, STORE, USER
from panel.proxy import client_ip
from panel.throttle import retry_after
from store import bans
from store import users as u

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


@routes.post("/lang")
async def choose_language(request: web.Request) -> web.StreamResponse:
    """The language switcher at the foot of every page: a cookie, so it holds before login and across shifts."""
    form = await request.post()
    lang = str(form.get("lang", ""))
    if lang not in i18n.available():
        raise web.HTTPBadRequest(text="unknown language")
    resp = web.HTTPSeeOther(safe_next(str(form.get("next", ""))))
    resp.set_cookie(
        i18n.COOKIE, lang, httponly=True, samesite="Lax", secure=secure(request), path="/", max_age=365 * 86400
    )
    raise resp


@routes.get("/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    if request[USER] is not None:
        raise web.HTTPFound(safe_next(request.query.get("next")))
    return render(request, "login.html", next=safe_next(request.query.get("next")), error="", username="")


@routes.post("/login")
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
        resp = render(
            request,
            "login.html",
            status=429,
            next=target,
            username=username,
            error=M_("Too many failed attempts: wait %(wait)s and try again.", wait=_wait_text(int(wait))),
        )
        resp.headers["Retry-After"] = wait
        return resp
    if verdict.delay_s:  # this login is being guessed from elsewhere: tries from new addresses take turns
        await asyncio.sleep(verdict.delay_s)
    user = await asyncio.to_thread(u.authenticate, store, username, password)
    if user is None:
        throttle.failed(address, username, time.monotonic())
        log.info("panel.login_failed")
        return render(
            request,
            "login.html",
            status=401,
            next=target,
            username=username,
            error=N_("That login and password do not match (or the login has expired)."),
        )
    throttle.succeeded(address, username, time.monotonic())
    # A shift login banned from its effort (store/bans.py): said only after the right password, so a guesser
    # learns nothing.
    if user["campaign_id"] and bans.user_banned(store, user["campaign_id"], user):
        log.info("panel.login_banned", user_id=user["id"], campaign_id=user["campaign_id"])
        return render(
            request,
            "login.html",
            status=403,
            next=target,
            username=username,
            error=N_("The organisers of this phone bank have removed you from it: this login no longer works."),
        )
    token, _ = u.start_login(store, user["id"])
    log.info("panel.login", user_id=user["id"], role=user["role"])
    if target == "/" and user["role"] == "caller" and user["campaign_id"]:
        target = f"/call/{user['campaign_id']}"
    resp = web.HTTPFound(target)
    set_login_cookie(resp, request, token)
    raise resp


def _wait_text(seconds: int) -> str:
    if seconds == 1:
        return M_("1 second")
    if seconds < 90:
        return M_("%(n)s seconds", n=seconds)
    return M_("%(n)s minutes", n=math.ceil(seconds / 60))


@routes.post("/logout")
@require()
async def logout(request: web.Request) -> web.StreamResponse:
    if token := request.cookies.get(COOKIE):
        u.end_login(request.app[STORE], token)
    if (user_id := user_of(request)["id"]) is not None:
        # A captain leaving the panel leaves their coaching too: nobody keeps listening in on a call unseen.
        await request.app[CONTROLLER].end_coaching_of(int(user_id), "logged_out")
    resp = web.HTTPFound("/login")
    resp.del_cookie(COOKIE, path="/")
    raise resp


@routes.get("/account")
@require()
async def account(request: web.Request) -> web.StreamResponse:
    return render(request, "account.html")


@routes.get("/")
@require()
async def home(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    if can(request, "manage_efforts") or can(request, "view_results"):
        raise web.HTTPFound("/admin/efforts")
    if user.get("campaign_id"):
        raise web.HTTPFound(f"/call/{user['campaign_id']}")
    return render(
        request,
        "error.html",
        status=200,
        title=N_("Welcome"),
        message=N_("Open the link your organiser sent you to join a phone bank."),
    )
