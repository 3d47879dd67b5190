"""Messages recorded by phone (an effort's voicemail): the admin asks for a code, calls in, keys it, speaks.

A recording code has as many digits as a session code (callin.entry.CODE_LENGTH) and passes the same call-in guard;
it is checked after session codes, so it never shadows a volunteer; it is good for 30 minutes and for one recording.
"""

from __future__ import annotations

import time
from typing import Any

from store.db import Store, StoreError, new_code

CODE_TTL_S = 30 * 60


def request(store: Store, campaign_id: int, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    if store.campaign(campaign_id) is None:
        raise StoreError(f"no campaign {campaign_id}")
    for _ in range(50):
        code = new_code()
        if store.session_by_code(code) is not None or pending(store, code, now) is not None:
            continue
        store.conn.execute(
            "INSERT OR REPLACE INTO recording_requests (code, campaign_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (code, campaign_id, now, now + CODE_TTL_S),
        )
        row = store._one("SELECT * FROM recording_requests WHERE code = ?", (code,))
        assert row is not None
        return row
    raise StoreError("could not allocate a recording code")  # pragma: no cover - a million codes in use


def pending(store: Store, code: str, now: float | None = None) -> dict[str, Any] | None:
    now = time.time() if now is None else now
    return store._one(
        "SELECT * FROM recording_requests WHERE code = ? AND recorded_at IS NULL AND expires_at > ?", (code, now)
    )


def latest(store: Store, campaign_id: int) -> dict[str, Any] | None:
    return store._one(
        "SELECT * FROM recording_requests WHERE campaign_id = ? ORDER BY created_at DESC LIMIT 1", (campaign_id,)
    )


def complete(store: Store, code: str, media: str, now: float | None = None) -> None:
    """The message is in: it becomes the effort's voicemail (machines get it from now on)."""
    now = time.time() if now is None else now
    row = store._one("SELECT * FROM recording_requests WHERE code = ?", (code,))
    if row is None:
        return
    with store.db.atomic():
        store.conn.execute(
            "UPDATE recording_requests SET recorded_at = ?, media = ? WHERE code = ?", (now, media, code)
        )
        store.update_campaign(row["campaign_id"], voicemail_media=media, machine_action="voicemail")
