"""The admin side of the panel: efforts, lists, scripts and surveys, dispositions, call settings, users and roles."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import wave
from typing import Any

import numpy as np
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from store import efforts as ef
from store import recordings
from store.contacts import check_list, fast_phone
from store.db import StoreError
from tests.fakes import PanelKit

JOIN_RE = re.compile(r"^[A-Z]{7}-\d{7}$")
GOOD_CSV = (
    "First Name,Last Name,Phone,City,State,Zip,Ward,Cell\n"
    "Ada,Lovelace,(202) 555-0101,Washington,DC,20001,3,202-555-0191\n"
    "Ben,Lovelace,202-555-0101,Washington,DC,20001,3,\n"
    "Cleo,Jones,+1 202 555 0102,Washington,DC,20002,5,\n"
)
BAD_CSV = (
    "first_name,last_name,phone,city,notes\n"
    "Ada,Lovelace,2025550101,Washington,likes cats\n"  # 2 ok
    "Bob,Smith,12345,Washington,\n"  # 3 bad number
    "Ada,Lovelace,(202) 555-0101,Washington,\n"  # 4 duplicate of 2 (same person, same phone)
    "Ben,Lovelace,202 555 0101,Washington,\n"  # 5 household: same phone, other person: ok
    ",,2025550103,Washington,\n"  # 6 missing name
    "Cy,Young,,Washington,\n"  # 7 missing phone
    "Di,Prince,2025550104,Washington\n"  # 8 too few cells
    "Ed,Wood,2025550105,Washington,\n"  # 9 ok
)


async def _page(client: TestClient, url: str) -> str:
    resp = await client.get(url)
    assert resp.status == 200, (url, resp.status, await resp.text())
    return await resp.text()


async def _new_effort(client: TestClient, csrf: str, title: str = "Get out the vote") -> int:
    resp = await client.post(
        "/admin/efforts/new", data={"_csrf": csrf, "title": title, "description": "Ward 3"}, allow_redirects=False
    )
    assert resp.status == 302, await resp.text()
    m = re.match(r"^/admin/efforts/(\d+)/edit", resp.headers["Location"])
    assert m
    return int(m.group(1))


async def _upload(client: TestClient, csrf: str, cid: int, text: str | bytes) -> Any:
    form = FormData()
    form.add_field("_csrf", csrf)
    form.add_field(
        "file", text.encode() if isinstance(text, str) else text, filename="list.csv", content_type="text/csv"
    )
    return await client.post(f"/admin/efforts/{cid}/list/upload", data=form, allow_redirects=False)


async def _upload_token(client: TestClient, csrf: str, cid: int, text: str) -> tuple[str, str]:
    resp = await _upload(client, csrf, cid, text)
    assert resp.status == 302, await resp.text()
    token = resp.headers["Location"].split("upload=")[1]
    return token, await _page(client, resp.headers["Location"])


def _selected_mapping(page: str) -> list[str]:
    selects = re.findall(r'<select name="map".*?</select>', page, re.S)
    return [re.search(r'<option value="([^"]+)" selected', s).group(1) for s in selects]  # type: ignore[union-attr]


async def _import(
    client: TestClient, csrf: str, cid: int, token: str, mapping: list[str], household: str = "each", **extra: str
) -> Any:
    data: list[tuple[str, str]] = [("_csrf", csrf), ("token", token), ("household", household)]
    data += [("map", m) for m in mapping]
    data += list(extra.items())
    return await client.post(f"/admin/efforts/{cid}/list/import", data=data, allow_redirects=False)


def _wav(rate: int = 16000, channels: int = 2, seconds: float = 0.5) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")
    frames = np.repeat(tone[:, None], channels, axis=1).tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


SETTINGS_OK = {
    "call_method": "computer",
    "dial_mode": "power",
    "dial_ratio": "1.5",
    "amd_mode": "ours",
    "household": "once",
    "machine_action": "hangup",
    "voicemail_instructions": "Say who you are",
    "org_name": "Fair Votes",
    "callback_number": "(202) 555-0100",
    "abandon_message": "",
    "caller_id": "202-555-0199",
    "calling_hours_start": "09:00",
    "calling_hours_end": "20:30",
    "max_attempts": "4",
    "recycle_busy_min": "15",
    "recycle_noanswer_min": "90",
    "recycle_machine_min": "240",
    "wrapup_limit_s": "45",
    "ring_timeout_s": "20",
}


# ---------------------------------------------------------------------------------------------- efforts
async def test_create_effort_makes_a_draft_with_a_join_code(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    page = await _page(admin, "/admin/efforts")
    assert 'id="new-effort"' in page and 'href="/admin/efforts/new"' in page
    new = await _page(admin, "/admin/efforts/new")
    assert 'name="title"' in new and 'name="description"' in new and 'id="create"' in new and csrf in new
    bad = await admin.post("/admin/efforts/new", data={"_csrf": csrf, "title": "  ", "description": "kept"})
    assert bad.status == 400 and "title is required" in await bad.text() and "kept" in await bad.text()
    assert panel.store.campaigns() == []
    cid = await _new_effort(admin, csrf)
    effort = panel.store.campaign(cid)
    assert effort and effort["status"] == "draft" and effort["description"] == "Ward 3"
    assert JOIN_RE.match(effort["join_code"]) and effort["finished_at"] is None
    other = panel.store.campaign(await _new_effort(admin, csrf, "Second"))
    assert other and other["join_code"] != effort["join_code"]
    listing = await _page(admin, "/admin/efforts")
    assert f'<tr data-effort-id="{cid}">' in listing
    assert f'<code class="join-code">{effort["join_code"]}</code>' in listing
    assert f"/join/{effort['join_code']}" in listing and f"/admin/efforts/{cid}/results" in listing
    assert "Draft" in listing
    for step in ("edit", "list", "script", "settings", "review"):
        page = await _page(admin, f"/admin/efforts/{cid}/{step}")
        assert 'class="steps"' in page


async def test_details_step_saves_and_schedules(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    missing = await admin.post(
        f"/admin/efforts/{cid}/edit",
        data={
            "_csrf": csrf,
            "title": "Renamed",
            "description": "d",
            "launch": "schedule",
            "start_at": "",
            "end_at": "",
        },
    )
    assert missing.status == 400 and "needs a start" in await missing.text()
    assert panel.store.campaign(cid)["name"] == "Get out the vote"  # type: ignore[index]
    backwards = await admin.post(
        f"/admin/efforts/{cid}/edit",
        data={
            "_csrf": csrf,
            "title": "Renamed",
            "launch": "schedule",
            "start_at": "2099-01-02T10:00",
            "end_at": "2099-01-01T10:00",
        },
    )
    assert backwards.status == 400 and "end must be after" in await backwards.text()
    assert 'value="2099-01-02T10:00"' in await backwards.text()  # input kept
    ok = await admin.post(
        f"/admin/efforts/{cid}/edit",
        data={
            "_csrf": csrf,
            "title": "Renamed",
            "description": "new",
            "launch": "schedule",
            "start_at": "2099-01-02T10:00",
            "end_at": "2099-01-02T18:00",
            "next": "1",
        },
        allow_redirects=False,
    )
    assert ok.status == 302 and ok.headers["Location"].startswith(f"/admin/efforts/{cid}/list")
    effort = panel.store.campaign(cid)
    assert effort and effort["name"] == "Renamed" and effort["start_at"] and effort["end_at"]
    assert effort["end_at"] - effort["start_at"] == 8 * 3600 and effort["status"] == "draft"
    page = await _page(admin, f"/admin/efforts/{cid}/edit")
    assert 'value="2099-01-02T10:00"' in page
    # Activate now drops the start.
    await admin.post(f"/admin/efforts/{cid}/edit", data={"_csrf": csrf, "title": "Renamed", "launch": "now"})
    assert panel.store.campaign(cid)["start_at"] is None  # type: ignore[index]


async def test_activate_now_drops_a_stale_end_date(panel: PanelKit) -> None:
    """Issue 13: an end left from an earlier schedule stayed under "Activate now" (and, once past, refused it)."""
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    await admin.post(
        f"/admin/efforts/{cid}/edit",
        data={
            "_csrf": csrf,
            "title": "Now",
            "launch": "schedule",
            "start_at": "2099-01-02T10:00",
            "end_at": "2099-01-02T18:00",
        },
    )
    assert panel.store.campaign(cid)["end_at"]  # type: ignore[index]
    # The form still carries the old end (and a past one, and a malformed start): Activate now ignores them all.
    for end in ("2099-01-02T18:00", "2001-01-01T10:00"):
        resp = await admin.post(
            f"/admin/efforts/{cid}/edit",
            data={"_csrf": csrf, "title": "Now", "launch": "now", "start_at": "soon", "end_at": end},
            allow_redirects=False,
        )
        assert resp.status == 302, await resp.text()
        effort = panel.store.campaign(cid)
        assert effort and effort["start_at"] is None and effort["end_at"] is None
    page = await _page(admin, f"/admin/efforts/{cid}/edit")
    assert 'name="end_at" value=""' in page and "Activate now clears them" in page
    # A schedule still checks its end.
    past = await admin.post(
        f"/admin/efforts/{cid}/edit",
        data={
            "_csrf": csrf,
            "title": "Now",
            "launch": "schedule",
            "start_at": "2000-01-01T10:00",
            "end_at": "2001-01-01T10:00",
        },
    )
    assert past.status == 400 and "in the past" in await past.text()


async def test_caller_id_error_is_written_for_people() -> None:
    """Issue 13: the caller-ID error showed the phone library's own text ("(1) The string supplied ...")."""
    from store import efforts as ef

    for raw, why in (
        ("call me", "no number found in it"),
        ("12345", "check the area code"),
        ("+999 123", "no country has the code"),
        ("1" * 30, "too many digits"),
    ):
        errors: dict[str, str] = {}
        assert ef._e164_or_error(raw, "Caller ID", errors, "caller_id") == ""
        message = errors["caller_id"]
        assert why in message and f"“{raw[:40]}”" in message and "e.g. +1 202 555 0100" in message, message
        assert "(1)" not in message and "string supplied" not in message and "seem to be" not in message


# ---------------------------------------------------------------------------------------------- lists
async def test_bad_rows_are_reported_and_imported_only_on_explicit_confirm(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    page = await _page(admin, f"/admin/efforts/{cid}/list")
    assert 'id="csv-file"' in page and 'type="file"' in page and 'name="file"' in page and 'id="upload"' in page
    token, mapping_page = await _upload_token(admin, csrf, cid, BAD_CSV)
    assert ef.upload_path(panel.store, cid, token) is not None
    mapping = _selected_mapping(mapping_page)
    assert mapping == ["first_name", "last_name", "phone", "city", "extra"]
    assert 'id="import"' in mapping_page
    # The upload is checked at once under the guessed columns: the report shows, nothing is imported.
    assert 'id="row-errors"' in mapping_page and 'id="import-valid"' in mapping_page and "12345" in mapping_page
    assert panel.store.contacts(cid) == []
    resp = await _import(admin, csrf, cid, token, mapping)
    assert resp.status == 400
    report = await resp.text()
    assert 'id="row-errors"' in report and 'id="import-valid"' in report
    found = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", report)
    rows = {line: reason for line, _, reason in found}
    assert set(rows) == {"3", "4", "6", "7", "8"}
    # Each problem row names its person: admins look for people, not line numbers.
    assert {line: name for line, name, _ in found} == {
        "3": "Bob Smith",
        "4": "Ada Lovelace",
        "6": "",
        "7": "Cy Young",
        "8": "Di Prince",
    }
    assert "bad phone number" in rows["3"] and "duplicate" in rows["4"] and "line 2" in rows["4"]
    assert "missing name" in rows["6"] and "missing phone" in rows["7"] and "cells" in rows["8"]
    assert "Import 3 valid rows, skip 5" in report
    assert panel.store.contacts(cid) == []  # nothing half-imported
    # "Import N valid rows" with a stale count re-shows the report instead of importing.
    stale = await _import(admin, csrf, cid, token, mapping, skip_bad="1", expect_valid="99")
    assert stale.status == 400 and panel.store.contacts(cid) == []
    ok = await _import(admin, csrf, cid, token, mapping, skip_bad="1", expect_valid="3")
    assert ok.status == 302, await ok.text()
    contacts = panel.store.contacts(cid)
    assert [c["first_name"] for c in contacts] == ["Ada", "Ben", "Ed"]
    assert contacts[0]["phone"] == contacts[1]["phone"] == "+12025550101"
    assert json.loads(contacts[0]["extra"]) == {"notes": "likes cats"}
    assert ef.upload_path(panel.store, cid, token) is None  # the kept upload is gone
    # The same person again in a second file is a duplicate of the list already there.
    token2, page2 = await _upload_token(admin, csrf, cid, "first_name,last_name,phone\nAda,Lovelace,2025550101\n")
    again = await _import(admin, csrf, cid, token2, _selected_mapping(page2))
    assert again.status == 400 and "already in this effort" in await again.text()


async def test_list_step_previews_the_first_contacts_without_numbers(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    panel.store.add_contacts(
        cid,
        [
            {
                "first_name": f"Voter{i:02d}",
                "last_name": "Doe",
                "city": "Springfield",
                "phone": f"+1202555{1000 + i}",
                "extra": {"Ward": str(i)},
            }
            for i in range(12)
        ],
    )
    page = await _page(admin, f"/admin/efforts/{cid}/list")
    assert "Voter00 Doe" in page and "Voter09 Doe" in page and "Voter10" not in page  # the first ten, in order
    assert "Ward:</span> 9" in page and "First 10 shown." in page
    assert "+1202555" not in page and "2025551000" not in page  # names and places, never the numbers


async def test_clean_list_imports_at_once_with_extras_and_household_setting(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    token, page = await _upload_token(admin, csrf, cid, GOOD_CSV)
    mapping = _selected_mapping(page)
    assert mapping == ["first_name", "last_name", "phone", "city", "state", "zip", "extra", "phone2"]
    assert 'id="report-ok"' in page and 'id="row-errors"' not in page
    resp = await _import(admin, csrf, cid, token, mapping, household="once")
    assert resp.status == 302 and "msg=imported" in resp.headers["Location"]
    effort = panel.store.campaign(cid)
    assert effort and effort["household_once"] == 1
    contacts = panel.store.contacts(cid)
    assert len(contacts) == 3 and contacts[2]["phone"] == "+12025550102"
    assert json.loads(contacts[0]["extra"]) == {"phone2": "+12025550191", "Ward": "3"}
    assert contacts[0]["zip"] == "20001" and contacts[0]["state"] == "DC"
    page = await _page(admin, f"/admin/efforts/{cid}/list")
    assert "3 contacts" in page
    # The household setting can be changed on its own.
    await admin.post(f"/admin/efforts/{cid}/household", data={"_csrf": csrf, "household": "each"})
    assert panel.store.campaign(cid)["household_once"] == 0  # type: ignore[index]
    # Mapping problems: no phone column chosen.
    token, page = await _upload_token(admin, csrf, cid, GOOD_CSV)
    bad_map = ["first_name", "last_name", "ignore", "city", "state", "zip", "extra", "ignore"]
    resp = await _import(admin, csrf, cid, token, bad_map)
    assert resp.status == 400 and "phone number" in await resp.text()
    assert len(panel.store.contacts(cid)) == 3
    # Upload without a file.
    resp = await _upload(admin, csrf, cid, b"")
    assert resp.status == 400


def test_add_contacts_is_all_or_nothing(panel: PanelKit) -> None:
    cid = ef.create_effort(panel.store, "Atomic")["id"]
    report = check_list("first_name,phone\nA,2025550101\nB,2025550102\n", ["first_name", "phone"])
    assert report.valid == 2
    report.rows.append({"first_name": "Broken", "phone": None})  # violates NOT NULL on insert
    with pytest.raises(sqlite3.IntegrityError):
        ef.import_list(panel.store, cid, report)
    assert panel.store.contacts(cid) == []
    bad = check_list("first_name,phone\nA,2025550101\nB,nope\n", ["first_name", "phone"])
    with pytest.raises(StoreError):
        ef.import_list(panel.store, cid, bad)  # errors and no explicit skip: refused
    assert ef.import_list(panel.store, cid, bad, skip_bad=True) == 1


def test_fast_phone_path_matches_phonenumbers() -> None:
    from store.contacts import normalize_phone

    samples = [
        "(202) 555-0101",
        "202.555.0101",
        "+1 202 555 0101",
        "1-202-555-0101",
        "12345",
        "(000) 555-0101",
        "+44 20 7946 0958",
        "202-555-0101 x12",
        "555-0101",
        "+1 800 555 0199",
        "911",
        "2125551234",
    ]
    for s in samples:
        try:
            want: str | None = normalize_phone(s)
        except ValueError:
            want = None
        try:
            got: str | None = fast_phone(s)
        except ValueError:
            got = None
        assert got == want, s
    assert check_list("phone,first\n2025550101,A\n", ["phone", "first_name"]).rows[0]["phone"] == "+12025550101"


# ---------------------------------------------------------------------------------------------- script, survey
async def test_survey_editor_validates_and_keeps_input(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    base = {"_csrf": csrf, "script": "Hi {first_name}, this is Fair Votes.", "q_count": "0"}
    no_opts = await admin.post(
        f"/admin/efforts/{cid}/script",
        data={**base, "op": "add", "new_text": "Will you vote?", "new_kind": "choice", "new_options": ""},
    )
    assert no_opts.status == 400
    text = await no_opts.text()
    assert "at least two options" in text and "Will you vote?" in text and "Hi {first_name}" in text
    assert panel.store.campaign(cid)["survey"] == [] and panel.store.campaign(cid)["script"] == ""  # type: ignore[index]
    ok = await admin.post(
        f"/admin/efforts/{cid}/script",
        data={**base, "op": "add", "new_text": "Will you vote?", "new_kind": "choice", "new_options": "Yes\nNo\n"},
        allow_redirects=False,
    )
    assert ok.status == 302
    page = await _page(admin, f"/admin/efforts/{cid}/script")
    assert "{first_name}" in page and "{city}" in page
    one = [
        ("_csrf", csrf),
        ("script", base["script"]),
        ("q_count", "1"),
        ("q0_id", "q1"),
        ("q0_text", "Will you vote?"),
        ("q0_kind", "choice"),
        ("q0_options", "Yes\nNo"),
        ("q0_show_if", ""),
    ]
    # Branch on an answer q1 does not have: refused.
    bad = await admin.post(
        f"/admin/efforts/{cid}/script",
        data=[
            *one,
            ("op", "add"),
            ("new_text", "Which day?"),
            ("new_kind", "dropdown"),
            ("new_options", "Saturday\nSunday"),
            ("new_show_if", "q1::Maybe"),
        ],
    )
    assert bad.status == 400 and "not an answer" in await bad.text()
    good = await admin.post(
        f"/admin/efforts/{cid}/script",
        data=[
            *one,
            ("op", "add"),
            ("new_text", "Which day?"),
            ("new_kind", "dropdown"),
            ("new_options", "Saturday\nSunday"),
            ("new_show_if", "q1::Yes"),
        ],
        allow_redirects=False,
    )
    assert good.status == 302
    survey = panel.store.campaign(cid)["survey"]  # type: ignore[index]
    assert survey == [
        {"id": "q1", "text": "Will you vote?", "kind": "choice", "options": ["Yes", "No"], "show_if": None},
        {
            "id": "q2",
            "text": "Which day?",
            "kind": "dropdown",
            "options": ["Saturday", "Sunday"],
            "show_if": {"question": "q1", "answer": "Yes"},
        },
    ]
    assert json.loads(panel.store._one("SELECT survey FROM campaigns WHERE id = ?", (cid,))["survey"]) == survey
    two = [
        *one[:2],
        ("q_count", "2"),
        *one[3:],
        ("q1_id", "q2"),
        ("q1_text", "Which day?"),
        ("q1_kind", "dropdown"),
        ("q1_options", "Saturday\nSunday"),
        ("q1_show_if", "q1::Yes"),
    ]
    # Moving q2 above the question it depends on, or deleting q1, is refused; nothing changes.
    up = await admin.post(f"/admin/efforts/{cid}/script", data=[*two, ("op", "up-1")])
    assert up.status == 400 and "earlier question" in await up.text()
    delete = await admin.post(f"/admin/efforts/{cid}/script", data=[*two, ("op", "delete-0")])
    assert delete.status == 400 and "cannot be deleted" in await delete.text()
    assert panel.store.campaign(cid)["survey"] == survey  # type: ignore[index]
    # A free-text question, moved up, then q2 deleted: ids stay stable and are never reused.
    three = [
        *two[:2],
        ("q_count", "3"),
        *two[3:],
        ("q2_id", "q3"),
        ("q2_text", "Anything else?"),
        ("q2_kind", "text"),
        ("q2_options", ""),
        ("q2_show_if", ""),
    ]
    assert (
        await admin.post(f"/admin/efforts/{cid}/script", data=[*three, ("op", "up-2")], allow_redirects=False)
    ).status == 302
    assert [q["id"] for q in panel.store.campaign(cid)["survey"]] == ["q1", "q3", "q2"]  # type: ignore[index]
    saved = panel.store.campaign(cid)["survey"]  # type: ignore[index]
    form = [("_csrf", csrf), ("script", "x"), ("q_count", "3")]
    for i, q in enumerate(saved):
        form += [
            (f"q{i}_id", q["id"]),
            (f"q{i}_text", q["text"]),
            (f"q{i}_kind", q["kind"]),
            (f"q{i}_options", "\n".join(q["options"])),
            (f"q{i}_show_if", f"{q['show_if']['question']}::{q['show_if']['answer']}" if q["show_if"] else ""),
        ]
    assert (
        await admin.post(f"/admin/efforts/{cid}/script", data=[*form, ("op", "delete-2")], allow_redirects=False)
    ).status == 302
    assert [q["id"] for q in panel.store.campaign(cid)["survey"]] == ["q1", "q3"]  # type: ignore[index]
    assert ef.next_question_id(panel.store, cid, panel.store.campaign(cid)["survey"]) == "q4"  # type: ignore[index]


def test_check_survey_rules() -> None:
    q1 = {"id": "q1", "text": "A?", "kind": "dropdown", "options": ["Yes", "No"], "show_if": None}
    later = {"id": "q2", "text": "B?", "kind": "text", "options": [], "show_if": {"question": "q3", "answer": "Yes"}}
    q3 = {"id": "q3", "text": "C?", "kind": "choice", "options": ["Yes", "No"], "show_if": None}
    assert ef.check_survey([q1, q3]) == []
    assert any("earlier question" in p for p in ef.check_survey([q1, later, q3]))
    assert any("used twice" in p for p in ef.check_survey([q1, dict(q1)]))
    assert any("empty" in p for p in ef.check_survey([{**q1, "text": " "}]))
    assert any("choose" in p for p in ef.check_survey([{**q1, "kind": "slider"}]))


async def test_dispositions_add_rename_delete(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    url = f"/admin/efforts/{cid}/dispositions"
    resp = await admin.post(
        url, data={"_csrf": csrf, "op": "add", "label": "Call back later!", "kind": "no_contact"}, allow_redirects=False
    )
    assert resp.status == 302
    codes = {d["code"]: d for d in panel.store.disposition_codes(cid)}
    assert codes["call_back_later"]["kind"] == "no_contact" and codes["call_back_later"]["label"] == "Call back later!"
    dup = await admin.post(url, data={"_csrf": csrf, "op": "add", "label": "supporter", "kind": "contact"})
    assert dup.status == 400 and "already" in await dup.text()
    await admin.post(url, data={"_csrf": csrf, "op": "rename", "code": "supporter", "label": "Strong supporter"})
    assert {d["code"]: d["label"] for d in panel.store.disposition_codes(cid)}["supporter"] == "Strong supporter"
    await admin.post(url, data={"_csrf": csrf, "op": "delete", "code": "call_back_later"})
    assert "call_back_later" not in {d["code"] for d in panel.store.disposition_codes(cid)}
    for code in ("talked", "supporter", "undecided"):
        assert (
            await admin.post(url, data={"_csrf": csrf, "op": "delete", "code": code}, allow_redirects=False)
        ).status == 302
    last = await admin.post(url, data={"_csrf": csrf, "op": "delete", "code": "opposed"})
    assert last.status == 400 and "at least one" in await last.text()
    assert [d["code"] for d in panel.store.disposition_codes(cid) if d["kind"] == "contact"] == ["opposed"]


# ---------------------------------------------------------------------------------------------- settings
async def test_settings_validation_keeps_input_and_stores_nothing(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    before = panel.store.campaign(cid)
    bad = {
        **SETTINGS_OK,
        "_csrf": csrf,
        "caller_id": "12345",
        "calling_hours_start": "07:00",
        "ring_timeout_s": "10",
        "max_attempts": "zero",
        "callback_number": "not a number",
    }
    resp = await admin.post(f"/admin/efforts/{cid}/settings", data=bad)
    assert resp.status == 400
    page = await resp.text()
    assert 'id="err-caller_id"' in page and 'id="err-calling_hours_start"' in page
    assert 'id="err-ring_timeout_s"' in page and 'id="err-max_attempts"' in page
    assert "08:00" in page and 'value="07:00"' in page and 'value="12345"' in page and 'value="zero"' in page
    assert panel.store.campaign(cid) == before
    backwards = await admin.post(
        f"/admin/efforts/{cid}/settings",
        data={**SETTINGS_OK, "_csrf": csrf, "calling_hours_start": "18:00", "calling_hours_end": "10:00"},
    )
    assert backwards.status == 400 and "end after they start" in await backwards.text()
    late = await admin.post(
        f"/admin/efforts/{cid}/settings", data={**SETTINGS_OK, "_csrf": csrf, "calling_hours_end": "22:00"}
    )
    assert late.status == 400
    no_vm = await admin.post(
        f"/admin/efforts/{cid}/settings", data={**SETTINGS_OK, "_csrf": csrf, "machine_action": "voicemail"}
    )
    assert no_vm.status == 400 and "Upload the voicemail" in await no_vm.text()
    assert panel.store.campaign(cid) == before
    ok = await admin.post(
        f"/admin/efforts/{cid}/settings", data={**SETTINGS_OK, "_csrf": csrf, "next": "1"}, allow_redirects=False
    )
    assert ok.status == 302 and ok.headers["Location"].startswith(f"/admin/efforts/{cid}/review")
    c = panel.store.campaign(cid)
    assert c and c["dial_mode"] == "power" and c["dial_ratio"] == 1.5 and c["caller_id"] == "+12025550199"
    assert c["callback_number"] == "+12025550100" and c["household_once"] == 1 and c["max_attempts"] == 4
    assert (c["recycle_busy_s"], c["recycle_noanswer_s"], c["recycle_machine_s"]) == (900, 5400, 14400)
    assert (c["wrapup_limit_s"], c["ring_timeout_s"]) == (45, 20)
    assert (c["calling_hours_start"], c["calling_hours_end"]) == ("09:00", "20:30")
    page = await _page(admin, f"/admin/efforts/{cid}/settings")
    assert 'value="+12025550199"' in page and 'value="90"' in page
    personal = await admin.post(
        f"/admin/efforts/{cid}/settings",
        data={**SETTINGS_OK, "_csrf": csrf, "call_method": "personal"},
        allow_redirects=False,
    )
    assert personal.status == 302 and panel.store.campaign(cid)["dial_mode"] == "personal"  # type: ignore[index]


async def test_voicemail_wav_is_checked_converted_and_stored(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)

    def form(data: bytes) -> FormData:
        f = FormData()
        for k, v in {**SETTINGS_OK, "_csrf": csrf, "machine_action": "voicemail"}.items():
            f.add_field(k, v)
        f.add_field("voicemail_file", data, filename="message.wav", content_type="audio/wav")
        return f

    resp = await admin.post(f"/admin/efforts/{cid}/settings", data=form(b"RIFF....not really a wave file"))
    assert resp.status == 400 and "not a WAV" in await resp.text()
    assert panel.store.campaign(cid)["voicemail_media"] == ""  # type: ignore[index]
    resp = await admin.post(f"/admin/efforts/{cid}/settings", data=form(_wav()), allow_redirects=False)
    assert resp.status == 302, await resp.text()
    c = panel.store.campaign(cid)
    assert c and c["machine_action"] == "voicemail" and c["voicemail_media"]
    stored = ef.media_dir(panel.store) / (c["voicemail_media"].rsplit("/", 1)[-1] + ".wav")
    with wave.open(str(stored)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert abs(w.getnframes() - 4000) < 50
    audio = await admin.get(f"/admin/efforts/{cid}/voicemail.wav")
    assert audio.status == 200 and (await audio.read())[:4] == b"RIFF"


def test_python_wav_conversion_without_sox(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ef.shutil, "which", lambda name: None)
    dest = tmp_path / "out.wav"
    ef.convert_wav(_wav(rate=44100, channels=2, seconds=1.0), dest)
    with wave.open(str(dest)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert abs(w.getnframes() - 8000) <= 1


# ---------------------------------------------------------------------------------------------- lifecycle
async def test_finish_freezes_the_list_and_lifecycle(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    review = await _page(admin, f"/admin/efforts/{cid}/review")
    assert 'id="finish"' in review and "No contacts yet" in review and "No script" in review
    empty = await admin.post(f"/admin/efforts/{cid}/finish", data={"_csrf": csrf, "confirm": "1"})
    assert empty.status == 409 and panel.store.campaign(cid)["status"] == "draft"  # type: ignore[index]
    token, page = await _upload_token(admin, csrf, cid, GOOD_CSV)
    assert (await _import(admin, csrf, cid, token, _selected_mapping(page))).status == 302
    # Finish asks first: a required box the server checks too (no inline script under the strict CSP).
    review = await _page(admin, f"/admin/efforts/{cid}/review")
    assert re.search(r'<input type="checkbox" name="confirm" value="1" id="finish-confirm" required', review)
    unconfirmed = await admin.post(f"/admin/efforts/{cid}/finish", data={"_csrf": csrf})
    assert unconfirmed.status == 400 and 'id="finish-error"' in await unconfirmed.text()
    assert panel.store.campaign(cid)["status"] == "draft"  # type: ignore[index]
    fin = await admin.post(f"/admin/efforts/{cid}/finish", data={"_csrf": csrf, "confirm": "1"}, allow_redirects=False)
    assert fin.status == 302
    c = panel.store.campaign(cid)
    assert c and c["status"] == "active" and c["finished_at"]
    assert (await admin.post(f"/admin/efforts/{cid}/finish", data={"_csrf": csrf, "confirm": "1"})).status == 409
    # The list is frozen: uploads and imports are refused, and the page says so.
    refused = await _upload(admin, csrf, cid, GOOD_CSV)
    assert refused.status == 409 and "frozen" in await refused.text()
    assert (await _import(admin, csrf, cid, token, ["phone"])).status == 409
    assert (await admin.post(f"/admin/efforts/{cid}/list/clear", data={"_csrf": csrf})).status == 409
    assert len(panel.store.contacts(cid)) == 3
    page = await _page(admin, f"/admin/efforts/{cid}/list")
    assert "frozen" in page and 'id="csv-file"' not in page and 'id="pause"' in page
    # Script and settings stay editable.
    resp = await admin.post(
        f"/admin/efforts/{cid}/script",
        data={"_csrf": csrf, "script": "New words", "q_count": "0"},
        allow_redirects=False,
    )
    assert resp.status == 302 and panel.store.campaign(cid)["script"] == "New words"  # type: ignore[index]
    resp = await admin.post(
        f"/admin/efforts/{cid}/settings", data={**SETTINGS_OK, "_csrf": csrf}, allow_redirects=False
    )
    assert resp.status == 302
    # Pause, resume, close.
    assert (await admin.post(f"/admin/efforts/{cid}/resume", data={"_csrf": csrf})).status == 409
    for action, status in (("pause", "paused"), ("resume", "active"), ("pause", "paused"), ("close", "closed")):
        resp = await admin.post(f"/admin/efforts/{cid}/{action}", data={"_csrf": csrf}, allow_redirects=False)
        assert resp.status == 302, (action, await resp.text())
        assert panel.store.campaign(cid)["status"] == status  # type: ignore[index]
    assert (await admin.post(f"/admin/efforts/{cid}/resume", data={"_csrf": csrf})).status == 409
    assert "Closed" in await _page(admin, "/admin/efforts")


async def test_scheduled_effort_shows_as_scheduled(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    await admin.post(
        f"/admin/efforts/{cid}/edit",
        data={"_csrf": csrf, "title": "Later", "launch": "schedule", "start_at": "2099-03-01T09:00"},
    )
    panel.store.add_contacts(cid, [{"first_name": "A", "phone": "+12025550101"}])
    await admin.post(f"/admin/efforts/{cid}/finish", data={"_csrf": csrf, "confirm": "1"})
    c = panel.store.campaign(cid)
    assert c and c["status"] == "active" and ef.effort_status(c) == "scheduled"
    assert "Scheduled" in await _page(admin, "/admin/efforts")


# ---------------------------------------------------------------------------------------------- access
ADMIN_GETS = [
    "/admin/efforts/new",
    "/admin/efforts/{id}/edit",
    "/admin/efforts/{id}/list",
    "/admin/efforts/{id}/script",
    "/admin/efforts/{id}/settings",
    "/admin/efforts/{id}/review",
    "/admin/efforts/{id}/voicemail.wav",
    "/admin/users",
]
ADMIN_POSTS = [
    "/admin/efforts/new",
    "/admin/efforts/{id}/edit",
    "/admin/efforts/{id}/list/upload",
    "/admin/efforts/{id}/list/import",
    "/admin/efforts/{id}/list/clear",
    "/admin/efforts/{id}/household",
    "/admin/efforts/{id}/script",
    "/admin/efforts/{id}/dispositions",
    "/admin/efforts/{id}/settings",
    "/admin/efforts/{id}/finish",
    "/admin/efforts/{id}/pause",
    "/admin/efforts/{id}/resume",
    "/admin/efforts/{id}/close",
    "/admin/users",
]


async def test_callers_get_403_and_anonymous_are_sent_to_login(panel: PanelKit) -> None:
    cid = ef.create_effort(panel.store, "Guarded")["id"]
    caller, csrf = await panel.client("caller")
    anon = await panel.anonymous()
    pre = await panel.pre_csrf(anon)
    for url in ["/admin/efforts", *ADMIN_GETS]:
        url = url.format(id=cid)
        assert (await caller.get(url)).status == 403, url
        resp = await anon.get(url, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/login?next="), url
    for url in ADMIN_POSTS:
        url = url.format(id=cid)
        resp = await caller.post(
            url,
            data={
                "_csrf": csrf,
                "title": "hijack",
                "op": "create_user",
                "username": "evil",
                "password": "password123",
                "role": "admin",
            },
        )
        assert resp.status == 403, url
        # Anonymous form posts fail the pre-login CSRF check first; with a valid pre-login token they are
        # sent to log in. Either way nothing is written.
        resp = await anon.post(url, data={"title": "x"}, allow_redirects=False)
        assert resp.status == 403, url
        resp = await anon.post(url, data={"title": "x", "_csrf": pre}, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/login"), url
    assert len(panel.store.campaigns()) == 1 and panel.store.campaign(cid)["name"] == "Guarded"  # type: ignore[index]
    assert all(x["username"] != "evil" for x in panel.store._all("SELECT username FROM users"))


async def test_results_viewers_see_the_list_but_cannot_edit(panel: PanelKit) -> None:
    from store import users as u

    u.save_role(panel.store, "analyst", ["view_results"])
    analyst, _ = await panel.client("analyst")
    ef.create_effort(panel.store, "Visible")
    page = await _page(analyst, "/admin/efforts")
    assert "Visible" in page and 'id="new-effort"' not in page and "/results" in page
    assert (await analyst.get("/admin/efforts/new")).status == 403
    manager, _ = await panel.client("manager")
    assert (await manager.get("/admin/efforts/new")).status == 200
    assert (await manager.get("/admin/users")).status == 403


async def test_user_text_is_escaped(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf, "<script>alert('title')</script>")
    csv_text = (
        "first_name,last_name,phone,city,<i>col</i>\n"
        '<img src=x onerror=alert(1)>,"<b>bold</b>",2025550101,<svg onload=x>,<script>x</script>\n'
    )
    token, page = await _upload_token(admin, csrf, cid, csv_text)
    assert "<i>col</i>" not in page and "&lt;i&gt;col&lt;/i&gt;" in page
    assert (await _import(admin, csrf, cid, token, _selected_mapping(page))).status == 302
    await admin.post(
        f"/admin/efforts/{cid}/script", data={"_csrf": csrf, "script": "</textarea><b>x</b>", "q_count": "0"}
    )
    for url in (
        "/admin/efforts",
        f"/admin/efforts/{cid}/edit",
        f"/admin/efforts/{cid}/list",
        f"/admin/efforts/{cid}/script",
        f"/admin/efforts/{cid}/review",
    ):
        page = await _page(admin, url)
        for raw in ("<script>alert", "<img src=x", "<svg onload", "<b>bold", "</textarea><b>", "<script>x"):
            assert raw not in page, (url, raw)
    assert "&lt;script&gt;alert(" in await _page(admin, "/admin/efforts")
    assert "&lt;img src=x onerror=alert(1)&gt;" in await _page(admin, f"/admin/efforts/{cid}/list")


# ---------------------------------------------------------------------------------------------- users
async def test_users_and_roles(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin", username="boss")
    page = await _page(admin, "/admin/users")
    assert "boss" in page and "View profiles" in page
    short = await admin.post(
        "/admin/users",
        data={
            "_csrf": csrf,
            "op": "create_user",
            "username": "vol",
            "name": "Vee",
            "email": "v@example.org",
            "password": "short",
            "role": "caller",
        },
    )
    assert short.status == 400 and "at least 8" in await short.text() and 'value="Vee"' in await short.text()
    ok = await admin.post(
        "/admin/users",
        data={
            "_csrf": csrf,
            "op": "create_user",
            "username": "vol",
            "name": "Vee",
            "email": "v@example.org",
            "password": "long enough pw",
            "role": "caller",
        },
        allow_redirects=False,
    )
    assert ok.status == 302
    vol = panel.store._one("SELECT id, role FROM users WHERE username = 'vol'")
    assert vol and vol["role"] == "caller"
    bad_role = await admin.post(
        "/admin/users", data={"_csrf": csrf, "op": "save_role", "role_name": "bad name!", "perm": "make_calls"}
    )
    assert bad_role.status == 400
    resp = await admin.post(
        "/admin/users",
        data=[
            ("_csrf", csrf),
            ("op", "save_role"),
            ("role_name", "phoner"),
            ("perm", "make_calls"),
            ("perm", "view_script"),
        ],
        allow_redirects=False,
    )
    assert resp.status == 302
    from store import users as u

    assert u.role_permissions(panel.store, "phoner") == {"make_calls", "view_script"}
    resp = await admin.post(
        "/admin/users",
        data={"_csrf": csrf, "op": "set_role", "user_id": str(vol["id"]), "role": "phoner"},
        allow_redirects=False,
    )
    assert resp.status == 302 and u.user_by_id(panel.store, vol["id"])["role"] == "phoner"  # type: ignore[index]
    me = panel.store._one("SELECT id FROM users WHERE username = 'boss'")
    own = await admin.post(
        "/admin/users",
        data={
            "_csrf": csrf,
            "op": "set_role",
            "user_id": str(me["id"]),  # type: ignore[index]
            "role": "caller",
        },
    )
    assert own.status == 400 and u.user_by_id(panel.store, me["id"])["role"] == "admin"  # type: ignore[index]
    builtin = await admin.post(
        "/admin/users", data={"_csrf": csrf, "op": "save_role", "role_name": "admin", "perm": "make_calls"}
    )
    assert builtin.status == 400 and "built-in" in await builtin.text()


async def test_record_by_phone_gives_a_code_on_the_settings_page(panel: PanelKit) -> None:
    cid = ef.create_effort(panel.store, "Recorded by phone")["id"]
    admin, csrf = await panel.client("admin")
    page = await (await admin.get(f"/admin/efforts/{cid}/settings")).text()
    assert 'id="record-by-phone-button"' in page
    resp = await admin.post(f"/admin/efforts/{cid}/voicemail/record", data={"_csrf": csrf}, allow_redirects=False)
    assert resp.status == 302
    page = await (await admin.get(f"/admin/efforts/{cid}/settings")).text()
    code = re.search(r'id="recording-code" data-code="(\d{10})">\d{3}&nbsp;\d{3}&nbsp;\d{4}<', page)
    assert code and "+12025550100" in page  # the call-in number and the code to key
    req = recordings.pending(panel.store, code.group(1))
    assert req is not None and req["campaign_id"] == cid
    caller, caller_csrf = await panel.client("caller")
    denied = await caller.post(f"/admin/efforts/{cid}/voicemail/record", data={"_csrf": caller_csrf})
    assert denied.status == 403
