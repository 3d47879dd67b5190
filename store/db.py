"""The phone bank's store: SQLite in WAL mode through sqlite-utils, schema by numbered migrations.

Every write commits at once (autocommit): a controller killed mid-call loses nothing it had already
recorded. Times are Unix epoch seconds (float) so durations are plain subtraction.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from callin.entry import CODE_LENGTH
from store.outcomes import DEFAULT_RECYCLE_S, NOT_AN_ATTEMPT, RECYCLE_OF, Outcome, recycle_column, recycle_wait_s
from store.textfold import search_text

MIGRATIONS: list[str] = [
    # 1: the call path
    """
    CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        org_name TEXT NOT NULL DEFAULT '',
        callback_number TEXT NOT NULL DEFAULT '',
        caller_id TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('draft','active','paused','closed')),
        dial_mode TEXT NOT NULL DEFAULT 'power' CHECK (dial_mode IN ('preview','power','predictive','personal')),
        dial_ratio REAL NOT NULL DEFAULT 1.0,
        max_attempts INTEGER NOT NULL DEFAULT 3,
        recycle_busy_s INTEGER NOT NULL DEFAULT 600,
        recycle_noanswer_s INTEGER NOT NULL DEFAULT 3600,
        recycle_machine_s INTEGER NOT NULL DEFAULT 7200,
        recycle_abandon_s INTEGER NOT NULL DEFAULT 600,
        ring_timeout_s INTEGER NOT NULL DEFAULT 25,
        wrapup_limit_s INTEGER NOT NULL DEFAULT 60,
        amd_mode TEXT NOT NULL DEFAULT 'ours' CHECK (amd_mode IN ('ours','app_amd','off')),
        amd_params TEXT NOT NULL DEFAULT '{}',
        machine_action TEXT NOT NULL DEFAULT 'hangup' CHECK (machine_action IN ('hangup','voicemail')),
        voicemail_media TEXT NOT NULL DEFAULT '',
        abandon_media TEXT NOT NULL DEFAULT '',
        household_once INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE contacts (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        first_name TEXT NOT NULL DEFAULT '',
        last_name TEXT NOT NULL DEFAULT '',
        phone TEXT NOT NULL,
        city TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT '',
        zip TEXT NOT NULL DEFAULT '',
        extra TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending','dialing','connected','done','removed','exhausted')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_outcome TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX contacts_next ON contacts(campaign_id, status, next_attempt_at);
    CREATE TABLE volunteers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        email TEXT NOT NULL DEFAULT '',
        phone TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        volunteer_id INTEGER NOT NULL REFERENCES volunteers(id),
        code TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','ended')),
        state TEXT NOT NULL DEFAULT 'waiting_for_phone',
        state_reason TEXT NOT NULL DEFAULT '',
        channel_id TEXT,
        bridge_id TEXT,
        current_call_id TEXT,
        created_at REAL NOT NULL,
        joined_at REAL,
        ended_at REAL
    );
    CREATE UNIQUE INDEX sessions_open_code ON sessions(code) WHERE status = 'open';
    CREATE TABLE calls (
        id TEXT PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        contact_id INTEGER NOT NULL REFERENCES contacts(id),
        attempt_no INTEGER NOT NULL,
        channel_id TEXT NOT NULL,
        session_id INTEGER REFERENCES sessions(id),
        originated_at REAL NOT NULL,
        ringing_at REAL,
        answered_at REAL,
        amd_status TEXT,
        amd_cause TEXT,
        amd_decided_at REAL,
        bridged_at REAL,
        ended_at REAL,
        hangup_cause INTEGER,
        hangup_cause_txt TEXT,
        outcome TEXT,
        abandoned INTEGER NOT NULL DEFAULT 0,
        voicemail_left INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX calls_campaign ON calls(campaign_id, originated_at);
    CREATE TABLE legs (
        id INTEGER PRIMARY KEY,
        channel_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('voter','volunteer')),
        call_id TEXT REFERENCES calls(id),
        session_id INTEGER REFERENCES sessions(id),
        name TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        answered_at REAL,
        bridged_at REAL,
        ended_at REAL,
        hangup_cause INTEGER
    );
    CREATE TABLE dispositions (
        id INTEGER PRIMARY KEY,
        call_id TEXT REFERENCES calls(id),
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        contact_id INTEGER NOT NULL REFERENCES contacts(id),
        code TEXT NOT NULL,
        notes TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE TABLE survey_answers (
        id INTEGER PRIMARY KEY,
        disposition_id INTEGER NOT NULL REFERENCES dispositions(id),
        question TEXT NOT NULL,
        answer TEXT NOT NULL
    );
    CREATE TABLE dispositions_catalog (
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        code TEXT NOT NULL,
        label TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('contact','no_contact','remove')),
        PRIMARY KEY (campaign_id, code)
    );
    """,
    # 2: predictive pacing settings per effort
    """
    ALTER TABLE campaigns ADD COLUMN abandon_target REAL NOT NULL DEFAULT 0.03;
    ALTER TABLE campaigns ADD COLUMN pacing_params TEXT NOT NULL DEFAULT '{}';
    """,
    # 3: the panel — efforts as admins build them, users and roles, login sessions, feedback, do-not-call
    """
    ALTER TABLE campaigns ADD COLUMN description TEXT NOT NULL DEFAULT '';
    -- The code callers join with (ABCDEFG-1234567); NULL until the effort gets one.
    ALTER TABLE campaigns ADD COLUMN join_code TEXT;
    -- An effort is built as a draft and becomes callable when finished; scheduled efforts are finished and
    -- active but dial only between start_at and end_at (NULL: no bound).
    ALTER TABLE campaigns ADD COLUMN finished_at REAL;
    ALTER TABLE campaigns ADD COLUMN start_at REAL;
    ALTER TABLE campaigns ADD COLUMN end_at REAL;
    ALTER TABLE campaigns ADD COLUMN script TEXT NOT NULL DEFAULT '';
    -- [{"id": "q1", "text": ..., "kind": "dropdown|choice|text", "options": [...],
    --   "show_if": {"question": "q0", "answer": "Yes"} | null}]
    ALTER TABLE campaigns ADD COLUMN survey TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE campaigns ADD COLUMN voicemail_instructions TEXT NOT NULL DEFAULT '';
    ALTER TABLE campaigns ADD COLUMN abandon_message TEXT NOT NULL DEFAULT '';
    -- Local time of the contact, HH:MM, 24 h clock.
    ALTER TABLE campaigns ADD COLUMN calling_hours_start TEXT NOT NULL DEFAULT '08:00';
    ALTER TABLE campaigns ADD COLUMN calling_hours_end TEXT NOT NULL DEFAULT '21:00';
    CREATE UNIQUE INDEX campaigns_join_code ON campaigns(join_code) WHERE join_code IS NOT NULL;

    CREATE TABLE roles (
        name TEXT PRIMARY KEY,
        permissions TEXT NOT NULL DEFAULT '[]',
        builtin INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        email TEXT NOT NULL DEFAULT '',
        phone TEXT NOT NULL DEFAULT '',
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL REFERENCES roles(name),
        -- A shift login made at sign-in (ThruTalk style): tied to one effort and expiring.
        campaign_id INTEGER REFERENCES campaigns(id),
        expires_at REAL,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE auth_sessions (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        csrf TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    ALTER TABLE sessions ADD COLUMN user_id INTEGER REFERENCES users(id);
    -- 1: the volunteer joins paused and starts calling with the panel's "Start calling".
    ALTER TABLE sessions ADD COLUMN start_on_click INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER REFERENCES campaigns(id),
        session_id INTEGER REFERENCES sessions(id),
        user_id INTEGER REFERENCES users(id),
        kind TEXT NOT NULL DEFAULT 'problem' CHECK (kind IN ('problem','script')),
        text TEXT NOT NULL,
        created_at REAL NOT NULL,
        resolved_at REAL
    );
    -- Numbers never to call again, from any effort (Remove-number dispositions, unallocated, requests).
    CREATE TABLE do_not_call (
        phone TEXT PRIMARY KEY,
        reason TEXT NOT NULL DEFAULT '',
        campaign_id INTEGER,
        created_at REAL NOT NULL
    );
    """,
    # 4: messages recorded by phone; indexes the results screens need (dispositions have no campaign id)
    """
    CREATE TABLE recording_requests (
        code TEXT PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        kind TEXT NOT NULL DEFAULT 'voicemail' CHECK (kind IN ('voicemail')),
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        recorded_at REAL,
        media TEXT
    );
    CREATE INDEX dispositions_contact ON dispositions(contact_id);
    CREATE INDEX dispositions_call ON dispositions(call_id);
    CREATE INDEX dispositions_session ON dispositions(session_id);
    CREATE INDEX survey_answers_disposition ON survey_answers(disposition_id);
    CREATE INDEX calls_session ON calls(session_id);
    """,
    # 5: claims look numbers up across efforts (dialled now? already reached?)
    """
    CREATE INDEX contacts_phone ON contacts(phone, status);
    """,
    # 6: scheduled callbacks, a term code every effort gets
    """
    INSERT OR IGNORE INTO dispositions_catalog (campaign_id, code, label, kind)
        SELECT id, 'callback', 'Asked to be called back', 'no_contact' FROM campaigns;
    """,
    # 7: claims without sorting the list: the queue's order as an index, due callbacks apart, numbers in a call
    """
    CREATE INDEX contacts_queue ON contacts(campaign_id, status, attempts, next_attempt_at, id);
    CREATE INDEX contacts_callbacks ON contacts(campaign_id, next_attempt_at)
        WHERE status = 'pending' AND last_outcome = 'callback';
    CREATE INDEX contacts_status_phone ON contacts(status, phone);
    """,
    # 8: search as people type ("garcia" finds "García"): each contact's name and city folded (store.textfold)
    """
    ALTER TABLE contacts ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
    UPDATE contacts SET search_text = pb_search_text(first_name, last_name, city);
    """,
    # 9: the call-in guard's memory (wrong codes per calling number and overall, lockouts): a restart keeps it
    """
    CREATE TABLE callin_guard (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        state TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 10: one table of retry waits (store.outcomes): an abandoned call waits a day, not 10 minutes. No screen ever
    # set recycle_abandon_s, so 600 is the old default, not anyone's choice.
    """
    UPDATE campaigns SET recycle_abandon_s = 86400 WHERE recycle_abandon_s = 600;
    """,
    # 11: results back to VAN (store/van.py: term codes and survey answers to VAN's names); callers banned from an
    # effort by email or phone (store/users.py: their shift logins refused, no new sign-in)
    """
    ALTER TABLE campaigns ADD COLUMN van_mapping TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE effort_bans (
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        kind TEXT NOT NULL CHECK (kind IN ('email','phone')),
        value TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        PRIMARY KEY (campaign_id, kind, value)
    );
    """,
    # 12: an effort's script and survey in two languages, the caller choosing per call (store/efforts.py "script
    # languages"): the script's language and an optional second one with its script (each survey question may
    # carry second_text and second_options in the survey JSON); each result records the language it was read in
    # ('' for results from before, or not said).
    """
    ALTER TABLE campaigns ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
    ALTER TABLE campaigns ADD COLUMN second_language TEXT NOT NULL DEFAULT '';
    ALTER TABLE campaigns ADD COLUMN second_script TEXT NOT NULL DEFAULT '';
    ALTER TABLE dispositions ADD COLUMN language TEXT NOT NULL DEFAULT '';
    """,
    # 13: languages on the phone (bridge.language): a volunteer's session keeps their language (the panel's when they
    # joined) for the call-in's prompts and beeps; an effort keeps its abandon message and voicemail in languages
    # other than its own ({"es": {"abandon": path, "voicemail": path}}) for voters whose list says they speak one
    """
    ALTER TABLE sessions ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
    ALTER TABLE campaigns ADD COLUMN media_by_language TEXT NOT NULL DEFAULT '{}';
    """,
]

DEFAULT_DISPOSITIONS: list[tuple[str, str, str]] = [
    ("talked", "Talked to correct person", "contact"),
    ("supporter", "Supporter", "contact"),
    ("undecided", "Undecided", "contact"),
    ("opposed", "Opposed", "contact"),
    ("not_home", "Not home", "no_contact"),
    ("busy", "Busy", "no_contact"),
    ("refused", "Refused", "no_contact"),
    ("callback", "Asked to be called back", "no_contact"),
    ("voicemail", "Left voicemail", "no_contact"),
    ("disconnected", "Disconnected", "remove"),
    ("wrong_number", "Wrong number", "remove"),
    ("moved", "Moved", "remove"),
    ("deceased", "Deceased", "remove"),
    ("hostile", "Hostile", "remove"),
]

CAMPAIGN_FIELDS = {
    "name",
    "org_name",
    "callback_number",
    "caller_id",
    "status",
    "dial_mode",
    "dial_ratio",
    "max_attempts",
    "recycle_busy_s",
    "recycle_noanswer_s",
    "recycle_machine_s",
    "recycle_abandon_s",
    "ring_timeout_s",
    "wrapup_limit_s",
    "amd_mode",
    "amd_params",
    "machine_action",
    "voicemail_media",
    "abandon_media",
    "household_once",
    "abandon_target",
    "pacing_params",
    "description",
    "join_code",
    "finished_at",
    "start_at",
    "end_at",
    "script",
    "survey",
    "voicemail_instructions",
    "abandon_message",
    "calling_hours_start",
    "calling_hours_end",
    "language",
    "second_language",
    "second_script",
    "media_by_language",
}
# The languages an effort's script may be written in, and offered in a second one (store/efforts.py).
SCRIPT_LANGUAGES = ("en", "es", "zh", "vi", "ko", "fil", "ht", "fr", "pt", "ru", "ar")
# How an effort dials: the pacing engine's modes (bridge.predictive.Mode) or the volunteer's own phone.
DIAL_MODES = ("power", "predictive", "personal")
# How far ahead a callback may be scheduled.
MAX_CALLBACK_S = 30 * 86400
# The law's ceiling: an effort may aim lower, never higher.
MAX_ABANDON_TARGET = 0.03
# Compliance: never give up on a ringing phone before 15 s (4 rings).
MIN_RING_TIMEOUT_S = 15
# A session's code is live (joins at the call-in) only in these states, with no phone leg.
LIVE_CODE_STATES = ("waiting_for_phone", "disconnected")


def calling_now(campaign: dict[str, Any], now: float) -> bool:
    """An effort hands out contacts only while active and inside its scheduled window (if any)."""
    return campaign["status"] == "active" and (campaign.get("start_at") or 0) <= now < (
        campaign.get("end_at") or float("inf")
    )


def new_code() -> str:
    """A keypad code of CODE_LENGTH digits, no leading zero (sessions, recording requests): callers key it in
    after calling in."""
    low = 10 ** (CODE_LENGTH - 1)
    return f"{secrets.randbelow(9 * low) + low}"


class StoreError(ValueError):
    """Bad input to the store; nothing was written."""


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        self.db = sqlite_utils.Database(conn)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.create_function("pb_search_text", 3, search_text, deterministic=True)  # migration 8 fills the column
        self.migrate()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.conn.close()

    def migrate(self) -> int:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
            self.conn.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version={number};\nCOMMIT;")
        return len(MIGRATIONS)

    # ------------------------------------------------------------------ helpers
    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        row = self.conn.execute(sql, tuple(params)).fetchone()
        return dict(row) if row else None

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, tuple(params)).fetchall()]

    def _update(self, table: str, key: str, key_value: Any, values: dict[str, Any]) -> None:
        if not values:
            return
        cols = ", ".join(f"{k} = ?" for k in values)
        self.conn.execute(f"UPDATE {table} SET {cols} WHERE {key} = ?", (*values.values(), key_value))

    # ------------------------------------------------------------------ campaigns
    def create_campaign(self, name: str, **fields: Any) -> dict[str, Any]:
        if not name.strip():
            raise StoreError("campaign name is required")
        unknown = set(fields) - CAMPAIGN_FIELDS
        if unknown:
            raise StoreError(f"unknown campaign settings: {', '.join(sorted(unknown))}")
        # The retry waits come from store.outcomes, not the schema's column defaults (which predate it).
        recycle = {recycle_column(kind): wait for kind, wait in DEFAULT_RECYCLE_S.items()}
        values = _check_campaign_fields({**recycle, "name": name.strip(), **fields})
        values["created_at"] = time.time()
        cur = self.conn.execute(
            f"INSERT INTO campaigns ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
            tuple(values.values()),
        )
        cid = int(cur.lastrowid or 0)
        self.conn.executemany(
            "INSERT INTO dispositions_catalog (campaign_id, code, label, kind) VALUES (?, ?, ?, ?)",
            [(cid, c, label, kind) for c, label, kind in DEFAULT_DISPOSITIONS],
        )
        campaign = self.campaign(cid)
        assert campaign is not None
        return campaign

    def update_campaign(self, campaign_id: int, **fields: Any) -> dict[str, Any]:
        if self.campaign(campaign_id) is None:
            raise StoreError(f"no campaign {campaign_id}")
        unknown = set(fields) - CAMPAIGN_FIELDS
        if unknown:
            raise StoreError(f"unknown campaign settings: {', '.join(sorted(unknown))}")
        self._update("campaigns", "id", campaign_id, _check_campaign_fields(fields))
        campaign = self.campaign(campaign_id)
        assert campaign is not None
        return campaign

    def campaign(self, campaign_id: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM campaigns WHERE id = ?", (campaign_id,))
        if row:
            row["amd_params"] = json.loads(row["amd_params"] or "{}")
            row["pacing_params"] = json.loads(row["pacing_params"] or "{}")
            row["survey"] = json.loads(row["survey"] or "[]")
        return row

    def campaigns(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM campaigns ORDER BY id")

    def disposition_codes(self, campaign_id: int) -> list[dict[str, Any]]:
        return self._all(
            "SELECT code, label, kind FROM dispositions_catalog WHERE campaign_id = ? ORDER BY rowid", (campaign_id,)
        )

    # ------------------------------------------------------------------ contacts
    def add_contacts(self, campaign_id: int, rows: list[dict[str, Any]]) -> int:
        """Insert already-validated rows in one transaction: all or nothing."""
        now = time.time()
        with self.db.atomic():
            self.conn.executemany(
                "INSERT INTO contacts (campaign_id, first_name, last_name, phone, city, state, zip, extra, "
                "created_at, search_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        campaign_id,
                        r.get("first_name", ""),
                        r.get("last_name", ""),
                        r["phone"],
                        r.get("city", ""),
                        r.get("state", ""),
                        r.get("zip", ""),
                        json.dumps(r.get("extra", {})),
                        now,
                        search_text(r.get("first_name"), r.get("last_name"), r.get("city")),
                    )
                    for r in rows
                ],
            )
        return len(rows)

    def contact(self, contact_id: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM contacts WHERE id = ?", (contact_id,))
        if row:
            row["extra"] = json.loads(row["extra"] or "{}")
        return row

    def contacts(self, campaign_id: int) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM contacts WHERE campaign_id = ? ORDER BY id", (campaign_id,))

    def claim_contacts(self, campaign_id: int, n: int, now: float) -> list[dict[str, Any]]:
        """Take the next ``n`` dialable contacts and mark them dialing, so no number is dialled twice.

        SQL narrows the effort's list to contacts whose retry time has come, with attempts left, whose number is
        on no do-not-call list, not being dialled by any effort and (households) not already reached through
        another contact; store.listengine then checks calling hours in each number's local time on a bounded
        batch. A contact outside its hours is put off until its window opens, so it does not sit at the head of
        the queue and the next claim looks further down the list.
        """
        if n <= 0:
            return []
        effort = self._one(
            "SELECT status, start_at, end_at, max_attempts, household_once, calling_hours_start, "
            "calling_hours_end FROM campaigns WHERE id = ?",
            (campaign_id,),
        )
        if effort is None or not calling_now(effort, now):
            return []
        rules = self._calling_rules(effort)
        picked: list[dict[str, Any]] = []
        scanned = 0
        with self.db.atomic():
            # Due callbacks first, then the queue; each pass reads in index order (no sort of the list).
            for source, only in (
                ("contacts c INDEXED BY contacts_callbacks", "AND c.last_outcome = 'callback' "),
                ("contacts c", ""),
            ):
                scanned = self._claim_pass(campaign_id, n, now, effort, rules, picked, scanned, source, only)
        return picked

    # What a claim may hand out, bar calling hours (params: _claimable_params). Households share their attempts,
    # as in store.listengine (a due callback still bypasses the limit).
    _CLAIMABLE = (
        "c.campaign_id = ? AND c.status = 'pending' AND c.next_attempt_at <= ? AND c.attempts < ? "
        "AND c.phone NOT IN (SELECT phone FROM do_not_call) "
        "AND c.phone NOT IN (SELECT phone FROM contacts WHERE status IN ('dialing','connected')) "
        "AND (? = 0 OR c.phone NOT IN (SELECT phone FROM contacts WHERE campaign_id = ? "
        "AND status IN ('done','connected'))) "
        "AND (? = 0 OR c.last_outcome = 'callback' OR (SELECT SUM(h.attempts) FROM contacts h "
        "WHERE h.phone = c.phone AND h.campaign_id = c.campaign_id) < ?) "
    )

    @staticmethod
    def _claimable_params(campaign_id: int, now: float, effort: dict[str, Any]) -> tuple[Any, ...]:
        house = int(effort["household_once"])
        return (campaign_id, now, effort["max_attempts"], house, campaign_id, house, effort["max_attempts"])

    def _claim_pass(
        self,
        campaign_id: int,
        n: int,
        now: float,
        effort: dict[str, Any],
        rules: Any,
        picked: list[dict[str, Any]],
        scanned: int,
        source: str,
        only: str,
    ) -> int:
        while len(picked) < n and scanned < self._CLAIM_SCAN_MAX:
            batch = max(4 * (n - len(picked)), 50)
            rows = self._all(
                f"SELECT c.* FROM {source} WHERE "
                + self._CLAIMABLE
                + only
                + "ORDER BY c.attempts, c.next_attempt_at, c.id LIMIT ?",
                (*self._claimable_params(campaign_id, now, effort), batch),
            )
            scanned += len(rows)
            for r in rows:
                wait_until = self._calling_hours_wait(r["phone"], now, rules)
                if wait_until is not None:
                    # Outside its hours (or no known zone: never guess): not before its window opens.
                    self.conn.execute(
                        "UPDATE contacts SET next_attempt_at = MAX(next_attempt_at, ?) WHERE id = ?",
                        (wait_until, r["id"]),
                    )
                    continue
                if len(picked) >= n or any(p["phone"] == r["phone"] for p in picked):
                    continue
                self.conn.execute(
                    "UPDATE contacts SET status = 'dialing', attempts = attempts + 1 WHERE id = ?", (r["id"],)
                )
                r["attempts"] += 1
                r["status"] = "dialing"
                picked.append(r)
            if len(rows) < batch:
                break
        return scanned

    def queue_outlook(self, campaign_id: int, now: float) -> dict[str, Any]:
        """When the effort's list next has someone to call, by the claim's own rules (read only).

        ``kind``: "due" (callable now), "outside_hours" (due, but no number left is inside its calling hours
        before ``at``), "callback" / "recycle" (the next is a callback or a retry due at ``at``), "in_calls"
        (nothing pending; the last contacts are being dialled now) or "exhausted". ``zone``: the time zone of the
        contact that decides ``at`` (its number's), to say the time in. Two indexed reads and a bounded scan: cheap,
        but callers cache it (bridge.waiting).
        """
        effort = self._one(
            "SELECT max_attempts, household_once, calling_hours_start, calling_hours_end FROM campaigns WHERE id = ?",
            (campaign_id,),
        )
        if effort is None:
            return {"kind": "exhausted", "at": None, "zone": None}
        from store.listengine import zones_for

        rules = self._calling_rules(effort)

        def zone(phone: str) -> str | None:
            return next(iter(zones_for(phone)), None)

        # Due now: the claim's query; calling hours decide, as in a claim (without putting anyone off).
        due = self._all(
            "SELECT c.phone FROM contacts c WHERE "
            + self._CLAIMABLE
            + "ORDER BY c.attempts, c.next_attempt_at, c.id LIMIT 200",
            self._claimable_params(campaign_id, now, effort),
        )
        opens: list[tuple[float, str]] = []
        for r in due:
            wait = self._calling_hours_wait(r["phone"], now, rules)
            if wait is None:
                return {"kind": "due", "at": now, "zone": zone(r["phone"])}
            opens.append((wait, r["phone"]))
        later = self._one(
            "SELECT c.phone, c.next_attempt_at, c.last_outcome FROM contacts c INDEXED BY contacts_next "
            "WHERE c.campaign_id = ? AND c.status = 'pending' AND c.next_attempt_at > ? AND c.attempts < ? "
            "AND c.phone NOT IN (SELECT phone FROM do_not_call) ORDER BY c.next_attempt_at LIMIT 1",
            (campaign_id, now, effort["max_attempts"]),
        )
        if later is not None:
            at = float(later["next_attempt_at"])
            if not opens or at < min(opens)[0]:
                if later["last_outcome"] == "callback":
                    kind = "callback"
                elif self._calling_hours_wait(later["phone"], at - 1.0, rules) is not None:
                    kind = "outside_hours"  # a claim put it off until its window opens
                else:
                    kind = "recycle"
                return {"kind": kind, "at": at, "zone": zone(later["phone"])}
        if opens:
            at, phone = min(opens)
            return {"kind": "outside_hours", "at": at, "zone": zone(phone)}
        busy = self._one(
            "SELECT COUNT(*) AS n FROM contacts WHERE campaign_id = ? AND status = 'dialing'", (campaign_id,)
        )
        return {"kind": "in_calls" if busy and busy["n"] else "exhausted", "at": None, "zone": None}

    def release_contact(self, contact_id: int, outcome: str, now: float) -> None:
        """Put a contact back after an attempt, by the campaign's retry rules. A number that does not exist
        (unallocated) goes on the do-not-call list, for every effort."""
        c = self._one(
            "SELECT c.attempts, c.phone, k.*, k.id AS effort_id FROM contacts c "
            "JOIN campaigns k ON k.id = c.campaign_id WHERE c.id = ?",
            (contact_id,),
        )
        if c is None:
            return
        if outcome in NOT_AN_ATTEMPT:
            # We hung up before anyone answered (its volunteer left), or the carrier failed the call before any
            # phone rang: the claim is undone — no attempt spent, no recycle delay, and the last real outcome (a
            # due callback stays one) is kept.
            self.conn.execute(
                "UPDATE contacts SET status = 'pending', attempts = MAX(attempts - 1, 0) "
                "WHERE id = ? AND status = 'dialing'",
                (contact_id,),
            )
            return
        # The effort's wait for this outcome, by the one table (store.outcomes.RECYCLE_OF); None: no retry.
        wait = recycle_wait_s(outcome, c)
        if outcome == Outcome.UNALLOCATED:
            status, next_at = "removed", 0.0
            self._do_not_call(c["phone"], Outcome.UNALLOCATED, c["effort_id"], now)
        elif outcome == Outcome.CONNECTED:
            # The volunteer may have saved the result before the voter hung up (Save & Next while talking):
            # that result stands.
            self.conn.execute(
                "UPDATE contacts SET status = 'connected', next_attempt_at = 0, last_outcome = ? "
                "WHERE id = ? AND status = 'dialing'",
                (outcome, contact_id),
            )
            return
        elif wait is not None:
            status = "pending" if c["attempts"] < c["max_attempts"] else "exhausted"
            next_at = now + wait
        else:
            status, next_at = "done", 0.0
        self.conn.execute(
            "UPDATE contacts SET status = ?, next_attempt_at = ?, last_outcome = ? WHERE id = ?",
            (status, next_at, outcome, contact_id),
        )

    def reset_stale_dialing(self) -> int:
        """After a controller restart: contacts stuck in 'dialing' with no live call go back to the queue."""
        cur = self.conn.execute(
            "UPDATE contacts SET status = 'pending' WHERE status = 'dialing' AND id NOT IN "
            "(SELECT contact_id FROM calls WHERE ended_at IS NULL)"
        )
        return cur.rowcount

    # Most contacts one claim looks at. Contacts outside their hours are put off as they are seen, so a list
    # whose head is all asleep is worked through over successive claims instead of in one long one.
    _CLAIM_SCAN_MAX = 2000

    def _do_not_call(self, phone: str, reason: str, campaign_id: int | None, now: float) -> None:
        """Never call this number again, from any effort (the first reason recorded stays)."""
        self.conn.execute(
            "INSERT OR IGNORE INTO do_not_call (phone, reason, campaign_id, created_at) VALUES (?, ?, ?, ?)",
            (phone, reason, campaign_id, now),
        )

    @staticmethod
    def _calling_rules(effort: dict[str, Any]) -> Any:
        from store.listengine import EffortRules

        # The calling window is what the claim asks of it here; the SQL applies the rest of the same rules.
        return EffortRules.from_effort(effort)

    @staticmethod
    def _calling_hours_wait(phone: str, now: float, rules: Any) -> float | None:
        """None when ``phone`` may be called at ``now`` (epoch s); else when to look at it again."""
        from store.listengine import in_calling_hours, next_window_start, zones_for

        when = datetime.fromtimestamp(now, UTC)
        zones = zones_for(phone)
        if zones and in_calling_hours(zones, when, rules):
            return None
        opens = next_window_start(zones, when, rules) if zones else None
        # No zone, or windows that never meet: look again tomorrow rather than guess.
        return opens.timestamp() if opens is not None else now + 86400.0

    # ------------------------------------------------------------------ volunteers and sessions
    def create_session(
        self,
        campaign_id: int,
        name: str,
        email: str = "",
        phone: str = "",
        *,
        user_id: int | None = None,
        start_on_click: bool = False,
        language: str = "en",
    ) -> dict[str, Any]:
        """``language``: the volunteer's (the panel's when they joined, panel.i18n.choose): what the call-in and the
        beeps speak to them (bridge.language)."""
        campaign = self.campaign(campaign_id)
        if campaign is None:
            raise StoreError(f"no campaign {campaign_id}")
        if campaign["status"] not in ("active", "paused"):
            raise StoreError(f"campaign {campaign_id} is {campaign['status']}, not open for volunteers")
        if not name.strip():
            raise StoreError("volunteer name is required")
        now = time.time()
        with self.db.atomic():
            vid = self.conn.execute(
                "INSERT INTO volunteers (name, email, phone, created_at) VALUES (?, ?, ?, ?)",
                (name.strip(), email.strip(), phone.strip(), now),
            ).lastrowid
            for _ in range(20):
                code = new_code()
                try:
                    sid = self.conn.execute(
                        "INSERT INTO sessions "
                        "(campaign_id, volunteer_id, code, created_at, user_id, start_on_click, language) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (campaign_id, vid, code, now, user_id, int(start_on_click), language_tag(language)),
                    ).lastrowid
                    break
                except sqlite3.IntegrityError:
                    continue
            else:  # pragma: no cover - a million codes would have to be open at once
                raise StoreError("could not allocate a session code")
        session = self.session(int(sid or 0))
        assert session is not None
        return session

    def session(self, session_id: int) -> dict[str, Any] | None:
        return self._one(
            "SELECT s.*, v.name AS volunteer_name FROM sessions s JOIN volunteers v "
            "ON v.id = s.volunteer_id WHERE s.id = ?",
            (session_id,),
        )

    def session_by_code(self, code: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM sessions WHERE code = ? AND status = 'open'", (code,))

    def live_session_by_code(self, code: str) -> dict[str, Any] | None:
        """The session a code keyed at the call-in joins: only one waiting for its phone (never joined, or its
        phone hung up). A code whose phone is on the line, or whose session ended, is no code at all."""
        return self._one(
            "SELECT * FROM sessions WHERE code = ? AND status = 'open' AND channel_id IS NULL "
            f"AND state IN ({', '.join('?' * len(LIVE_CODE_STATES))})",
            (code, *LIVE_CODE_STATES),
        )

    def open_sessions(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM sessions WHERE status = 'open' ORDER BY id")

    def update_session(self, session_id: int, **values: Any) -> None:
        self._update("sessions", "id", session_id, values)

    # ------------------------------------------------------------------ calls and legs
    def insert_call(
        self, call_id: str, campaign_id: int, contact_id: int, attempt_no: int, channel_id: str, now: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO calls (id, campaign_id, contact_id, attempt_no, channel_id, originated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (call_id, campaign_id, contact_id, attempt_no, channel_id, now),
        )
        self.insert_leg(channel_id, "voter", now, call_id=call_id)

    def update_call(self, call_id: str, **values: Any) -> None:
        self._update("calls", "id", call_id, values)

    def call(self, call_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM calls WHERE id = ?", (call_id,))

    def calls(self, campaign_id: int) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM calls WHERE campaign_id = ? ORDER BY originated_at", (campaign_id,))

    def pacing_history(self, campaign_id: int, since: float) -> list[dict[str, Any]]:
        """Finished calls since ``since``, oldest first, with when the volunteer saved the disposition."""
        return self._all(
            "SELECT c.*, (SELECT MIN(d.created_at) FROM dispositions d WHERE d.call_id = c.id) AS disposed_at "
            "FROM calls c WHERE c.campaign_id = ? AND c.originated_at >= ? AND c.ended_at IS NOT NULL "
            "ORDER BY c.originated_at",
            (campaign_id, since),
        )

    def live_calls(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM calls WHERE ended_at IS NULL")

    def insert_leg(
        self,
        channel_id: str,
        kind: str,
        now: float,
        *,
        name: str = "",
        call_id: str | None = None,
        session_id: int | None = None,
    ) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO legs (channel_id, kind, call_id, session_id, name, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (channel_id, kind, call_id, session_id, name, now),
        )

    def update_leg(self, channel_id: str, **values: Any) -> None:
        self._update("legs", "channel_id", channel_id, values)

    # ------------------------------------------------------------------ dispositions
    def add_disposition(
        self,
        session_id: int,
        call_id: str | None,
        contact_id: int,
        code: str,
        notes: str,
        answers: dict[str, str],
        callback_at: float | None = None,
        language: str = "",
    ) -> dict[str, Any]:
        """Record a call's result. ``callback_at`` (epoch s): the person asked to be called back then — the
        contact is not dialled before it (calling hours still apply when it comes). ``language``: the script
        language the caller read the script in ('' not said)."""
        session = self.session(session_id)
        if session is None:
            raise StoreError(f"no session {session_id}")
        campaign = self.campaign(session["campaign_id"]) or {}
        # Any script language, not only the effort's two now: a caller whose page predates the organiser dropping
        # or changing the second language still read that version, and their result must not be lost over it.
        if language != "" and (not isinstance(language, str) or language not in SCRIPT_LANGUAGES):
            raise StoreError(f"language must be one of: {', '.join(SCRIPT_LANGUAGES)}")
        codes = {d["code"]: d for d in self.disposition_codes(session["campaign_id"])}
        if code not in codes:
            raise StoreError(f"unknown disposition {code!r}; expected one of: {', '.join(codes)}")
        if not isinstance(answers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in answers.items()
        ):
            raise StoreError("answers must map question to answer text")
        answers = option_identities(campaign.get("survey") or [], answers)
        now = time.time()
        if code == "callback" and codes[code]["kind"] == "no_contact" and callback_at is None:
            raise StoreError("a callback needs the time to call back (callback_at)")
        if callback_at is not None:
            if codes[code]["kind"] != "no_contact":
                raise StoreError("only a no-contact result can schedule a callback")
            if not now < float(callback_at) <= now + MAX_CALLBACK_S:
                raise StoreError("the callback time must be in the future and within 30 days")
        with self.db.atomic():
            did = self.conn.execute(
                "INSERT INTO dispositions (call_id, session_id, contact_id, code, notes, created_at, language) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (call_id, session_id, contact_id, code, notes, now, language),
            ).lastrowid
            self.conn.executemany(
                "INSERT INTO survey_answers (disposition_id, question, answer) VALUES (?, ?, ?)",
                [(did, q, a) for q, a in answers.items()],
            )
            kind = codes[code]["kind"]
            if kind == "remove":
                # Remove-number: honoured across every effort, not just this one.
                phone = self._one("SELECT phone FROM contacts WHERE id = ?", (contact_id,))
                if phone:
                    self._do_not_call(phone["phone"], code, session["campaign_id"], now)
            status = {"contact": "done", "remove": "removed"}.get(kind)
            if status:
                self.conn.execute(
                    "UPDATE contacts SET status = ?, last_outcome = ? WHERE id = ?", (status, code, contact_id)
                )
            elif callback_at is not None:
                # An appointment, not a retry: it gets its call even if the attempts are used up.
                self.conn.execute(
                    "UPDATE contacts SET status = 'pending', next_attempt_at = ?, last_outcome = ?, "
                    "attempts = MIN(attempts, (SELECT max_attempts FROM campaigns WHERE id = contacts.campaign_id)"
                    " - 1) WHERE id = ?",
                    (float(callback_at), code, contact_id),
                )
            else:
                # Spoke to someone, not the person (not home): tried again after the effort's no-answer wait.
                wait_col = recycle_column(RECYCLE_OF[Outcome.NO_ANSWER])
                self.conn.execute(
                    "UPDATE contacts SET status = CASE WHEN attempts < (SELECT max_attempts FROM campaigns "
                    "WHERE id = contacts.campaign_id) THEN 'pending' ELSE 'exhausted' END, "
                    f"next_attempt_at = ? + (SELECT {wait_col} FROM campaigns WHERE id = contacts.campaign_id), "
                    "last_outcome = ? WHERE id = ?",
                    (now, code, contact_id),
                )
        return {"id": did, "code": code, "created_at": now}

    def dispositions(self, campaign_id: int) -> list[dict[str, Any]]:
        return self._all(
            "SELECT d.* FROM dispositions d JOIN contacts c ON c.id = d.contact_id "
            "WHERE c.campaign_id = ? ORDER BY d.id",
            (campaign_id,),
        )

    def answers(self, disposition_id: int) -> dict[str, str]:
        return {
            r["question"]: r["answer"]
            for r in self._all(
                "SELECT question, answer FROM survey_answers WHERE disposition_id = ?", (disposition_id,)
            )
        }

    def campaign_stats(self, campaign_id: int) -> dict[str, Any]:
        row = (
            self._one(
                "SELECT COUNT(*) AS attempts, SUM(answered_at IS NOT NULL) AS answered, "
                f"SUM(amd_status = 'MACHINE') AS machines, SUM({REACHED_VOLUNTEER}) AS connected, "
                "SUM(abandoned) AS abandoned, SUM(ended_at IS NULL) AS in_flight FROM calls WHERE campaign_id = ?",
                (campaign_id,),
            )
            or {}
        )
        stats: dict[str, Any] = {k: int(v or 0) for k, v in row.items()}
        live = stats["connected"] + stats["abandoned"]
        stats["abandon_rate"] = round(stats["abandoned"] / live, 4) if live else 0.0
        by_status = self._all(
            "SELECT status, COUNT(*) AS n FROM contacts WHERE campaign_id = ? GROUP BY status", (campaign_id,)
        )
        stats["contacts"] = {r["status"]: r["n"] for r in by_status}
        return stats


def option_identities(survey: list[dict[str, Any]], answers: dict[str, str]) -> dict[str, str]:
    """Answers as the options themselves: a choice read in the effort's second language and sent as its label
    (``second_options``) is stored as the option it translates, so results, the dashboard and the VAN mapping
    see one answer whatever language the question was read in."""
    out = dict(answers)
    for q in survey:
        qid, options, labels = q.get("id"), q.get("options") or [], q.get("second_options") or []
        answer = out.get(qid) if isinstance(qid, str) else None
        if not isinstance(qid, str) or answer is None or answer in options or len(labels) != len(options):
            continue
        if answer in labels:
            out[qid] = options[labels.index(answer)]
    return out


# A call put through to a volunteer that was a person: a machine the detector caught only after it reached the
# bridge (pulled back, amd_status MACHINE) was never a conversation nor a live answer. One rule for every count.
REACHED_VOLUNTEER = "(bridged_at IS NOT NULL AND COALESCE(amd_status, '') != 'MACHINE')"


PACING_KEYS = {
    "risk_share",
    "min_risk_share",
    "cushion_abandons",
    "cushion_share",
    "daily_guard",
    "grace_s",
    "max_lines_per_volunteer",
    "max_lines",
    "max_new_per_decision",
    "min_attempts",
    "min_humans",
    "min_conversations",
}


def _check_pacing_params(params: Any) -> None:
    if not isinstance(params, dict):
        raise StoreError("pacing_params must be an object")
    unknown = set(params) - PACING_KEYS
    if unknown:
        raise StoreError(f"unknown pacing settings: {', '.join(sorted(unknown))}")


def language_tag(value: Any) -> str:
    """A language tag as the panel and Asterisk write it ("es", "pt_BR"): letters and at most one separator."""
    text = str(value or "").strip()
    if not re.fullmatch(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?", text):
        raise StoreError(f"not a language: {text[:20]!r} (e.g. en, es)")
    return text


def _check_media_by_language(raw: Any) -> None:
    """The effort's abandon message and voicemail in languages other than its own (bridge.language.message_media)."""
    media = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(media, dict) or not all(
        isinstance(v, dict) and set(v) <= {"abandon", "voicemail"} and all(isinstance(x, str) for x in v.values())
        for v in media.values()
    ):
        raise StoreError('media_by_language must be {"<language>": {"abandon": path, "voicemail": path}}')
    for key in media:
        language_tag(key)


def _check_campaign_fields(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "media_by_language" in out:
        _check_media_by_language(out["media_by_language"])
    for key in ("amd_params", "pacing_params", "survey", "media_by_language"):
        if key in out and not isinstance(out[key], str):
            out[key] = json.dumps(out[key])
    if "pacing_params" in out:
        _check_pacing_params(json.loads(out["pacing_params"]))
    if "abandon_target" in out and not 0 < float(out["abandon_target"]) <= MAX_ABANDON_TARGET:
        raise StoreError(f"abandon_target must be in (0, {MAX_ABANDON_TARGET}]: the legal limit is 3%")
    if "ring_timeout_s" in out and int(out["ring_timeout_s"]) < MIN_RING_TIMEOUT_S:
        raise StoreError(f"ring timeout must be at least {MIN_RING_TIMEOUT_S} s (compliance: 4 rings / 15 s)")
    for key in ("max_attempts", "wrapup_limit_s"):
        if key in out and int(out[key]) < 1:
            raise StoreError(f"{key} must be at least 1")
    if "dial_mode" in out and out["dial_mode"] not in DIAL_MODES:
        # The schema still lists 'preview' (migration 1); no screen or call path ever served it (docs/PACING.md).
        raise StoreError(f"dial_mode must be one of: {', '.join(DIAL_MODES)}")
    if "dial_ratio" in out and not 0 < float(out["dial_ratio"]) <= 5:
        raise StoreError("dial_ratio must be in (0, 5]")
    if "language" in out and out["language"] not in SCRIPT_LANGUAGES:
        raise StoreError(f"language must be one of: {', '.join(SCRIPT_LANGUAGES)}")
    if out.get("second_language") and out["second_language"] not in SCRIPT_LANGUAGES:
        raise StoreError(f"second_language must be '' or one of: {', '.join(SCRIPT_LANGUAGES)}")
    return out
