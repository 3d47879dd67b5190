"""JSON API for volunteers' sessions: what the caller's screen and scripts drive the controller with.

Every route needs a login (cookie, with CSRF on writes) or the API bearer token. A caller reaches only their own
sessions; managers and the token reach all. Voter phone numbers never leave through this API unless the effort
uses personal-phone dialing (the volunteer dials themselves).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bridge import sip_accounts as sa
from bridge.ari import AriError
from bridge.ari_app import Controller
from panel.localtime import voter_clock
from panel.web import CALLIN_NUMBER, CONTROLLER, USER, json_error, json_refusal, require
from store.contacts import PHONE_EXT, about_fields
from store.db import StoreError

ACTIONS = ("hangup", "pause", "resume", "stop")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise json_refusal(400, f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise json_refusal(400, "body must be a JSON object")
    return body


def callback_at(body: dict[str, Any]) -> float | None:
    """The callback time a disposition asks for (epoch seconds), if any."""
    raw = body.get("callback_at")
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError) as exc:
        raise StoreError("callback_at must be a time in epoch seconds") from exc


def _session_id(request: web.Request) -> int:
    """The session in the path, if this user may reach it (404 otherwise: no hint that it exists)."""
    not_found = json_refusal(404, "no such session")
    try:
        sid = int(request.match_info["sid"])
    except ValueError as exc:
        raise not_found from exc
    user = request[USER]
    if "manage_efforts" not in user["permissions"]:
        session = request.app[CONTROLLER].store.session(sid)
        if session is None or session["user_id"] is None or session["user_id"] != user["id"]:
            raise not_found
    return sid


def session_view(ctl: Controller, session_id: int, callin_number: str,
                 permissions: set[str] | None = None) -> dict[str, Any] | None:
    """What a caller's screen shows. ``permissions``: the viewer's; without "view_profiles" the About pane
    (address and the list's extra columns) stays on the server."""
    store = ctl.store
    s = store.session(session_id)
    if s is None:
        return None
    live = ctl.volunteer_state(session_id)
    view: dict[str, Any] = {
        "id": s["id"], "campaign_id": s["campaign_id"], "volunteer": s["volunteer_name"], "code": s["code"],
        "callin_number": callin_number, "status": s["status"],
        "state": live.state.value if live else s["state"], "state_reason": live.reason if live else s["state_reason"],
        "phone_connected": session_id in ctl.legs, "contact": None,
    }
    call_id = live.call_id if live else s["current_call_id"]
    if call_id:
        call = store.call(call_id)
        if call:
            campaign = store.campaign(call["campaign_id"]) or {}
            contact = store.contact(call["contact_id"]) or {}
            view["call_id"] = call_id
            view["contact"] = {k: contact.get(k) for k in ("id", "first_name", "last_name", "city", "state", "zip",
                                                           "extra")}
            # Other numbers from the list stay on the server even when the caller dials this one themselves.
            view["contact"]["extra"] = about_fields(contact.get("extra") or {})
            # An extension reaches nobody without the number: every caller sees it (to dial, or to ask for).
            view["contact"]["phone_ext"] = str((contact.get("extra") or {}).get(PHONE_EXT, ""))
            # Their clock (zone and time there, not the number) for the About pane and a callback time.
            view["contact"]["local_time"] = voter_clock(str(contact.get("phone") or ""))
            if campaign.get("dial_mode") == "personal":
                view["contact"]["phone"] = contact.get("phone")
            if permissions is not None and "view_profiles" not in permissions:
                for key in ("city", "state", "zip"):
                    view["contact"][key] = ""
                view["contact"]["extra"] = {}
    if live and live.state.value == "wrapup":
        view["wrapup_limit_s"] = live.wrapup_limit
        view["wrapup_since"] = live.since
    if live and live.state.value == "idle" and s["status"] == "open":
        # Why nothing is put through yet, and until when (bridge.waiting: the dashboard says the same).
        reason = ctl.waiting.for_effort(ctl, s["campaign_id"])
        view["waiting"] = reason.as_dict() if reason else None
    return view


@require("make_calls")
async def create_session(request: web.Request) -> web.Response:
    ctl = request.app[CONTROLLER]
    body = await _body(request)
    try:
        campaign_id = int(body.get("campaign_id", 0))
    except (TypeError, ValueError):
        return json_error(400, "campaign_id must be a number")
    user = request[USER]
    manager = "manage_efforts" in user["permissions"]
    if not manager and user.get("campaign_id") not in (None, campaign_id):
        return json_error(403, "your login is for another effort")
    try:
        # A logged-in caller is the volunteer (no signing in under another name); scripts with the API token
        # name one in the body.
        who = body if user["id"] is None else user
        s = ctl.store.create_session(campaign_id, str(who.get("name", "")), str(who.get("email", "")),
                                     str(who.get("phone", "")),
                                     user_id=user["id"], start_on_click=bool(body.get("start_on_click", False)))
    except StoreError as exc:
        return json_error(400, str(exc))
    return web.json_response({"id": s["id"], "code": s["code"], "callin_number": request.app[CALLIN_NUMBER]},
                             status=201)


@require("make_calls")
async def get_session(request: web.Request) -> web.Response:
    view = session_view(request.app[CONTROLLER], _session_id(request), request.app[CALLIN_NUMBER],
                        request[USER]["permissions"])
    return web.json_response(view) if view else json_error(404, "no such session")


@require("make_calls")
async def post_disposition(request: web.Request) -> web.Response:
    ctl = request.app[CONTROLLER]
    sid = _session_id(request)
    body = await _body(request)
    session = ctl.store.session(sid)
    if session is None:
        return json_error(404, "no such session")
    live = ctl.volunteer_state(sid)
    call_id = body.get("call_id") or (live.call_id if live else session["current_call_id"])
    call = ctl.store.call(call_id) if call_id else None
    if call is None or call["session_id"] != sid:
        return json_error(409, "no call to disposition for this session")
    answers = body.get("answers", {})
    try:
        saved = ctl.store.add_disposition(sid, call_id, call["contact_id"], str(body.get("code", "")),
                                          str(body.get("notes", "")), answers, callback_at(body))
    except StoreError as exc:
        return json_error(400, str(exc))
    if live and live.call_id == call_id:
        await ctl.volunteer_action(sid, "disposed")
    return web.json_response(saved, status=201)


@require("make_calls")
async def post_action(request: web.Request) -> web.Response:
    ctl = request.app[CONTROLLER]
    sid = _session_id(request)
    action = request.match_info["action"]
    if action not in ACTIONS:
        return json_error(404, f"unknown action; expected one of: {', '.join(ACTIONS)}")
    if ctl.store.session(sid) is None:
        return json_error(404, "no such session")
    await ctl.volunteer_action(sid, action)
    return web.json_response(session_view(ctl, sid, request.app[CALLIN_NUMBER], request[USER]["permissions"]))


# The extension a device dials to join: any would do (the account, not the number, decides where the call goes).
SIP_DIAL = "join"


@require("make_calls")
async def post_sip_account(request: web.Request) -> web.Response:
    """Credentials for this session only, for computer audio (``webrtc``) or a softphone. Asking again revokes the
    previous ones. The password is in this answer and nowhere else (never logged, never stored)."""
    ctl = request.app[CONTROLLER]
    sid = _session_id(request)
    body = await _body(request)
    try:
        account, password = await ctl.issue_sip_account(sid, str(body.get("kind", "")))
    except sa.Refused as exc:
        return json_error(exc.status, str(exc))
    except AriError:
        return json_error(503, "the phone system did not take the account; try again in a moment")
    return web.json_response(sip_account_view(ctl, account, password), headers={"Cache-Control": "no-store"})


@require("make_calls")
async def post_sip_call(request: web.Request) -> web.Response:
    """"Register and we'll call you": the PBX rings the session's registered softphone."""
    ctl = request.app[CONTROLLER]
    sid = _session_id(request)
    try:
        await ctl.call_softphone(sid)
    except sa.Refused as exc:
        return json_error(exc.status, str(exc))
    return web.json_response({"calling": True}, status=202)


def sip_account_view(ctl: Controller, account: sa.Account, password: str) -> dict[str, Any]:
    """What a device needs to connect (the route's answer; the softphone screen shows the same)."""
    public = ctl.sip_public
    webrtc = account.kind is sa.Kind.WEBRTC
    return {
        "kind": account.kind.value, "username": account.username, "password": password,
        "domain": public.get("domain", ""), "dial": SIP_DIAL,
        "ws_url": public.get("ws_url", "") if webrtc else "",
        "sip_server": "" if webrtc else public.get("sip_server", ""),
        "transport": "wss" if webrtc else "udp",
        "ice_servers": public.get("ice_servers", []) if webrtc else [],
        "expires_at": int(account.expires_at),
    }


@require("view_results")
async def campaign_stats(request: web.Request) -> web.Response:
    ctl = request.app[CONTROLLER]
    try:
        cid = int(request.match_info["cid"])
    except ValueError:
        return json_error(404, "no such campaign")
    if ctl.store.campaign(cid) is None:
        return json_error(404, "no such campaign")
    return web.json_response(ctl.store.campaign_stats(cid))


def setup(app: web.Application) -> None:
    app.router.add_post("/api/sessions", create_session)
    app.router.add_get("/api/sessions/{sid}", get_session)
    app.router.add_post("/api/sessions/{sid}/disposition", post_disposition)
    app.router.add_post("/api/sessions/{sid}/sip", post_sip_account)
    app.router.add_post("/api/sessions/{sid}/sip/call", post_sip_call)
    app.router.add_post("/api/sessions/{sid}/{action}", post_action)
    app.router.add_get("/api/campaigns/{cid}/stats", campaign_stats)
