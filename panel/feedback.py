"""Callers' "report a problem / feedback on the script" box and the organisers' inbox for it.

``POST /api/feedback`` {session_id?, campaign_id?, kind: problem|script, text} from the calling screen (any
logged-in user; a caller may attach only their own session). ``GET /admin/feedback`` lists it for whoever manages
efforts, newest open first, with a Resolved button (``POST /admin/feedback/{fid}/resolve``).
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from panel.common import json_error, read_json, render, require, user_of
from panel.keys import STORE
from store import caller as sc
from store.db import StoreError

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


def _int_or_none(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@routes.post("/api/feedback")
@require()
async def post_feedback(request: web.Request) -> web.Response:
    store = request.app[STORE]
    user = user_of(request)
    body = await read_json(request)
    manager = "manage_efforts" in user["permissions"]
    session_id = _int_or_none(body.get("session_id"))
    campaign_id = _int_or_none(body.get("campaign_id"))
    if session_id is not None:
        session = store.session(session_id)
        if session is None or (not manager and session["user_id"] != user["id"]):
            return json_error(404, "no such session")
        campaign_id = session["campaign_id"]
    elif campaign_id is None:
        campaign_id = user.get("campaign_id")
    if campaign_id is not None and store.campaign(campaign_id) is None:
        return json_error(404, "no such effort")
    if campaign_id is not None and not manager and user.get("campaign_id") not in (None, campaign_id):
        return json_error(403, "your login is for another effort")
    try:
        row = sc.add_feedback(
            store,
            kind=str(body.get("kind", "problem")),
            text=str(body.get("text", "")),
            user_id=user["id"],
            campaign_id=campaign_id,
            session_id=session_id,
        )
    except StoreError as exc:
        return json_error(400, str(exc))
    log.info("feedback.received", feedback_id=row["id"], campaign_id=campaign_id, kind=row["kind"])
    return web.json_response({"id": row["id"], "kind": row["kind"], "created_at": row["created_at"]}, status=201)


@routes.get("/admin/feedback")
@require("manage_efforts")
async def inbox(request: web.Request) -> web.StreamResponse:
    show_all = request.query.get("show") == "all"
    items = sc.feedback_list(request.app[STORE], include_resolved=show_all)
    return render(request, "feedback/inbox.html", items=items, show_all=show_all)


@routes.post("/admin/feedback/{fid}/resolve")
@require("manage_efforts")
async def resolve(request: web.Request) -> web.StreamResponse:
    try:
        fid = int(request.match_info["fid"])
    except ValueError as exc:
        raise web.HTTPNotFound(text="no such feedback") from exc
    form = await request.post()
    reopen = str(form.get("reopen", "")) == "1"
    if not sc.resolve_feedback(request.app[STORE], fid, resolved=not reopen):
        raise web.HTTPNotFound(text="no such feedback")
    log.info("feedback.resolved", feedback_id=fid, reopened=reopen)
    target = "/admin/feedback?show=all" if str(form.get("show", "")) == "all" else "/admin/feedback"
    raise web.HTTPFound(target)
