"""JSON API for volunteers' sessions: what the caller's screen and scripts drive the controller with.

Every route needs a login (cookie, with CSRF on writes) or the API bearer token. A caller reaches only their own
sessions; managers and the token reach all. Voter phone numbers never leave through this API unless the effort
uses personal-phone dialing (the volunteer dials themselves).
"""

from __future__ import annotations

from aiohttp import web

from bridge import sip_accounts as sa
from bridge.ari import AriError
from panel import i18n
from panel.common import json_error, read_json, require, session_id, user_of
from panel.keys import CALLIN_NUMBER, CONTROLLER
from panel.views import callback_at, session_view, sip_account_view
from store.db import StoreError

ACTIONS = ("hangup", "pause", "resume", "stop")
routes = web.RouteTableDef()


@routes.post("/api/sessions")
@require("make_calls")
async def create_session(request: web.Request) -> web.Response:
    ctl = request.app[CONTROLLER]
    body = await read_json(request)
    try:
        campaign_id = int(body.get("campaign_id", 0))
    except (TypeError, ValueError):
        return json_error(400, "campaign_id must be a number")
    user = user_of(request)
    manager = "manage_efforts" in user["permissions"]
    if not manager and user.get("campaign_id") not in (None, campaign_id):
        return json_error(403, "your login is for another effort")
    # The volunteer's language (call-in prompts, beeps): a script may name it, else the panel's for this request.
    language = body.get("language") or i18n.choose(request)
    if language not in i18n.available():
        return json_error(400, f"language must be one of: {', '.join(i18n.available())}")
    try:
        # A logged-in caller is the volunteer (no signing in under another name); scripts with the API token
        # name one in the body.
        who = body if user["id"] is None else user
        s = ctl.store.create_session(
            campaign_id,
            str(who.get("name", "")),
            str(who.get("email", "")),
            str(who.get("phone", "")),
            user_id=user["id"],
            start_on_click=bool(body.get("start_on_click", False)),
            language=language,
        )
    except StoreError as exc:
        return json_error(400, str(exc))
    return web.json_response(
        {"id": s["id"], "code": s["code"], "callin_number": request.app[CALLIN_NUMBER]}, status=201
    )


@routes.get("/api/sessions/{sid}")
@require("make_calls")
async def get_session(request: web.Request) -> web.Response:
    view = session_view(
        request.app[CONTROLLER], session_id(request), request.app[CALLIN_NUMBER], user_of(request)["permissions"]
    )
    return web.json_response(view) if view else json_error(404, "no such session")


@routes.post("/api/sessions/{sid}/disposition")
@require("make_calls")
async def post_disposition(request: web.Request) -> web.Response:
    ctl = request.app[CONTROLLER]
    sid = session_id(request)
    body = await read_json(request)
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
        saved = ctl.store.add_disposition(
            sid,
            call_id,
            call["contact_id"],
            str(body.get("code", "")),
            str(body.get("notes", "")),
            answers,
            callback_at(body),
            language=body.get("language") or "",
        )
    except StoreError as exc:
        return json_error(400, str(exc))
    if live and live.call_id == call_id:
        await ctl.volunteer_action(sid, "disposed")
    return web.json_response(saved, status=201)


@routes.post("/api/sessions/{sid}/sip")
@require("make_calls")
async def post_sip_account(request: web.Request) -> web.Response:
    """Credentials for this session only, for computer audio (``webrtc``) or a softphone. Asking again revokes the
    previous ones. The password is in this answer and nowhere else (never logged, never stored)."""
    ctl = request.app[CONTROLLER]
    sid = session_id(request)
    body = await read_json(request)
    try:
        account, password = await ctl.issue_sip_account(sid, str(body.get("kind", "")))
    except sa.Refused as exc:
        return json_error(exc.status, str(exc))
    except AriError:
        return json_error(503, "the phone system did not take the account; try again in a moment")
    return web.json_response(sip_account_view(ctl, account, password), headers={"Cache-Control": "no-store"})


@routes.post("/api/sessions/{sid}/sip/call")
@require("make_calls")
async def post_sip_call(request: web.Request) -> web.Response:
    """ "Register and we'll call you": the PBX rings the session's registered softphone."""
    ctl = request.app[CONTROLLER]
    sid = session_id(request)
    try:
        await ctl.call_softphone(sid)
    except sa.Refused as exc:
        return json_error(exc.status, str(exc))
    return web.json_response({"calling": True}, status=202)


@routes.get("/api/campaigns/{cid}/stats")
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


# Last: the routes above under /api/sessions/{sid}/ (disposition, sip) must match before this catch-all.
@routes.post("/api/sessions/{sid}/{action}")
@require("make_calls")
async def post_action(request: web.Request) -> web.Response:
    ctl = request.app[CONTROLLER]
    sid = session_id(request)
    action = request.match_info["action"]
    if action not in ACTIONS:
        return json_error(404, f"unknown action; expected one of: {', '.join(ACTIONS)}")
    if ctl.store.session(sid) is None:
        return json_error(404, "no such session")
    await ctl.volunteer_action(sid, action)
    return web.json_response(session_view(ctl, sid, request.app[CALLIN_NUMBER], user_of(request)["permissions"]))
