"""Banning a caller from an effort by email or phone (store/bans.py): the organiser's page and action.

A ban ends the caller's logins at once, stops their open calling sessions through the controller's own stop (the
phone line drops as with "Stop"), and from then on the caller screens and the effort's sign-in refuse them
(panel/caller.py)."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from panel.common import render, require
from panel.i18n import M_, N_, reason
from panel.keys import CONTROLLER, STORE
from store import bans
from store.db import StoreError

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


def _campaign(request: web.Request) -> dict[str, Any]:
    try:
        campaign = request.app[STORE].campaign(int(request.match_info["cid"]))
    except ValueError:
        campaign = None
    if campaign is None:
        raise web.HTTPNotFound(text="No such effort.")
    return campaign


def _bans_page(request: web.Request, campaign: dict[str, Any], status: int = 200, **extra: Any) -> web.Response:
    return render(
        request,
        "results/bans.html",
        status=status,
        campaign=campaign,
        bans=bans.bans(request.app[STORE], campaign["id"]),
        **{"error": "", "done": "", "kind": "email", "value": "", **extra},
    )


@routes.get("/admin/efforts/{cid}/bans")
@require("manage_efforts")
async def bans_page(request: web.Request) -> web.StreamResponse:
    return _bans_page(request, _campaign(request))


@routes.post("/admin/efforts/{cid}/bans")
@require("manage_efforts")
async def bans_post(request: web.Request) -> web.StreamResponse:
    """Ban a caller by email or phone: their logins end, their open sessions stop through the controller (the
    line drops the way "Stop" drops it), and the caller screens refuse them from then on."""
    campaign = _campaign(request)
    store = request.app[STORE]
    form = await request.post()
    kind, value = str(form.get("kind", "")), str(form.get("value", ""))[:300]
    if form.get("action") == "unban":
        bans.unban(store, campaign["id"], kind, value)
        return _bans_page(request, campaign, done=N_("Ban lifted."))
    try:
        stop = bans.ban(store, campaign["id"], kind, value, str(form.get("reason", "")))
    except StoreError as exc:
        return _bans_page(request, campaign, status=400, error=reason(exc), kind=kind, value=value)
    for sid in stop:
        await request.app[CONTROLLER].volunteer_action(sid, "stop")
    await request.app[CONTROLLER].recheck_coaches()  # a banned captain coaching one of the effort's callers
    log.info("panel.caller_banned", campaign_id=campaign["id"], kind=kind, sessions_stopped=len(stop))
    if len(stop) == 1:
        done = M_("Banned. %(n)s open session stopped.", n=1)
    else:
        done = M_("Banned. %(n)s open sessions stopped.", n=len(stop))
    return _bans_page(request, campaign, done=done)
