"""The caller's side of the store: joining an effort by code, sessions per login, personal-phone contacts, feedback.

Personal-phone efforts (the volunteer dials on their own phone) have no dialer: the panel claims one contact at a
time for a session and records it as an attempt in ``calls`` (id ``pp-…``, no channel), held as the session's
``current_call_id`` until the caller saves a result. That keeps the attempt in the results and exports, lets the
session view show the contact, and a controller restart releases it like any other unfinished call.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from store.db import Store, StoreError, calling_now
from store.messages import M_, N_

PERSONAL_CALL_PREFIX = "pp-"
# ABCDEFG-1234567 (letters/digits, a dash, letters/digits); be lenient on length, strict on characters.
JOIN_CODE_RE = re.compile(r"^[A-Z0-9]{3,16}(-[A-Z0-9]{3,16})?$")
JOINABLE = ("active", "paused")
FEEDBACK_KINDS = ("problem", "script")
MAX_FEEDBACK = 4000
# What "now" is for claims (calling hours depend on it); tests pin it.
clock: Callable[[], float] = time.time


# ------------------------------------------------------------------ joining
def normalize_join_code(raw: str) -> str:
    """Case-insensitive, spaces anywhere dropped: `` abcdefg - 1234567 `` -> ``ABCDEFG-1234567``."""
    return "".join(raw.split()).upper()


def campaign_by_join_code(store: Store, raw: str) -> dict[str, Any] | None:
    code = normalize_join_code(raw)
    if not JOIN_CODE_RE.match(code):
        return None
    row = store._one("SELECT id FROM campaigns WHERE upper(join_code) = ?", (code,))
    return store.campaign(row["id"]) if row else None


def join_refusal(campaign: dict[str, Any]) -> str:
    """Why callers cannot join this effort now ("" when they can)."""
    status = campaign["status"]
    if status == "draft":
        return N_("This phone bank is not open yet: the organisers are still setting it up.")
    if status == "closed":
        return N_("This phone bank has closed. Thank you for your help, and watch for the next one!")
    if status not in JOINABLE:
        return M_("This phone bank is %(status)s and not open for callers.", status=status)
    end_at = campaign.get("end_at")
    if end_at and end_at < time.time():
        return N_("This phone bank's calling window is over.")
    return ""


def open_session_for(store: Store, user_id: int, campaign_id: int) -> dict[str, Any] | None:
    """The login's latest open session for this effort, to return to instead of starting another."""
    row = store._one(
        "SELECT id FROM sessions WHERE user_id = ? AND campaign_id = ? AND status = 'open' ORDER BY id DESC LIMIT 1",
        (user_id, campaign_id),
    )
    return store.session(row["id"]) if row else None


# ------------------------------------------------------------------ personal phone
def personal_current(store: Store, session_id: int) -> dict[str, Any] | None:
    """The attempt this personal-phone session holds (not yet saved), or None."""
    s = store.session(session_id)
    if s is None or not s["current_call_id"] or not str(s["current_call_id"]).startswith(PERSONAL_CALL_PREFIX):
        return None
    call = store.call(s["current_call_id"])
    if call is None or call["ended_at"] is not None or call["session_id"] != session_id:
        return None
    return call


def personal_claim_next(store: Store, session_id: int, now: float | None = None) -> dict[str, Any] | None:
    """The contact for this session to dial next: the one it already holds, else a newly claimed one.

    Returns the attempt (a ``calls`` row) or None when nobody is left to call right now."""
    held = personal_current(store, session_id)
    if held is not None:
        return held
    s = store.session(session_id)
    if s is None or s["status"] != "open":
        raise StoreError("this session has ended")
    campaign = store.campaign(s["campaign_id"])
    now = clock() if now is None else now
    if campaign is None or not calling_now(campaign, now):
        # Closed, paused or outside its window: claims hand out nothing; say why (what is held can still be saved).
        if campaign and campaign["status"] == "active" and (campaign.get("start_at") or 0) > now:
            raise StoreError(M_("This phone bank has not started yet: calls open at its scheduled start."))
        refusal = (campaign and join_refusal(campaign)) or N_("This phone bank is paused: no new calls for now.")
        raise StoreError(refusal)
    claimed = store.claim_contacts(s["campaign_id"], 1, now)
    if not claimed:
        store.update_session(session_id, current_call_id=None, state="idle", state_reason="no_contacts_left")
        return None
    contact = claimed[0]
    call_id = f"{PERSONAL_CALL_PREFIX}{uuid.uuid4().hex[:20]}"
    store.conn.execute(
        "INSERT INTO calls (id, campaign_id, contact_id, attempt_no, channel_id, session_id, originated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (call_id, s["campaign_id"], contact["id"], contact["attempts"], call_id, session_id, now),
    )
    store.update_session(session_id, current_call_id=call_id, state="talking", state_reason="personal_phone")
    return store.call(call_id)


def personal_save(
    store: Store,
    session_id: int,
    code: str,
    notes: str,
    answers: dict[str, str],
    now: float | None = None,
    callback_at: float | None = None,
    language: str = "",
) -> dict[str, Any]:
    """Record the result of the held attempt and let it go (``language``: the script's, as the caller read it).
    Raises StoreError when there is nothing to save."""
    call = personal_current(store, session_id)
    if call is None:
        raise StoreError("no contact to save a result for: load the next contact first")
    if not code:
        raise StoreError("choose a result (a term code) before saving")
    saved = store.add_disposition(
        session_id, call["id"], call["contact_id"], code, notes, answers, callback_at, language=language
    )
    now = time.time() if now is None else now
    store.update_call(call["id"], ended_at=now, outcome=code)
    store.update_session(session_id, current_call_id=None, state="idle", state_reason="saved")
    return saved


def personal_release(store: Store, session_id: int) -> None:
    """Give back a held contact nobody dialled a result for (the caller stopped): it was never an attempt."""
    call = personal_current(store, session_id)
    if call is None:
        return
    with store.db.atomic():
        store.conn.execute("UPDATE sessions SET current_call_id = NULL WHERE id = ?", (session_id,))
        store.conn.execute("DELETE FROM calls WHERE id = ?", (call["id"],))
        store.conn.execute(
            "UPDATE contacts SET status = 'pending', attempts = MAX(attempts - 1, 0) "
            "WHERE id = ? AND status = 'dialing'",
            (call["contact_id"],),
        )


# ------------------------------------------------------------------ feedback
def add_feedback(
    store: Store, *, kind: str, text: str, user_id: int | None, campaign_id: int | None, session_id: int | None
) -> dict[str, Any]:
    text = text.strip()
    if kind not in FEEDBACK_KINDS:
        raise StoreError(f"kind must be one of: {', '.join(FEEDBACK_KINDS)}")
    if not text:
        raise StoreError("write what went wrong or what to change first")
    if len(text) > MAX_FEEDBACK:
        raise StoreError(f"please keep it under {MAX_FEEDBACK} characters")
    fid = store.conn.execute(
        "INSERT INTO feedback (campaign_id, session_id, user_id, kind, text, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (campaign_id, session_id, user_id, kind, text, time.time()),
    ).lastrowid
    row = store._one("SELECT * FROM feedback WHERE id = ?", (fid,))
    assert row is not None
    return row


def feedback_list(store: Store, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    """Newest first, with the effort's name and the caller's name/login."""
    where = "" if include_resolved else "WHERE f.resolved_at IS NULL"
    return store._all(
        "SELECT f.*, c.name AS campaign_name, u.name AS user_name, u.username AS username "
        "FROM feedback f LEFT JOIN campaigns c ON c.id = f.campaign_id LEFT JOIN users u ON u.id = f.user_id "
        f"{where} ORDER BY f.resolved_at IS NOT NULL, f.created_at DESC, f.id DESC"
    )


def resolve_feedback(store: Store, feedback_id: int, resolved: bool = True) -> bool:
    cur = store.conn.execute(
        "UPDATE feedback SET resolved_at = ? WHERE id = ?", (time.time() if resolved else None, feedback_id)
    )
    return cur.rowcount > 0
