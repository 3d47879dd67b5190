"""Phone-bank efforts as admins build them: drafts, lists, scripts and surveys, dispositions, call settings.

Plain functions over a :class:`store.db.Store`. Everything that checks admin input returns the problems it found
(field -> message) instead of raising, so a page can show them next to the form with the input kept; nothing is
written unless every check passed.
"""

from __future__ import annotations

import difflib
import functools
import io
import json
import re
import secrets
import shutil
import sqlite3
import string
import subprocess
import tempfile
import time
import wave
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from babel import Locale

from store.contacts import PHONE_NAME, ListReport, about_fields, decode_text, normalize_phone
from store.db import MIN_RING_TIMEOUT_S, SCRIPT_LANGUAGES, Store, StoreError, language_tag
from store.messages import M_, N_, reason
from store.textfold import fold

# ---------------------------------------------------------------------------------------------- efforts
JOIN_LETTERS = string.ascii_uppercase
JOIN_CODE_RE = re.compile(r"^[A-Z]{7}-\d{7}$")
# A status inside a sentence ("cannot pause an effort that is closed") and the actions on an effort: words of
# StoreError messages the panel shows translated (store/messages.py).
STATUS_WORDS = {
    "draft": N_("draft"),
    "scheduled": N_("scheduled"),
    "active": N_("active"),
    "paused": N_("paused"),
    "closed": N_("closed"),
}
ACTION_WORDS = {"pause": N_("pause"), "resume": N_("resume"), "close": N_("close")}
STATUS_LABELS = {
    "draft": N_("Draft"),
    "scheduled": N_("Scheduled"),
    "active": N_("Active"),
    "paused": N_("Paused"),
    "closed": N_("Closed"),
}


def new_join_code() -> str:
    """ABCDEFG-1234567: 7 uppercase letters, a dash, 7 digits (about 2^56 codes)."""
    letters = "".join(secrets.choice(JOIN_LETTERS) for _ in range(7))
    digits = "".join(secrets.choice(string.digits) for _ in range(7))
    return f"{letters}-{digits}"


def create_effort(store: Store, title: str, description: str = "") -> dict[str, Any]:
    """A new draft effort with its own join code (and the default dispositions)."""
    if not title.strip():
        raise StoreError("a title is required")
    for _ in range(20):
        try:
            return store.create_campaign(
                title.strip(), description=description.strip(), status="draft", join_code=new_join_code()
            )
        except sqlite3.IntegrityError:  # pragma: no cover - a join code collision
            continue
    raise StoreError("could not allocate a join code")  # pragma: no cover


def effort_status(campaign: dict[str, Any], now: float | None = None) -> str:
    """draft / scheduled (finished, active, start in the future) / active / paused / closed."""
    now = time.time() if now is None else now
    status = str(campaign["status"])
    if status == "active" and campaign.get("start_at") and campaign["start_at"] > now:
        return "scheduled"
    return status


def is_frozen(campaign: dict[str, Any]) -> bool:
    """The target list is frozen once the effort is finished (launched)."""
    return campaign.get("finished_at") is not None


def contact_counts(store: Store) -> dict[int, int]:
    return {
        r["campaign_id"]: r["n"]
        for r in store._all("SELECT campaign_id, COUNT(*) AS n FROM contacts GROUP BY campaign_id")
    }


def contact_count(store: Store, campaign_id: int) -> int:
    row = store._one("SELECT COUNT(*) AS n FROM contacts WHERE campaign_id = ?", (campaign_id,))
    return int(row["n"]) if row else 0


def efforts(store: Store, now: float | None = None) -> list[dict[str, Any]]:
    """Every effort, newest first, with its display status and contact count."""
    counts = contact_counts(store)
    rows = store._all("SELECT * FROM campaigns ORDER BY id DESC")
    for r in rows:
        r["display_status"] = effort_status(r, now)
        r["contacts"] = counts.get(r["id"], 0)
    return rows


def parse_local_datetime(text: str) -> float | None:
    """A ``datetime-local`` input (server local time) as epoch seconds; '' is None; ValueError if malformed."""
    text = (text or "").strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return time.mktime(datetime.strptime(text, fmt).timetuple())
        except ValueError:
            continue
    raise ValueError(M_("use the date and time picker (YYYY-MM-DDTHH:MM)"))


def format_local_datetime(ts: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M", time.localtime(ts)) if ts else ""


def check_details(form: dict[str, str], now: float | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Title, description and launch (now or a start/end window). Returns (values, errors)."""
    now = time.time() if now is None else now
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    title = form.get("title", "").strip()
    if not title:
        errors["title"] = N_("A title is required.")
    elif len(title) > 200:
        errors["title"] = N_("Keep the title under 200 characters.")
    values["name"] = title
    values["description"] = form.get("description", "").strip()
    launch = form.get("launch", "now")
    if launch not in ("now", "schedule"):
        errors["launch"] = N_("Choose Activate now or Schedule.")
    start = end = None
    try:
        start = parse_local_datetime(form.get("start_at", ""))
    except ValueError as exc:
        errors["start_at"] = M_("Start: %(reason)s.", reason=reason(exc))
    try:
        end = parse_local_datetime(form.get("end_at", ""))
    except ValueError as exc:
        errors["end_at"] = M_("End: %(reason)s.", reason=reason(exc))
    if launch == "schedule" and start is None and "start_at" not in errors:
        errors["start_at"] = N_("A scheduled effort needs a start date and time.")
    if launch == "now":
        # Start and end belong to Schedule: an end left in the form from an earlier schedule would silently stop
        # (or, once past, refuse) an effort the admin asked to run now.
        start = end = None
        errors.pop("start_at", None)
        errors.pop("end_at", None)
    if end is not None and "end_at" not in errors:
        if start is not None and end <= start:
            errors["end_at"] = N_("The end must be after the start.")
        elif end <= now:
            errors["end_at"] = N_("The end is in the past.")
    values["start_at"], values["end_at"] = start, end
    return values, errors


def finish(store: Store, campaign_id: int, now: float | None = None) -> dict[str, Any]:
    """Launch a draft: active (dialling from its start, if scheduled), list frozen."""
    campaign = store.campaign(campaign_id)
    if campaign is None:
        raise StoreError(f"no effort {campaign_id}")
    if is_frozen(campaign):
        raise StoreError(M_("this effort is already finished"))
    if contact_count(store, campaign_id) == 0:
        raise StoreError(M_("import a list of contacts before finishing: an effort without contacts cannot call"))
    return store.update_campaign(campaign_id, status="active", finished_at=time.time() if now is None else now)


TRANSITIONS = {
    "pause": ({"active"}, "paused"),
    "resume": ({"paused"}, "active"),
    "close": ({"active", "paused"}, "closed"),
}


def change_status(store: Store, campaign_id: int, action: str) -> dict[str, Any]:
    """pause (active -> paused), resume (paused -> active), close (active/paused -> closed)."""
    campaign = store.campaign(campaign_id)
    if campaign is None:
        raise StoreError(f"no effort {campaign_id}")
    if action not in TRANSITIONS:
        raise StoreError(f"unknown action {action!r}")
    allowed, target = TRANSITIONS[action]
    if campaign["status"] not in allowed:
        raise StoreError(
            M_(
                "cannot %(action)s an effort that is %(status)s",
                action=M_(ACTION_WORDS[action]),
                status=M_(STATUS_WORDS.get(effort_status(campaign), effort_status(campaign))),
            )
        )
    return store.update_campaign(campaign_id, status=target)


# ---------------------------------------------------------------------------------------------- lists
# Reading, mapping and checking a list is store.contacts' (the importer the CLI runs too); here: keeping an
# upload between the panel's steps, and inserting a checked list into an effort.
UPLOAD_NAME_RE = re.compile(r"^(\d+)-([A-Za-z0-9_-]{16,64})$")
UPLOAD_TTL_S = 24 * 3600


def decode_csv(data: bytes) -> str:
    """A kept upload as text: it was saved as :func:`store.contacts.table_text` made it (UTF-8, commas)."""
    return decode_text(data)


def existing_people(store: Store, campaign_id: int) -> list[tuple[str, str, str]]:
    return [
        (r["phone"], r["first_name"], r["last_name"])
        for r in store._all("SELECT phone, first_name, last_name FROM contacts WHERE campaign_id = ?", (campaign_id,))
    ]


# Rows per transaction of a list import. SQLite has one write lock for the whole file, and the controller writes
# each live call's facts from its event loop: one 100k-row transaction held that lock (and so the loop of whoever
# waited for it) for most of a second. In batches, a writer waits at most one batch (a few ms); between batches
# the import lets go of the lock for as long as the batch held it, so a writer polling for it (SQLite's busy
# handler sleeps 1, 2, 5, 10 ms ...) gets in instead of starving (bench/capacity.py --with-admin-load measures it).
IMPORT_BATCH = 200


def import_list(
    store: Store, campaign_id: int, report: ListReport, *, skip_bad: bool = False, household_once: bool | None = None
) -> int:
    """Insert a checked list. With errors, only if ``skip_bad`` says so. All or nothing: in batches (IMPORT_BATCH)
    so as not to hold the write lock, and a failed batch takes the batches before it out again. The effort is a
    draft (nobody dials its list), so a reader in between may see part of the list, never a dialler."""
    campaign = store.campaign(campaign_id)
    if campaign is None:
        raise StoreError(f"no effort {campaign_id}")
    if is_frozen(campaign):
        raise StoreError(M_("the list is frozen: this effort has been launched"))
    if report.problems:
        raise StoreError(report.problems[0])
    if report.errors and not skip_bad:
        raise StoreError(f"{len(report.errors)} rows have errors: fix the file or choose to skip them")
    if household_once is not None:
        store.update_campaign(campaign_id, household_once=int(household_once))
    rows = report.rows
    done: list[tuple[int, int]] = []
    try:
        for i in range(0, len(rows), IMPORT_BATCH):
            t = time.perf_counter()
            n = store.add_contacts(campaign_id, rows[i : i + IMPORT_BATCH])
            # INTEGER PRIMARY KEY under the write lock: one batch's ids are contiguous, ending at the last insert.
            last = int(store.conn.execute("SELECT last_insert_rowid()").fetchone()[0])
            done.append((last - n + 1, last))
            if i + IMPORT_BATCH < len(rows):
                time.sleep(time.perf_counter() - t)
    except BaseException:
        with store.db.atomic():
            for lo, hi in done:
                store.conn.execute(
                    "DELETE FROM contacts WHERE campaign_id = ? AND id BETWEEN ? AND ?", (campaign_id, lo, hi)
                )
        raise
    return len(rows)


def uploads_dir(store: Store) -> Path:
    return Path(store.path).parent / "uploads"


def sweep_uploads(store: Store, now: float | None = None) -> int:
    """Delete kept uploads older than a day (lists nobody went on to import: voters' data, kept no longer than
    the mapping step needs). Returns how many went. The panel runs it at start and every hour."""
    cutoff = (time.time() if now is None else now) - UPLOAD_TTL_S
    gone = 0
    for old in uploads_dir(store).glob("*.csv"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
                gone += 1
        except OSError:
            pass
    return gone


def save_upload(store: Store, campaign_id: int, data: bytes) -> str:
    """Keep an uploaded CSV between the upload and the mapping steps; returns its token. Deleted once imported
    (:func:`delete_upload`), else by :func:`sweep_uploads` after a day."""
    folder = uploads_dir(store)
    folder.mkdir(parents=True, exist_ok=True)
    sweep_uploads(store)
    name = f"{campaign_id}-{secrets.token_urlsafe(18)}"
    (folder / f"{name}.csv").write_bytes(data)
    return name


def upload_path(store: Store, campaign_id: int, token: str) -> Path | None:
    """The kept CSV for a token, only if it belongs to this effort and still exists."""
    m = UPLOAD_NAME_RE.match(token or "")
    if not m or int(m.group(1)) != campaign_id:
        return None
    path = uploads_dir(store) / f"{token}.csv"
    return path if path.is_file() else None


def delete_upload(store: Store, campaign_id: int, token: str) -> None:
    path = upload_path(store, campaign_id, token)
    if path is not None:
        path.unlink(missing_ok=True)


STANDARD_FIELDS = ("first_name", "last_name", "city", "state", "zip")
# What panel/static/caller.js fills in: {name}, up to 60 characters, no braces or line breaks inside.
MERGE_RE = re.compile(r"\{([^{}\n]{1,60})\}")


def list_fields(store: Store, campaign_id: int) -> tuple[list[str], list[str]]:
    """(offered, withheld): the {fields} a script can use, and the list's columns that hold phone numbers.

    Offered: the standard fields plus the extra columns of this effort's list that the caller's screen gets
    (store.contacts.about_fields). A column that holds a phone number in any sampled row is withheld: callers'
    screens never get voters' numbers, so such a field would be shown as a literal {name}."""
    rows = store._all("SELECT extra FROM contacts WHERE campaign_id = ? AND extra != '{}' LIMIT 2000", (campaign_id,))
    extra: dict[str, None] = {}
    withheld: dict[str, None] = {"phone": None}
    for r in rows:
        values = json.loads(r["extra"] or "{}")
        shown = about_fields(values)
        for k in values:
            (extra if k in shown else withheld).setdefault(k, None)
    offered = [*STANDARD_FIELDS, *(k for k in extra if k not in withheld and k not in STANDARD_FIELDS)]
    return offered, list(withheld)


def merge_fields(store: Store, campaign_id: int) -> list[str]:
    """The {fields} a script can use (see :func:`list_fields`)."""
    return list_fields(store, campaign_id)[0]


def check_script(script: str, offered: list[str], withheld: list[str], has_list: bool = True) -> list[str]:
    """Problems with a script's {fields} (empty: fine): each unknown or withheld field, named, with the fields
    that can be used. A field a caller's screen cannot fill would be read out as "{phone2}"."""
    problems: list[str] = []
    seen: set[str] = set()
    for m in MERGE_RE.finditer(script or ""):
        key = m.group(1).strip()
        if key in offered or key in seen:
            continue
        seen.add(key)
        if key in withheld or PHONE_NAME.search(key):  # named like a phone column: never sent to callers
            problems.append(
                M_(
                    "{%(field)s} holds a phone number: voters' numbers are never shown to callers, so it "
                    "cannot be used in the script.",
                    field=key,
                )
            )
            continue
        close = difflib.get_close_matches(key, offered, n=1, cutoff=0.6)
        hint = M_(" Did you mean {%(field)s}?", field=close[0]) if close else ""
        if has_list:
            problems.append(M_("{%(field)s} is not a field of this list.%(hint)s", field=m.group(1), hint=hint))
        else:
            problems.append(
                M_(
                    "{%(field)s} is not a field of the standard fields (import the list first to use its columns)."
                    "%(hint)s",
                    field=m.group(1),
                    hint=hint,
                )
            )
    if problems:
        problems.append(M_("Fields you can use: %(fields)s.", fields=", ".join(f"{{{f}}}" for f in offered)))
    return problems


# ---------------------------------------------------------------------------------------------- surveys
KINDS = {"dropdown": N_("Dropdown"), "choice": N_("Multiple choice"), "text": N_("Free text")}
QID_RE = re.compile(r"^q(\d+)$")


def check_survey(questions: list[dict[str, Any]]) -> list[str]:
    """Problems with a survey (empty: fine). Branches must point to an EARLIER question and one of its options."""
    problems: list[str] = []
    seen: dict[str, dict[str, Any]] = {}
    for n, q in enumerate(questions, start=1):
        label = M_("Question %(n)s", n=n)
        qid = q.get("id", "")
        if not isinstance(qid, str) or not QID_RE.match(qid):
            problems.append(M_("%(question)s: bad id %(id)r.", question=label, id=qid))
        elif qid in seen:
            problems.append(M_("%(question)s: id %(id)s is used twice.", question=label, id=qid))
        if not str(q.get("text", "")).strip():
            problems.append(M_("%(question)s: the question text is empty.", question=label))
        kind = q.get("kind")
        options = q.get("options") or []
        if kind not in KINDS:
            problems.append(M_("%(question)s: choose dropdown, multiple choice or free text.", question=label))
        elif kind in ("dropdown", "choice"):
            if len(options) < 2 and kind == "dropdown":
                problems.append(
                    M_("%(question)s: a dropdown question needs at least two options (one per line).", question=label)
                )
            elif len(options) < 2:
                problems.append(
                    M_(
                        "%(question)s: a multiple choice question needs at least two options (one per line).",
                        question=label,
                    )
                )
            if len({o.casefold() for o in options}) != len(options):
                problems.append(M_("%(question)s: the same option is listed twice.", question=label))
        show_if = q.get("show_if")
        if show_if:
            target = seen.get(show_if.get("question", ""))
            if target is None:
                problems.append(M_("%(question)s: it can only depend on an earlier question.", question=label))
            elif show_if.get("answer") not in (target.get("options") or []):
                problems.append(
                    M_(
                        "%(question)s: %(answer)r is not an answer of the question it depends on.",
                        question=label,
                        answer=show_if.get("answer"),
                    )
                )
        if isinstance(qid, str):
            seen[qid] = q
    return problems


def next_question_id(store: Store, campaign_id: int, questions: list[dict[str, Any]]) -> str:
    """q<n> above every id this effort has used, saved or answered: an id is never given to a new question."""
    used = {q.get("id", "") for q in questions}
    campaign = store.campaign(campaign_id)
    if campaign:
        used |= {q.get("id", "") for q in campaign["survey"]}
    used |= {
        r["question"]
        for r in store._all(
            "SELECT DISTINCT a.question FROM survey_answers a JOIN dispositions d ON d.id = a.disposition_id "
            "JOIN contacts c ON c.id = d.contact_id WHERE c.campaign_id = ?",
            (campaign_id,),
        )
    }
    top = max((int(m.group(1)) for u in used if (m := QID_RE.match(str(u)))), default=0)
    return f"q{top + 1}"


def parse_options(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------- script languages
# An effort's script and survey are written in its language (``campaigns.language``) and may carry a version in
# a second one (``second_language``, '' for none): ``second_script``, and per question ``second_text`` and
# ``second_options`` (the options' labels in the same order; an answer is always stored as the option itself,
# whatever language it was read in, so results and the VAN mapping do not depend on it). A piece left
# untranslated is shown to callers in the effort's language, marked as such.
# A list column telling the voter's language: "Language", "Preferred language", "lang", "Idioma".
LANGUAGE_COLUMN = re.compile(r"lang|idioma", re.IGNORECASE)


def script_languages(campaign: dict[str, Any]) -> list[str]:
    """The effort's script languages: its own, then the second one if it has one."""
    first = str(campaign.get("language") or "en")
    second = str(campaign.get("second_language") or "")
    return [first, second] if second and second != first else [first]


def check_languages(language: str, second: str) -> dict[str, str]:
    """Problems with the chosen languages (field -> message)."""
    errors: dict[str, str] = {}
    if language not in SCRIPT_LANGUAGES:
        errors["language"] = N_("Choose the language the script is written in.")
    if second and second not in SCRIPT_LANGUAGES:
        errors["second_language"] = N_("Choose a second language from the list, or none.")
    elif second and second == language:
        errors["second_language"] = N_("The second language must differ from the script's language.")
    return errors


@functools.cache
@functools.cache
def language_names(code: str) -> frozenset[str]:
    """What a list (or a setting) may write for a language: its code, its English, Spanish and own names, folded
    (store.textfold.fold). The one reading of a language's name: bridge.language uses it for the phone side."""
    loc = Locale.parse(code)
    names = {code, loc.language}
    for where in ("en", "es", code):
        name = loc.get_display_name(where) or ""
        names |= {fold(name), fold(name.split(" (")[0])}
    return frozenset(n for n in names if n)


def voter_language(extra: dict[str, Any], languages: list[str]) -> str:
    """The one of ``languages`` a list's language column gives for this voter ("Spanish", "es-MX", "Español"),
    '' when the list has no such column or names another language."""
    for key, value in extra.items():
        if not LANGUAGE_COLUMN.search(str(key)) or not isinstance(value, str):
            continue
        text = fold(value).strip()
        words = re.split(r"[^a-z]+", text)
        for candidate in (text, text.replace("_", "-").split("-")[0], words[0] if words else ""):
            for code in languages:
                if candidate and candidate in language_names(code):
                    return code
    return ""


def check_translations(questions: list[dict[str, Any]]) -> list[str]:
    """Problems with the survey's second-language options: one label per option, in the same order, none used
    twice, none the same as a different option (a caller's answer must name one option whatever the language)."""
    problems: list[str] = []
    for n, q in enumerate(questions, start=1):
        options = [str(o) for o in q.get("options") or []]
        labels = [str(o) for o in q.get("second_options") or []]
        if not labels:
            continue
        label = M_("Question %(n)s", n=n)
        if len(labels) != len(options):
            problems.append(
                M_(
                    "%(question)s: give one translated option per option (%(n)s), in the same order, one per line.",
                    question=label,
                    n=len(options),
                )
            )
            continue
        if len({o.casefold() for o in labels}) != len(labels):
            problems.append(M_("%(question)s: the same translated option is listed twice.", question=label))
        for i, text in enumerate(labels):
            other = next((o for j, o in enumerate(options) if j != i and o.casefold() == text.casefold()), None)
            if other is not None:
                problems.append(
                    M_(
                        "%(question)s: the translation “%(label)s” is the same as the option “%(option)s”.",
                        question=label,
                        label=text,
                        option=other,
                    )
                )
    return problems


def missing_translations(campaign: dict[str, Any]) -> list[str]:
    """What of the effort has no second-language version (shown to callers in the effort's language)."""
    if len(script_languages(campaign)) < 2:
        return []
    out: list[str] = []
    if campaign.get("script", "").strip() and not str(campaign.get("second_script") or "").strip():
        out.append(M_("the script"))
    for q in campaign.get("survey") or []:
        if not str(q.get("second_text") or "").strip():
            out.append(M_("%(question)s's text", question=q.get("id")))
        if q.get("options") and not q.get("second_options"):
            out.append(M_("%(question)s's options", question=q.get("id")))
    return out


# ---------------------------------------------------------------------------------------------- dispositions
DISPOSITION_KINDS = {
    "contact": N_("Talked to correct person"),
    "no_contact": N_("No contact"),
    "remove": N_("Remove number"),
}


def slugify(label: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", label.strip().lower()).strip("_")
    return slug[:40] or "disposition"


def add_disposition(store: Store, campaign_id: int, label: str, kind: str) -> dict[str, str]:
    label = label.strip()
    if not label:
        raise StoreError(M_("a label is required"))
    if kind not in DISPOSITION_KINDS:
        raise StoreError(M_("choose what kind of outcome it is"))
    codes = {d["code"] for d in store.disposition_codes(campaign_id)}
    if label.casefold() in {d["label"].casefold() for d in store.disposition_codes(campaign_id)}:
        raise StoreError(M_("there is already a disposition labelled %(label)r", label=label))
    base = code = slugify(label)
    n = 2
    while code in codes:
        code = f"{base}_{n}"
        n += 1
    store.conn.execute(
        "INSERT INTO dispositions_catalog (campaign_id, code, label, kind) VALUES (?, ?, ?, ?)",
        (campaign_id, code, label, kind),
    )
    return {"code": code, "label": label, "kind": kind}


def rename_disposition(store: Store, campaign_id: int, code: str, label: str) -> None:
    label = label.strip()
    if not label:
        raise StoreError(M_("a label is required"))
    rows = store.disposition_codes(campaign_id)
    if code not in {d["code"] for d in rows}:
        raise StoreError(M_("no disposition %(code)r", code=code))
    if any(d["label"].casefold() == label.casefold() and d["code"] != code for d in rows):
        raise StoreError(M_("there is already a disposition labelled %(label)r", label=label))
    store.conn.execute(
        "UPDATE dispositions_catalog SET label = ? WHERE campaign_id = ? AND code = ?", (label, campaign_id, code)
    )


def delete_disposition(store: Store, campaign_id: int, code: str) -> None:
    rows = store.disposition_codes(campaign_id)
    target = next((d for d in rows if d["code"] == code), None)
    if target is None:
        raise StoreError(M_("no disposition %(code)r", code=code))
    if sum(1 for d in rows if d["kind"] == target["kind"]) <= 1:
        raise StoreError(
            M_(
                "keep at least one disposition of the kind “%(kind)s”",
                kind=M_(DISPOSITION_KINDS.get(target["kind"], target["kind"])),
            )
        )
    used = store._one(
        "SELECT COUNT(*) AS n FROM dispositions d JOIN contacts c ON c.id = d.contact_id "
        "WHERE c.campaign_id = ? AND d.code = ?",
        (campaign_id, code),
    )
    if used and used["n"]:
        raise StoreError(
            M_("%(label)r is already recorded on %(n)s calls: rename it instead", label=target["label"], n=used["n"])
        )
    store.conn.execute("DELETE FROM dispositions_catalog WHERE campaign_id = ? AND code = ?", (campaign_id, code))


# ---------------------------------------------------------------------------------------------- call settings
HHMM_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
LEGAL_START, LEGAL_END = "08:00", "21:00"


def _e164_or_error(text: str, what: str, errors: dict[str, str], key: str, required: bool = False) -> str:
    text = text.strip()
    if not text:
        if required:
            errors[key] = M_("%(field)s is required.", field=M_(what))
        return ""
    try:
        return normalize_phone(text)
    except ValueError as exc:
        errors[key] = M_(
            "%(field)s: “%(text)s” is %(reason)s. Enter the whole number, e.g. +1 202 555 0100.",
            field=M_(what),
            text=text[:40],
            reason=reason(exc),
        )
        return ""


def _int_field(form: dict[str, str], key: str, label: str, lo: int, hi: int, errors: dict[str, str]) -> int:
    raw = form.get(key, "").strip()
    try:
        value = int(raw)
    except ValueError:
        errors[key] = M_("%(field)s: enter a whole number.", field=M_(label))
        return 0
    if not lo <= value <= hi:
        errors[key] = M_("%(field)s: between %(low)s and %(high)s.", field=M_(label), low=lo, high=hi)
    return value


def check_settings(
    form: dict[str, str], campaign: dict[str, Any], *, has_new_voicemail: bool = False
) -> tuple[dict[str, Any], dict[str, str]]:
    """The call settings form as campaign fields, and the problems (field -> message)."""
    errors: dict[str, str] = {}
    v: dict[str, Any] = {}
    method = form.get("call_method", "")
    if method == "personal":
        v["dial_mode"] = "personal"
    elif method == "computer":
        mode = form.get("dial_mode", "power")
        if mode not in ("power", "predictive"):
            errors["dial_mode"] = N_("Choose power or predictive dialling.")
        v["dial_mode"] = mode
        if mode == "power":
            try:
                ratio = float(form.get("dial_ratio", "1") or "1")
                if not 1 <= ratio <= 3:
                    errors["dial_ratio"] = N_("Lines per caller: between 1 and 3.")
                v["dial_ratio"] = ratio
            except ValueError:
                errors["dial_ratio"] = N_("Lines per caller: enter a number such as 1 or 1.5.")
    else:
        errors["call_method"] = N_("Choose personal phone or computer dial.")
    amd = form.get("amd_mode", "")
    if amd not in ("ours", "app_amd", "off"):
        errors["amd_mode"] = N_("Choose how answering machines are detected.")
    v["amd_mode"] = amd
    household = form.get("household", "")
    if household not in ("once", "each"):
        errors["household"] = N_("Choose how to call people who share a phone number.")
    v["household_once"] = int(household == "once")
    action = form.get("machine_action", "")
    if action not in ("hangup", "voicemail"):
        errors["machine_action"] = N_("Choose what to do on an answering machine.")
    elif action == "voicemail" and not (has_new_voicemail or campaign.get("voicemail_media")):
        errors["voicemail_file"] = N_("Upload the voicemail message (a WAV file) or choose no voicemail.")
    v["machine_action"] = action
    v["voicemail_instructions"] = form.get("voicemail_instructions", "").strip()
    v["org_name"] = form.get("org_name", "").strip()
    v["callback_number"] = _e164_or_error(
        form.get("callback_number", ""), N_("Call-back number"), errors, "callback_number"
    )
    v["abandon_message"] = form.get("abandon_message", "").strip()
    v["caller_id"] = _e164_or_error(form.get("caller_id", ""), N_("Caller ID"), errors, "caller_id")
    start, end = form.get("calling_hours_start", "").strip(), form.get("calling_hours_end", "").strip()
    for key, val in (("calling_hours_start", start), ("calling_hours_end", end)):
        if not HHMM_RE.match(val):
            errors[key] = N_("Use the 24-hour clock, HH:MM.")
    if "calling_hours_start" not in errors and "calling_hours_end" not in errors:
        if start >= end:
            errors["calling_hours_end"] = N_("The calling hours must end after they start.")
        elif start < LEGAL_START or end > LEGAL_END:
            errors["calling_hours_start"] = M_(
                "Calls are allowed only between %(start)s and %(end)s in the contact's local time.",
                start=LEGAL_START,
                end=LEGAL_END,
            )
    v["calling_hours_start"], v["calling_hours_end"] = start, end
    v["max_attempts"] = _int_field(form, "max_attempts", N_("Max attempts"), 1, 20, errors)
    for key in ("busy", "noanswer", "machine"):
        minutes = _int_field(form, f"recycle_{key}_min", N_("Retry after"), 1, 7 * 24 * 60, errors)
        v[f"recycle_{key}_s"] = minutes * 60
    v["wrapup_limit_s"] = _int_field(form, "wrapup_limit_s", N_("Wrap-up limit"), 5, 3600, errors)
    v["ring_timeout_s"] = _int_field(form, "ring_timeout_s", N_("Ring timeout"), MIN_RING_TIMEOUT_S, 120, errors)
    if "ring_timeout_s" in errors and v["ring_timeout_s"] and v["ring_timeout_s"] < MIN_RING_TIMEOUT_S:
        errors["ring_timeout_s"] = M_(
            "Ring timeout: at least %(n)s s (4 rings), the legal minimum.", n=MIN_RING_TIMEOUT_S
        )
    return v, errors


def settings_form(campaign: dict[str, Any]) -> dict[str, str]:
    """A campaign's settings as the form shows them."""
    mode = campaign["dial_mode"]
    return {
        "call_method": "personal" if mode == "personal" else "computer",
        "dial_mode": mode if mode in ("power", "predictive") else "power",
        "dial_ratio": f"{float(campaign['dial_ratio']):g}",
        "amd_mode": campaign["amd_mode"],
        "household": "once" if campaign["household_once"] else "each",
        "machine_action": campaign["machine_action"],
        "voicemail_instructions": campaign["voicemail_instructions"],
        "org_name": campaign["org_name"],
        "callback_number": campaign["callback_number"],
        "abandon_message": campaign["abandon_message"],
        "caller_id": campaign["caller_id"],
        "calling_hours_start": campaign["calling_hours_start"],
        "calling_hours_end": campaign["calling_hours_end"],
        "max_attempts": str(campaign["max_attempts"]),
        "recycle_busy_min": str(int(campaign["recycle_busy_s"]) // 60),
        "recycle_noanswer_min": str(int(campaign["recycle_noanswer_s"]) // 60),
        "recycle_machine_min": str(int(campaign["recycle_machine_s"]) // 60),
        "wrapup_limit_s": str(campaign["wrapup_limit_s"]),
        "ring_timeout_s": str(campaign["ring_timeout_s"]),
    }


def save_settings(
    store: Store,
    campaign: dict[str, Any],
    values: dict[str, Any],
    messages: dict[tuple[str, str], str] | None = None,
) -> dict[str, Any]:
    """Store checked settings. A generated abandon prompt is dropped when what it says changes, so the
    controller speaks a fresh one. ``messages`` sets the effort's messages per language (:func:`set_messages`)."""
    cid = int(campaign["id"])
    if messages:
        with store.db.atomic():
            # Read again: the controller files the messages it speaks into media_by_language meanwhile.
            fresh = store.campaign(cid) or campaign
            saved = save_settings(store, {**campaign, "media_by_language": fresh.get("media_by_language")}, values)
            return store.update_campaign(cid, **set_messages(saved, messages))
    media = str(campaign.get("abandon_media") or "")
    if media.endswith(f"/abandon-{cid}") and any(
        values.get(k) != campaign.get(k) for k in ("org_name", "callback_number", "abandon_message")
    ):
        values = {**values, "abandon_media": ""}
    if any(values.get(k, campaign.get(k)) != campaign.get(k) for k in ("org_name", "callback_number")):
        # The messages spoken in the other languages (bridge.language, media_by_language) name the organisation
        # and the number too. When the effort's own is the organiser's recording it is kept, and so were these:
        # Spanish voters went on hearing the old call-back number.
        values = {**values, "media_by_language": _without_spoken_abandon(campaign, cid)}
    return store.update_campaign(cid, **values)


def _without_spoken_abandon(campaign: dict[str, Any], cid: int) -> dict[str, dict[str, str]]:
    """The effort's messages per language less the abandon messages the controller spoke (abandon-<id>[-<lang>])."""
    try:
        media = json.loads(campaign.get("media_by_language") or "{}")
    except ValueError:
        media = {}
    out: dict[str, dict[str, str]] = {}
    for language, paths in (media if isinstance(media, dict) else {}).items():
        if not isinstance(paths, dict):
            continue
        kept = {k: v for k, v in paths.items() if not (k == "abandon" and is_spoken_abandon(str(v), cid))}
        if kept:
            out[language] = kept
    return out


# ---------------------------------------------------------------------------------------------- messages per language
# The voicemail drop and the abandon message a voter hears are in their language (bridge.language.message_media).
# The effort's own language: ``voicemail_media`` and ``abandon_media``; each other language: ``media_by_language``
# (``{"es": {"abandon": path, "voicemail": path}}``), where the controller also files the abandon messages it speaks.
MESSAGE_KINDS = ("voicemail", "abandon")


def is_spoken_abandon(path: str, campaign_id: int) -> bool:
    """An abandon message the controller spoke (``abandon-<id>`` or ``abandon-<id>-<language>``), not a recording
    the organiser gave: a spoken one is dropped and spoken again when what it says changes, a recording never."""
    return bool(re.fullmatch(rf".*/abandon-{campaign_id}(-[A-Za-z0-9_-]+)?", path))


def set_messages(campaign: dict[str, Any], changes: dict[tuple[str, str], str]) -> dict[str, Any]:
    """The campaign fields that give the effort these messages. ``changes`` maps (language, kind) to a recording's
    media path, or to '' for the default: the abandon message spoken from the settings; for a voicemail in another
    language, the effort's own. Language '' is the effort's own (``abandon_media``; its voicemail is the settings'
    own upload, not set here), any other goes to ``media_by_language``."""
    try:
        media = json.loads(campaign.get("media_by_language") or "{}")
    except ValueError:
        media = {}
    media = {k: dict(v) for k, v in media.items() if isinstance(v, dict)} if isinstance(media, dict) else {}
    values: dict[str, Any] = {}
    for (language, kind), path in changes.items():
        if kind not in MESSAGE_KINDS:
            raise StoreError(f"not a message: {kind!r}")
        if not language:
            if kind != "abandon":
                raise StoreError("the voicemail in the effort's language is the settings' own upload")
            values["abandon_media"] = path
            continue
        paths = media.setdefault(language_tag(language), {})
        if path:
            paths[kind] = path
        else:
            paths.pop(kind, None)
            if not paths:
                del media[language]
    values["media_by_language"] = media
    return values


# ---------------------------------------------------------------------------------------------- voicemail audio
MAX_WAV_BYTES = 20 * 1024 * 1024
MAX_WAV_SECONDS = 120


def check_wav(data: bytes) -> str:
    """'' if ``data`` is a playable PCM WAV of sensible length, else why not."""
    if len(data) > MAX_WAV_BYTES:
        return N_("The file is too large (20 MB at most).")
    try:
        with wave.open(io.BytesIO(data)) as w:
            frames, rate, width = w.getnframes(), w.getframerate(), w.getsampwidth()
    except (wave.Error, EOFError) as exc:
        return M_("That is not a WAV file we can read (%(why)s). Export it as WAV (PCM).", why=str(exc))
    if rate <= 0 or frames == 0:
        return N_("The WAV file holds no sound.")
    if width not in (1, 2, 3, 4):
        return N_("Unsupported WAV sample size.")
    if frames / rate > MAX_WAV_SECONDS:
        return M_("The message is longer than %(n)s seconds.", n=MAX_WAV_SECONDS)
    return ""


def _convert_with_python(data: bytes, dest: Path) -> None:
    """8 kHz mono 16-bit without sox (numpy: mix down, linear resample)."""
    import numpy as np

    with wave.open(io.BytesIO(data)) as w:
        ch, width, rate, raw = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.readframes(w.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128) / 128
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        ints = b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8) | (b[:, 2].astype(np.int32) << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        samples = ints / float(1 << 23)
    else:
        # WAV samples are little-endian signed integers; full scale is the type's largest value (2 ** bits-1 - 1).
        samples = np.frombuffer(raw, dtype=f"<i{width}").astype(np.float64) / float(2 ** (8 * width - 1) - 1)
    samples = samples.reshape(-1, ch).mean(axis=1)
    if rate != 8000:
        n = max(1, int(len(samples) * 8000 / rate))
        samples = np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)), samples)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    with wave.open(str(dest), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(pcm)


def convert_wav(data: bytes, dest: Path) -> None:
    """Write ``data`` (a checked WAV) to ``dest`` as 8 kHz mono 16-bit PCM, as Asterisk plays it best."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("sox"):
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "in.wav"
            src.write_bytes(data)
            res = subprocess.run(
                ["sox", str(src), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(dest)],
                capture_output=True,
            )
            if res.returncode == 0:
                return
    _convert_with_python(data, dest)


def media_dir(store: Store) -> Path:
    return Path(store.path).parent / "media"


def stage_voicemail(store: Store, campaign_id: int, data: bytes, stage: Callable[[Path, str], str]) -> str:
    """Keep an uploaded voicemail message and return the name Asterisk plays it by (path without extension)."""
    return stage_message(store, campaign_id, data, stage)


def stage_message(
    store: Store,
    campaign_id: int,
    data: bytes,
    stage: Callable[[Path, str], str],
    kind: str = "voicemail",
    language: str = "",
) -> str:
    """Keep an uploaded message (a checked WAV) and return the name Asterisk plays it by (path without extension).

    The converted file always lands in the data dir (``media/voicemail-<effort>[-<language>]-<random>.wav`` or
    ``media/recorded-abandon-...``, which the settings page plays back); ``stage`` then puts it where the running
    Asterisk can play it. A recorded abandon message is never named like a spoken one (:func:`is_spoken_abandon`)."""
    if kind not in MESSAGE_KINDS:
        raise StoreError(f"not a message: {kind!r}")
    prefix = "voicemail" if kind == "voicemail" else "recorded-abandon"
    tag = f"-{language_tag(language)}" if language else ""
    name = f"{prefix}-{campaign_id}{tag}-{secrets.token_hex(6)}"
    dest = media_dir(store) / f"{name}.wav"
    convert_wav(data, dest)
    return stage(dest, f"{name}.wav")
