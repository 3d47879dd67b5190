"""What a caller's screen is shown of a session and of a SIP account: one builder for the JSON API
(``panel/api.py``), the live push (``panel/push.py``) and the server-rendered caller pages (``panel/caller.py``).

Voter phone numbers never leave through these views unless the effort uses personal-phone dialing (the
volunteer dials themselves).
"""

from __future__ import annotations

from typing import Any

from bridge import sip_accounts as sa
from bridge.ari_app import Controller
from panel import i18n
from panel.localtime import voter_clock
from store.contacts import PHONE_EXT, about_fields
from store.db import StoreError
from store.efforts import script_languages, voter_language

# The extension a device dials to join: any would do (the account, not the number, decides where the call goes).
SIP_DIAL = "join"


def callback_at(body: dict[str, Any]) -> float | None:
    """The callback time a disposition asks for (epoch seconds), if any."""
    raw = body.get("callback_at")
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError) as exc:
        raise StoreError("callback_at must be a time in epoch seconds") from exc


def session_view(
    ctl: Controller, session_id: int, callin_number: str, permissions: set[str] | None = None
) -> dict[str, Any] | None:
    """What a caller's screen shows. ``permissions``: the viewer's; without "view_profiles" the About pane
    (address and the list's extra columns) stays on the server."""
    store = ctl.store
    s = store.session(session_id)
    if s is None:
        return None
    snap = ctl.snapshot()
    live = snap.volunteer(session_id)
    view: dict[str, Any] = {
        "id": s["id"],
        "campaign_id": s["campaign_id"],
        "volunteer": s["volunteer_name"],
        "code": s["code"],
        "callin_number": callin_number,
        "status": s["status"],
        "state": live.state.value if live else s["state"],
        "state_reason": live.reason if live else s["state_reason"],
        "phone_connected": session_id in snap.legs,
        "contact": None,
    }
    call_id = live.call_id if live else s["current_call_id"]
    if call_id:
        call = store.call(call_id)
        if call:
            campaign = store.campaign(call["campaign_id"]) or {}
            contact = store.contact(call["contact_id"]) or {}
            view["call_id"] = call_id
            view["contact"] = {
                k: contact.get(k) for k in ("id", "first_name", "last_name", "city", "state", "zip", "extra")
            }
            # Other numbers from the list stay on the server even when the caller dials this one themselves.
            view["contact"]["extra"] = about_fields(contact.get("extra") or {})
            # An extension reaches nobody without the number: every caller sees it (to dial, or to ask for).
            view["contact"]["phone_ext"] = str((contact.get("extra") or {}).get(PHONE_EXT, ""))
            # The script's language the list gives for them ("Language: Spanish"), preselected on the screen.
            view["contact"]["script_language"] = voter_language(contact.get("extra") or {}, script_languages(campaign))
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
        if reason:  # said in the session's language (the page's when the caller joined)
            tr = i18n.translations(str(s.get("language") or i18n.DEFAULT))
            view["waiting"]["text"] = i18n.translate(tr, reason.text)
    return view


def sip_account_view(ctl: Controller, account: sa.Account, password: str) -> dict[str, Any]:
    """What a device needs to connect (the API's answer; the softphone screen shows the same)."""
    public = ctl.sip_public
    webrtc = account.kind is sa.Kind.WEBRTC
    return {
        "kind": account.kind.value,
        "username": account.username,
        "password": password,
        "domain": public.get("domain", ""),
        "dial": SIP_DIAL,
        "ws_url": public.get("ws_url", "") if webrtc else "",
        "sip_server": "" if webrtc else public.get("sip_server", ""),
        "transport": "wss" if webrtc else "udp",
        "ice_servers": public.get("ice_servers", []) if webrtc else [],
        "expires_at": int(account.expires_at),
    }
