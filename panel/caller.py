"""The caller's side of the panel: join by effort code, shift logins, audio choice, the live calling screen.

Flow (as on OpenVPB / ThruTalk): ``/join`` (enter the effort code) → ``/join/{code}`` (the effort; sign in with
name, email and phone to get a temporary login, shown once, then log in with it) → ``/call/{cid}`` (choose audio)
→ ``/call/{cid}/s/{sid}`` (one page driven by the session's WebSocket: call in, Start calling, voters, wrap-up,
Thank-you). Personal-phone efforts skip the dialer: ``/api/personal/{sid}/…`` hands out one contact at a time,
with its number, and records the caller's result.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import segno
import structlog
from aiohttp import web
from markupsafe import Markup

from bridge import sip_accounts as sa
from bridge.ari import AriError
from panel import i18n, webphone
from panel.common import json_error, json_refusal, page_refusal, read_json, render, require, session_id, user_of
from panel.i18n import N_, reason
from panel.keys import CALLIN_NUMBER, CONTROLLER, LIMITER, STORE
from panel.proxy import client_ip
from panel.views import callback_at, session_view, sip_account_view
from store import bans
from store import caller as sc
from store import efforts as ef
from store import users as u
from store.db import StoreError

log = structlog.get_logger(__name__)
SIGNIN_FIELDS = ("name", "email", "phone")
# Shift logins one network address may make per hour (a phone-bank party shares one).
SHIFT_LOGINS_PER_IP_HOUR = 200
routes = web.RouteTableDef()

BANNED_TEXT = N_(
    "The organisers of this phone bank have removed you from it, so you cannot sign in or call for it. "
    "Ask them if you think this is a mistake."
)


def _no_store(resp: web.Response) -> web.Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


# ---------------------------------------------------------------------------------------------- joining
@routes.get("/join")
async def join_page(request: web.Request) -> web.StreamResponse:
    """Enter your effort code (``?code=`` from this form goes to the effort's page)."""
    raw = request.query.get("code")
    if raw is None:
        return render(request, "caller/join.html", error="", code="")
    campaign = sc.campaign_by_join_code(request.app[STORE], raw)
    if campaign is None:
        return render(
            request,
            "caller/join.html",
            status=404,
            code=raw,
            error=N_(
                "We could not find a phone bank with that code. Check it against the link you were "
                "sent: it looks like ABCDEFG-1234567."
            ),
        )
    raise web.HTTPFound(f"/join/{quote(sc.normalize_join_code(raw))}")


def _joinable_effort(request: web.Request) -> dict[str, Any]:
    raw = request.match_info["code"]
    campaign = sc.campaign_by_join_code(request.app[STORE], raw)
    if campaign is None:
        raise page_refusal(
            request,
            "caller/join.html",
            404,
            code=raw,
            error=N_(
                "We could not find a phone bank with that code. Check it against the link you were "
                "sent: it looks like ABCDEFG-1234567."
            ),
        )
    refusal = sc.join_refusal(campaign)
    if refusal:
        raise page_refusal(request, "caller/closed.html", 403, campaign=campaign, message=refusal)
    return campaign


@routes.get("/join/{code}")
async def effort_page(request: web.Request) -> web.StreamResponse:
    campaign = _joinable_effort(request)
    return render(request, "caller/effort.html", campaign=campaign, error="", form=dict.fromkeys(SIGNIN_FIELDS, ""))


@routes.post("/join/{code}")
async def effort_signin(request: web.Request) -> web.StreamResponse:
    """Sign in with name, email and phone → a temporary login for this effort, shown once (as on ThruTalk)."""
    campaign = _joinable_effort(request)
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() for k in SIGNIN_FIELDS}
    if not request.app[LIMITER].allow(f"shift-login:{client_ip(request)}", SHIFT_LOGINS_PER_IP_HOUR, 3600):
        log.warning("caller.shift_login_throttled", campaign_id=campaign["id"])
        return render(
            request,
            "caller/effort.html",
            status=429,
            campaign=campaign,
            form=values,
            error=N_("Too many sign-ins from your network in the last hour: ask your organiser for help."),
        )
    try:
        u.check_shift_signin(values["name"], values["email"], values["phone"])
        if bans.is_banned(request.app[STORE], campaign["id"], values["email"], values["phone"]):
            log.info("caller.shift_login_banned", campaign_id=campaign["id"])
            return render(request, "caller/effort.html", status=403, campaign=campaign, error=BANNED_TEXT, form=values)
        password = u.shift_password()
        password_hash = await asyncio.to_thread(u.hash_password, password)
        user, password = u.create_shift_login(
            request.app[STORE],
            campaign["id"],
            values["name"],
            values["email"],
            values["phone"],
            password=password,
            password_hash=password_hash,
        )
    except StoreError as exc:
        return render(request, "caller/effort.html", status=400, campaign=campaign, error=reason(exc), form=values)
    log.info("caller.shift_login_created", user_id=user["id"], campaign_id=campaign["id"])
    return _no_store(
        render(
            request,
            "caller/your_login.html",
            campaign=campaign,
            login_id=user["username"],
            password=password,
            expires_at=user["expires_at"],
            next=f"/call/{campaign['id']}",
        )
    )


# ---------------------------------------------------------------------------------------------- audio choice
def _campaign_for_caller(request: web.Request) -> dict[str, Any]:
    """The effort in the path, if this login may call for it."""
    try:
        cid = int(request.match_info["cid"])
    except ValueError:
        cid = 0
    campaign = request.app[STORE].campaign(cid) if cid else None
    if campaign is None:
        raise page_refusal(
            request,
            "error.html",
            404,
            title=N_("No such phone bank"),
            message=N_("This phone bank does not exist. Open the link your organiser sent you."),
        )
    user = user_of(request)
    if user.get("campaign_id") not in (None, cid) and "manage_efforts" not in user["permissions"]:
        raise page_refusal(
            request,
            "error.html",
            403,
            title=N_("Another phone bank"),
            message=N_(
                "Your login is for another phone bank. Sign in again from this phone bank's link to get a login for it."
            ),
        )
    if bans.user_banned(request.app[STORE], cid, user):
        # A shift login is this effort's only: it ends here too. An account keeps its other efforts.
        if user.get("campaign_id") == cid:
            bans.end_logins(request.app[STORE], user["id"])
        log.info("caller.banned_refused", user_id=user["id"], campaign_id=cid)
        raise page_refusal(request, "error.html", 403, title=N_("Removed from this phone bank"), message=BANNED_TEXT)
    return campaign


@routes.get("/call/{cid}")
@require("make_calls")
async def audio_page(request: web.Request) -> web.StreamResponse:
    campaign = _campaign_for_caller(request)
    user = user_of(request)
    existing = sc.open_session_for(request.app[STORE], user["id"], campaign["id"]) if user["id"] else None
    return render(
        request,
        "caller/audio.html",
        campaign=campaign,
        refusal=sc.join_refusal(campaign),
        existing=existing,
        callin_number=request.app[CALLIN_NUMBER],
        error="",
        computer_unavailable=webphone.available(request.app),
    )


@routes.post("/call/{cid}")
@require("make_calls")
async def audio_post(request: web.Request) -> web.StreamResponse:
    campaign = _campaign_for_caller(request)
    store = request.app[STORE]
    user = user_of(request)
    form = await request.post()
    audio = str(form.get("audio", "phone"))
    refusal = sc.join_refusal(campaign)
    if audio not in ("phone", "sip", "computer") and campaign["dial_mode"] != "personal":
        refusal = N_("Choose how you will hear the voters.")
    elif audio == "computer" and campaign["dial_mode"] != "personal" and not refusal:
        refusal = webphone.available(request.app)
    if refusal or user["id"] is None:
        return render(
            request,
            "caller/audio.html",
            status=400,
            campaign=campaign,
            refusal=refusal or "log in first",
            existing=None,
            callin_number=request.app[CALLIN_NUMBER],
            error=refusal,
        )
    # What the call-in and the beeps speak to this volunteer: the panel's language as they join (bridge.language).
    language = i18n.choose(request)
    session = sc.open_session_for(store, user["id"], campaign["id"])
    if session is not None and session.get("language") != language:
        store.update_session(session["id"], language=language)  # they switched language since: the phone follows
    if session is None:
        try:
            session = store.create_session(
                campaign["id"],
                user.get("name") or user["username"],
                user.get("email") or "",
                user.get("phone") or "",
                user_id=user["id"],
                start_on_click=True,
                language=language,
            )
        except StoreError as exc:
            return render(
                request,
                "caller/audio.html",
                status=400,
                campaign=campaign,
                refusal=str(exc),
                existing=None,
                callin_number=request.app[CALLIN_NUMBER],
                error=str(exc),
            )
        log.info("caller.session_created", session_id=session["id"], campaign_id=campaign["id"], audio=audio)
    if audio == "sip" and campaign["dial_mode"] != "personal":
        raise web.HTTPFound(f"/call/{campaign['id']}/s/{session['id']}/softphone")
    # The page remembers the choice in its address: a reload keeps computer audio.
    query = "?audio=computer" if audio == "computer" and campaign["dial_mode"] != "personal" else ""
    raise web.HTTPFound(f"/call/{campaign['id']}/s/{session['id']}{query}")


# ---------------------------------------------------------------------------------------------- the calling screen
def _owned_session(request: web.Request, campaign_id: int) -> dict[str, Any] | None:
    try:
        sid = int(request.match_info["sid"])
    except ValueError:
        return None
    session = request.app[STORE].session(sid)
    if session is None or session["campaign_id"] != campaign_id:
        return None
    user = user_of(request)
    if "manage_efforts" not in user["permissions"] and session["user_id"] != user["id"]:
        return None
    return session


@routes.get("/call/{cid}/s/{sid}")
@require("make_calls")
async def session_page(request: web.Request) -> web.StreamResponse:
    campaign = _campaign_for_caller(request)
    session = _owned_session(request, campaign["id"])
    if session is None:
        return render(
            request,
            "error.html",
            status=404,
            title=N_("No such session"),
            message=N_("This calling session does not exist or is not yours."),
        )
    store = request.app[STORE]
    user = user_of(request)
    perms = user["permissions"]
    # The script's languages (store/efforts.py "script languages"): the caller switches per call; each language
    # by its own name, as callers of either language recognise it.
    languages = ef.script_languages(campaign)
    config = {
        "session_id": session["id"],
        "campaign_id": campaign["id"],
        "code": session["code"],
        "callin_number": request.app[CALLIN_NUMBER],
        "personal": campaign["dial_mode"] == "personal",
        "script": campaign["script"] if "view_script" in perms else "",
        "survey": campaign["survey"] if "view_forms" in perms else [],
        "languages": [{"code": code, "name": i18n.name_of(code)} for code in languages],
        "second_script": campaign["second_script"] if "view_script" in perms and len(languages) > 1 else "",
        "show_about": "view_profiles" in perms,
        "dispositions": store.disposition_codes(campaign["id"]),
        "wrapup_limit_s": campaign["wrapup_limit_s"],
        "ended": session["status"] == "ended",
        "server_now": time.time(),
        # Computer audio: only where the server offers it (else the page is the call-in one).
        "audio": "computer"
        if request.query.get("audio") == "computer"
        and campaign["dial_mode"] != "personal"
        and not webphone.available(request.app)
        else "phone",
    }
    # The call-in page offers the switch (and a way back to computer audio after leaving the page).
    computer_offered = campaign["dial_mode"] != "personal" and not webphone.available(request.app)
    resp = _no_store(
        render(
            request,
            "caller/session.html",
            campaign=campaign,
            session=session,
            config=config,
            callin_number=request.app[CALLIN_NUMBER],
            contact_kinds=[d for d in config["dispositions"] if d["kind"] == "contact"],
            no_contact=[d for d in config["dispositions"] if d["kind"] == "no_contact"],
            remove=[d for d in config["dispositions"] if d["kind"] == "remove"],
            computer_offered=computer_offered,
        )
    )
    if config["audio"] == "computer":
        resp.headers["Content-Security-Policy"] = webphone.csp(request.app)
    return resp


# ---------------------------------------------------------------------------------------------- softphone
def _softphone_session(request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    campaign = _campaign_for_caller(request)
    session = _owned_session(request, campaign["id"])
    if session is None:
        raise page_refusal(
            request,
            "error.html",
            404,
            title=N_("No such session"),
            message=N_("This calling session does not exist or is not yours."),
        )
    return campaign, session


def _softphone_view(
    request: web.Request,
    campaign: dict[str, Any],
    session: dict[str, Any],
    *,
    status: int = 200,
    account: dict[str, Any] | None = None,
    qr: Markup | None = None,
    error: str = "",
    notice: str = "",
) -> web.Response:
    return _no_store(
        render(
            request,
            "caller/softphone.html",
            status=status,
            campaign=campaign,
            session=session,
            account=account,
            qr=qr,
            error=error,
            notice=notice,
        )
    )


@routes.get("/call/{cid}/s/{sid}/softphone")
@require("make_calls")
async def softphone_page(request: web.Request) -> web.StreamResponse:
    """What a softphone needs; the login itself is made by the POST (a GET changes nothing)."""
    campaign, session = _softphone_session(request)
    return _softphone_view(request, campaign, session)


@routes.post("/call/{cid}/s/{sid}/softphone/call")
@require("make_calls")
async def softphone_call(request: web.Request) -> web.StreamResponse:
    """ "Register and we'll call you": ring the session's registered softphone."""
    campaign, session = _softphone_session(request)
    try:
        await request.app[CONTROLLER].call_softphone(session["id"])
    except sa.Refused as exc:
        return _softphone_view(request, campaign, session, status=exc.status, error=str(exc))
    notice = N_("We are calling your softphone now: answer it and stay on the line.")
    return _softphone_view(request, campaign, session, notice=notice)


@routes.post("/call/{cid}/s/{sid}/softphone")
@require("make_calls")
async def softphone_post(request: web.Request) -> web.StreamResponse:
    """A SIP login for this session only (any earlier one stops working), shown once with a QR code."""
    campaign, session = _softphone_session(request)
    ctl = request.app[CONTROLLER]
    try:
        account, password = await ctl.issue_sip_account(session["id"], sa.Kind.SOFTPHONE.value)
    except sa.Refused as exc:
        return _softphone_view(request, campaign, session, status=exc.status, error=str(exc))
    except AriError:
        error = N_("The phone system did not answer. Try again in a moment.")
        return _softphone_view(request, campaign, session, status=503, error=error)
    view = sip_account_view(ctl, account, password)
    # A SIP URI with the password in it (RFC 3261 userinfo): some mobile softphones fill an account from it,
    # others need the fields typed. Drawn here as inline SVG: no image request, nothing for the CSP to allow.
    uri = f"sip:{view['username']}:{view['password']}@{view['sip_server']};transport={view['transport']}"
    qr = Markup(segno.make(uri, error="m").svg_inline(scale=4, border=2, title="Softphone login"))
    log.info("caller.softphone_login", session_id=session["id"])
    return _softphone_view(request, campaign, session, account=view, qr=qr)


# ---------------------------------------------------------------------------------------------- personal phone API
def _personal_session(request: web.Request) -> int:
    sid = session_id(request)  # 404 unless it is this caller's
    store = request.app[STORE]
    session = store.session(sid)
    campaign = store.campaign(session["campaign_id"]) if session else None
    if session is None or campaign is None:
        raise json_refusal(404, "no such session")
    if campaign["dial_mode"] != "personal":
        raise json_refusal(409, "this effort dials for you: use the session API")
    return sid


def _personal_view(request: web.Request, sid: int, **extra: Any) -> web.Response:
    view = session_view(request.app[CONTROLLER], sid, request.app[CALLIN_NUMBER], user_of(request)["permissions"]) or {}
    return web.json_response({**view, **extra})


@routes.post("/api/personal/{sid}/next")
@require("make_calls")
async def personal_next(request: web.Request) -> web.Response:
    """The contact to dial now: the one this session holds, else the next one in the list."""
    sid = _personal_session(request)
    try:
        call = sc.personal_claim_next(request.app[STORE], sid)
    except StoreError as exc:
        return json_error(409, str(exc))
    if call is not None:
        log.info("caller.personal_claimed", session_id=sid, contact_id=call["contact_id"])
    return _personal_view(request, sid, list_done=call is None)


@routes.post("/api/personal/{sid}/disposition")
@require("make_calls")
async def personal_disposition(request: web.Request) -> web.Response:
    """Save the result of the held contact (and claim the next unless ``stop`` is true)."""
    sid = _personal_session(request)
    body = await read_json(request)
    answers = body.get("answers") or {}
    store = request.app[STORE]
    try:
        saved = sc.personal_save(
            store,
            sid,
            str(body.get("code", "")),
            str(body.get("notes", "")),
            answers,
            callback_at=callback_at(body),
            language=body.get("language") or "",
        )
    except StoreError as exc:
        return json_error(400, str(exc))
    if body.get("stop"):
        return _personal_view(request, sid, saved=saved, list_done=False)
    try:
        call = sc.personal_claim_next(store, sid)
    except StoreError as exc:
        return json_error(409, str(exc))
    return _personal_view(request, sid, saved=saved, list_done=call is None)


@routes.post("/api/personal/{sid}/stop")
@require("make_calls")
async def personal_stop(request: web.Request) -> web.Response:
    """Stop making calls: give back an unsaved contact and end the session."""
    sid = _personal_session(request)
    sc.personal_release(request.app[STORE], sid)
    await request.app[CONTROLLER].volunteer_action(sid, "stop")
    return _personal_view(request, sid)
