"""Results of an effort, read straight from the store: dashboard aggregates, a contact's history, CSV exports.

Everything here is SQL aggregates or streamed cursors: the dashboard runs every few seconds per open browser and
an export may cover hundreds of thousands of rows, so nothing loops in Python over all of an effort's calls.
Exports read through their own read-only connection (a WAL snapshot): a long download neither sees half-written
rows nor holds statements open on the controller's connection between writes.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Generator
from contextlib import closing
from typing import Any

from store.db import REACHED_VOLUNTEER, Store
from store.textfold import SEPARATOR, fold

BUCKET_S = 900  # 15-minute buckets for the attempts-over-time chart
CHART_WINDOW_S = 24 * 3600  # the chart shows the last day of dialing
FINAL_STATUSES = ("done", "removed", "exhausted")
CONTACT_STATUSES = ("pending", "dialing", "connected", "done", "removed", "exhausted")
EXPORT_CHUNK = 500
# An export: its header row, then pages of rows, all cells already text.
Batches = Generator[list[list[str]], None, None]


# ---------------------------------------------------------------------------------------------- dashboard
_CALL_AGGREGATES = (
    "COUNT(*) AS attempts, "
    "SUM(answered_at IS NOT NULL) AS answered, "
    "SUM(amd_status = 'MACHINE') AS machines, "
    f"SUM({REACHED_VOLUNTEER}) AS bridged, "
    "SUM(abandoned) AS abandoned, "
    f"SUM({REACHED_VOLUNTEER} OR abandoned = 1) AS live_answers, "
    "SUM(voicemail_left) AS voicemails, "
    "SUM(ended_at IS NULL) AS open_calls, "
    f"SUM(CASE WHEN {REACHED_VOLUNTEER} THEN MAX(COALESCE(ended_at, ?) - bridged_at, 0) ELSE 0 END) AS talk_s"
)


def call_totals_by_session(
    store: Store, campaign_id: int, now: float, where: str = "", params: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    """One row per session that took calls (and one with session_id NULL for calls nobody took).

    ``where`` narrows the calls (an extra SQL condition with ``params``). Talk time counts a call still in
    progress up to ``now``."""
    return store._all(
        f"SELECT session_id, {_CALL_AGGREGATES} FROM calls WHERE campaign_id = ? "
        f"{'AND ' + where if where else ''} GROUP BY session_id",
        (now, campaign_id, *params),
    )


class CallFigures:
    """Call aggregates of an effort without rescanning its whole history every few seconds.

    A call that has ended is never changed again, so the calls placed before a cutoff (an hour back, on a
    15-minute boundary) that had ended when the cutoff was taken are summed once and kept; each refresh adds only
    the calls placed since the cutoff (an index range) and the few older calls that were still open then (looked
    up by id). The kept part is rebuilt when the cutoff moves, every 15 minutes."""

    SETTLE_S = 3600

    def __init__(self) -> None:
        self._kept: dict[int, tuple[float, list[dict[str, Any]], list[dict[str, Any]], list[str]]] = {}

    def get(self, store: Store, campaign_id: int, now: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(per-session totals as ``call_totals_by_session``, attempts per bucket as ``attempts_by_bucket``)."""
        cutoff = (now - self.SETTLE_S) // BUCKET_S * BUCKET_S
        kept = self._kept.get(campaign_id)
        if kept is None or kept[0] != cutoff:
            old = "originated_at < ? AND ended_at IS NOT NULL"
            sessions = call_totals_by_session(store, campaign_id, now, old, (cutoff,))
            buckets = store._all(
                "SELECT CAST(originated_at / ? AS INTEGER) AS bucket, outcome, COUNT(*) AS n FROM calls "
                "WHERE campaign_id = ? AND originated_at >= ? AND originated_at < ? AND ended_at IS NOT NULL "
                "GROUP BY bucket, outcome",
                (BUCKET_S, campaign_id, cutoff - CHART_WINDOW_S, cutoff),
            )
            still_open = [
                r["id"]
                for r in store._all(
                    "SELECT id FROM calls WHERE campaign_id = ? AND originated_at < ? AND ended_at IS NULL",
                    (campaign_id, cutoff),
                )
            ]
            kept = self._kept[campaign_id] = (cutoff, sessions, buckets, still_open)
        _, kept_sessions, kept_buckets, still_open = kept
        fresh_where, fresh_params = "originated_at >= ?", list[Any]([cutoff])
        if still_open:
            fresh_where = f"(originated_at >= ? OR id IN ({','.join('?' * len(still_open))}))"
            fresh_params += still_open
        fresh_sessions = call_totals_by_session(store, campaign_id, now, fresh_where, tuple(fresh_params))
        fresh_buckets = store._all(
            "SELECT CAST(originated_at / ? AS INTEGER) AS bucket, outcome, COUNT(*) AS n FROM calls "
            f"WHERE campaign_id = ? AND {fresh_where} GROUP BY bucket, outcome",
            (BUCKET_S, campaign_id, *fresh_params),
        )
        by_session: dict[Any, dict[str, Any]] = {}
        for row in [*kept_sessions, *fresh_sessions]:
            into = by_session.setdefault(row["session_id"], {"session_id": row["session_id"]})
            for k, v in row.items():
                if k != "session_id":
                    into[k] = into.get(k, 0) + (v or 0)
        by_bucket: dict[tuple[int, Any], int] = {}
        for row in [*kept_buckets, *fresh_buckets]:
            key = (int(row["bucket"]), row["outcome"])
            by_bucket[key] = by_bucket.get(key, 0) + int(row["n"])
        last = max((b for b, _ in by_bucket), default=0)
        first = last - CHART_WINDOW_S // BUCKET_S
        buckets = [
            {"bucket": b, "outcome": o, "n": n}
            for (b, o), n in sorted(by_bucket.items(), key=lambda x: x[0][0])
            if b > first
        ]
        return list(by_session.values()), buckets


def contact_preview(store: Store, campaign_id: int, limit: int = 10) -> list[dict[str, Any]]:
    """The list's first contacts as imported (names and place, no numbers): the list step shows them."""
    rows = store._all(
        "SELECT first_name, last_name, city, state, zip, extra FROM contacts WHERE campaign_id = ? ORDER BY id LIMIT ?",
        (campaign_id, limit),
    )
    for row in rows:
        row["extra"] = json.loads(row["extra"] or "{}")
    return rows


def contact_status_counts(store: Store, campaign_id: int) -> dict[str, int]:
    rows = store._all(
        "SELECT status, COUNT(*) AS n FROM contacts WHERE campaign_id = ? GROUP BY status", (campaign_id,)
    )
    return {r["status"]: int(r["n"]) for r in rows}


def disposition_summary(store: Store, campaign_id: int) -> dict[str, Any]:
    """Disposition-based figures: the latest result per contact, survey answers, contacts and wrap time per session.

    Dispositions are only ever inserted, so callers may cache this until ``dispositions_version`` changes."""
    latest = (
        "SELECT MAX(d.id) FROM dispositions d JOIN contacts c ON c.id = d.contact_id "
        "WHERE c.campaign_id = ? GROUP BY d.contact_id"
    )
    by_code = store._all(
        f"SELECT d.code, COUNT(*) AS n FROM dispositions d WHERE d.id IN ({latest}) GROUP BY d.code ORDER BY n DESC",
        (campaign_id,),
    )
    answers = store._all(
        "SELECT sa.question, sa.answer, COUNT(*) AS n FROM survey_answers sa WHERE sa.id IN ("
        " SELECT MAX(sa2.id) FROM survey_answers sa2 JOIN dispositions d ON d.id = sa2.disposition_id"
        " JOIN contacts c ON c.id = d.contact_id WHERE c.campaign_id = ? GROUP BY d.contact_id, sa2.question) "
        "AND sa.answer != '' GROUP BY sa.question, sa.answer ORDER BY sa.question, n DESC",
        (campaign_id,),
    )
    contacts_made = (
        store._one(
            "SELECT COUNT(DISTINCT d.contact_id) AS n FROM dispositions d "
            "JOIN contacts c ON c.id = d.contact_id "
            "JOIN dispositions_catalog k ON k.campaign_id = c.campaign_id AND k.code = d.code "
            "WHERE c.campaign_id = ? AND k.kind = 'contact'",
            (campaign_id,),
        )
        or {}
    )
    per_session = store._all(
        "SELECT d.session_id, COUNT(*) AS dispositions, SUM(k.kind = 'contact') AS contacts, "
        "SUM(CASE WHEN k2.ended_at IS NOT NULL AND d.created_at > k2.ended_at "
        "    THEN d.created_at - k2.ended_at ELSE 0 END) AS wrap_s "
        "FROM dispositions d JOIN contacts c ON c.id = d.contact_id "
        "LEFT JOIN dispositions_catalog k ON k.campaign_id = c.campaign_id AND k.code = d.code "
        "LEFT JOIN calls k2 ON k2.id = d.call_id "
        "WHERE c.campaign_id = ? GROUP BY d.session_id",
        (campaign_id,),
    )
    return {
        "by_code": by_code,
        "answers": answers,
        "contacts_made": int(contacts_made.get("n") or 0),
        "per_session": {r["session_id"]: r for r in per_session},
    }


def dispositions_version(store: Store) -> int:
    """Changes whenever any disposition is saved (rowid lookup: free)."""
    row = store._one("SELECT MAX(id) AS v FROM dispositions")
    return int((row or {}).get("v") or 0)


def sessions(store: Store, campaign_id: int) -> list[dict[str, Any]]:
    return store._all(
        "SELECT s.id, s.user_id, s.status, s.state, s.created_at, s.joined_at, s.ended_at, v.name "
        "FROM sessions s JOIN volunteers v ON v.id = s.volunteer_id WHERE s.campaign_id = ? ORDER BY s.id",
        (campaign_id,),
    )


# ---------------------------------------------------------------------------------------------- contacts
def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _search_clause(campaign_id: int, query: str, status: str) -> tuple[str, list[Any]]:
    where, params = ["campaign_id = ?"], list[Any]([campaign_id])
    if status:
        where.append("status = ?")
        params.append(status)
    q = query.strip()
    if q:
        # Names and cities are matched folded (no case, no accents: "JOSÉ" finds "José"), through the column
        # every contact keeps folded; the separator between name and city is dropped so no query spans the two.
        folded = " ".join(fold(q).replace(SEPARATOR, " ").split())
        parts = ["search_text LIKE ? ESCAPE '\\'", "zip LIKE ? ESCAPE '\\'", "last_outcome LIKE ? ESCAPE '\\'"]
        params += [_like(folded), _like(q), _like(q)]
        digits = re.sub(r"\D", "", q)
        if digits and len(digits) >= 3:
            parts.append("phone LIKE ?")
            params.append(f"%{digits}%")
        if q.isdigit():
            parts.append("id = ?")
            params.append(int(q))
        where.append("(" + " OR ".join(parts) + ")")
    return " AND ".join(where), params


def search_contacts(
    store: Store, campaign_id: int, query: str = "", status: str = "", page: int = 1, per_page: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """A page of the effort's contacts matching a name/city/zip/phone/id search and a status; and the total."""
    where, params = _search_clause(campaign_id, query, status)
    total = store._one(f"SELECT COUNT(*) AS n FROM contacts WHERE {where}", params) or {}
    rows = store._all(
        f"SELECT id, first_name, last_name, phone, city, state, zip, status, attempts, last_outcome "
        f"FROM contacts WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
        [*params, per_page, max(page - 1, 0) * per_page],
    )
    return rows, int(total.get("n") or 0)


def contact_history(store: Store, contact_id: int) -> dict[str, Any]:
    """Every attempt (with who took it and talk time) and every disposition (with its answers), oldest first."""
    attempts = store._all(
        "SELECT c.*, v.name AS caller, "
        "CASE WHEN c.bridged_at IS NOT NULL AND c.ended_at IS NOT NULL THEN c.ended_at - c.bridged_at END "
        "AS talk_s FROM calls c LEFT JOIN sessions s ON s.id = c.session_id "
        "LEFT JOIN volunteers v ON v.id = s.volunteer_id WHERE c.contact_id = ? ORDER BY c.originated_at",
        (contact_id,),
    )
    dispositions = store._all(
        "SELECT d.*, v.name AS caller, k.label, k.kind FROM dispositions d "
        "JOIN contacts c ON c.id = d.contact_id "
        "LEFT JOIN dispositions_catalog k ON k.campaign_id = c.campaign_id AND k.code = d.code "
        "LEFT JOIN sessions s ON s.id = d.session_id LEFT JOIN volunteers v ON v.id = s.volunteer_id "
        "WHERE d.contact_id = ? ORDER BY d.id",
        (contact_id,),
    )
    for d in dispositions:
        d["answers"] = store._all(
            "SELECT question, answer FROM survey_answers WHERE disposition_id = ? ORDER BY id", (d["id"],)
        )
    return {"attempts": attempts, "dispositions": dispositions}


# ---------------------------------------------------------------------------------------------- exports
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def csv_safe(value: Any) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @ (or tab/CR) gets a leading apostrophe.

    Plain numbers stay as they are, signed ones too: ``+12025550100`` (E.164) and ``-3`` are data a voter-file
    tool must get back unchanged, and a spreadsheet reads them as numbers, never as formulas."""
    if value is None:
        return ""
    text = str(value)
    if text.lstrip(" ").startswith(FORMULA_TRIGGERS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def iso_utc(ts: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else ""


def _reader(store: Store) -> sqlite3.Connection:
    conn = sqlite3.connect(store.path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def _unique(name: str, taken: set[str]) -> str:
    out, n = name, 2
    while out in taken:
        out, n = f"{name} ({n})", n + 1
    taken.add(out)
    return out


CONTACT_FIXED = ["contact_id", "first_name", "last_name", "phone", "city", "state", "zip"]
CONTACT_RESULT = [
    "status",
    "attempts",
    "last_outcome",
    "last_disposition",
    "last_disposition_label",
    "last_disposition_notes",
    "last_disposition_at",
    "callback_at",
    # The language the last call's script was read in (store/efforts.py "script languages"; '' not said).
    "last_script_language",
]


class _Follow:
    """A cursor sorted by ``key`` read alongside another sorted stream (a merge join without building a map)."""

    def __init__(self, cursor: sqlite3.Cursor, key: str) -> None:
        self.cursor, self.key = cursor, key
        self.row: sqlite3.Row | None = cursor.fetchone()

    def take(self, value: Any) -> list[sqlite3.Row]:
        """The rows whose key is ``value`` (every row with a smaller key is skipped)."""
        out = []
        while self.row is not None and self.row[self.key] <= value:
            if self.row[self.key] == value:
                out.append(self.row)
            self.row = self.cursor.fetchone()
        return out


def contacts_export(store: Store, campaign_id: int, survey: list[dict[str, Any]]) -> Batches:
    """The contacts CSV as batches of rows, header first: one row per contact with its latest survey answers.

    Survey columns are headed by the question text (with the question id when two texts are the same; questions
    answered but since deleted from the survey are headed by their id)."""
    with closing(_reader(store)) as conn:
        extra_keys = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT j.key FROM contacts c, json_each(c.extra) j WHERE c.campaign_id = ? ORDER BY j.key",
                (campaign_id,),
            )
        ]
        answered = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT sa.question FROM survey_answers sa JOIN dispositions d ON d.id = sa.disposition_id "
                "JOIN contacts c ON c.id = d.contact_id WHERE c.campaign_id = ? ORDER BY sa.question",
                (campaign_id,),
            )
        ]
        questions = [str(q.get("id")) for q in survey if q.get("id") is not None]
        questions += [q for q in answered if q not in questions]
        texts = {str(q.get("id")): str(q.get("text") or q.get("id")) for q in survey}
        # Our own columns keep their names; an extra column named like one of them gets a " (2)".
        taken: set[str] = {*CONTACT_FIXED, *CONTACT_RESULT}
        header = [*CONTACT_FIXED, *(_unique(k, taken) for k in extra_keys), *CONTACT_RESULT]
        text_count: dict[str, int] = {}
        for q in questions:
            text_count[texts.get(q, q)] = text_count.get(texts.get(q, q), 0) + 1
        for q in questions:
            t = texts.get(q, q)
            header.append(_unique(t if text_count[t] == 1 else f"{t} [{q}]", taken))
        yield [[csv_safe(h) for h in header]]

        contacts = conn.execute("SELECT * FROM contacts WHERE campaign_id = ? ORDER BY id", (campaign_id,))
        last = _Follow(
            conn.execute(
                "SELECT d.contact_id, d.code, d.notes, d.created_at, d.language, k.label FROM dispositions d "
                "LEFT JOIN dispositions_catalog k ON k.campaign_id = ? AND k.code = d.code WHERE d.id IN ("
                " SELECT MAX(d2.id) FROM dispositions d2 JOIN contacts c ON c.id = d2.contact_id"
                " WHERE c.campaign_id = ? GROUP BY d2.contact_id) ORDER BY d.contact_id",
                (campaign_id, campaign_id),
            ),
            "contact_id",
        )
        answers = _Follow(
            conn.execute(
                "SELECT d.contact_id, sa.question, sa.answer FROM survey_answers sa "
                "JOIN dispositions d ON d.id = sa.disposition_id JOIN contacts c ON c.id = d.contact_id "
                "WHERE c.campaign_id = ? ORDER BY d.contact_id, sa.id",
                (campaign_id,),
            ),
            "contact_id",
        )
        while rows := contacts.fetchmany(EXPORT_CHUNK):
            batch = []
            for c in rows:
                extra = json.loads(c["extra"] or "{}")
                ds = last.take(c["id"])
                d = ds[-1] if ds else None
                a = {r["question"]: r["answer"] for r in answers.take(c["id"])}  # later answers win
                row = [c["id"], c["first_name"], c["last_name"], c["phone"], c["city"], c["state"], c["zip"]]
                row += [extra.get(k, "") for k in extra_keys]
                row += [
                    c["status"],
                    c["attempts"],
                    c["last_outcome"] or "",
                    d["code"] if d else "",
                    (d["label"] or "") if d else "",
                    d["notes"] if d else "",
                    iso_utc(d["created_at"]) if d else "",
                    # A callback still to make: when the voter asked to be called (UTC, as every time here).
                    iso_utc(c["next_attempt_at"])
                    if c["last_outcome"] == "callback" and c["status"] in ("pending", "dialing")
                    else "",
                    d["language"] if d else "",
                ]
                row += [a.get(q, "") for q in questions]
                batch.append([csv_safe(v) for v in row])
            yield batch


ATTEMPT_HEADER = [
    "call_id",
    "contact_id",
    "phone",
    "attempt_no",
    "originated_at",
    "answered_at",
    "ended_at",
    "outcome",
    "amd_status",
    "abandoned",
    "voicemail_left",
    "caller",
    "talk_seconds",
    "disposition",
    "script_language",
]


def attempts_export(store: Store, campaign_id: int) -> Batches:
    """The attempts CSV as batches of rows, header first: one row per call, oldest first."""
    with closing(_reader(store)) as conn:
        yield [list(ATTEMPT_HEADER)]
        calls = conn.execute(
            "SELECT c.rowid AS n, c.id AS call_id, c.contact_id, k.phone, c.attempt_no, c.originated_at, "
            "c.answered_at, c.ended_at, c.outcome, c.amd_status, c.abandoned, c.voicemail_left, c.bridged_at, "
            "v.name AS caller FROM calls c JOIN contacts k ON k.id = c.contact_id "
            "LEFT JOIN sessions s ON s.id = c.session_id LEFT JOIN volunteers v ON v.id = s.volunteer_id "
            "WHERE c.campaign_id = ? ORDER BY c.rowid",
            (campaign_id,),
        )
        disp = _Follow(
            conn.execute(
                "SELECT c.rowid AS n, d.code, d.language FROM dispositions d JOIN calls c ON c.id = d.call_id "
                "WHERE c.campaign_id = ? ORDER BY c.rowid, d.id",
                (campaign_id,),
            ),
            "n",
        )
        while rows := calls.fetchmany(EXPORT_CHUNK):
            batch = []
            for r in rows:
                ds = disp.take(r["n"])  # the latest disposition of a call wins
                talk = (
                    round(r["ended_at"] - r["bridged_at"])
                    if r["bridged_at"] is not None and r["ended_at"] is not None
                    else ""
                )
                row = [
                    r["call_id"],
                    r["contact_id"],
                    r["phone"],
                    r["attempt_no"],
                    iso_utc(r["originated_at"]),
                    iso_utc(r["answered_at"]),
                    iso_utc(r["ended_at"]),
                    r["outcome"] or "",
                    r["amd_status"] or "",
                    int(r["abandoned"] or 0),
                    int(r["voicemail_left"] or 0),
                    r["caller"] or "",
                    talk,
                    ds[-1]["code"] if ds else "",
                    ds[-1]["language"] if ds else "",
                ]
                batch.append([csv_safe(v) for v in row])
            yield batch
