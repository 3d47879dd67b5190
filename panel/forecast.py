"""The organisers' planning page: how many volunteers and hours a goal takes, from the pacing simulator.

The same answer as ``phonebank forecast``: the simulator runs our predictive pacing for candidate team sizes.
It takes seconds of CPU, so it runs in a worker thread (the calls in progress share this event loop).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import web

from bridge import pacing_sim
from panel.common import render, require
from panel.i18n import M_, N_
from panel.keys import STORE
from store import results as r

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

# name: (label, kind, default, low, high)
FIELDS: dict[str, tuple[str, type, float, float, float]] = {
    "list_size": (N_("Contacts on the list"), int, 5000, 1, 1_000_000),
    "answer_rate": (N_("Answer rate (%)"), float, 20, 1, 100),
    "machine_share": (N_("Answered by machines (%)"), float, 40, 0, 95),
    "conversations": (N_("Conversations wanted (blank: all the list can give)"), int, 0, 0, 1_000_000),
    "shift_hours": (N_("Hours per shift"), float, 3, 0.5, 12),
    "shifts": (N_("Shifts"), int, 1, 1, 50),
    "talk_mean": (N_("Average conversation (seconds)"), float, 120, 10, 1800),
    "wrap_mean": (N_("Average wrap-up (seconds)"), float, 20, 0, 600),
}
PERCENT = ("answer_rate", "machine_share")


def _defaults(request: web.Request) -> dict[str, str]:
    form = {k: f"{v[2]:g}" for k, v in FIELDS.items()}
    form["conversations"] = ""
    effort = request.query.get("effort", "")
    if effort.isdigit():
        counts = r.contact_status_counts(request.app[STORE], int(effort))
        if n := counts.get("pending", 0) + counts.get("dialing", 0):
            form["list_size"] = str(n)
    return form


def check(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, (label, kind, _default, low, high) in FIELDS.items():
        raw = form.get(key, "").strip()
        if key == "conversations" and not raw:
            values[key] = None
            continue
        try:
            value = kind(float(raw)) if kind is int else float(raw)
        except ValueError:
            errors[key] = M_("%(field)s: a number, please", field=M_(label))
            continue
        if not low <= value <= high:
            errors[key] = M_(
                "%(field)s: between %(low)s and %(high)s", field=M_(label), low=f"{low:g}", high=f"{high:g}"
            )
            continue
        values[key] = value / 100 if key in PERCENT else value
    return values, errors


@routes.get("/admin/forecast")
@require("view_results")
async def forecast_page(request: web.Request) -> web.StreamResponse:
    return render(request, "forecast.html", form=_defaults(request), errors={}, result=None, fields=FIELDS)


@routes.post("/admin/forecast")
@require("view_results")
async def forecast_post(request: web.Request) -> web.StreamResponse:
    posted = await request.post()
    form = {k: str(posted.get(k, "")) for k in FIELDS}
    values, errors = check(form)
    if errors:
        return render(request, "forecast.html", status=400, form=form, errors=errors, result=None, fields=FIELDS)
    result = await asyncio.to_thread(pacing_sim.forecast, **values)
    log.info("panel.forecast", list_size=values["list_size"], volunteers=result["volunteers_per_shift"])
    return render(request, "forecast.html", form=form, errors={}, result=result, fields=FIELDS)
