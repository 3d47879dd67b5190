"""Results back to VAN: the effort's mapping to VAN's names, and the export its bulk upload takes.

The mapping lives on the effort (``campaigns.van_mapping``, JSON)::

    {"results": {"<term code>": "<VAN canvass/contact result>"},
     "outcomes": {"<dialler outcome>": "<VAN result>"},
     "questions": {"<survey question id>": {"name": "<VAN survey question>",
                                             "responses": {"<our answer>": "<VAN response>"}}}}

The export has one row per recorded attempt result (a disposition): the person's VAN ID (kept through import as
``extra.external_id``), the date contacted, contact type "Phone", the canvass result mapped from the term code,
and one column per mapped VAN survey question. An attempt with no saved result (the dialler's no answer, busy,
machine...) goes too when its outcome is mapped (``outcomes``); unmapped, it is not sent (nor reported: most
campaigns send VAN only what a caller recorded). What cannot be mapped is never guessed: it goes to the problems
report (one row per problem), and a row with nothing VAN can take (no VAN ID; or neither a result nor an answer
mapped) is left out of the upload.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from store.contacts import EXTERNAL_ID
from store.db import Store, StoreError
from store.messages import M_, N_
from store.outcomes import Outcome
from store.results import EXPORT_CHUNK, Batches, _Follow, _reader, csv_safe

CONTACT_TYPE = "Phone"
VAN_FIXED = ["VANID", "DateContacted", "ContactType", "Result"]
PROBLEM_HEADER = ["disposition_id", "contact_id", "first_name", "last_name", "vanid", "term_code", "problem"]
MAX_NAME = 100
MAX_ENTRIES = 500
# Dialler outcomes of attempts nobody saved a result for that VAN can take as a contact attempt (store.outcomes):
# not CONNECTED (a caller's result says it), CANCELLED/TRUNK_FAILED/LOST (no phone rang: not an attempt).
DIALLER_OUTCOMES = {
    Outcome.NO_ANSWER: N_("No answer"),
    Outcome.BUSY: N_("Busy"),
    Outcome.MACHINE: N_("Answering machine"),
    Outcome.VOICEMAIL_LEFT: N_("Answering machine, message left"),
    Outcome.ABANDONED: N_("Answered, nobody free (abandoned)"),
    Outcome.HANGUP_BEFORE_CONNECT: N_("Hung up before a caller was put through"),
    Outcome.UNALLOCATED: N_("Number does not exist"),
}


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise StoreError(M_("%(what)s must be text", what=what))
    text = value.strip()
    if len(text) > MAX_NAME:
        raise StoreError(M_("%(what)s is longer than %(n)s characters", what=what, n=MAX_NAME))
    if any(ord(ch) < 32 for ch in text):
        raise StoreError(M_("%(what)s has a control character", what=what))
    return text


def check_mapping(mapping: Any) -> dict[str, Any]:
    """A clean mapping (names stripped, blanks dropped) or StoreError saying what is wrong."""
    if not isinstance(mapping, dict):
        raise StoreError("the VAN mapping must be an object")
    results_in = mapping.get("results", {})
    questions_in = mapping.get("questions", {})
    outcomes_in = mapping.get("outcomes", {})
    if not all(isinstance(x, dict) for x in (results_in, questions_in, outcomes_in)):
        raise StoreError("the VAN mapping's results, outcomes and questions must be objects")
    if len(results_in) > MAX_ENTRIES or len(questions_in) > MAX_ENTRIES:
        raise StoreError("the VAN mapping is too big")
    results = {}
    for code, name in results_in.items():
        if value := _name(name, M_("the VAN result for %(code)r", code=code)):
            results[str(code)] = value
    outcomes = {}
    for outcome, name in outcomes_in.items():
        if outcome not in DIALLER_OUTCOMES:
            raise StoreError(f"{outcome!r} is not a dialler outcome VAN can take")
        if value := _name(name, M_("the VAN result for %(code)r", code=outcome)):
            outcomes[str(outcome)] = value
    questions: dict[str, Any] = {}
    for qid, q in questions_in.items():
        if not isinstance(q, dict):
            raise StoreError(f"the VAN mapping of question {qid!r} must be an object")
        name = _name(q.get("name", ""), M_("the VAN question name for %(question)r", question=qid))
        responses_in = q.get("responses", {})
        if not isinstance(responses_in, dict) or len(responses_in) > MAX_ENTRIES:
            raise StoreError(f"the VAN responses for {qid!r} must be an object")
        responses = {}
        for ours, theirs in responses_in.items():
            if value := _name(theirs, M_("the VAN response for %(answer)r", answer=ours)):
                responses[str(ours)] = value
        if name:
            questions[str(qid)] = {"name": name, "responses": responses}
    return {"results": results, "outcomes": outcomes, "questions": questions}


def mapping(store: Store, campaign_id: int) -> dict[str, Any]:
    return _mapping_on(store.conn, campaign_id)


def _mapping_on(conn: sqlite3.Connection, campaign_id: int) -> dict[str, Any]:
    row = conn.execute("SELECT van_mapping FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
    if row is None:
        raise StoreError(f"no effort {campaign_id}")
    try:
        return check_mapping(json.loads(row[0] or "{}"))
    except (ValueError, StoreError):
        return {"results": {}, "outcomes": {}, "questions": {}}


def set_mapping(store: Store, campaign_id: int, value: Any) -> dict[str, Any]:
    clean = check_mapping(value)
    cur = store.conn.execute("UPDATE campaigns SET van_mapping = ? WHERE id = ?", (json.dumps(clean), campaign_id))
    if cur.rowcount == 0:
        raise StoreError(f"no effort {campaign_id}")
    return clean


def _date(ts: float) -> str:
    # VAN's bulk upload reads US dates; the day is taken in UTC, as every time in our exports.
    return time.strftime("%m/%d/%Y", time.gmtime(ts))


@dataclass
class VanRow:
    disposition_id: int
    contact: dict[str, Any]
    code: str
    vanid: str
    row: list[str] | None  # the upload row, or None when VAN could take nothing from it
    problems: list[str]


def _van_rows(
    conn: sqlite3.Connection, campaign_id: int, m: dict[str, Any], columns: list[str]
) -> Iterator[list[VanRow]]:
    results, questions = m["results"], m["questions"]
    disps = conn.execute(
        "SELECT d.id, d.code, d.created_at, c.id AS contact_id, c.first_name, c.last_name, c.extra "
        "FROM dispositions d JOIN contacts c ON c.id = d.contact_id WHERE c.campaign_id = ? ORDER BY d.id",
        (campaign_id,),
    )
    answers = _Follow(
        conn.execute(
            "SELECT sa.disposition_id, sa.question, sa.answer FROM survey_answers sa "
            "JOIN dispositions d ON d.id = sa.disposition_id JOIN contacts c ON c.id = d.contact_id "
            "WHERE c.campaign_id = ? ORDER BY sa.disposition_id, sa.id",
            (campaign_id,),
        ),
        "disposition_id",
    )
    while rows := disps.fetchmany(EXPORT_CHUNK):
        batch = []
        for d in rows:
            vanid = _vanid(d["extra"])
            problems = []
            if not vanid:
                problems.append(N_("no VAN ID"))
            result = results.get(d["code"], "")
            if not result:
                problems.append(M_("term code %(code)r is not mapped to a VAN result", code=d["code"]))
            cells = dict.fromkeys(columns, "")
            mapped_answers = 0
            for a in answers.take(d["id"]):
                if not a["answer"]:
                    continue
                q = questions.get(a["question"])
                if q is None:
                    problems.append(
                        M_("question %(question)r is not mapped to a VAN survey question", question=a["question"])
                    )
                    continue
                response = q["responses"].get(a["answer"])
                if not response:
                    problems.append(
                        M_(
                            "answer %(answer)r to %(question)r is not mapped to a VAN response",
                            answer=a["answer"],
                            question=q["name"],
                        )
                    )
                    continue
                cells[q["name"]] = response
                mapped_answers += 1
            row = None
            if vanid and (result or mapped_answers):
                row = [vanid, _date(d["created_at"]), CONTACT_TYPE, result, *(cells[c] for c in columns)]
            batch.append(VanRow(d["id"], dict(d), d["code"], vanid, row, problems))
        yield batch
    outcomes = m["outcomes"]
    if not outcomes:
        return
    marks = ", ".join("?" * len(outcomes))
    calls = conn.execute(
        "SELECT c.outcome, COALESCE(c.ended_at, c.originated_at) AS at, k.id AS contact_id, k.first_name, "
        "k.last_name, k.extra FROM calls c JOIN contacts k ON k.id = c.contact_id "
        f"WHERE c.campaign_id = ? AND c.outcome IN ({marks}) "
        "AND NOT EXISTS (SELECT 1 FROM dispositions d WHERE d.call_id = c.id) ORDER BY c.rowid",
        (campaign_id, *outcomes),
    )
    while rows := calls.fetchmany(EXPORT_CHUNK):
        batch = []
        for c in rows:
            vanid = _vanid(c["extra"])
            row = [vanid, _date(c["at"]), CONTACT_TYPE, outcomes[c["outcome"]], *("" for _ in columns)]
            problems = [] if vanid else [N_("no VAN ID")]
            batch.append(VanRow(0, dict(c), c["outcome"], vanid, row if vanid else None, problems))
        yield batch


def _vanid(extra_json: str) -> str:
    try:
        extra = json.loads(extra_json or "{}")
    except ValueError:
        return ""
    return str(extra.get(EXTERNAL_ID, "") or "").strip() if isinstance(extra, dict) else ""


def _columns(m: dict[str, Any]) -> list[str]:
    names = [q["name"] for q in m["questions"].values()]
    return [n for i, n in enumerate(names) if n not in names[:i] and n not in VAN_FIXED]


def van_export(store: Store, campaign_id: int) -> Batches:
    """The VAN bulk-upload CSV as batches of rows, header first (see the module's docstring)."""
    with closing(_reader(store)) as conn:
        m = _mapping_on(conn, campaign_id)
        columns = _columns(m)
        yield [[csv_safe(h) for h in [*VAN_FIXED, *columns]]]
        for batch in _van_rows(conn, campaign_id, m, columns):
            yield [[csv_safe(v) for v in vr.row] for vr in batch if vr.row is not None]


def van_problems(store: Store, campaign_id: int) -> Batches:
    """What could not be mapped, one row per problem (an attempt result may have several)."""
    yield [list(PROBLEM_HEADER)]
    with closing(_reader(store)) as conn:
        m = _mapping_on(conn, campaign_id)
        for batch in _van_rows(conn, campaign_id, m, _columns(m)):
            out = []
            for vr in batch:
                c = vr.contact
                for p in vr.problems:
                    row = [vr.disposition_id or "", c["contact_id"], c["first_name"], c["last_name"], vr.vanid]
                    out.append([csv_safe(v) for v in [*row, vr.code, p]])
            yield out


def problem_summary(store: Store, campaign_id: int, limit: int = 50) -> dict[str, Any]:
    """For the page: how many results go to VAN, how many have problems, and the first ``limit`` problems."""
    exported = with_problems = 0
    first: list[dict[str, Any]] = []
    with closing(_reader(store)) as conn:
        m = _mapping_on(conn, campaign_id)
        for batch in _van_rows(conn, campaign_id, m, _columns(m)):
            for vr in batch:
                exported += vr.row is not None
                with_problems += bool(vr.problems)
                for p in vr.problems:
                    if len(first) < limit:
                        first.append(
                            {
                                "contact_id": vr.contact["contact_id"],
                                "name": f"{vr.contact['first_name']} {vr.contact['last_name']}".strip(),
                                "vanid": vr.vanid,
                                "code": vr.code,
                                "problem": p,
                            }
                        )
    return {"exported": exported, "with_problems": with_problems, "problems": first}
