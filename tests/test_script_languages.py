"""An effort's script and survey in two languages (issue 14, "Spanish, end to end"): what the store keeps, the
checks on translations, the voter's language from the list, each result's language, and the exports."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from store import efforts as ef
from store import results as sr
from store import van
from store.db import MIGRATIONS, Store, StoreError
from store.textfold import search_text

SURVEY: list[dict[str, Any]] = [
    {
        "id": "q1",
        "text": "Will you vote?",
        "kind": "choice",
        "options": ["Yes", "No"],
        "show_if": None,
        "second_text": "¿Va a votar?",
        "second_options": ["Sí", "No"],
    },
    {
        "id": "q2",
        "text": "Which day?",
        "kind": "dropdown",
        "options": ["Saturday", "Sunday"],
        "show_if": {"question": "q1", "answer": "Yes"},
    },
]


def _effort(store: Store) -> dict[str, Any]:
    return store.create_campaign(
        "Two languages",
        script="Hi {first_name}",
        survey=SURVEY,
        language="en",
        second_language="es",
        second_script="Hola {first_name}",
    )


def _call(store: Store, cid: int, session: int, first: str, n: int) -> tuple[str, int]:
    store.add_contacts(cid, [{"first_name": first, "phone": f"+120255501{n:02d}", "extra": {"external_id": f"9{n}"}}])
    contact = next(c for c in store.contacts(cid) if c["first_name"] == first)["id"]
    call_id = f"call-{n}"
    store.insert_call(call_id, cid, contact, 1, f"chan-{n}", time.time() - 100)
    store.update_call(call_id, answered_at=time.time() - 90, ended_at=time.time() - 30, outcome="connected")
    return call_id, contact


def test_an_old_store_migrates_and_keeps_its_results(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.create_function("pb_search_text", 3, search_text)
    for number, sql in enumerate(MIGRATIONS[:11], start=1):
        conn.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version={number};\nCOMMIT;")
    conn.execute(
        "INSERT INTO campaigns (name, script, created_at) VALUES ('Old', 'Hi {first_name}', ?)", (time.time(),)
    )
    conn.commit()
    conn.close()
    store = Store(path)
    old = store.campaign(1)
    assert old is not None and old["script"] == "Hi {first_name}"
    assert (old["language"], old["second_language"], old["second_script"]) == ("en", "", "")
    assert ef.script_languages(old) == ["en"]
    cols = {r["name"] for r in store._all("PRAGMA table_info(dispositions)")}
    assert "language" in cols


def test_each_result_records_its_language_and_answers_keep_the_options_identity(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    cid = int(_effort(store)["id"])
    session = int(store.create_session(cid, "Ana")["id"])
    call1, contact1 = _call(store, cid, session, "Ada", 1)
    call2, contact2 = _call(store, cid, session, "Bea", 2)
    call3, contact3 = _call(store, cid, session, "Cy", 3)
    store.add_disposition(session, call1, contact1, "supporter", "", {"q1": "Yes", "q2": "Sunday"}, language="en")
    # Read in Spanish: the caller's screen sends the option itself; a label sent instead is taken as its option.
    store.add_disposition(session, call2, contact2, "supporter", "", {"q1": "Sí"}, language="es")
    store.add_disposition(session, call3, contact3, "talked", "", {"q1": "No"})  # an API client saying nothing
    rows = store._all("SELECT contact_id, language FROM dispositions ORDER BY id")
    assert [r["language"] for r in rows] == ["en", "es", ""]
    answers = store._all("SELECT disposition_id, question, answer FROM survey_answers ORDER BY id")
    assert [a["answer"] for a in answers] == ["Yes", "Sunday", "Yes", "No"]
    with pytest.raises(StoreError, match="language"):
        store.add_disposition(session, call3, contact3, "talked", "", {}, language="xx")
    with pytest.raises(StoreError, match="language"):
        store.add_disposition(session, call3, contact3, "talked", "", {}, language=7)  # type: ignore[arg-type]
    assert len(store._all("SELECT id FROM dispositions")) == 3  # nothing written by the refused ones

    # The exports: a column for the language each call's script was read in.
    def table(batches: sr.Batches) -> list[dict[str, str]]:
        out = io.StringIO()
        w = csv.writer(out)
        for b in batches:
            w.writerows(b)
        return list(csv.DictReader(io.StringIO(out.getvalue())))

    attempts = {r["call_id"]: r for r in table(sr.attempts_export(store, cid))}
    assert [attempts[c]["script_language"] for c in (call1, call2, call3)] == ["en", "es", ""]
    contacts = {r["first_name"]: r for r in table(sr.contacts_export(store, cid, SURVEY))}
    assert contacts["Bea"]["last_script_language"] == "es" and contacts["Bea"]["Will you vote?"] == "Yes"
    assert contacts["Ada"]["last_script_language"] == "en"

    # VAN: the answer maps the same whichever language the question was read in.
    van.set_mapping(
        store,
        cid,
        {"results": {"supporter": "Canvassed"}, "questions": {"q1": {"name": "Will Vote", "responses": {"Yes": "Y"}}}},
    )
    by_id = {r["VANID"]: r for r in table(van.van_export(store, cid))}
    assert by_id["91"]["Will Vote"] == by_id["92"]["Will Vote"] == "Y"
    assert not [p for p in van.problem_summary(store, cid)["problems"] if "Sí" in p["problem"]]


def test_a_result_read_in_a_version_since_dropped_is_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    cid = int(_effort(store)["id"])
    session = int(store.create_session(cid, "Ana")["id"])
    call, contact = _call(store, cid, session, "Ada", 1)
    # The organiser drops Spanish while a caller's page still shows it: their result is recorded as read.
    store.update_campaign(cid, second_language="")
    store.add_disposition(session, call, contact, "supporter", "", {"q1": "Sí"}, language="es")
    row = store._one("SELECT id, language FROM dispositions")
    assert row is not None and row["language"] == "es" and store.answers(row["id"]) == {"q1": "Yes"}
    with pytest.raises(StoreError, match="language"):
        store.update_campaign(cid, second_language="xx")
    with pytest.raises(StoreError, match="language"):
        store.update_campaign(cid, language="")


def test_translation_rules() -> None:
    assert ef.check_translations(SURVEY) == []
    short = [{**SURVEY[0], "second_options": ["Sí"]}]
    assert any("one translated option per option" in p for p in ef.check_translations(short))
    twice = [{**SURVEY[0], "second_options": ["Sí", "sí"]}]
    assert any("listed twice" in p for p in ef.check_translations(twice))
    crossed = [{**SURVEY[0], "second_options": ["No", "Yes"]}]  # "No" would name the other option
    assert any("is the same as the option" in p for p in ef.check_translations(crossed))
    assert ef.check_languages("en", "es") == {}
    assert "second_language" in ef.check_languages("en", "en")
    assert "second_language" in ef.check_languages("en", "klingon")
    assert "language" in ef.check_languages("", "")
    effort = {"language": "en", "second_language": "es", "script": "Hi", "second_script": "", "survey": SURVEY}
    assert ef.missing_translations(effort) == ["the script", "q2's text", "q2's options"]
    assert ef.missing_translations({**effort, "second_language": ""}) == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"Language": "Spanish"}, "es"),
        ({"language": "es-MX"}, "es"),
        ({"Idioma": "Español"}, "es"),
        ({"Preferred Language": "SPANISH (reads English)"}, "es"),
        ({"lang": "English"}, "en"),
        ({"Language": "French"}, ""),
        ({"Ward": "Spanish"}, ""),  # not a language column
        ({}, ""),
    ],
)
def test_the_voters_language_from_the_list(extra: dict[str, Any], expected: str) -> None:
    assert ef.voter_language(extra, ["en", "es"]) == expected


def test_both_scripts_are_checked_for_fields_the_same_way() -> None:
    offered, withheld = ["first_name", "city"], ["phone", "Cell"]
    assert ef.check_script("Hola {first_name}", offered, withheld) == []
    problems = ef.check_script("Hola {nombre} {Cell}", offered, withheld)
    assert any("{nombre} is not a field" in p for p in problems) and any("{Cell} holds a phone" in p for p in problems)
