"""Callers banned from an effort by email or phone (as ThruTalk does).

A ban is stored per effort (``effort_bans``); it matches a login or a volunteer by the email (case folded) or the
phone (as E.164, however it was typed). Banning ends the matching shift logins' cookie sessions at once and
lists the open calling sessions the panel then stops through the controller; the caller screens and the sign-in refuse a
banned person from then on (panel/caller.py).
"""

from __future__ import annotations

import time
from typing import Any

from store.contacts import normalize_phone
from store.db import Store, StoreError
from store.messages import M_

KINDS = ("email", "phone")


def _key(kind: str, value: str) -> str:
    value = (value or "").strip()
    if kind == "email":
        return value.casefold()
    try:
        return normalize_phone(value)
    except ValueError:
        return ""


def clean(kind: str, value: str) -> str:
    """The stored form of a ban's value, or StoreError."""
    if kind not in KINDS:
        raise StoreError(M_("ban by email or by phone"))
    key = _key(kind, value)
    if kind == "email" and ("@" not in key or len(key) > 254 or any(ord(ch) < 33 for ch in key)):
        raise StoreError(M_("not an email address"))
    if kind == "phone" and not key:
        raise StoreError(M_("not a phone number"))
    return key


def bans(store: Store, campaign_id: int) -> list[dict[str, Any]]:
    return store._all(
        "SELECT kind, value, reason, created_at FROM effort_bans WHERE campaign_id = ? ORDER BY created_at",
        (campaign_id,),
    )


def is_banned(store: Store, campaign_id: int, email: str = "", phone: str = "") -> bool:
    keys = [("email", _key("email", email)), ("phone", _key("phone", phone))]
    return any(
        value
        and store._one(
            "SELECT 1 FROM effort_bans WHERE campaign_id = ? AND kind = ? AND value = ?", (campaign_id, kind, value)
        )
        for kind, value in keys
    )


def unban(store: Store, campaign_id: int, kind: str, value: str) -> None:
    store.conn.execute(
        "DELETE FROM effort_bans WHERE campaign_id = ? AND kind = ? AND value = ?", (campaign_id, kind, value)
    )


def ban(store: Store, campaign_id: int, kind: str, value: str, reason: str = "") -> list[int]:
    """Ban ``value`` from the effort; end the matching logins. Returns the open calling sessions to stop (by a
    login or by the volunteer's own email/phone)."""
    if store.campaign(campaign_id) is None:
        raise StoreError(M_("no effort %(id)s", id=campaign_id))
    key = clean(kind, value)
    store.conn.execute(
        "INSERT OR IGNORE INTO effort_bans (campaign_id, kind, value, reason, created_at) VALUES (?, ?, ?, ?, ?)",
        (campaign_id, kind, key, reason.strip()[:200], time.time()),
    )
    # A shift login is this effort's only: its cookie sessions end now. An account that matches keeps its login
    # and its other efforts; the caller screens refuse it this one (panel/caller.py).
    matched = [
        u
        for u in store._all("SELECT id, email, phone, campaign_id FROM users")
        if u["campaign_id"] in (None, campaign_id) and _key(kind, u[kind]) == key
    ]
    users = [u["id"] for u in matched]
    for u in matched:
        if u["campaign_id"] == campaign_id:  # already read: no second query per user
            end_logins(store, u["id"])
    sessions = store._all(
        "SELECT s.id, s.user_id, v.email, v.phone FROM sessions s JOIN volunteers v ON v.id = s.volunteer_id "
        "WHERE s.campaign_id = ? AND s.status = 'open'",
        (campaign_id,),
    )
    return [s["id"] for s in sessions if s["user_id"] in users or _key(kind, s[kind]) == key]


def user_banned(store: Store, campaign_id: int, user: dict[str, Any]) -> bool:
    return is_banned(store, campaign_id, str(user.get("email") or ""), str(user.get("phone") or ""))


def end_logins(store: Store, user_id: int) -> None:
    store.conn.execute("DELETE FROM auth_sessions WHERE user_id = ?", (user_id,))
