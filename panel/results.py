"""Results: the live dashboard of an effort, each contact's activity history, and the CSV exports.

The dashboard is server-rendered (right numbers with scripts off) and kept live by ``static/results.js`` from the
effort's WebSocket (``panel/push.py`` sends ``dashboard_data`` on every change and every few seconds). Charts are
inline SVG drawn from specs computed here, so the first paint and the live updates draw the same thing.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import math
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bridge import coaching as co
from bridge import sip_accounts as sa
from bridge.dialer import CState
from callin import guard
from panel import i18n, webphone
from panel.common import can, json_error, read_json, render, require, user_of
from panel.i18n import N_
from panel.keys import CALLIN_NUMBER, CONTROLLER, STORE
from panel.views import sip_account_view
from store import efforts as ef
from store import results as r
from store import users as u
from store import van
from store.contacts import mask_phone
from store.db import MAX_ABANDON_TARGET, Store, StoreError
from store.outcomes import Outcome

PER_PAGE = 50
# The contacts' stored statuses (store.results.CONTACT_STATUSES) are shown through |translate: marked here so the
# catalogue has a word for each.
CONTACT_STATUS_WORDS = (N_("pending"), N_("dialing"), N_("connected"), N_("done"), N_("removed"), N_("exhausted"))
TALKING_STATES = ("idle", "talking", "wrapup", "paused")  # a volunteer in these has a phone leg
# The dashboard's words are marked N_ and translated into the viewer's language by dashboard_data (gettext).
STATE_LABELS = {
    "idle": N_("Waiting for a call"),
    "talking": N_("Talking"),
    "wrapup": N_("Wrap-up"),
    "paused": N_("Paused"),
    "waiting_for_phone": N_("Calling in"),
    "disconnected": N_("Phone disconnected"),
    "ended": N_("Left"),
}
STATE_COLORS = {
    "idle": "#1f5fbf",
    "talking": "#1e7b34",
    "wrapup": "#e0a100",
    "paused": "#8a93a3",
    "waiting_for_phone": "#9ec1f0",
    "disconnected": "#b3261e",
    "ended": "#c0c6d0",
}
CALL_STATE_LABELS = {
    CState.DIALING: N_("dialing"),
    CState.RINGING: N_("ringing"),
    CState.AMD: N_("detecting"),
    CState.CONNECTING: N_("connecting"),
    CState.CONNECTED: N_("talking"),
    CState.MACHINE: N_("machine"),
    CState.ABANDONING: N_("abandoning"),
}
PERSONAL_CALLS = N_("on a caller's phone")
# Outcome groups for the attempts chart, in stacking order (bottom first).
OUTCOME_GROUPS: list[tuple[str, str, str, tuple[str | None, ...]]] = [
    ("connected", N_("Talked"), "#1e7b34", (Outcome.CONNECTED,)),
    # "voicemail" and "not_home" are disposition codes (personal-phone attempts record the code as the outcome).
    ("machine", N_("Machine"), "#7a5af8", (Outcome.MACHINE, Outcome.VOICEMAIL_LEFT, "voicemail")),
    ("no_answer", N_("No answer"), "#9aa3b2", (Outcome.NO_ANSWER, "not_home")),
    ("busy", N_("Busy / failed"), "#e0a100", (Outcome.BUSY, Outcome.CONGESTION, Outcome.FAILED)),
    ("hangup", N_("Hung up early"), "#f28b30", (Outcome.HANGUP_BEFORE_CONNECT,)),
    ("abandoned", N_("Abandoned"), "#b3261e", (Outcome.ABANDONED,)),
    ("bad_number", N_("Bad number"), "#5b6475", (Outcome.UNALLOCATED,)),
    # Hung up while ringing when the caller it was dialled for left: the contact went straight back to the queue.
    ("cancelled", N_("Cancelled (caller left)"), "#d6dbe4", (Outcome.CANCELLED,)),
    # The carrier failed it before any phone rang: not the voter's, the contact went straight back to the queue.
    ("trunk_failed", N_("Carrier failed"), "#e8c4c1", (Outcome.TRUNK_FAILED,)),
    # Lost when the phone system (Asterisk) restarted before a caller talked: not the voter's, given back too.
    ("pbx_lost", N_("Lost in a phone system restart"), "#c9b8d8", (Outcome.PBX_LOST,)),
    ("other", N_("Other"), "#c0c6d0", ()),
    ("in_progress", N_("In progress"), "#1f5fbf", (None,)),
]
_GROUP_OF = {o: g[0] for g in OUTCOME_GROUPS for o in g[3]}
# Personal-phone attempts record the caller's disposition code as their outcome: grouped by its kind.
_GROUP_OF_KIND = {"contact": "connected", "no_contact": "no_answer", "remove": "bad_number"}
DISPOSITION_COLORS = {"contact": "#1e7b34", "no_contact": "#8a93a3", "remove": "#b3261e"}
ANSWER_COLOR = "#1f5fbf"
CHART_W = 640
# Contacts per hour from the caller's real time on line, once it is 2 minutes: two contacts in four minutes
# read 30 an hour; before that one quick contact would read 120+ an hour, which says nothing.
MIN_RATE_S = 120
SUMMARY_CACHE: web.AppKey[dict[int, tuple[Any, dict[str, Any], float, float]]] = web.AppKey(
    "results_summary_cache", dict
)
SUMMARY_SLOW_S = 0.05
SUMMARY_MAX_LAG_S = 30.0
CALL_FIGURES: web.AppKey[r.CallFigures] = web.AppKey("results_call_figures", r.CallFigures)
routes = web.RouteTableDef()


# ---------------------------------------------------------------------------------------------- formatting
def pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def duration(seconds: float) -> str:
    s = max(round(seconds or 0), 0)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s"


def _short(text: str, n: int = 26) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# ---------------------------------------------------------------------------------------------- charts
def _nice_max(v: float) -> int:
    if v <= 4:
        return 4
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= v:
            return math.ceil(m * mag)
    return int(v)


def stacked_bars(
    buckets: list[dict[str, Any]], kinds: dict[str, str] | None = None, gettext: Callable[[str], str] = str
) -> dict[str, Any]:
    """Attempts per 15-minute bucket, stacked by outcome group (``kinds``: disposition code -> kind), its words
    through ``gettext`` (the viewer's language)."""
    h, left, bottom, top = 220, 40, 26, 10
    counts: dict[int, dict[str, int]] = {}
    for row in buckets:
        g = _GROUP_OF.get(row["outcome"]) or _GROUP_OF_KIND.get((kinds or {}).get(row["outcome"] or "", ""), "other")
        per = counts.setdefault(int(row["bucket"]), {})
        per[g] = per.get(g, 0) + int(row["n"])
    spec: dict[str, Any] = {"w": CHART_W, "h": h, "items": [], "legend": [], "empty": not counts}
    if not counts:
        spec["items"].append(
            {"t": "text", "x": CHART_W / 2, "y": h / 2, "text": gettext("No calls yet"), "anchor": "middle"}
        )
        return spec
    first, last = min(counts), max(counts)
    n = last - first + 1
    ymax = _nice_max(max(sum(c.values()) for c in counts.values()))
    plot_w, plot_h = CHART_W - left - 8, h - bottom - top
    slot = plot_w / n
    bar_w = max(slot * 0.8, 1)
    items = spec["items"]
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        items.append({"t": "line", "x1": left, "y1": y, "x2": CHART_W - 8, "y2": y})
        items.append({"t": "text", "x": left - 4, "y": y + 4, "text": f"{ymax * frac:g}", "anchor": "end"})
    label_every = max(1, math.ceil(n / 8))
    used: set[str] = set()
    for i in range(n):
        b = first + i
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        per = counts.get(b, {})
        total = sum(per.values())
        for key, label, color, _ in OUTCOME_GROUPS:
            k = per.get(key, 0)
            if not k:
                continue
            used.add(key)
            bh = plot_h * k / ymax
            y -= bh
            items.append(
                {
                    "t": "rect",
                    "x": round(x, 1),
                    "y": round(y, 1),
                    "w": round(bar_w, 1),
                    "h": round(bh, 1),
                    "fill": color,
                    "title": gettext("%(time)s: %(n)s %(what)s of %(total)s")
                    % {
                        "time": time.strftime("%H:%M", time.localtime(b * r.BUCKET_S)),
                        "n": k,
                        "what": gettext(label).lower(),
                        "total": total,
                    },
                }
            )
        if i % label_every == 0:
            items.append(
                {
                    "t": "text",
                    "x": round(left + i * slot + slot / 2, 1),
                    "y": h - 8,
                    "anchor": "middle",
                    "text": time.strftime("%H:%M", time.localtime(b * r.BUCKET_S)),
                }
            )
    spec["legend"] = [
        {"label": gettext(label), "fill": color} for key, label, color, _ in OUTCOME_GROUPS if key in used
    ]
    return spec


def hbars(
    rows: list[tuple[str, int, str]], empty: str = "Nothing yet", width: int = CHART_W, label_w: int = 190
) -> dict[str, Any]:
    """Horizontal bars: (label, count, colour) each, with the count and share written after the bar."""
    row_h, value_w = 24, 90
    h = max(len(rows), 1) * row_h + 6
    spec: dict[str, Any] = {"w": width, "h": h, "items": [], "legend": [], "empty": not rows}
    if not rows:
        spec["items"].append({"t": "text", "x": 8, "y": 18, "text": empty, "anchor": "start"})
        return spec
    total = sum(n for _, n, _ in rows) or 1
    top = max(n for _, n, _ in rows) or 1
    bar_max = width - label_w - value_w
    for i, (label, n, color) in enumerate(rows):
        y = 3 + i * row_h
        w = round(bar_max * n / top, 1)
        spec["items"] += [
            {
                "t": "text",
                "x": label_w - 8,
                "y": y + 16,
                "text": _short(label, label_w // 7),
                "anchor": "end",
                "title": label,
            },
            {
                "t": "rect",
                "x": label_w,
                "y": y + 3,
                "w": max(w, 1 if n else 0),
                "h": row_h - 6,
                "fill": color,
                "title": f"{label}: {n}",
            },
            {"t": "text", "x": label_w + w + 6, "y": y + 16, "text": f"{n} · {pct(n / total)}", "anchor": "start"},
        ]
    return spec


# ---------------------------------------------------------------------------------------------- the dashboard
def _summary(app: web.Application, store: Store, campaign_id: int, survey: list[dict[str, Any]]) -> dict[str, Any]:
    """Disposition aggregates, recomputed only when a disposition was saved (or the survey changed).

    On a very large effort (the aggregates take more than ``SUMMARY_SLOW_S``) a busy shift saves dispositions
    faster than it is worth rescanning them: there the figures may lag by up to 20 times their cost (at most
    ``SUMMARY_MAX_LAG_S``)."""
    cache = app[SUMMARY_CACHE]
    key = (r.dispositions_version(store), repr(survey), tuple(d["code"] for d in store.disposition_codes(campaign_id)))
    hit = cache.get(campaign_id)
    now = time.monotonic()
    if hit and (hit[0] == key or (hit[3] > SUMMARY_SLOW_S and now - hit[2] < min(20 * hit[3], SUMMARY_MAX_LAG_S))):
        return hit[1]
    summary = r.disposition_summary(store, campaign_id)
    cache[campaign_id] = (key, summary, now, time.monotonic() - now)
    return summary


def _volunteers(app: web.Application, campaign_id: int, sessions: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Each session's state now: the controller's live view when it has one, else what the store last recorded."""
    snap = app[CONTROLLER].snapshot()
    out = {}
    for s in sessions:
        live = snap.volunteer(s["id"])
        if live is not None and live.campaign_id == campaign_id:
            state, since = live.state.value, live.since
        elif s["status"] == "open":
            state, since = s["state"], s["joined_at"] or s["created_at"]
        else:
            state, since = "ended", s["ended_at"] or s["created_at"]
        on_line = s["id"] in snap.legs or (live is not None and state in TALKING_STATES)
        coached = live.coached if live is not None and live.campaign_id == campaign_id else ""
        out[s["id"]] = {"state": state, "since": since, "on_line": on_line, "coached": coached}
    return out


def dashboard_data(app: web.Application, campaign_id: int, lang: str = i18n.DEFAULT) -> dict[str, Any]:
    """Everything the dashboard shows, JSON-ready: tiles, per-caller table, chart specs. SQL aggregates only.
    Its words are in ``lang`` (the page's and the WebSocket's request choose it: panel/i18n.py)."""
    gettext = i18n.translations(lang).gettext
    store = app[STORE]
    campaign = store.campaign(campaign_id)
    if campaign is None:
        return {}
    now = time.time()
    per_session_calls, buckets = app[CALL_FIGURES].get(store, campaign_id, now)
    totals: dict[str, float] = {}
    for row in per_session_calls:
        for k, v in row.items():
            if k != "session_id":
                totals[k] = totals.get(k, 0) + (v or 0)
    attempts, answered = int(totals.get("attempts", 0)), int(totals.get("answered", 0))
    machines, abandoned = int(totals.get("machines", 0)), int(totals.get("abandoned", 0))
    live_answers, bridged = int(totals.get("live_answers", 0)), int(totals.get("bridged", 0))
    by_status = r.contact_status_counts(store, campaign_id)
    total_contacts = sum(by_status.values())
    completed = sum(by_status.get(s, 0) for s in r.FINAL_STATUSES)
    summary = _summary(app, store, campaign_id, campaign["survey"])
    sessions = r.sessions(store, campaign_id)
    vols = _volunteers(app, campaign_id, sessions)

    # Volunteers: on line now, and every open session by state.
    open_states: dict[str, int] = {}
    for s in sessions:
        v = vols[s["id"]]
        if v["state"] != "ended":
            open_states[v["state"]] = open_states.get(v["state"], 0) + 1
    on_line = sum(1 for v in vols.values() if v["on_line"])
    state_order = [s for s in STATE_LABELS if s != "ended"] + sorted(set(open_states) - set(STATE_LABELS))

    # Calls in flight: the controller's live calls (personal phone: the attempts callers hold open).
    call_states: dict[str, int] = {}
    if campaign["dial_mode"] == "personal":
        in_flight = int(totals.get("open_calls", 0))
        if in_flight:
            call_states[PERSONAL_CALLS] = in_flight
    else:
        # The snapshot holds only calls not yet ended (an ended call leaves the dialer).
        live_calls = app[CONTROLLER].snapshot().calls_for(campaign_id)
        in_flight = len(live_calls)
        for call in live_calls:
            name = CALL_STATE_LABELS.get(call.state, call.state.value)
            call_states[name] = call_states.get(name, 0) + 1

    machine_rate = machines / answered if answered else 0.0
    abandon_rate = abandoned / live_answers if live_answers else 0.0
    target = float(campaign.get("abandon_target") or MAX_ABANDON_TARGET)
    over = abandon_rate > target
    # Why nothing is dialled (or that it is), and until when: the callers' screens say the same (bridge.waiting).
    ctl = app[CONTROLLER]
    waiting = ctl.waiting.for_effort(ctl, campaign_id)
    tiles = [
        {
            "id": "volunteers",
            "label": gettext("Volunteers on line"),
            "value": str(on_line),
            "sub": " · ".join(
                f"{open_states[s]} {gettext(STATE_LABELS.get(s, s)).lower()}" for s in state_order if open_states.get(s)
            )
            or gettext("nobody yet"),
            "alert": False,
        },
        {
            "id": "dialing",
            "label": gettext("Dialling"),
            "value": gettext("Yes") if waiting and waiting.dialing else gettext("No"),
            "sub": i18n.translate(i18n.translations(lang), waiting.text) if waiting else "",
            "alert": bool(waiting and not waiting.dialing and open_states.get("idle")),
        },
        {
            "id": "in-flight",
            "label": gettext("Calls in flight"),
            "value": str(in_flight),
            "sub": " · ".join(f"{n} {gettext(k)}" for k, n in sorted(call_states.items())) or gettext("none"),
            "alert": False,
        },
        {
            "id": "attempts",
            "label": gettext("Attempts"),
            "value": str(attempts),
            "sub": gettext("%(n)s answered") % {"n": answered},
            "alert": False,
        },
        {
            "id": "completed",
            "label": gettext("Completed"),
            "value": str(completed),
            "sub": gettext("of %(total)s contacts · %(share)s")
            % {"total": total_contacts, "share": pct(completed / total_contacts) if total_contacts else "0.0%"},
            "alert": False,
        },
        {
            "id": "contacts",
            "label": gettext("Contacts made"),
            "value": str(summary["contacts_made"]),
            "sub": gettext("%(n)s conversations") % {"n": bridged},
            "alert": False,
        },
        {
            "id": "machine-rate",
            "label": gettext("Machine rate"),
            "value": pct(machine_rate),
            "sub": gettext("%(n)s of %(answered)s answered") % {"n": machines, "answered": answered},
            "alert": False,
        },
        {
            "id": "abandon-rate",
            "label": gettext("Abandon rate"),
            "value": pct(abandon_rate),
            "sub": gettext("%(n)s of %(live)s live answers · limit %(limit)s")
            % {"n": abandoned, "live": live_answers, "limit": pct(MAX_ABANDON_TARGET)}
            + (gettext(", target %(target)s") % {"target": pct(target)} if target < MAX_ABANDON_TARGET else ""),
            "alert": over,
        },
    ]

    # Per caller: a login's sessions together (a shift login rejoining is still one caller).
    calls_by_session = {row["session_id"]: row for row in per_session_calls if row["session_id"] is not None}
    callers: dict[Any, dict[str, Any]] = {}
    for s in sessions:
        key = ("u", s["user_id"]) if s["user_id"] is not None else ("s", s["id"])
        c = callers.setdefault(
            key,
            {
                "name": s["name"],
                "state": "ended",
                "since": 0.0,
                "calls": 0,
                "contacts": 0,
                "talk_s": 0.0,
                "wrap_s": 0.0,
                "online_s": 0.0,
                "last": 0,
            },
        )
        v = vols[s["id"]]
        calls = calls_by_session.get(s["id"], {})
        disp = summary["per_session"].get(s["id"], {})
        c["calls"] += int(calls.get("attempts") or 0)
        c["talk_s"] += float(calls.get("talk_s") or 0)
        c["contacts"] += int(disp.get("contacts") or 0)
        c["wrap_s"] += float(disp.get("wrap_s") or 0)
        end = s["ended_at"] if s["status"] == "ended" and s["ended_at"] else now
        c["online_s"] += max(end - s["created_at"], 0)
        if s["id"] > c["last"] and (v["state"] != "ended" or c["state"] == "ended"):
            c.update(name=s["name"], state=v["state"], since=v["since"], last=s["id"])
    caller_rows = []
    for c in sorted(callers.values(), key=lambda c: (c["state"] == "ended", -c["contacts"], c["name"].lower())):
        hours = c["online_s"] / 3600
        caller_rows.append(
            {
                "name": c["name"],
                "state": c["state"],
                "state_label": gettext(STATE_LABELS.get(c["state"], c["state"])),
                "state_for": duration(now - c["since"]) if c["state"] != "ended" and c["since"] else "",
                "calls": c["calls"],
                "contacts": c["contacts"],
                # Too early to say (a rate over a few seconds would read hundreds an hour): no figure yet.
                "contacts_per_hour": round(c["contacts"] / hours, 1) if c["online_s"] >= MIN_RATE_S else None,
                "talk_s": round(c["talk_s"]),
                "talk": duration(c["talk_s"]),
                "wrap_s": round(c["wrap_s"]),
                "wrap": duration(c["wrap_s"]),
                "online": duration(c["online_s"]),
                # The session a captain may coach (its phone is on the line), and whether one does now.
                "session_id": c["last"] if vols[c["last"]]["on_line"] else None,
                "coached": vols[c["last"]]["coached"],
                # Said here, in the viewer's language, for the page and for results.js alike.
                "coached_text": gettext("coached: %(mode)s") % {"mode": gettext(vols[c["last"]]["coached"])}
                if vols[c["last"]]["coached"]
                else "",
            }
        )

    # Charts.
    catalog = {d["code"]: d for d in store.disposition_codes(campaign_id)}
    results_charts = [
        {
            "title": gettext("Results (latest disposition per contact)"),
            "spec": hbars(
                [
                    (
                        gettext((catalog.get(d["code"]) or {}).get("label", d["code"])),
                        int(d["n"]),
                        DISPOSITION_COLORS.get((catalog.get(d["code"]) or {}).get("kind", ""), "#8a93a3"),
                    )
                    for d in summary["by_code"]
                ],
                gettext("No dispositions yet"),
            ),
        }
    ]
    answers_by_q: dict[str, list[tuple[str, int, str]]] = {}
    for a in summary["answers"]:
        answers_by_q.setdefault(a["question"], []).append((a["answer"], int(a["n"]), ANSWER_COLOR))
    for q in campaign["survey"]:
        qid = str(q.get("id"))
        rows = answers_by_q.get(qid, [])
        if q.get("kind") == "text":
            n = sum(x[1] for x in rows)
            results_charts.append(
                {
                    "title": str(q.get("text") or qid),
                    "spec": hbars([(gettext("Answered"), n, ANSWER_COLOR)] if n else [], gettext("No answers yet")),
                }
            )
        else:  # every option in the survey's order (none chosen yet shows as an empty bar), then any others
            counts = {label: n for label, n, _ in rows}
            options = [str(o) for o in q.get("options") or []]
            ordered = [(o, counts.get(o, 0), ANSWER_COLOR) for o in options]
            ordered += [row for row in rows if row[0] not in options]
            results_charts.append(
                {
                    "title": str(q.get("text") or qid),
                    "spec": hbars(ordered[:12] if any(n for _, n, _ in ordered) else [], gettext("No answers yet")),
                }
            )
    volunteer_chart = hbars(
        [
            (gettext(STATE_LABELS.get(s, s)), open_states[s], STATE_COLORS.get(s, "#c0c6d0"))
            for s in state_order
            if open_states.get(s)
        ],
        gettext("Nobody on this effort now"),
        width=360,
        label_w=140,
    )

    return {
        "campaign": {
            "id": campaign_id,
            "name": campaign["name"],
            "status": campaign["status"],
            "abandon_target": target,
        },
        "updated_at": now,
        "updated": time.strftime("%H:%M:%S", time.localtime(now)),
        # Guessing at the call-in concerns every effort: the same alert on each dashboard.
        "callin_alert": i18n.translate(
            i18n.translations(lang), guard.alert(app[CONTROLLER].snapshot().callin_guard, now)
        ),
        "tiles": tiles,
        "waiting": waiting.as_dict() if waiting else None,
        "stats": {
            "attempts": attempts,
            "answered": answered,
            "machines": machines,
            "bridged": bridged,
            "abandoned": abandoned,
            "live_answers": live_answers,
            "in_flight": in_flight,
            "completed": completed,
            "contacts_made": summary["contacts_made"],
            "on_line": on_line,
            "machine_rate": round(machine_rate, 4),
            "abandon_rate": round(abandon_rate, 4),
            "abandon_over": over,
            "contacts_total": total_contacts,
            "contact_status": by_status,
            "volunteers_by_state": open_states,
            "calls_by_state": call_states,
        },
        "callers": caller_rows,
        "callers_empty": gettext("No callers have joined yet."),
        "charts": {
            "attempts": stacked_bars(buckets, {code: d["kind"] for code, d in catalog.items()}, gettext),
            "volunteers": volunteer_chart,
            "results": results_charts,
        },
    }


# ---------------------------------------------------------------------------------------------- pages
def _campaign(request: web.Request) -> dict[str, Any]:
    try:
        cid = int(request.match_info["cid"])
    except ValueError as exc:
        raise web.HTTPNotFound(text="No such effort.") from exc
    campaign = request.app[STORE].campaign(cid)
    if campaign is None:
        raise web.HTTPNotFound(text="No such effort.")
    return campaign


# How a dial ended, as an organiser reads it (contacts.last_outcome and calls.outcome hold the codes; a volunteer's
# result holds the effort's term code, shown by its own label).
OUTCOME_TEXT: dict[str, str] = {
    Outcome.CONNECTED: N_("Put through to a caller"),
    Outcome.ABANDONED: N_("Answered, nobody free (abandoned)"),
    Outcome.MACHINE: N_("Answering machine"),
    Outcome.VOICEMAIL_LEFT: N_("Answering machine, message left"),
    Outcome.HANGUP_BEFORE_CONNECT: N_("Hung up before a caller was put through"),
    Outcome.NO_ANSWER: N_("No answer"),
    Outcome.BUSY: N_("Busy"),
    Outcome.CONGESTION: N_("Network busy"),
    Outcome.FAILED: N_("Call failed"),
    Outcome.UNALLOCATED: N_("Number does not exist"),
    Outcome.CANCELLED: N_("Cancelled while ringing"),
    Outcome.TRUNK_FAILED: N_("Carrier failed the call"),
    Outcome.LOST: N_("Lost in a controller restart"),
    Outcome.PBX_LOST: N_("Lost in a phone system restart"),
    Outcome.CALLBACK: N_("Asked to be called back"),
    Outcome.CONTACTED: N_("Contacted"),
    Outcome.REFUSED: N_("Refused"),
    Outcome.WRONG_NUMBER: N_("Wrong number"),
    Outcome.DISCONNECTED: N_("Disconnected"),
    Outcome.DO_NOT_CALL: N_("Do not call"),
}


def result_labels(store: Store, campaign_id: int) -> dict[str, str]:
    """Code -> what the screens show: the effort's term codes by their labels, the dialler's outcomes by
    OUTCOME_TEXT (English, for ``|translate``)."""
    return {**OUTCOME_TEXT, **{d["code"]: d["label"] for d in store.disposition_codes(campaign_id)}}


def _contact_list(request: web.Request, campaign_id: int) -> dict[str, Any]:
    q = request.query.get("q", "")[:100]
    status = request.query.get("status", "")
    if status not in r.CONTACT_STATUSES:
        status = ""
    try:
        page = max(int(request.query.get("page", "1")), 1)
    except ValueError:
        page = 1
    rows, total = r.search_contacts(request.app[STORE], campaign_id, q, status, page, PER_PAGE)
    labels = result_labels(request.app[STORE], campaign_id)
    for row in rows:
        row["phone_masked"] = mask_phone(row["phone"])
        row["last_label"] = labels.get(row["last_outcome"] or "", row["last_outcome"] or "")
    pages = max(math.ceil(total / PER_PAGE), 1)
    return {
        "rows": rows,
        "total": total,
        "q": q,
        "status": status,
        "page": min(page, pages),
        "pages": pages,
        "statuses": r.CONTACT_STATUSES,
    }


@routes.get("/admin/efforts/{cid}/results")
@require("view_results")
async def dashboard_page(request: web.Request) -> web.StreamResponse:
    campaign = _campaign(request)
    data = dashboard_data(request.app, campaign["id"], i18n.choose(request))
    # A captain may coach from this page with computer audio: the JsSIP bundle, and the CSP's connect-src
    # widened to the PBX's WebSocket origin (only then, only that origin).
    browser_audio = can(request, "coach_callers") and not webphone.available(request.app)
    resp = render(
        request,
        "results/dashboard.html",
        campaign=campaign,
        d=data,
        contacts=_contact_list(request, campaign["id"]),
        list_path=request.path,
        coach_browser_audio=browser_audio,
        jssip_url=webphone.JSSIP_URL,
        status_labels=ef.STATUS_LABELS,
    )
    if browser_audio:
        resp.headers["Content-Security-Policy"] = webphone.csp(request.app)
    return resp


@routes.get("/api/efforts/{cid}/coach")
@require("coach_callers")
async def coached(request: web.Request) -> web.StreamResponse:
    """Who of this effort's callers on the line is coached, in which mode ("": nobody on them)."""
    campaign = _campaign(request)
    snap = request.app[CONTROLLER].snapshot()
    vols = {sid: v.coached for sid, v in snap.volunteers.items() if v.campaign_id == campaign["id"]}
    return web.json_response({"coached": vols})


def _coach_refusal(request: web.Request, status: int, message: str) -> web.Response:
    """A refusal the dashboard's coaching card shows as it comes: in the language of the page that asked (a
    script sending no Accept-Language, or an English one, gets English)."""
    return json_error(status, i18n.translate(i18n.translations(i18n.choose(request)), message))


@routes.post("/api/efforts/{cid}/coach")
@require("coach_callers")
async def coach(request: web.Request) -> web.StreamResponse:
    """A captain coaches a caller of this effort: ``{"session_id", "mode", "audio"?}`` gives a one-off code to call
    in with (audio "phone", the default), or a SIP account made for this coaching alone ("webrtc": this browser,
    "softphone"); ``{"mode"}`` alone changes the captain's current coaching on the leg already there, ``"stop"``
    ends it. The answer names the session, never its voter: what the captain hears is the call, what they see is
    the dashboard."""
    campaign = _campaign(request)
    body = await read_json(request)
    # The API token is one principal (co.TOKEN_USER): its Stop or mode change reaches only its own coaching.
    user_id = int(user_of(request)["id"] or co.TOKEN_USER)
    mode_raw = body.get("mode")
    controller = request.app[CONTROLLER]
    if mode_raw == "stop" or ("session_id" not in body and mode_raw in set(co.Mode)):
        mode = None if mode_raw == "stop" else co.Mode(str(mode_raw))
        if not await controller.coach_mode(user_id, mode):
            return _coach_refusal(request, 404, N_("you are not coaching anyone"))
        return web.json_response({"mode": mode_raw})
    if mode_raw not in set(co.Mode):
        return json_error(400, f"mode must be one of: {', '.join(co.Mode)}, stop")
    audio_raw = body.get("audio", "phone")
    if audio_raw not in set(co.LegKind):
        return json_error(400, f"audio must be one of: {', '.join(co.LegKind)}")
    leg = co.LegKind(str(audio_raw))
    if leg is co.LegKind.WEBRTC and (why := webphone.available(request.app)):
        return _coach_refusal(request, 409, why)
    try:
        session_id = int(body["session_id"])
    except (KeyError, TypeError, ValueError):
        return json_error(400, "session_id must be a number")
    session = request.app[STORE].session(session_id)
    if session is None or session["campaign_id"] != campaign["id"]:
        return _coach_refusal(request, 404, N_("no such caller in this effort"))
    # Checked again after this handler's awaits (an admin may have taken the right away meanwhile, and their
    # recheck found no coaching yet to end); nothing awaits between here and the coaching's start.
    if user_id != co.TOKEN_USER and u.coach_standing(request.app[STORE], user_id, campaign["id"]):
        return _coach_refusal(request, 403, N_("you may no longer coach callers"))
    got = await controller.coach(user_id, session_id, co.Mode(str(mode_raw)), leg)
    if "refused" in got:
        if got["refused"] == "account_failed":
            return _coach_refusal(
                request, 503, N_("the phone system refused the coaching account: try again, or call in")
            )
        reasons = {
            "caller_coached": N_("another captain is coaching this caller"),
            "caller_not_on_line": N_("this caller is not on the line"),
            "coaching_gone": N_("this coaching ended before it started (another request of yours, or the caller left)"),
        }
        return _coach_refusal(request, 409, reasons.get(got["refused"], got["refused"]))
    if leg is co.LegKind.PHONE:
        return web.json_response({**got, "callin_number": request.app[CALLIN_NUMBER]}, status=201)
    # The device's login, shaped as a caller's (panel.views.sip_account_view): the same page code and softphone
    # settings work. Secret: not cached, and gone when the coaching ends.
    account = sa.Account(got["account"], session_id, sa.Kind(leg.value), got["expires_at"], captain=True)
    sip = sip_account_view(controller, account, got["password"])
    if leg is co.LegKind.WEBRTC:
        sip["ws_url"] = webphone.webrtc_ws_url(request.app) or sip["ws_url"]
    return web.json_response(
        {"coach_id": got["coach_id"], "mode": got["mode"], "session_id": session_id, "leg": leg.value, "sip": sip},
        status=201,
        headers={"Cache-Control": "no-store"},
    )


@routes.get("/admin/efforts/{cid}/contacts/{contact_id}")
@require("view_results")
async def contact_page(request: web.Request) -> web.StreamResponse:
    campaign = _campaign(request)
    store = request.app[STORE]
    try:
        contact = store.contact(int(request.match_info["contact_id"]))
    except ValueError:
        contact = None
    if contact is None or contact["campaign_id"] != campaign["id"]:
        raise web.HTTPNotFound(text="No such contact in this effort.")
    history = r.contact_history(store, contact["id"])
    texts = {str(q.get("id")): str(q.get("text") or q.get("id")) for q in campaign["survey"]}
    for d in history["dispositions"]:
        for a in d["answers"]:
            a["text"] = texts.get(a["question"], a["question"])
    labels = result_labels(store, campaign["id"])
    for a in history["attempts"]:
        a["talk"] = duration(a["talk_s"]) if a["talk_s"] is not None else ""
        a["outcome_label"] = labels.get(a["outcome"] or "", a["outcome"] or "")
    contact = {**contact, "last_label": labels.get(contact["last_outcome"] or "", contact["last_outcome"] or "")}
    return render(request, "results/contact.html", campaign=campaign, contact=contact, history=history)


async def _stream_csv(request: web.Request, filename: str, batches: r.Batches) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    await resp.prepare(request)
    # Excel on Windows reads a CSV as the machine's ANSI code page unless it starts with a UTF-8 byte order mark
    # ("JosÃ©"); LibreOffice, Numbers and Python's "utf-8-sig" read the mark and drop it.
    await resp.write(codecs.BOM_UTF8)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    try:
        # Batches are read in a worker thread (the export has its own connection): a big effort's sorts and
        # pages never stall the controller, which shares this event loop with live calls.
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            writer.writerows(batch)
            await resp.write(buf.getvalue().encode("utf-8"))
            buf.seek(0)
            buf.truncate()
    finally:
        await asyncio.to_thread(batches.close)
    await resp.write_eof()
    return resp


@routes.get("/admin/efforts/{cid}/export/contacts.csv")
@require("view_results")
async def export_contacts(request: web.Request) -> web.StreamResponse:
    campaign = _campaign(request)
    return await _stream_csv(
        request,
        f"effort-{campaign['id']}-contacts.csv",
        r.contacts_export(request.app[STORE], campaign["id"], campaign["survey"]),
    )


@routes.get("/admin/efforts/{cid}/export/attempts.csv")
@require("view_results")
async def export_attempts(request: web.Request) -> web.StreamResponse:
    campaign = _campaign(request)
    return await _stream_csv(
        request, f"effort-{campaign['id']}-attempts.csv", r.attempts_export(request.app[STORE], campaign["id"])
    )


# ---------------------------------------------------------------------------------------------- results back to VAN
def _van_form(campaign: dict[str, Any], codes: list[dict[str, Any]], form: Any) -> dict[str, Any]:
    """The mapping from the settings form: ``result.<code>``, ``q.<id>.name``, ``q.<id>.r.<option index>`` (the
    option's index, not its text, names the field: answers may hold any character)."""
    results = {c["code"]: form.get(f"result.{c['code']}", "") for c in codes}
    questions: dict[str, Any] = {}
    for q in campaign["survey"]:
        qid = str(q.get("id"))
        options = [str(o) for o in q.get("options") or []]
        questions[qid] = {
            "name": form.get(f"q.{qid}.name", ""),
            "responses": {o: form.get(f"q.{qid}.r.{i}", "") for i, o in enumerate(options)},
        }
    outcomes = {o: form.get(f"outcome.{o}", "") for o in van.DIALLER_OUTCOMES}
    return {"results": results, "outcomes": outcomes, "questions": questions}


async def _van_page(
    request: web.Request, campaign: dict[str, Any], status: int = 200, error: str = "", saved: bool = False
) -> web.Response:
    store = request.app[STORE]
    summary = await asyncio.to_thread(van.problem_summary, store, campaign["id"])
    return render(
        request,
        "results/van.html",
        status=status,
        campaign=campaign,
        codes=store.disposition_codes(campaign["id"]),
        outcomes=van.DIALLER_OUTCOMES,
        mapping=van.mapping(store, campaign["id"]),
        summary=summary,
        error=error,
        saved=saved,
    )


@routes.get("/admin/efforts/{cid}/van")
@require("view_results")
async def van_page(request: web.Request) -> web.StreamResponse:
    return await _van_page(request, _campaign(request))


@routes.post("/admin/efforts/{cid}/van")
@require("view_results", "manage_efforts")
async def van_save(request: web.Request) -> web.StreamResponse:
    campaign = _campaign(request)
    store = request.app[STORE]
    form = await request.post()
    try:
        van.set_mapping(store, campaign["id"], _van_form(campaign, store.disposition_codes(campaign["id"]), form))
    except StoreError as exc:
        return await _van_page(request, campaign, status=400, error=i18n.reason(exc))
    return await _van_page(request, campaign, saved=True)


@routes.get("/admin/efforts/{cid}/export/van.csv")
@require("view_results")
async def export_van(request: web.Request) -> web.StreamResponse:
    campaign = _campaign(request)
    return await _stream_csv(
        request, f"effort-{campaign['id']}-van.csv", van.van_export(request.app[STORE], campaign["id"])
    )


@routes.get("/admin/efforts/{cid}/export/van-problems.csv")
@require("view_results")
async def export_van_problems(request: web.Request) -> web.StreamResponse:
    campaign = _campaign(request)
    return await _stream_csv(
        request, f"effort-{campaign['id']}-van-problems.csv", van.van_problems(request.app[STORE], campaign["id"])
    )
