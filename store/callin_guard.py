"""Where the call-in guard (``callin.guard``) is kept between controller runs: one row of JSON (migration 9)."""

from __future__ import annotations

from store.db import Store


def load(store: Store) -> str | None:
    row = store._one("SELECT state FROM callin_guard WHERE id = 1")
    return str(row["state"]) if row else None


def save(store: Store, state: str, now: float) -> None:
    store.conn.execute(
        "INSERT INTO callin_guard (id, state, updated_at) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        (state, now),
    )
