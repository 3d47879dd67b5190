"""Results: the live dashboard's numbers, its WebSocket, a contact's history, the CSV exports and their safety."""

from __future__ import annotations

import codecs
import csv
import html as html_lib
import io
import re
import time
from typing import Any

from bridge.ari_app import Leg
from bridge.dialer import Call, CState
from bridge.volunteer import Volunteer, VState
from panel.results import dashboard_data
from store import callin_guard
from store import results as r
from tests.fakes import PanelKit

SURVEY = [
    {"id": "q1", "text": "Will you vote for Measure A?", "kind": "choice", "options": ["Yes", "No"], "show_if": None},
    {"id": "q2", "text": "Anything else?", "kind": "text", "options": [], "show_if": None},
]


def seed(panel: PanelKit) -> dict[str, Any]:
    """An effort mid-shift: 6 contacts, 2 callers, 7 attempts (one still ringing), 3 dispositions.

    Expected: 5 answered, 1 machine (20%), 4 live answers of which 1 abandoned (25%), 2 contacts made
    (supporter + talked), Alice 1 call / 1 contact / 120 s talk, Bob 2 calls / 1 contact / 90 s talk."""
    store = panel.store
    cid = store.create_campaign("Measure A <b>push</b>", survey=SURVEY)["id"]
    store.add_contacts(
        cid,
        [
            {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "phone": "+12025550101",
                "city": "Springfield",
                "state": "IL",
                "zip": "62701",
                "extra": {"precinct": "-5", "source": '=HYPERLINK("http://x")', "status": "VIP"},
            },
            {
                "first_name": "<script>alert(1)</script>",
                "last_name": "Smith",
                "phone": "+12025550102",
                "extra": {"precinct": "7"},
            },
            {"first_name": "Bob", "last_name": "Jones", "phone": "+12025550103"},
            {"first_name": "Carol", "last_name": "King", "phone": "+12025550104"},
            {"first_name": "Dan", "last_name": "Brown", "phone": "+12025550105"},
            {"first_name": "Eve", "last_name": "Adams", "phone": "+12025550106"},
        ],
    )
    ids = [c["id"] for c in store.contacts(cid)]
    alice = store.create_session(cid, "Alice")
    bob = store.create_session(cid, "Bob <i>the builder</i>")
    t0 = time.time() - 1800
    store.update_session(alice["id"], created_at=t0 - 1800)  # on for an hour: 1 contact an hour
    store.update_session(bob["id"], created_at=t0)  # on for half an hour: 2 contacts an hour

    def call(call_id: str, contact: int, attempt: int, at: float, **values: Any) -> None:
        store.insert_call(call_id, cid, ids[contact], attempt, f"chan-{call_id}", t0 + at)
        if values:
            store.update_call(call_id, **values)

    call(
        "c1",
        0,
        1,
        0,
        answered_at=t0 + 10,
        amd_status="HUMAN",
        bridged_at=t0 + 12,
        ended_at=t0 + 132,
        outcome="connected",
        session_id=alice["id"],
    )
    call("c2", 1, 1, 30, answered_at=t0 + 40, amd_status="MACHINE", ended_at=t0 + 45, outcome="machine")
    call("c3", 2, 1, 60, ended_at=t0 + 85, outcome="no_answer")
    call(
        "c4",
        2,
        2,
        1000,
        answered_at=t0 + 1010,
        amd_status="HUMAN",
        ended_at=t0 + 1015,
        outcome="abandoned",
        abandoned=1,
    )
    call(
        "c5",
        3,
        1,
        1100,
        answered_at=t0 + 1110,
        amd_status="HUMAN",
        bridged_at=t0 + 1111,
        ended_at=t0 + 1171,
        outcome="connected",
        session_id=bob["id"],
    )
    call(
        "c6",
        4,
        1,
        1200,
        answered_at=t0 + 1205,
        amd_status="NOTSURE",
        bridged_at=t0 + 1206,
        ended_at=t0 + 1236,
        outcome="connected",
        session_id=bob["id"],
        voicemail_left=0,
    )
    call("c7", 1, 2, 1700)  # still ringing
    store.add_disposition(alice["id"], "c1", ids[0], "supporter", "=cmd|' /C calc'!A0", {"q1": "Yes", "q2": "-2+3"})
    store.add_disposition(bob["id"], "c5", ids[3], "refused", "<b>rude</b> hung up", {})
    store.add_disposition(bob["id"], "c6", ids[4], "talked", "nice chat", {"q1": "No", "q2": "@SUM(A1)"})
    return {"cid": cid, "ids": ids, "alice": alice["id"], "bob": bob["id"]}


def go_live(panel: PanelKit, s: dict[str, Any]) -> None:
    """What the controller would hold: Alice on the phone talking, Bob paused, the ringing call."""
    now = time.time()
    ctl = panel.ctl
    ctl.dialer.volunteers[s["alice"]] = Volunteer(
        s["alice"], s["cid"], state=VState.TALKING, since=now - 30, call_id="c7"
    )
    ctl.dialer.volunteers[s["bob"]] = Volunteer(s["bob"], s["cid"], state=VState.PAUSED, since=now - 5)
    ctl.legs[s["alice"]] = Leg(s["alice"], s["cid"], "vol-a", "br-a")
    ctl.legs[s["bob"]] = Leg(s["bob"], s["cid"], "vol-b", "br-b")
    ctl.dialer.calls["c7"] = Call("c7", s["cid"], s["ids"][1], state=CState.RINGING, placed_at=now - 3)


def tile(html: str, tile_id: str) -> tuple[str, str, bool]:
    m = re.search(
        rf'<div class="tile( alert)?" id="tile-{tile_id}">\s*<div class="n" data-field="value">(.*?)</div>'
        rf'.*?<div class="sub" data-field="sub">(.*?)</div>',
        html,
        re.S,
    )
    assert m, f"no tile {tile_id}"
    return m.group(2), m.group(3), bool(m.group(1))


def callers_rows(html: str) -> list[list[str]]:
    body = re.search(r'<table id="callers">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows]


async def test_dashboard_numbers(panel: PanelKit) -> None:
    s = seed(panel)
    go_live(panel, s)
    admin, _ = await panel.client("admin")
    resp = await admin.get(f"/admin/efforts/{s['cid']}/results")
    assert resp.status == 200
    html = await resp.text()
    assert tile(html, "attempts")[0] == "7"
    assert tile(html, "attempts")[1] == "5 answered"
    assert tile(html, "machine-rate")[0] == "20.0%"
    value, sub, alert = tile(html, "abandon-rate")
    assert value == "25.0%" and alert and "1 of 4 live answers" in sub and "3.0%" in sub
    assert tile(html, "contacts")[0] == "2"
    assert tile(html, "completed")[0] == "2" and "of 6 contacts" in tile(html, "completed")[1]
    assert tile(html, "in-flight") == ("1", "1 ringing", False)
    value, sub, _ = tile(html, "volunteers")
    assert value == "2" and "1 talking" in sub and "1 paused" in sub
    rows = {row[0]: row for row in callers_rows(html)}
    assert rows["Alice"][1].startswith("Talking") and rows["Alice"][2:4] == ["1", "1"]
    assert rows["Alice"][4] == "1.0" and rows["Alice"][5] == "2m 00s"
    bob = rows["Bob &lt;i&gt;the builder&lt;/i&gt;"]
    assert bob[1].startswith("Paused") and bob[2:4] == ["2", "1"] and bob[4] == "2.0" and bob[5] == "1m 30s"
    assert bob[6] and bob[7].startswith("30m")  # wrap time, time on line
    # Charts are in the first paint (inline SVG), links to the exports are there.
    assert 'data-chart="attempts"' in html and "<rect" in html and 'data-chart="volunteers"' in html
    assert "Will you vote for Measure A?" in html and "Supporter" in html
    assert 'id="export-contacts"' in html and 'id="export-attempts"' in html
    assert 'id="callers"' in html and 'id="contacts"' in html
    assert "<b>push</b>" not in html and "&lt;b&gt;push&lt;/b&gt;" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "+12025550101" not in html  # masked in the list
    assert "style=" not in html and "<script>" not in html.replace('<script src="/static/results.js" defer>', "")

    for asset in ("/static/results.js", "/static/results.css"):
        assert (await admin.get(asset)).status == 200 and asset in html

    # An effort under its target is not red.
    quiet = panel.store.create_campaign("Quiet")["id"]
    html = await (await admin.get(f"/admin/efforts/{quiet}/results")).text()
    assert tile(html, "abandon-rate") == ("0.0%", "0 of 0 live answers · limit 3.0%", False)
    assert "No calls yet" in html


def test_dashboard_data_is_json_and_consistent(panel: PanelKit) -> None:
    import json

    s = seed(panel)
    d = dashboard_data(panel.server.app, s["cid"])
    json.dumps(d)
    st = d["stats"]
    assert (st["attempts"], st["answered"], st["machines"], st["abandoned"], st["live_answers"]) == (7, 5, 1, 1, 4)
    assert st["machine_rate"] == 0.2 and st["abandon_rate"] == 0.25 and st["abandon_over"]
    assert st["contacts_made"] == 2 and st["completed"] == 2
    buckets = [it for it in d["charts"]["attempts"]["items"] if it["t"] == "rect"]
    assert len(buckets) >= 4  # several 15-minute buckets, stacked outcomes
    labels = {leg["label"] for leg in d["charts"]["attempts"]["legend"]}
    assert {"Talked", "Machine", "No answer", "Abandoned", "In progress"} <= labels
    # Cached disposition figures refresh as soon as a disposition is saved.
    panel.store.add_disposition(s["alice"], "c2", s["ids"][1], "opposed", "", {"q1": "No"})
    assert dashboard_data(panel.server.app, s["cid"])["stats"]["contacts_made"] == 3
    assert dashboard_data(panel.server.app, 999) == {}
    # A caller who has only just started has no hourly rate yet.
    carl = panel.store.create_session(s["cid"], "Carl")
    rows = {c["name"]: c for c in dashboard_data(panel.server.app, s["cid"])["callers"]}
    assert rows["Carl"]["contacts_per_hour"] is None and rows["Carl"]["state"] == "waiting_for_phone"
    assert carl["id"] and rows["Alice"]["contacts_per_hour"] == 2.0  # 2 contacts (with the one just saved) in 1 h


def test_contacts_per_hour_from_the_real_time_on_line(panel: PanelKit) -> None:
    """Two contacts in four minutes read 30 an hour (not "—"); under two minutes on line there is no figure."""
    cid = panel.store.create_campaign("Quick")["id"]
    panel.store.add_contacts(cid, [{"first_name": f"V{i}", "phone": f"+1202555{3000 + i}"} for i in range(3)])
    ids = [c["id"] for c in panel.store.contacts(cid)]
    fast = panel.store.create_session(cid, "Fast")
    fresh = panel.store.create_session(cid, "Fresh")
    panel.store.update_session(fast["id"], created_at=time.time() - 240)
    panel.store.update_session(fresh["id"], created_at=time.time() - 60)
    panel.store.add_disposition(fast["id"], None, ids[0], "talked", "", {})
    panel.store.add_disposition(fast["id"], None, ids[1], "supporter", "", {})
    panel.store.add_disposition(fresh["id"], None, ids[2], "talked", "", {})
    rows = {c["name"]: c for c in dashboard_data(panel.server.app, cid)["callers"]}
    assert 29.5 <= rows["Fast"]["contacts_per_hour"] <= 30.0
    assert rows["Fresh"]["contacts_per_hour"] is None and rows["Fresh"]["contacts"] == 1


async def test_websocket_pushes_dashboard(panel: PanelKit) -> None:
    s = seed(panel)
    admin, _ = await panel.client("manager")
    ws = await admin.ws_connect(f"/ws/campaign/{s['cid']}")
    try:
        msg = await ws.receive_json(timeout=5)
        assert msg["type"] == "dashboard"
        d = msg["dashboard"]
        assert d["stats"]["attempts"] == 7 and d["stats"]["abandon_rate"] == 0.25
        assert {t["id"] for t in d["tiles"]} == {
            "volunteers",
            "dialing",
            "in-flight",
            "attempts",
            "completed",
            "contacts",
            "machine-rate",
            "abandon-rate",
        }
        assert [c["name"] for c in d["callers"]]
        # A change the controller announces reaches the open dashboard without a reload.
        panel.store.insert_call("c8", s["cid"], s["ids"][5], 1, "chan-c8", time.time())
        panel.ctl._notify(None, s["cid"])
        msg = await ws.receive_json(timeout=5)
        assert msg["dashboard"]["stats"]["attempts"] == 8
    finally:
        await ws.close()


async def test_access_control(panel: PanelKit) -> None:
    s = seed(panel)
    cid = s["cid"]
    paths = [
        f"/admin/efforts/{cid}/results",
        f"/admin/efforts/{cid}/contacts/{s['ids'][0]}",
        f"/admin/efforts/{cid}/export/contacts.csv",
        f"/admin/efforts/{cid}/export/attempts.csv",
    ]
    anon = await panel.anonymous()
    for path in paths:
        resp = await anon.get(path, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/login"), path
    caller, _ = await panel.client("caller")
    for path in paths:
        resp = await caller.get(path, allow_redirects=False)
        assert resp.status == 403, path
        assert "Ada" not in await resp.text()
    assert (await caller.get(f"/ws/campaign/{cid}")).status == 403
    manager, _ = await panel.client("manager")
    assert (await manager.get(paths[0])).status == 200
    assert (await manager.get(f"/admin/efforts/{cid + 100}/results")).status == 404
    # A contact of another effort is not reachable through this one.
    other = panel.store.create_campaign("Other")["id"]
    assert (await manager.get(f"/admin/efforts/{other}/contacts/{s['ids'][0]}")).status == 404


async def test_contact_history(panel: PanelKit) -> None:
    s = seed(panel)
    admin, _ = await panel.client("admin")
    resp = await admin.get(f"/admin/efforts/{s['cid']}/contacts/{s['ids'][0]}")
    assert resp.status == 200
    html = await resp.text()
    assert "+12025550101" in html  # full number on the contact page
    attempts = re.search(r'<table id="attempts">.*?</table>', html, re.S)
    assert attempts and "Put through to a caller" in attempts.group(0) and "HUMAN" in attempts.group(0)
    assert "Alice" in attempts.group(0) and "2m 00s" in attempts.group(0)
    history = re.search(r'<ol id="dispositions".*?</ol>', html, re.S)
    assert history and "Supporter" in history.group(0)
    assert "Will you vote for Measure A?" in history.group(0) and "Yes" in history.group(0)
    assert "precinct" in html and "-5" in html

    # Two attempts, one abandoned; HTML in names and notes is escaped.
    html = await (await admin.get(f"/admin/efforts/{s['cid']}/contacts/{s['ids'][2]}")).text()
    rows = re.findall(r"<tr>\s*<td>(\d)</td>", html)
    assert rows == ["1", "2"] and "abandoned" in html
    html = await (await admin.get(f"/admin/efforts/{s['cid']}/contacts/{s['ids'][1]}")).text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "MACHINE" in html and "in progress" in html
    html = await (await admin.get(f"/admin/efforts/{s['cid']}/contacts/{s['ids'][3]}")).text()
    assert "<b>rude</b>" not in html and "&lt;b&gt;rude&lt;/b&gt; hung up" in html
    assert "Bob &lt;i&gt;the builder&lt;/i&gt;" in html


async def test_contact_search_and_pages(panel: PanelKit) -> None:
    s = seed(panel)
    panel.store.add_contacts(s["cid"], [{"first_name": f"Extra{i}", "phone": f"+1202555{2000 + i}"} for i in range(60)])
    admin, _ = await panel.client("admin")
    base = f"/admin/efforts/{s['cid']}/results"
    html = await (await admin.get(base)).text()
    assert "66 contacts" in html and "page 1 of 2" in html and 'rel="next"' in html
    html = await (await admin.get(base, params={"page": "2"})).text()
    assert "Extra59" in html and 'rel="prev"' in html
    html = await (await admin.get(base, params={"q": "lovelace"})).text()
    table = re.search(r'<table id="contacts">.*?</table>', html, re.S).group(0)
    assert "Ada" in table and "Carol" not in table
    assert f'href="/admin/efforts/{s["cid"]}/contacts/{s["ids"][0]}"' in table
    html = await (await admin.get(base, params={"status": "done"})).text()
    table = re.search(r'<table id="contacts">.*?</table>', html, re.S).group(0)
    assert "Ada" in table and "Dan" in table and "Carol" not in table
    html = await (await admin.get(base, params={"q": "5550103"})).text()
    table = re.search(r'<table id="contacts">.*?</table>', html, re.S).group(0)
    assert "Bob" in table and "Ada" not in table
    assert (await admin.get(base, params={"q": "%", "status": "bogus", "page": "x"})).status == 200


async def test_contact_search_ignores_case_and_accents(panel: PanelKit) -> None:
    """What people type: "Garcia", "nguyen", "JOSÉ", "sao paulo" find García, Nguyễn, José, São Paulo."""
    cid = panel.store.create_campaign("Accents")["id"]
    panel.store.add_contacts(
        cid,
        [
            {"first_name": "José", "last_name": "García", "phone": "+12025550121", "city": "São Paulo"},
            {"first_name": "Thi", "last_name": "Nguyễn", "phone": "+12025550122", "city": "Houston"},
            {"first_name": "Łukasz", "last_name": "STRAßE", "phone": "+12025550123", "city": "Chicago"},
            {"first_name": "Jose_", "last_name": "100%", "phone": "+12025550124", "city": "Austin"},
        ],
    )
    admin, _ = await panel.client("admin")
    base = f"/admin/efforts/{cid}/results"

    async def names(q: str) -> set[str]:
        html = await (await admin.get(base, params={"q": q})).text()
        table = re.search(r'<table id="contacts">.*?</table>', html, re.S).group(0)
        return {n for n in ("García", "Nguyễn", "STRAßE", "100%") if n in table}

    assert await names("Garcia") == {"García"}
    assert await names("garcía") == {"García"}
    assert await names("nguyen") == {"Nguyễn"}
    assert await names("NGUYỄN") == {"Nguyễn"}
    assert await names("JOSÉ") == {"García", "100%"}  # José García and Jose_ 100%
    assert await names("josé  garcia") == {"García"}  # first and last name together, however spaced
    assert await names("sao paulo") == {"García"}
    assert await names("lukasz strasse") == {"STRAßE"}
    assert await names("jose_") == {"100%"} and await names("100%") == {"100%"}  # LIKE wildcards are literal
    assert await names("paulo thi") == set()  # a query never runs from one contact field into the next


def test_search_column_is_filled_for_contacts_stored_before_it(tmp_path: Any) -> None:
    """Migration 8 folds the names of an existing database's contacts (not only of new imports)."""
    import sqlite3

    from store.db import MIGRATIONS, Store

    before = next(i for i, m in enumerate(MIGRATIONS) if "search_text" in m)
    conn = sqlite3.connect(tmp_path / "old.db")  # a database as it was before migration 8
    for number, sql in enumerate(MIGRATIONS[:before], start=1):
        conn.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version={number};\nCOMMIT;")
    cid = conn.execute("INSERT INTO campaigns (name, created_at) VALUES ('Old', 0)").lastrowid
    conn.execute(
        "INSERT INTO contacts (campaign_id, first_name, last_name, phone, city, created_at) "
        "VALUES (?, 'Zoë', 'Müller', '+12025550131', 'Kraków', 0)",
        (cid,),
    )
    conn.commit()
    conn.close()
    store = Store(tmp_path / "old.db")
    rows, total = r.search_contacts(store, int(cid or 0), "zoe muller")
    assert total == 1 and rows[0]["last_name"] == "Müller"
    assert r.search_contacts(store, int(cid or 0), "KRAKOW")[1] == 1
    store.close()


async def read_csv(client: Any, path: str) -> tuple[list[dict[str, str]], list[str]]:
    resp = await client.get(path)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    body = await resp.read()
    assert body.startswith(codecs.BOM_UTF8) and not body[3:].startswith(codecs.BOM_UTF8)  # what Excel reads as UTF-8
    text = body.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return rows, list(reader.fieldnames or [])


async def test_contacts_export(panel: PanelKit) -> None:
    s = seed(panel)
    admin, _ = await panel.client("admin")
    rows, header = await read_csv(admin, f"/admin/efforts/{s['cid']}/export/contacts.csv")
    assert header[:7] == ["contact_id", "first_name", "last_name", "phone", "city", "state", "zip"]
    assert {
        "precinct",
        "source",
        "status",
        "attempts",
        "last_outcome",
        "last_disposition",
        "last_disposition_label",
        "last_disposition_notes",
    } <= set(header)
    assert header[-2:] == ["Will you vote for Measure A?", "Anything else?"]
    assert len(rows) == 6
    by_id = {int(row["contact_id"]): row for row in rows}
    ada = by_id[s["ids"][0]]
    assert ada["phone"] == "+12025550101"  # E.164, not neutralised
    assert ada["precinct"] == "-5"  # a number stays a number
    assert ada["source"] == '\'=HYPERLINK("http://x")'
    assert ada["last_disposition"] == "supporter" and ada["last_disposition_label"] == "Supporter"
    assert ada["last_disposition_notes"] == "'=cmd|' /C calc'!A0"
    assert ada["Will you vote for Measure A?"] == "Yes" and ada["Anything else?"] == "'-2+3"
    assert ada["status"] == "done" and ada["status (2)"] == "VIP" and ada["city"] == "Springfield"
    dan = by_id[s["ids"][4]]
    assert dan["Will you vote for Measure A?"] == "No" and dan["Anything else?"] == "'@SUM(A1)"
    eve = by_id[s["ids"][5]]
    assert eve["last_disposition"] == "" and eve["Will you vote for Measure A?"] == ""
    assert by_id[s["ids"][1]]["first_name"] == "<script>alert(1)</script>"  # CSV is data, not HTML
    # The latest answer wins.
    panel.store.add_disposition(s["alice"], None, s["ids"][0], "undecided", "changed mind", {"q1": "No"})
    rows, _ = await read_csv(admin, f"/admin/efforts/{s['cid']}/export/contacts.csv")
    ada = next(row for row in rows if int(row["contact_id"]) == s["ids"][0])
    assert ada["Will you vote for Measure A?"] == "No" and ada["Anything else?"] == "'-2+3"
    assert ada["last_disposition"] == "undecided"


async def test_attempts_export(panel: PanelKit) -> None:
    s = seed(panel)
    admin, _ = await panel.client("admin")
    rows, header = await read_csv(admin, f"/admin/efforts/{s['cid']}/export/attempts.csv")
    assert header == r.ATTEMPT_HEADER
    assert [row["call_id"] for row in rows] == ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]
    c1 = rows[0]
    assert c1["phone"] == "+12025550101" and c1["attempt_no"] == "1" and c1["outcome"] == "connected"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c1["originated_at"])
    assert c1["caller"] == "Alice" and c1["talk_seconds"] == "120" and c1["disposition"] == "supporter"
    assert c1["amd_status"] == "HUMAN" and c1["abandoned"] == "0"
    c4 = rows[3]
    assert c4["abandoned"] == "1" and c4["attempt_no"] == "2" and c4["caller"] == "" and c4["talk_seconds"] == ""
    assert rows[5]["caller"] == "Bob <i>the builder</i>" and rows[5]["disposition"] == "talked"
    assert rows[6]["ended_at"] == "" and rows[6]["outcome"] == ""


async def test_exports_stream_large_efforts(panel: PanelKit) -> None:
    cid = panel.store.create_campaign("Big", survey=SURVEY)["id"]
    n = r.EXPORT_CHUNK * 2 + 7
    panel.store.add_contacts(cid, [{"first_name": f"P{i}", "phone": f"+1202{5550000 + i}"} for i in range(n)])
    admin, _ = await panel.client("admin")
    resp = await admin.get(f"/admin/efforts/{cid}/export/contacts.csv")
    assert resp.headers.get("Transfer-Encoding") == "chunked"  # streamed, not built whole
    rows = list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert len(rows) == n and rows[-1]["first_name"] == f"P{n - 1}" and "contact_id" in rows[0]


async def test_exports_open_in_excel_and_carry_callbacks(panel: PanelKit) -> None:
    """Accented names survive a spreadsheet that needs the BOM; a scheduled callback's time is exported."""
    cid = panel.store.create_campaign("Acentos")["id"]
    panel.store.add_contacts(
        cid,
        [
            {"first_name": "José", "last_name": "Núñez", "phone": "+12025550111"},
            {"first_name": "=Zoë", "last_name": "Ngụyễn", "phone": "+12025550112"},
        ],
    )
    ids = [c["id"] for c in panel.store.contacts(cid)]
    sid = panel.store.create_session(cid, "Åsa")["id"]
    when = time.time() + 2 * 86400
    panel.store.add_disposition(sid, None, ids[0], "callback", "after work", {}, callback_at=when)
    admin, _ = await panel.client("admin")
    rows, header = await read_csv(admin, f"/admin/efforts/{cid}/export/contacts.csv")
    assert header[0] == "contact_id" and "callback_at" in header
    jose, zoe = rows
    assert (jose["first_name"], jose["last_name"]) == ("José", "Núñez")
    assert jose["callback_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
    assert jose["last_disposition"] == "callback" and zoe["callback_at"] == ""
    assert zoe["first_name"] == "'=Zoë" and zoe["last_name"] == "Ngụyễn"  # the formula guard still holds
    attempts, _ = await read_csv(admin, f"/admin/efforts/{cid}/export/attempts.csv")
    assert attempts == []
    # Once the callback has been made and answered for good, no time is left in the column.
    panel.store.add_disposition(sid, None, ids[0], "talked", "", {})
    rows, _ = await read_csv(admin, f"/admin/efforts/{cid}/export/contacts.csv")
    assert rows[0]["callback_at"] == ""


def test_csv_safe() -> None:
    for evil in ("=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=1", "\r=1", " =1", '=HYPERLINK("x")', "+", "-", "+1 202 555"):
        assert r.csv_safe(evil) == "'" + evil, evil
    for fine in ("+12025550100", "-5", "12", "3.5", "-0.25", "Yes", "", "a=b", "1+1", "O'Brien"):
        assert r.csv_safe(fine) == fine, fine
    assert r.csv_safe(None) == "" and r.csv_safe(7) == "7"


def test_personal_phone_effort(panel: PanelKit) -> None:
    """Callers dial on their own phones: attempts carry the disposition code as outcome, none in the controller."""
    store = panel.store
    cid = store.create_campaign("Personal", dial_mode="personal")["id"]
    store.add_contacts(
        cid, [{"first_name": "P", "phone": "+12025550301"}, {"first_name": "Q", "phone": "+12025550302"}]
    )
    ids = [c["id"] for c in store.contacts(cid)]
    sid = store.create_session(cid, "Pat")["id"]
    now = time.time()
    store.insert_call("p1", cid, ids[0], 1, "p1", now - 60)
    store.update_call("p1", session_id=sid, ended_at=now - 30, outcome="supporter")
    store.insert_call("p2", cid, ids[1], 1, "p2", now - 10)
    store.update_call("p2", session_id=sid)
    d = dashboard_data(panel.server.app, cid)
    tiles = {t["id"]: t for t in d["tiles"]}
    assert tiles["in-flight"]["value"] == "1" and tiles["attempts"]["value"] == "2"
    assert {leg["label"] for leg in d["charts"]["attempts"]["legend"]} == {"Talked", "In progress"}
    assert d["callers"][0]["calls"] == 2


def test_older_calls_are_summed_once_and_still_counted_right(panel: PanelKit) -> None:
    """Calls from hours ago are kept as a settled sum; one that was still open then is followed until it ends."""
    store = panel.store
    cid = store.create_campaign("Long day")["id"]
    store.add_contacts(cid, [{"first_name": f"C{i}", "phone": f"+1202555{4000 + i}"} for i in range(4)])
    ids = [c["id"] for c in store.contacts(cid)]
    sid = store.create_session(cid, "Val")["id"]
    old = time.time() - 3 * 3600
    store.insert_call("o1", cid, ids[0], 1, "o1", old)
    store.update_call("o1", answered_at=old + 5, amd_status="MACHINE", ended_at=old + 9, outcome="machine")
    store.insert_call("o2", cid, ids[1], 1, "o2", old + 60)  # still up (a very long conversation)
    store.update_call("o2", answered_at=old + 65, amd_status="HUMAN", bridged_at=old + 66, session_id=sid)
    store.insert_call("n1", cid, ids[2], 1, "n1", time.time() - 60)
    store.update_call("n1", ended_at=time.time() - 30, outcome="no_answer")
    app = panel.server.app
    st = dashboard_data(app, cid)["stats"]
    assert (st["attempts"], st["answered"], st["machines"], st["bridged"]) == (3, 2, 1, 1)
    store.update_call("o2", ended_at=old + 7266, outcome="connected")
    store.insert_call("n2", cid, ids[3], 1, "n2", time.time())
    d = dashboard_data(app, cid)
    full = store.campaign_stats(cid)  # a plain scan of every call agrees
    assert d["stats"]["attempts"] == full["attempts"] == 4
    assert d["stats"]["answered"] == full["answered"] and d["stats"]["machines"] == full["machines"]
    assert d["stats"]["in_flight"] == 0  # the controller holds no call: nothing live
    assert d["callers"][0]["talk_s"] == 7200
    assert sum(it["t"] == "rect" for it in d["charts"]["attempts"]["items"]) >= 3


async def test_dashboard_says_why_nothing_is_dialled(panel: PanelKit) -> None:
    """Not only "1 waiting for a call": why nothing is dialled and until when, the reason the caller sees too."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    store = panel.store
    cid = store.create_campaign("Quiet hours", calling_hours_start="09:00")["id"]
    store.add_contacts(cid, [{"first_name": "Cy", "phone": "+13125550100"}])  # Chicago
    sid = store.create_session(cid, "Ida")["id"]
    ctl = panel.ctl
    ctl.dialer.volunteers[sid] = Volunteer(sid, cid, state=VState.IDLE, since=time.time())
    ctl.legs[sid] = Leg(sid, cid, "vol-i", "br-i")
    ctl.waiting.clock = lambda: datetime(2026, 11, 25, 6, 30, tzinfo=ZoneInfo("America/Chicago")).timestamp()
    admin, _ = await panel.client("admin")
    html = await (await admin.get(f"/admin/efforts/{cid}/results")).text()
    value, sub, alert = tile(html, "dialing")
    assert value == "No" and alert
    assert "outside calling hours" in sub and "9:00 AM Central time (in 2 h 30 min)" in sub
    assert "1 waiting for a call" in tile(html, "volunteers")[1]
    data = dashboard_data(panel.server.app, cid)
    assert data["waiting"]["code"] == "outside_hours"

    store.update_campaign(cid, status="paused")
    value, sub, alert = tile(await (await admin.get(f"/admin/efforts/{cid}/results")).text(), "dialing")
    assert value == "No" and alert and "paused" in sub
    # Dialling: nothing to explain, no alert.
    store.update_campaign(cid, status="active")
    ctl.dialer.calls["r1"] = Call("r1", cid, store.contacts(cid)[0]["id"], state=CState.RINGING)
    value, sub, alert = tile(await (await admin.get(f"/admin/efforts/{cid}/results")).text(), "dialing")
    assert (value, sub, alert) == ("Yes", "Calling 1 number…", False)


async def test_dashboard_alerts_on_guessed_call_in_codes(panel: PanelKit) -> None:
    from callin import guard as g

    cid = panel.store.create_campaign("Any effort")["id"]
    admin, _ = await panel.client("admin")
    html = await (await admin.get(f"/admin/efforts/{cid}/results")).text()
    assert re.search(r'<p id="callin-alert"[^>]* hidden>\s*</p>', html)  # quiet: nothing to say
    # Six wrong codes from one phone (locked out), then others from 14 more numbers: the alarm.
    now = time.time()
    for i in range(6):
        panel.ctl._guard(g.Wrong("+12025550177"), now - 600 + i)
    for i in range(14):
        panel.ctl._guard(g.Wrong(f"+1202555{i:04d}"), now - 60 + i)
    html = await (await admin.get(f"/admin/efforts/{cid}/results")).text()
    alert = re.search(r'<p id="callin-alert"[^>]*>([^<]*)</p>', html)
    assert alert and "hidden" not in alert.group(0)
    assert alert.group(1).startswith("20 wrong call-in codes in the last hour, 1 number locked out.")
    assert "Someone may be guessing codes" in alert.group(1)
    assert "+12025550177" not in html  # no caller number on the page
    # The live view carries it too (results.js shows or hides the same paragraph).
    assert dashboard_data(panel.server.app, cid)["callin_alert"] == html_lib.unescape(alert.group(1))
    # Kept in the store for the next controller run.
    assert g.from_json(callin_guard.load(panel.store), g.Limits()).alarm


def test_cancelled_calls_have_their_own_place_in_the_attempts_chart() -> None:
    from panel.results import stacked_bars

    spec = stacked_bars([{"bucket": 100, "outcome": "cancelled", "n": 2}, {"bucket": 100, "outcome": "busy", "n": 1}])
    assert {item["label"] for item in spec["legend"]} == {"Cancelled (caller left)", "Busy / failed"}


def test_every_outcome_has_words_and_term_codes_show_their_labels(tmp_path: Any) -> None:
    """The contacts table and a contact's history show what happened in words (translatable), never a code."""
    from panel.i18n import translations
    from panel.results import OUTCOME_TEXT, result_labels
    from store.db import Store
    from store.outcomes import Outcome

    assert set(OUTCOME_TEXT) == set(Outcome)
    es = translations("es")
    assert all(es.gettext(text) != text for text in OUTCOME_TEXT.values()), "an outcome's words lack Spanish"
    store = Store(tmp_path / "t.db")
    try:
        cid = int(store.create_campaign("Labels")["id"])
        labels = result_labels(store, cid)
        assert labels["no_answer"] == "No answer" and es.gettext(labels["no_answer"]) == "No contesta"
        assert labels["supporter"] == "Supporter"  # the effort's own term code, by its label
    finally:
        store.close()
