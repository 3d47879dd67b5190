"""Contact list files as organisers really have them (issue 13): every bad file gets a clear message, never a
500; other encodings and delimiters import with names intact; header-only files, extensions, names in the
per-row report, kept uploads removed. The CLI importer reads files through the same helper."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import time
import zipfile
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from phonebank.cli import cmd_contacts
from phonebank.settings import Settings
from store import efforts as ef
from store.contacts import FileRefused, check_list, sniff_delimiter, table_text
from store.db import Store
from tests.fakes import PanelKit
from tests.test_panel_admin import _import, _new_effort, _page, _selected_mapping, _upload


def _xlsx() -> bytes:
    """The start of what Excel writes: a ZIP holding [Content_Types].xml and the xl/ folder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    return buf.getvalue()


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4
BAD_FILES = {
    # name: (bytes, words the message must hold)
    "png": (PNG, "not a CSV file: it is a PNG image"),
    "xlsx": (_xlsx(), "Excel workbook (.xlsx)"),
    "xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "Excel 97-2003 workbook (.xls)"),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF document"),
    "zip": (b"PK\x03\x04" + b"\x00" * 40 + b"list.csv", "ZIP archive"),
    "binary": (bytes(range(256)) * 20, "binary data"),
    "nul": (b"first_name,phone\nAda\x00\x00,2025550101\n", "NUL bytes on line 2"),
    "empty": (b"", "The file is empty"),
    "blank": (b"\n \r\n\t\n", "The file is empty"),
    "utf16_empty": ("\n".encode("utf-16"), "The file is empty"),
    "huge_cell": (b"first_name,phone\n" + b"x" * 300_000 + b",2025550101\n", "Line 2 of the file: a cell is far"),
    "huge_header": (b"y" * 100_000 + b"\n2025550101\n", "not a header row"),
    "many_columns": (",".join(f"c{i}" for i in range(2000)).encode() + b"\n1\n", "2,000 columns"),
    "header_only": (b"first_name,last_name,phone\n", "no contacts under it"),
    "header_only_blank_lines": (b"first_name,last_name,phone\r\n\r\n,,\r\n", "no contacts under it"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
async def test_bad_files_get_a_clear_message_never_a_500(panel: PanelKit, kind: str) -> None:
    data, words = BAD_FILES[kind]
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    resp = await _upload(admin, csrf, cid, data)
    page = await resp.text()
    assert resp.status == 400, (kind, resp.status, page[:300])
    assert words in page, (kind, page[:2000])
    assert 'id="csv-file"' in page  # the upload form is back, to try another file
    assert not list(ef.uploads_dir(panel.store).glob("*.csv"))  # nothing kept of a refused file
    assert panel.store.contacts(cid) == []
    # The same refusal from the shared helper (the CLI reads files through it too).
    with pytest.raises(FileRefused, match=words.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        table_text(data)


GOOD_FILES = {
    "utf16_tab": "First Name\tLast Name\tPhone\nJosé\tGarcía\t(202) 555-0101\nĐức\tNguyễn\t202-555-0102\n".encode(
        "utf-16"
    ),
    "utf16le_no_bom": "First Name\tLast Name\tPhone\nJosé\tGarcía\t(202) 555-0101\nDuc\tNguyen\t202-555-0102\n".encode(
        "utf-16-le"
    ),
    "cp1252_semicolon": (
        "First Name;Last Name;Phone;City\nJosé;García;(202) 555-0101;Köln\nZoë;Brontë;2025550102;\n"
    ).encode("cp1252"),
    "van_tab_txt": (
        'Voter File VANID\tFirst\tLast\tPhone\tNote\n101\tJosé\tGarcía\t202-555-0101\t"likes, commas"\n'
        "102\tAnn\tLee\t2025550102\t\n"
    ).encode(),
    "utf8_bom_crlf": "\ufefffirst_name,last_name,phone\r\nJosé,García,2025550101\r\nAnn,Lee,2025550102\r\n".encode(
        "utf-8"
    ),
}


@pytest.mark.parametrize("kind", sorted(GOOD_FILES))
async def test_other_encodings_and_delimiters_import_with_names_intact(panel: PanelKit, kind: str) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    resp = await _upload(admin, csrf, cid, GOOD_FILES[kind])
    assert resp.status == 302, (kind, await resp.text())
    page = await _page(admin, resp.headers["Location"])
    token = resp.headers["Location"].split("upload=")[1]
    mapping = _selected_mapping(page)
    assert len(mapping) >= 3 and "phone" in mapping, (kind, mapping)  # columns split, not one long header
    ok = await _import(admin, csrf, cid, token, mapping)
    assert ok.status == 302, (kind, await ok.text())
    names = {(c["first_name"], c["last_name"]) for c in panel.store.contacts(cid)}
    assert ("José", "García") in names, names
    assert {c["phone"] for c in panel.store.contacts(cid)} == {"+12025550101", "+12025550102"}
    if kind == "van_tab_txt":
        extra = json.loads(panel.store.contacts(cid)[0]["extra"])
        assert extra["Note"] == "likes, commas" and extra["external_id"] == "101"  # the VANID is the id


def test_sniff_delimiter() -> None:
    assert sniff_delimiter("a,b,c\n1,2,3\n") == ","
    assert sniff_delimiter("a;b;c\n1;2;3\n") == ";"
    assert sniff_delimiter("a\tb\tc\n1\t2\t3\n") == "\t"
    assert sniff_delimiter("phone\n2025550101\n") == ","
    assert sniff_delimiter('name,note\nA,"x;y;z;w"\nB,"p;q;r;s"\n') == ","  # semicolons inside quoted cells
    assert sniff_delimiter("name;city\nGarcía, José;Köln\n") == ";"  # commas inside unquoted cells


def _cli(tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, list[dict]]:
    settings = Settings(data_dir=tmp_path)
    store = Store(settings.db_path)
    cid = store.create_campaign("CLI")["id"]
    path = tmp_path / "list.txt"
    path.write_bytes(data)
    rc = cmd_contacts(argparse.Namespace(campaign=cid, file=str(path), region="US", skip_bad_rows=False), settings)
    out, err = capsys.readouterr()
    return rc, out, err, Store(settings.db_path).contacts(cid)


def test_cli_import_reads_files_like_the_panel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err, contacts = _cli(
        tmp_path, "first_name;last_name;phone\nJosé;García;2025550101\n".encode("cp1252"), capsys
    )
    assert rc == 0, err
    assert json.loads(out)["imported"] == 1 and contacts[0]["first_name"] == "José"
    rc, out, err, contacts = _cli(tmp_path / "png", PNG, capsys)
    assert rc == 2 and "PNG image" in err and contacts == []


def test_cli_import_keeps_extensions_and_names_problem_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err, contacts = _cli(
        tmp_path, b"first_name,last_name,phone\nAda,Lovelace,202-555-0101 ext 4\nBob,Smith,12345\n", capsys
    )
    assert rc == 2 and "list.txt:3: bad phone number '12345': not a valid phone number" in err
    assert "(Bob Smith)" in err
    rc, _, err, contacts = _cli(
        tmp_path / "ok", b"first_name,last_name,phone\nAda,Lovelace,202-555-0101 ext 4\n", capsys
    )
    assert rc == 0 and "list.txt:2: note: extension 4 kept (Ada Lovelace)" in err
    assert contacts[0]["phone"] == "+12025550101" and json.loads(contacts[0]["extra"]) == {"phone_ext": "4"}


def test_header_only_and_blank_lists_are_a_problem_not_all_0_rows_ready() -> None:
    for text in ("first_name,phone\n", "first_name,phone\n\n,\n"):
        report = check_list(text, ["first_name", "phone"])
        assert report.valid == 0 and report.problems == [
            "The file has a header row but no contacts under it: nothing to import."
        ]


async def test_header_only_upload_says_so(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    resp = await _upload(admin, csrf, cid, "First Name,Last Name,Phone\r\n")
    page = await resp.text()
    assert resp.status == 400 and "no contacts under it" in page
    assert "rows are ready to import" not in page and 'id="report-ok"' not in page


EXT_CSV = (
    "first_name,last_name,phone\n"
    "Ada,Lovelace,202-555-0101 ext 4\n"
    "Ben,Okafor,(202) 555-0102 x12\n"
    "Cleo,Jones,2025550103\n"
    "Di,Prince,nope\n"
)


async def test_extensions_are_kept_reported_and_shown_to_callers(panel: PanelKit) -> None:
    from bridge import dialer as d
    from panel.views import session_view

    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    resp = await _upload(admin, csrf, cid, EXT_CSV)
    token = resp.headers["Location"].split("upload=")[1]
    page = await _page(admin, resp.headers["Location"])
    # The per-row report says which rows have an extension, by line and name, and that it is kept.
    assert 'id="row-notes"' in page and "2 phone numbers have an extension" in page
    assert "<tr><td>2</td><td>Ada Lovelace</td><td>extension 4 kept</td></tr>" in page
    assert "<tr><td>3</td><td>Ben Okafor</td><td>extension 12 kept</td></tr>" in page
    assert "<tr><td>5</td><td>Di Prince</td><td>bad phone number" in page  # problem rows name the person too
    ok = await _import(admin, csrf, cid, token, _selected_mapping(page), skip_bad="1", expect_valid="3")
    assert ok.status == 302, await ok.text()
    by_name = {c["first_name"]: c for c in panel.store.contacts(cid)}
    assert by_name["Ada"]["phone"] == "+12025550101" and json.loads(by_name["Ada"]["extra"]) == {"phone_ext": "4"}
    assert json.loads(by_name["Cleo"]["extra"]) == {}
    # Callers see it: with the number (personal phone), or as "ask for extension" (computer dial, no number).
    for mode in ("personal", "power"):
        panel.store.update_campaign(cid, dial_mode=mode, status="active")
        sid = panel.store.create_session(cid, "Vol")["id"]
        call_id = f"pb-ext-{mode}"
        panel.store.insert_call(call_id, cid, by_name["Ada"]["id"], 1, call_id, time.time())
        panel.ctl.dialer.volunteers[sid] = d.vol.Volunteer(sid, cid, state=d.vol.VState.TALKING, call_id=call_id)
        view = session_view(panel.ctl, sid, "+12025550100")
        assert view is not None and view["contact"]["phone_ext"] == "4"
        assert ("2025550101" in repr(view)) is (mode == "personal")
        assert "phone_ext" not in view["contact"]["extra"]  # not twice, not as an About line


# ---------------------------------------------------------------------------------------------- merge fields
MERGE_CSV = (
    "First Name,Last Name,Phone,City,Ward,Cell,Contact,Zip4\n"
    "Ada,Lovelace,2025550101,Washington,3,202-555-0191,(202) 555-0192,20001-1234\n"
    "Ben,Okafor,2025550102,Washington,5,,call 202 555 0193 evenings,20002-0001\n"
)


async def _effort_with_list(panel: PanelKit) -> tuple[TestClient, str, int]:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    resp = await _upload(admin, csrf, cid, MERGE_CSV)
    token = resp.headers["Location"].split("upload=")[1]
    page = await _page(admin, resp.headers["Location"])
    assert (await _import(admin, csrf, cid, token, _selected_mapping(page))).status == 302
    return admin, csrf, cid


async def test_script_refuses_unknown_and_phone_fields_and_offers_only_safe_ones(panel: PanelKit) -> None:
    admin, csrf, cid = await _effort_with_list(panel)
    page = await _page(admin, f"/admin/efforts/{cid}/script")
    offered = re.findall(r"<li><code>\{([^}]*)\}</code></li>", page)
    assert offered == ["first_name", "last_name", "city", "state", "zip", "Ward", "Zip4"]  # no phone-number column
    for script, words in (
        (
            "Hi {frist_name}, this is Fair Votes.",
            ["{frist_name} is not a field of this list", "Did you mean {first_name}?"],
        ),
        ("We also have you at {phone2}.", ["{phone2} holds a phone number"]),
        (
            "Or {Cell}, or {Contact}, or {phone}?",
            ["{Cell} holds a phone number", "{Contact} holds a phone", "{phone} holds a phone number"],
        ),
    ):
        resp = await admin.post(f"/admin/efforts/{cid}/script", data={"_csrf": csrf, "script": script, "q_count": "0"})
        text = await resp.text()
        assert resp.status == 400, script
        assert 'id="script-errors"' in text and all(w in text for w in words), (script, text[:3000])
        assert "Fields you can use: {first_name}, {last_name}, {city}, {state}, {zip}, {Ward}, {Zip4}." in text
        assert script.replace("{", "") in text.replace("{", "")  # the input is kept
        assert panel.store.campaign(cid)["script"] == ""  # type: ignore[index]
    ok = await admin.post(
        f"/admin/efforts/{cid}/script",
        data={"_csrf": csrf, "script": "Hi { first_name }, in ward {Ward} of {city}.", "q_count": "0"},
        allow_redirects=False,
    )
    assert ok.status == 302
    review = await _page(admin, f"/admin/efforts/{cid}/review")
    assert "The script has a problem" not in review


async def test_review_flags_a_script_the_list_no_longer_fills(panel: PanelKit) -> None:
    admin, _csrf, cid = await _effort_with_list(panel)
    # Saved before (or around) the check, or left behind when the list changed: Review must not say all is well.
    panel.store.update_campaign(cid, script="Hi {frist_name}, we also have you at {phone2}.")
    review = await _page(admin, f"/admin/efforts/{cid}/review")
    assert "Everything is in place" not in review
    assert "The script has a problem" in review and "{frist_name} is not a field" in review
    assert "{phone2} holds a phone number" in review


def test_check_script_without_a_list() -> None:
    problems = ef.check_script("Hi {first_name} from {Ward}", list(ef.STANDARD_FIELDS), ["phone"], has_list=False)
    assert problems[0] == "{Ward} is not a field of the standard fields (import the list first to use its columns)."
    assert ef.check_script("Hi {first_name}, no braces here: }{ {}", list(ef.STANDARD_FIELDS), []) == []


# ---------------------------------------------------------------------------------------------- kept uploads
async def test_upload_is_deleted_after_import(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    resp = await _upload(admin, csrf, cid, "first_name,phone\nAda,2025550101\n")
    token = resp.headers["Location"].split("upload=")[1]
    assert [p.name for p in ef.uploads_dir(panel.store).glob("*.csv")] == [f"{token}.csv"]
    page = await _page(admin, resp.headers["Location"])
    assert (await _import(admin, csrf, cid, token, _selected_mapping(page))).status == 302
    assert list(ef.uploads_dir(panel.store).glob("*.csv")) == []


async def test_uploads_older_than_a_day_are_swept_even_without_new_uploads(tmp_path: Path) -> None:
    from tests.fakes import start_panel

    folder = tmp_path / "uploads"
    folder.mkdir()
    stale, fresh = folder / "1-stalestalestalestale.csv", folder / "1-freshfreshfreshfresh.csv"
    for f in (stale, fresh):
        f.write_text("first_name,phone\nAda,2025550101\n")
    day_ago = time.time() - ef.UPLOAD_TTL_S - 60
    os.utime(stale, (day_ago, day_ago))
    kit = await start_panel(tmp_path)  # the panel sweeps at start (and every hour)
    try:
        assert ef.uploads_dir(kit.store) == folder
        assert not stale.exists() and fresh.exists()
        assert ef.sweep_uploads(kit.store, now=time.time() + ef.UPLOAD_TTL_S + 60) == 1
        assert not fresh.exists()
    finally:
        await kit.close()
