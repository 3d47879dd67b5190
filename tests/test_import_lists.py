"""Real-world-shaped contact lists through the one importer (store/contacts.py), by the CLI
(`phonebank contacts import`) and by the panel's List step: the same contacts, names intact, the same per-row
report. A VAN tab-delimited .txt export (Voter File VANID, Home Phone empty or "N/A", Cell Phone good), a
semicolon Windows-1252 file from European Excel with accented names, quoted line breaks and blank rows."""

from __future__ import annotations

import argparse
import html
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from phonebank.cli import cmd_contacts
from phonebank.settings import Settings
from store import efforts as ef
from store.contacts import EXTERNAL_ID, about_fields, check_list, csv_headers, guess_mapping, table_text
from store.db import Store
from tests.fakes import PanelKit
from tests.test_panel_admin import _import, _new_effort, _page, _selected_mapping, _upload

# VAN's "Export as tab-delimited text": UTF-8, CRLF, a quoted cell with a line break, a blank row.
VAN_TXT = (
    "Voter File VANID\tLastName\tFirstName\tAddress\tCity\tState\tZip5\tHome Phone\tCell Phone\tNotes\r\n"
    "1234567\tGarcía\tJosé\t12 Elm St\tSpringfield\tIL\t62701\t\t(202) 555-0101\t\r\n"
    '7654321\tNguyễn\tĐức\t3 Oak Ave\tSpringfield\tIL\t62702\tN/A\t202-555-0102\t"Prefers\r\nevenings"\r\n'
    "111222333\tO'Brien\tSiobhán\t\tSpringfield\tIL\t62703\t202 555 0103\t202 555 0199\t\r\n"
    "\t\t\t\t\t\t\t\t\t\r\n"
    "45678\tLee\tAnn\t\tSpringfield\tIL\t62704\tnone\t\t\r\n"
).encode()

# European Excel's "CSV (semicolon)": Windows-1252, CRLF, a quoted cell with a semicolon and one with a line break.
SEMICOLON_1252 = (
    "First Name;Last Name;Phone;Mobile;City;Comment\r\n"
    'José;Müller;(202) 555-0111;;Köln;"Straße; 2. OG"\r\n'
    "Zoë;Brontë;;202-555-0112;Düsseldorf;\r\n"
    'François;Côté;n/a;202 555 0113;Montréal;"Rückruf\r\nnach 18 Uhr"\r\n'
    ";;;;;\r\n"
    "Søren;Kierkegård;202-555-0114;;Århus;\r\n"
).encode("cp1252")

# UTF-8 with a BOM, commas, VAN ID, line breaks in quoted cells and blank rows between contacts.
QUOTED_BLANKS = (
    "\ufeffFirst Name,Last Name,Home Phone,Cell Phone,VAN ID,Notes\n"
    'Ada,Lovelace,202-555-0121,,100001,"Line one\nLine two, with a comma"\n'
    "\n"
    "Bob,Smith,12345,,100002,\n"
    ",,,,,\n"
    'Cleo,Jones,,,100003,"multi\nline\nnote"\n'
    "Dee,Okafor,,2025550124,100004,\n"
).encode("utf-8")

EXPECTED: dict[str, dict[str, Any]] = {
    "van_txt": {
        "people": {
            ("José", "García"): ("+12025550101", {"address": "12 Elm St", EXTERNAL_ID: "1234567"}),
            ("Đức", "Nguyễn"): (
                "+12025550102",
                {"address": "3 Oak Ave", EXTERNAL_ID: "7654321", "Notes": "Prefers\nevenings"},
            ),
            ("Siobhán", "O'Brien"): ("+12025550103", {"phone2": "+12025550199", EXTERNAL_ID: "111222333"}),
        },
        "notes": [
            (2, "José García", "called on Cell Phone (Home Phone is empty)"),
            (3, "Đức Nguyễn", "called on Cell Phone (Home Phone 'N/A' is not a phone number)"),
        ],
        "errors": [(7, "Ann Lee", "bad phone number 'none': not a phone number")],
    },
    "semicolon_1252": {
        "people": {
            ("José", "Müller"): ("+12025550111", {"Comment": "Straße; 2. OG"}),
            ("Zoë", "Brontë"): ("+12025550112", {}),
            ("François", "Côté"): ("+12025550113", {"Comment": "Rückruf\nnach 18 Uhr"}),
            ("Søren", "Kierkegård"): ("+12025550114", {}),
        },
        "notes": [
            (3, "Zoë Brontë", "called on Mobile (Phone is empty)"),
            (4, "François Côté", "called on Mobile (Phone 'n/a' is not a phone number)"),
        ],
        "errors": [],
    },
    "quoted_blanks": {
        "people": {
            ("Ada", "Lovelace"): ("+12025550121", {EXTERNAL_ID: "100001", "Notes": "Line one\nLine two, with a comma"}),
            ("Dee", "Okafor"): ("+12025550124", {EXTERNAL_ID: "100004"}),
        },
        "notes": [(10, "Dee Okafor", "called on Cell Phone (Home Phone is empty)")],
        "errors": [
            (
                5,
                "Bob Smith",
                "bad phone number '12345': not a valid phone number: check the area code and the number of digits",
            ),
            (7, "Cleo Jones", "missing phone number"),
        ],
    },
}
FILES = {"van_txt": VAN_TXT, "semicolon_1252": SEMICOLON_1252, "quoted_blanks": QUOTED_BLANKS}


def _people(store: Store, cid: int) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    return {(c["first_name"], c["last_name"]): (c["phone"], json.loads(c["extra"])) for c in store.contacts(cid)}


def _cli(data_dir: Path, data: bytes, skip: bool) -> tuple[int, Store, int]:
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir)
    store = Store(settings.db_path)
    cid = store.create_campaign("CLI")["id"]
    path = data_dir / "list.txt"
    path.write_bytes(data)
    rc = cmd_contacts(argparse.Namespace(campaign=cid, file=str(path), region="US", skip_bad_rows=skip), settings)
    return rc, store, cid


def _table(page: str, table: str) -> list[tuple[int, str, str]]:
    """(line, name, reason) rows of the report table ``table`` on a List page."""
    m = re.search(rf'id="{table}".*?</table>', page, re.S)
    if not m:
        return []
    return [
        (int(line), html.unescape(name), html.unescape(reason))
        for line, name, reason in re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td><td>(.*?)</td></tr>", m.group())
    ]


@pytest.mark.parametrize("kind", sorted(FILES))
async def test_real_world_lists_import_the_same_through_the_cli_and_the_panel(
    panel: PanelKit, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    data, want = FILES[kind], EXPECTED[kind]
    # The CLI: without --skip-bad-rows a bad row stops everything, with it the good rows go in.
    rc, cli_store, cli_cid = _cli(tmp_path / "cli", data, skip=False)
    out, err = capsys.readouterr()
    if want["errors"]:
        assert rc == 2 and "nothing imported" in err and cli_store.contacts(cli_cid) == []
        rc, cli_store, cli_cid = _cli(tmp_path / "cli-skip", data, skip=True)
        out, err = capsys.readouterr()
    assert rc == 0, err
    assert json.loads(out) == {"imported": len(want["people"]), "rejected": len(want["errors"])}
    assert _people(cli_store, cli_cid) == want["people"]
    for line, name, reason in want["notes"]:
        assert f"list.txt:{line}: note: {reason} ({name})" in err, err
    for line, name, reason in want["errors"]:
        assert f"list.txt:{line}: {reason} ({name})" in err, err
    assert "Voter File VANID = External ID" in err or kind != "van_txt"  # the CLI shows the columns it chose

    # The panel: upload, the guessed columns, the per-row report, import (skipping the bad rows).
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    resp = await _upload(admin, csrf, cid, data)
    assert resp.status == 302, await resp.text()
    token = resp.headers["Location"].split("upload=")[1]
    page = await _page(admin, resp.headers["Location"])
    mapping = _selected_mapping(page)
    assert mapping == guess_mapping(csv_headers(table_text(data)))  # the panel proposes what the CLI uses
    assert _table(page, "row-notes") == want["notes"]
    assert _table(page, "row-errors") == want["errors"]
    extra = {"skip_bad": "1", "expect_valid": str(len(want["people"]))} if want["errors"] else {}
    ok = await _import(admin, csrf, cid, token, mapping, **extra)
    assert ok.status == 302, await ok.text()
    assert _people(panel.store, cid) == want["people"] == _people(cli_store, cli_cid)


def test_van_headers_are_guessed() -> None:
    headers = ["Voter File VANID", "FirstName", "LastName", "Home Phone", "Cell Phone", "Landline", "Zip5", "Ward"]
    assert guess_mapping(headers) == [
        "external_id",
        "first_name",
        "last_name",
        "phone",
        "phone2",
        "phone2",
        "zip",
        "extra",
    ]
    for h in ("VANID", "VAN ID", "van_id", "Voter File VANID"):
        assert guess_mapping(["First", h, "Phone"]) == ["first_name", "external_id", "phone"], h
    assert guess_mapping(["Name", "Mobile"]) == ["first_name", "phone"]


def test_phone_fallback_order_and_other_numbers() -> None:
    text = (
        "first,Phone,Cell,Work Phone\n"
        "A,,N/A,202-555-0131\n"  # both earlier columns passed over: the third is called
        "B,202-555-0132,nope,202-555-0132\n"  # a bad number not called is dropped; the same number not kept twice
        "C,,,\n"
    )  # no number at all
    report = check_list(text, ["first_name", "phone", "phone2", "phone2"])
    assert [(r["first_name"], r["phone"], r["extra"]) for r in report.rows] == [
        ("A", "+12025550131", {}),
        ("B", "+12025550132", {}),
    ]
    assert [(n.line, n.reason) for n in report.notes] == [
        (2, "called on Work Phone (Phone is empty; Cell 'N/A' is not a phone number)")
    ]
    assert report.fallbacks == 1 and report.extensions == 0
    assert [(e.line, e.reason) for e in report.errors] == [(4, "missing phone number")]


async def test_the_external_id_reaches_callers_other_numbers_do_not(panel: PanelKit) -> None:
    # A 7-9 digit VAN ID looks like a phone number to the rule that hides numbers from callers' screens; the
    # column mapped as the external id is exempt, a column merely holding the same digits is not.
    assert about_fields({EXTERNAL_ID: "1234567", "Old VANID": "1234567", "Ward": "3"}) == {
        EXTERNAL_ID: "1234567",
        "Ward": "3",
    }
    cid = ef.create_effort(panel.store, "VAN")["id"]
    report = check_list(table_text(VAN_TXT), guess_mapping(csv_headers(table_text(VAN_TXT))))
    ef.import_list(panel.store, cid, report, skip_bad=True)
    offered, withheld = ef.list_fields(panel.store, cid)
    assert EXTERNAL_ID in offered and "phone2" in withheld and "phone2" not in offered
    assert ef.check_script("Hi {first_name}, your voter id is {external_id}.", offered, withheld) == []


def test_cli_keeps_its_exit_behaviour(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # No phone column it recognises: exit 2, with the header names it knows.
    rc, store, cid = _cli(tmp_path / "a", b"first_name,digits\nAda,2025550101\n", skip=True)
    err = capsys.readouterr().err
    assert rc == 2 and "Choose the column that holds the phone number" in err and "Home Phone" in err
    assert store.contacts(cid) == []
    # Importing the same file twice: the second time everyone is already in the campaign.
    rc, store, cid = _cli(tmp_path / "b", SEMICOLON_1252, skip=False)
    assert rc == 0
    capsys.readouterr()
    settings = Settings(data_dir=tmp_path / "b")
    args = argparse.Namespace(campaign=cid, file=str(tmp_path / "b" / "list.txt"), region="US", skip_bad_rows=False)
    assert cmd_contacts(args, settings) == 2
    err = capsys.readouterr().err
    assert (
        "list.txt:2: duplicate: same person and phone as a contact already in this effort's list (José Müller)" in err
    )
    assert len(store.contacts(cid)) == 4
    # A launched effort's list is frozen for the CLI too.
    store.update_campaign(cid, finished_at=1.0)
    args.skip_bad_rows = True
    assert cmd_contacts(args, settings) == 2
    assert "the list is frozen" in capsys.readouterr().err and len(store.contacts(cid)) == 4


def _many(n: int) -> str:
    return "first_name,last_name,phone\n" + "".join(f"P{i},L{i},202555{i:04d}\n" for i in range(n))


def test_a_big_list_goes_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A batch per transaction (so the controller's writes never wait behind one long transaction): every row
    # arrives, in file order.
    monkeypatch.setattr(ef, "IMPORT_BATCH", 7)
    store = Store(tmp_path / "pb.db")
    cid = ef.create_effort(store, "Big")["id"]
    text = _many(50)
    report = check_list(text, guess_mapping(csv_headers(text)))
    commits: list[int] = []
    real = Store.add_contacts

    def counted(self: Store, c: int, rows: list[dict[str, Any]]) -> int:
        commits.append(len(rows))
        return real(self, c, rows)

    monkeypatch.setattr(Store, "add_contacts", counted)
    assert ef.import_list(store, cid, report, household_once=True) == 50
    assert commits == [7] * 7 + [1]
    assert [r["first_name"] for r in store.contacts(cid)] == [f"P{i}" for i in range(50)]
    assert store.campaign(cid)["household_once"] == 1  # type: ignore[index]


def test_a_batch_failing_takes_the_whole_import_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # All or nothing, as one transaction was: the batches already in go out again; the list held before stays.
    monkeypatch.setattr(ef, "IMPORT_BATCH", 5)
    store = Store(tmp_path / "pb.db")
    cid = ef.create_effort(store, "Big")["id"]
    first = _many(3)
    ef.import_list(store, cid, check_list(first, guess_mapping(csv_headers(first))))
    text = "first_name,last_name,phone\n" + "".join(f"Q{i},M{i},303555{i:04d}\n" for i in range(23))
    report = check_list(text, guess_mapping(csv_headers(text)))
    real = Store.add_contacts
    calls = 0

    def fail_third(self: Store, c: int, rows: list[dict[str, Any]]) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, c, rows)

    monkeypatch.setattr(Store, "add_contacts", fail_third)
    with pytest.raises(sqlite3.OperationalError):
        ef.import_list(store, cid, report)
    assert [r["first_name"] for r in store.contacts(cid)] == ["P0", "P1", "P2"]
