"""Results back to VAN: a VAN-style export goes in through the importer, calls are recorded, and the VAN export
gives every contacted person back with their VAN ID, result and answers; what cannot be mapped is reported."""

from __future__ import annotations

import codecs
import csv
import io
import json
import time
from typing import Any

import pytest

from store import van
from store.contacts import EXTERNAL_ID, check_list, csv_headers, guess_mapping, table_text
from store.db import Store, StoreError
from store.efforts import import_list
from tests.fakes import PanelKit

SURVEY = [
    {"id": "q1", "text": "Support Measure A?", "kind": "choice", "options": ["Yes", "No", "Maybe"], "show_if": None},
    {"id": "q2", "text": "Volunteer?", "kind": "choice", "options": ["Yes", "No"], "show_if": None},
]
VAN_TXT = (
    "Voter File VANID\tLastName\tFirstName\tCity\tState\tZip5\tCell Phone\r\n"
    "101234\tLovelace\tAda\tSpringfield\tIL\t62701\t(202) 555-0101\r\n"
    "101235\tGarcía\tJosé\tSpringfield\tIL\t62701\t202-555-0102\r\n"
    "101236\tKing\tCarol\tSpringfield\tIL\t62701\t2025550103\r\n"
    "\tNoid\tNora\tSpringfield\tIL\t62701\t2025550104\r\n"
    "101238\tNotreached\tCalled\tSpringfield\tIL\t62701\t2025550105\r\n"
    "101239\tNever\tDialled\tSpringfield\tIL\t62701\t2025550106\r\n"
)
MAPPING = {
    "results": {"supporter": "Canvassed", "talked": "Canvassed", "refused": "Refused", "wrong_number": "Wrong Number"},
    "outcomes": {"no_answer": "Not Home", "machine": "Left Message"},
    "questions": {
        "q1": {"name": "Measure A Support", "responses": {"Yes": "Strong Yes", "No": "Strong No"}},
        "q2": {"name": "Vol Ask", "responses": {"Yes": "Yes", "No": "No"}},
    },
}


def seed(store: Store) -> dict[str, Any]:
    cid = store.create_campaign("Measure A", survey=SURVEY)["id"]
    text = table_text(VAN_TXT.encode("utf-8"))
    report = check_list(text, guess_mapping(csv_headers(text)))
    assert report.valid == 6 and not report.errors
    import_list(store, cid, report)
    people = {c["first_name"]: c for c in store.contacts(cid)}
    session = store.create_session(cid, "Alice")["id"]
    t0 = time.time() - 600

    def attempt(call_id: str, first: str, n: int, code: str, answers: dict[str, str]) -> None:
        contact = people[first]["id"]
        store.insert_call(call_id, cid, contact, n, f"chan-{call_id}", t0 + n)
        store.update_call(call_id, answered_at=t0 + n + 5, ended_at=t0 + n + 60, outcome="connected")
        store.add_disposition(session, call_id, contact, code, "", answers)

    attempt("c1", "Ada", 1, "supporter", {"q1": "Yes", "q2": "No"})
    attempt("c2", "José", 1, "refused", {})
    attempt("c3", "Carol", 1, "talked", {"q1": "No", "q2": "Yes"})
    attempt("c4", "Carol", 2, "talked", {"q1": "Maybe"})  # an answer VAN has no response for
    attempt("c5", "Nora", 1, "supporter", {"q1": "Yes"})  # no VAN ID in the file
    attempt("c6", "José", 2, "not_home", {})  # a term code with no VAN result

    def dialler(call_id: str, first: str, n: int, outcome: str) -> None:
        store.insert_call(call_id, cid, people[first]["id"], n, f"chan-{call_id}", t0 + n)
        store.update_call(call_id, ended_at=t0 + n + 30, outcome=outcome)

    dialler("d1", "Called", 1, "no_answer")  # attempted, never reached: "Not Home"
    dialler("d2", "Nora", 2, "machine")  # no VAN ID
    dialler("d3", "Called", 2, "busy")  # not mapped: not sent, not reported
    dialler("d4", "Called", 3, "cancelled")  # not an attempt
    van.set_mapping(store, cid, MAPPING)
    return {"cid": cid, "people": people}


def rows_of(batches: van.Batches) -> list[dict[str, str]]:
    batches = list(batches)
    header, rows = batches[0][0], [row for b in batches[1:] for row in b]
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_round_trip_from_a_van_export(tmp_path: Any) -> None:
    store = Store(tmp_path / "pb.db")
    s = seed(store)
    assert json.loads(s["people"]["Ada"]["extra"])[EXTERNAL_ID] == "101234"  # the VAN ID kept through import
    rows = rows_of(van.van_export(store, s["cid"]))
    day = time.strftime("%m/%d/%Y", time.gmtime())
    by_id: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        assert row["ContactType"] == "Phone" and row["DateContacted"] in (
            day,
            time.strftime("%m/%d/%Y", time.gmtime(time.time() - 86400)),
        )
        by_id.setdefault(row["VANID"], []).append(row)
    # Every contacted person with a VAN ID comes back, once per attempt result VAN can take.
    assert set(by_id) == {"101234", "101235", "101236", "101238"}
    ada = by_id["101234"]
    assert [(r["Result"], r["Measure A Support"], r["Vol Ask"]) for r in ada] == [("Canvassed", "Strong Yes", "No")]
    assert [(r["Result"], r["Measure A Support"]) for r in by_id["101235"]] == [("Refused", "")]
    carol = [(r["Result"], r["Measure A Support"], r["Vol Ask"]) for r in by_id["101236"]]
    assert carol == [("Canvassed", "Strong No", "Yes"), ("Canvassed", "", "")]
    # Attempted and never reached: the mapped dialler outcome only (busy is not mapped, cancelled no attempt).
    assert [(r["Result"], r["Measure A Support"]) for r in by_id["101238"]] == [("Not Home", "")]
    assert "101239" not in by_id  # never dialled: nothing to upload

    problems = rows_of(van.van_problems(store, s["cid"]))
    said = {(p["first_name"], p["term_code"], p["problem"]) for p in problems}
    assert said == {
        ("Carol", "talked", "answer 'Maybe' to 'Measure A Support' is not mapped to a VAN response"),
        ("Nora", "supporter", "no VAN ID"),
        ("José", "not_home", "term code 'not_home' is not mapped to a VAN result"),
        ("Nora", "machine", "no VAN ID"),
    }
    summary = van.problem_summary(store, s["cid"])
    assert summary["exported"] == 5 and summary["with_problems"] == 4 and len(summary["problems"]) == 4


def test_mapping_is_checked(tmp_path: Any) -> None:
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("X")["id"]
    assert van.mapping(store, cid) == {"results": {}, "outcomes": {}, "questions": {}}
    bad_ones = [[], {"results": []}, {"results": {"a": "x" * 101}}, {"results": {"a": "bad\x07"}}]
    for bad in [*bad_ones, {"outcomes": {"cancelled": "Not Home"}}, {"questions": {"q1": "x"}}]:
        with pytest.raises(StoreError):
            van.set_mapping(store, cid, bad)
    assert van.mapping(store, cid) == {"results": {}, "outcomes": {}, "questions": {}}  # nothing written
    with pytest.raises(StoreError):
        van.set_mapping(store, cid + 99, {})


def parse(body: bytes) -> list[dict[str, str]]:
    assert body.startswith(codecs.BOM_UTF8)
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def test_van_page_and_exports(panel: PanelKit) -> None:
    s = seed(panel.store)
    cid = s["cid"]
    van.set_mapping(panel.store, cid, {})
    admin, csrf = await panel.client("admin")
    resp = await admin.get(f"/admin/efforts/{cid}/van")
    assert resp.status == 200
    html = await resp.text()
    assert (
        'name="result.supporter"' in html
        and 'name="outcome.no_answer"' in html
        and 'name="q.q1.name"' in html
        and "<script" not in html
    )
    form = {
        "_csrf": csrf,
        "result.supporter": "Canvassed",
        "result.talked": "Canvassed",
        "result.refused": "Refused",
        "q.q1.name": "Measure A Support",
        "q.q1.r.0": "Strong Yes",  # option 0: Yes
        "q.q1.r.1": "Strong No",
        "q.q2.name": "Vol Ask",
        "q.q2.r.0": "Yes",
        "q.q2.r.1": "No",
        "outcome.no_answer": "Not Home",
    }
    resp = await admin.post(f"/admin/efforts/{cid}/van", data=form)
    assert resp.status == 200
    html = await resp.text()
    assert "no VAN ID" in html and "&#39;Maybe&#39;" in html  # the problems, shown on the page
    assert van.mapping(panel.store, cid)["questions"]["q1"]["responses"] == {"Yes": "Strong Yes", "No": "Strong No"}
    resp = await admin.post(f"/admin/efforts/{cid}/van", data={**form, "result.talked": "x" * 200})
    assert resp.status == 400 and "longer than" in await resp.text()
    assert van.mapping(panel.store, cid)["results"]["talked"] == "Canvassed"  # the bad form changed nothing

    resp = await admin.get(f"/admin/efforts/{cid}/export/van.csv")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    rows = parse(await resp.read())
    assert {r["VANID"] for r in rows} == {"101234", "101235", "101236", "101238"}
    resp = await admin.get(f"/admin/efforts/{cid}/export/van-problems.csv")
    assert resp.status == 200
    assert {p["problem"] for p in parse(await resp.read())} >= {"no VAN ID"}

    caller, _ = await panel.client("caller")
    for path in (f"/admin/efforts/{cid}/van", f"/admin/efforts/{cid}/export/van.csv"):
        assert (await caller.get(path, allow_redirects=False)).status in (302, 303, 403)
