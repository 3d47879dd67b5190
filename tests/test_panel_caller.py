"""The caller's side of the panel: joining by code, shift logins, audio choice, the live calling screen,
personal-phone calling, and the feedback box that reaches the organisers (no browser, no Asterisk)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient

from bridge import dialer as d
from bridge import volunteer as vol
from bridge.ari_app import Leg
from store import caller as sc
from tests.fakes import API_TOKEN, PanelKit

CODE = "ABCDEFG-1234567"
# Noon in Washington DC (the tests' numbers are 202s): inside calling hours whenever the tests run.
NOON_DC = datetime(2026, 11, 25, 17, 0, tzinfo=UTC).timestamp()
SURVEY = [
    {"id": "q1", "text": "Will you vote?", "kind": "dropdown", "options": ["Yes", "No"], "show_if": None},
    {
        "id": "q2",
        "text": "How?",
        "kind": "choice",
        "options": ["Mail", "In person"],
        "show_if": {"question": "q1", "answer": "Yes"},
    },
]


def _effort(panel: PanelKit, **fields: Any) -> int:
    values: dict[str, Any] = {
        "join_code": CODE,
        "description": "Call voters in Springfield",
        "script": "Hi {first_name}, is this {first_name} {last_name} in {city}?",
        "survey": SURVEY,
        **fields,
    }
    return int(panel.store.create_campaign("Get out the vote", **values)["id"])


async def _caller_for(panel: PanelKit, cid: int) -> tuple[TestClient, str, dict[str, Any]]:
    """A shift login for the effort, logged in."""
    user, password = panel.make_user("caller", name="Casey Caller", campaign_id=cid)
    client, csrf = await panel.login(user["username"], password)
    return client, csrf, user


async def _start_session(client: TestClient, csrf: str, cid: int) -> int:
    resp = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "phone"}, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    match = re.fullmatch(rf"/call/{cid}/s/(\d+)", resp.headers["Location"])
    assert match, resp.headers["Location"]
    return int(match.group(1))


async def _until(
    ws: ClientWebSocketResponse, pred: Callable[[dict[str, Any]], bool], seen: list[str] | None = None
) -> dict[str, Any]:
    """Read pushed views until one satisfies ``pred`` (raw frames go to ``seen``)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
        assert msg.type.name == "TEXT", msg
        if seen is not None:
            seen.append(msg.data)
        payload = json.loads(msg.data)
        assert payload["type"] == "session"
        if pred(payload["session"]):
            return payload["session"]
    raise AssertionError("no pushed view matched")


# ---------------------------------------------------------------------------------------------- joining
async def test_join_by_code_good_bad_and_inactive(panel: PanelKit) -> None:
    cid = _effort(panel)
    anon = await panel.anonymous()
    page = await anon.get("/join")
    assert page.status == 200 and 'name="code"' in await page.text()
    # Case-insensitive, spaces trimmed, goes to the effort's page.
    resp = await anon.get("/join", params={"code": "  abcdefg-1234567 "}, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == f"/join/{CODE}"
    landing = await anon.get("/join/abcdefg-1234567")
    html = await landing.text()
    assert landing.status == 200 and "Get out the vote" in html and "Call voters in Springfield" in html
    assert "Get your login" in html and f"/login?next=/call/{cid}" in html
    bad = await anon.get("/join", params={"code": "NOPE-0000000"})
    assert bad.status == 404 and "could not find a phone bank" in await bad.text()
    assert (await anon.get("/join/<script>")).status == 404
    panel.store.update_campaign(cid, status="draft")
    draft = await anon.get(f"/join/{CODE}")
    assert draft.status == 403 and "not open yet" in await draft.text()
    panel.store.update_campaign(cid, status="closed")
    closed = await anon.post(
        f"/join/{CODE}",
        data={"name": "A", "email": "a@example.org", "phone": "2025550123", "_csrf": await panel.pre_csrf(anon)},
    )
    assert closed.status == 403 and "has closed" in await closed.text()
    assert panel.store._one("SELECT COUNT(*) AS n FROM users")["n"] == 0


async def test_shift_login_is_shown_then_logs_in_to_the_effort(panel: PanelKit) -> None:
    cid = _effort(panel)
    anon = await panel.anonymous()
    pre = await panel.pre_csrf(anon)
    forged = await anon.post(f"/join/{CODE}", data={"name": "Sam", "email": "sam@example.org", "phone": "2025550199"})
    assert forged.status == 403  # no pre-login token: a cross-site form cannot make logins
    missing = await anon.post(
        f"/join/{CODE}", data={"name": "Sam", "email": "not-an-email", "phone": "202555", "_csrf": pre}
    )
    assert missing.status == 400 and "valid email" in await missing.text()
    resp = await anon.post(
        f"/join/{CODE}",
        data={"name": "Sam Volunteer", "email": "sam@example.org", "phone": "+1 202 555 0199", "_csrf": pre},
    )
    html = await resp.text()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    login_id = re.search(r'id="login-id" class="cred-value">([^<]+)<', html).group(1)
    password = re.search(r'id="login-password" class="cred-value">([^<]+)<', html).group(1)
    assert f'value="{login_id}"' in html  # the login form is pre-filled with the login ID
    user = panel.store._one("SELECT * FROM users WHERE username = ?", (login_id,))
    assert user["campaign_id"] == cid and user["role"] == "caller" and user["expires_at"] > time.time()
    assert f'name="_csrf" value="{pre}"' in html  # the shown login form carries the pre-login token
    login = await anon.post(
        "/login",
        data={"username": login_id, "password": password, "next": f"/call/{cid}", "_csrf": pre},
        allow_redirects=False,
    )
    assert login.status == 302 and login.headers["Location"] == f"/call/{cid}"
    audio = await anon.get(f"/call/{cid}")
    text = await audio.text()
    assert audio.status == 200 and "Call in by phone" in text and "Computer audio" in text and "SIP softphone" in text
    assert 'id="audio-callin"' in text and 'id="choose-audio"' in text
    assert re.search(r'id="audio-computer"[^>]*disabled', text)


# ---------------------------------------------------------------------------------------------- audio and session
async def test_audio_choice_creates_a_start_on_click_session_and_reuses_it(panel: PanelKit) -> None:
    cid = _effort(panel)
    client, csrf, user = await _caller_for(panel, cid)
    no_csrf = await client.post(f"/call/{cid}", data={"audio": "phone"}, allow_redirects=False)
    assert no_csrf.status == 403
    sid = await _start_session(client, csrf, cid)
    s = panel.store.session(sid)
    assert s["start_on_click"] == 1 and s["user_id"] == user["id"] and s["volunteer_name"] == "Casey Caller"
    assert await _start_session(client, csrf, cid) == sid  # the open session is reused
    page = await client.get(f"/call/{cid}/s/{sid}")
    html = await page.text()
    assert page.status == 200
    for element in (
        "phone-status",
        "start-calling",
        "voter-name",
        "about",
        "script",
        "survey",
        "notes",
        "couldnt-reach",
        "save-next",
        "stop-calling",
        "wrapup-countdown",
        "resume",
        "thank-you",
        "make-more",
        "leave-session",
        "feedback",
        "end-call",
    ):
        assert f'id="{element}"' in html, element
    assert s["code"] in html and "+12025550100" in html
    # Ten digits grouped like a phone number, so nobody loses their place keying it.
    code = s["code"]
    assert f'data-code="{code}">{code[:3]}&nbsp;{code[3:6]}&nbsp;{code[6:]}</strong>' in html
    assert '<script src="/static/caller.js"' in html
    assert (await client.get("/static/caller.js")).status == 200
    assert (await client.get("/static/caller.css")).status == 200
    # Computer audio is not there yet.
    refused = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "computer"}, allow_redirects=False)
    assert refused.status == 400


async def test_session_page_is_the_owners_only(panel: PanelKit) -> None:
    cid = _effort(panel)
    other_cid = panel.store.create_campaign("Another effort")["id"]
    owner, o_csrf, _ = await _caller_for(panel, cid)
    sid = await _start_session(owner, o_csrf, cid)
    intruder, _i_csrf, _ = await _caller_for(panel, cid)
    assert (await intruder.get(f"/call/{cid}/s/{sid}")).status == 404
    assert (await intruder.get(f"/api/sessions/{sid}")).status == 404
    # A shift login for another effort cannot use this one.
    stranger, _s_csrf, _ = await _caller_for(panel, other_cid)
    assert (await stranger.get(f"/call/{cid}")).status == 403
    assert (await stranger.get(f"/call/{cid}/s/{sid}")).status == 403
    anon = await panel.anonymous()
    resp = await anon.get(f"/call/{cid}/s/{sid}", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login?next=")
    assert (await owner.get(f"/call/{cid}/s/99999")).status == 404
    assert (await owner.get(f"/call/{other_cid}/s/{sid}")).status == 403


async def test_websocket_pushes_each_state_change_without_the_phone_number(panel: PanelKit) -> None:
    cid = _effort(panel, wrapup_limit_s=30, status="paused")  # paused: the dialer places no calls of its own
    panel.store.add_contacts(
        cid,
        [
            {
                "first_name": "Vera",
                "last_name": "Voter",
                "phone": "+12025557777",
                "city": "Springfield",
                "extra": {"Ward": "5"},
            }
        ],
    )
    contact_id = panel.store.contacts(cid)[0]["id"]
    client, csrf, _ = await _caller_for(panel, cid)
    sid = await _start_session(client, csrf, cid)
    ctl = panel.ctl
    await ctl.run(ctl.refresh_campaigns())  # the controller learns the effort's wrap-up limit
    frames: list[str] = []
    ws = await client.ws_connect(f"/ws/session/{sid}")
    try:
        first = await _until(ws, lambda v: True, frames)
        assert first["state"] == "waiting_for_phone" and first["phone_connected"] is False
        assert first["code"] == panel.store.session(sid)["code"] and first["callin_number"] == "+12025550100"
        # The phone leg arrives: paused, ready to start.
        now = time.time()
        ctl.legs[sid] = Leg(sid, cid, "vol-chan", "vol-bridge")
        await ctl.run(ctl.dialer.handle(d.VolunteerJoined(sid, cid, paused=True), now))
        ready = await _until(ws, lambda v: v["state"] == "paused", frames)
        assert ready["state_reason"] == "ready_to_start" and ready["phone_connected"] is True
        # "Start calling" is POST resume.
        resp = await client.post(f"/api/sessions/{sid}/resume", headers={"X-CSRF-Token": csrf})
        assert resp.status == 200
        await _until(ws, lambda v: v["state"] == "idle", frames)
        # A voter is put through.
        call_id = "pbc-test-1"
        panel.store.insert_call(call_id, cid, contact_id, 1, call_id, now)
        await ctl.run(ctl.dialer.handle(d.VolunteerEvent(sid, vol.VoterConnected(call_id)), now))
        talking = await _until(ws, lambda v: v["state"] == "talking", frames)
        assert talking["contact"]["first_name"] == "Vera" and talking["contact"]["extra"] == {"Ward": "5"}
        assert "phone" not in talking["contact"]
        # The voter hangs up: wrap-up, with the limit and the start time for the countdown.
        await ctl.run(ctl.dialer.handle(d.VolunteerEvent(sid, vol.VoterGone(call_id)), now + 1))
        wrapup = await _until(ws, lambda v: v["state"] == "wrapup", frames)
        assert wrapup["wrapup_limit_s"] == 30 and abs(wrapup["wrapup_since"] - (now + 1)) < 0.01
        # Not saved in time: paused with the reason, and the result can still be saved.
        await ctl.run(ctl.dialer.handle(d.VolunteerEvent(sid, vol.Tick()), now + 40))
        timed_out = await _until(ws, lambda v: v["state"] == "paused", frames)
        assert timed_out["state_reason"] == "wrapup_timeout" and timed_out["contact"]["first_name"] == "Vera"
        saved = await client.post(
            f"/api/sessions/{sid}/disposition",
            headers={"X-CSRF-Token": csrf},
            json={"code": "supporter", "notes": "nice", "answers": {"q1": "Yes"}},
        )
        assert saved.status == 201, await saved.text()
        view = await (await client.get(f"/api/sessions/{sid}")).json()
        assert view["contact"] is None and view["state"] == "paused"
        resumed = await client.post(f"/api/sessions/{sid}/resume", headers={"X-CSRF-Token": csrf})
        assert (await resumed.json())["state"] == "idle"
        await _until(ws, lambda v: v["state"] == "idle", frames)
    finally:
        await ws.close()
    assert len(frames) >= 6
    assert not any("2025557777" in f for f in frames)
    assert panel.store.answers(panel.store.dispositions(cid)[0]["id"]) == {"q1": "Yes"}


async def test_websocket_pushes_the_phone_hanging_up(panel: PanelKit) -> None:
    cid = _effort(panel, status="paused")
    client, csrf, _ = await _caller_for(panel, cid)
    sid = await _start_session(client, csrf, cid)
    ctl = panel.ctl
    ws = await client.ws_connect(f"/ws/session/{sid}")
    try:
        await _until(ws, lambda v: True)
        ctl.legs[sid] = Leg(sid, cid, "vol-chan", "vol-bridge")
        await ctl.run(ctl.dialer.handle(d.VolunteerJoined(sid, cid, paused=True), time.time()))
        await _until(ws, lambda v: v["state"] == "paused")
        await ctl._volunteer_leg_gone(ctl.legs[sid], time.time())
        gone = await _until(ws, lambda v: v["state"] == "disconnected")
        assert gone["phone_connected"] is False
    finally:
        await ws.close()


async def test_stop_ends_the_session_and_the_screen_shows_it(panel: PanelKit) -> None:
    cid = _effort(panel)
    client, csrf, _ = await _caller_for(panel, cid)
    sid = await _start_session(client, csrf, cid)
    stopped = await client.post(f"/api/sessions/{sid}/stop", headers={"X-CSRF-Token": csrf})
    view = await stopped.json()
    assert view["status"] == "ended" and view["state"] == "ended"
    # "Make more calls" starts a new session rather than returning to the ended one.
    assert await _start_session(client, csrf, cid) != sid


# ---------------------------------------------------------------------------------------------- personal phone
async def test_personal_phone_next_contact_flow(panel: PanelKit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sc, "clock", lambda: NOON_DC)
    cid = _effort(panel, dial_mode="personal")
    panel.store.add_contacts(
        cid, [{"first_name": "Pat", "phone": "+12025551111"}, {"first_name": "Quinn", "phone": "+12025552222"}]
    )
    client, csrf, _ = await _caller_for(panel, cid)
    audio = await client.get(f"/call/{cid}")
    assert "your own phone" in await audio.text()
    resp = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "personal"}, allow_redirects=False)
    sid = int(resp.headers["Location"].rsplit("/", 1)[1])
    page = await client.get(f"/call/{cid}/s/{sid}")
    assert page.status == 200 and 'id="voter-phone"' in await page.text()
    h = {"X-CSRF-Token": csrf}
    first = await (await client.post(f"/api/personal/{sid}/next", headers=h)).json()
    assert first["contact"]["first_name"] == "Pat" and first["contact"]["phone"] == "+12025551111"
    again = await (await client.post(f"/api/personal/{sid}/next", headers=h)).json()
    assert again["contact"]["id"] == first["contact"]["id"]  # the held contact, not another claim
    # The session's WebSocket view carries the number too (personal phone only).
    ws = await client.ws_connect(f"/ws/session/{sid}")
    pushed = await _until(ws, lambda v: True)
    await ws.close()
    assert pushed["contact"]["phone"] == "+12025551111"
    no_code = await client.post(f"/api/personal/{sid}/disposition", headers=h, json={"code": "", "notes": ""})
    assert no_code.status == 400 and "term code" in (await no_code.json())["error"]
    nxt = await client.post(
        f"/api/personal/{sid}/disposition", headers=h, json={"code": "not_home", "notes": "", "answers": {}}
    )
    second = await nxt.json()
    assert nxt.status == 200 and second["contact"]["first_name"] == "Quinn" and second["list_done"] is False
    last = await (
        await client.post(
            f"/api/personal/{sid}/disposition", headers=h, json={"code": "talked", "answers": {"q1": "No"}}
        )
    ).json()
    assert last["contact"] is None and last["list_done"] is True
    by_contact = {c["first_name"]: c for c in panel.store.contacts(cid)}
    assert by_contact["Quinn"]["status"] == "done" and by_contact["Pat"]["status"] == "pending"
    disps = panel.store.dispositions(cid)
    assert [x["code"] for x in disps] == ["not_home", "talked"] and all(x["call_id"] for x in disps)
    attempts = panel.store.calls(cid)
    assert len(attempts) == 2 and all(c["ended_at"] for c in attempts)
    # A power effort's session cannot use the personal routes.
    power = panel.store.create_campaign("Power")["id"]
    s2 = panel.store.create_session(power, "Casey", user_id=None)
    token_client = await panel.anonymous()
    refused = await token_client.post(
        f"/api/personal/{s2['id']}/next", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert refused.status == 409


async def test_personal_phone_stop_gives_the_contact_back(panel: PanelKit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sc, "clock", lambda: NOON_DC)
    cid = _effort(panel, dial_mode="personal")
    panel.store.add_contacts(cid, [{"first_name": "Pat", "phone": "+12025551111"}])
    client, csrf, _ = await _caller_for(panel, cid)
    sid = await _start_session(client, csrf, cid)
    h = {"X-CSRF-Token": csrf}
    await client.post(f"/api/personal/{sid}/next", headers=h)
    assert panel.store.contacts(cid)[0]["status"] == "dialing"
    stopped = await (await client.post(f"/api/personal/{sid}/stop", headers=h)).json()
    assert stopped["status"] == "ended"
    contact = panel.store.contacts(cid)[0]
    assert contact["status"] == "pending" and contact["attempts"] == 0
    assert panel.store.calls(cid) == []
    other, o_csrf, _ = await _caller_for(panel, cid)
    assert (await other.post(f"/api/personal/{sid}/next", headers={"X-CSRF-Token": o_csrf})).status == 404


# ---------------------------------------------------------------------------------------------- feedback
async def test_feedback_reaches_the_admins_inbox(panel: PanelKit) -> None:
    cid = _effort(panel)
    client, csrf, user = await _caller_for(panel, cid)
    sid = await _start_session(client, csrf, cid)
    no_csrf = await client.post("/api/feedback", json={"session_id": sid, "kind": "script", "text": "x"})
    assert no_csrf.status == 403
    empty = await client.post("/api/feedback", headers={"X-CSRF-Token": csrf}, json={"kind": "problem", "text": " "})
    assert empty.status == 400
    sent = await client.post(
        "/api/feedback",
        headers={"X-CSRF-Token": csrf},
        json={"session_id": sid, "kind": "script", "text": "Question 2 <b>is</b> <script>alert(1)</script> confusing"},
    )
    assert sent.status == 201, await sent.text()
    row = panel.store._one("SELECT * FROM feedback")
    assert row["campaign_id"] == cid and row["session_id"] == sid and row["user_id"] == user["id"]
    # Someone else's session cannot be named.
    other, o_csrf, _ = await _caller_for(panel, cid)
    assert (
        await other.post(
            "/api/feedback", headers={"X-CSRF-Token": o_csrf}, json={"session_id": sid, "kind": "problem", "text": "hi"}
        )
    ).status == 404
    # Callers cannot read the inbox; admins and managers can.
    refused = await client.get("/admin/feedback")
    assert refused.status == 403
    admin, a_csrf = await panel.client("admin")
    inbox = await admin.get("/admin/feedback")
    html = await inbox.text()
    assert inbox.status == 200 and "Get out the vote" in html and "Casey Caller" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    fid = row["id"]
    done = await admin.post(f"/admin/feedback/{fid}/resolve", data={"_csrf": a_csrf}, allow_redirects=False)
    assert done.status == 302
    assert panel.store._one("SELECT resolved_at FROM feedback WHERE id = ?", (fid,))["resolved_at"]
    assert "all caught up" in await (await admin.get("/admin/feedback")).text()
    assert "Resolved" in await (await admin.get("/admin/feedback?show=all")).text()
    assert (await client.post(f"/admin/feedback/{fid}/resolve", data={"_csrf": csrf})).status == 403
    anon = await panel.anonymous()
    assert (await anon.post("/api/feedback", json={"kind": "problem", "text": "x"})).status == 401


# ---------------------------------------------------------------------------------------------- escaping
async def test_html_in_effort_contact_fields_and_notes_is_escaped(panel: PanelKit) -> None:
    evil = "<img src=x onerror=alert(1)>"
    cid = _effort(panel, description=f"Desc {evil}", script=f"Hello {{first_name}} {evil}")
    panel.store.add_contacts(
        cid,
        [
            {
                "first_name": evil,
                "last_name": "</script><script>x()</script>",
                "phone": "+12025553333",
                "extra": {evil: evil},
            }
        ],
    )
    anon = await panel.anonymous()
    landing = await (await anon.get(f"/join/{CODE}")).text()
    assert evil not in landing and "&lt;img src=x" in landing
    client, csrf, _ = await _caller_for(panel, cid)
    sid = await _start_session(client, csrf, cid)
    page = await (await client.get(f"/call/{cid}/s/{sid}")).text()
    assert evil not in page
    # The page's JSON config cannot close its script element.
    config = re.search(r'<script type="application/json" id="caller-config">(.*?)</script>', page, re.S).group(1)
    assert json.loads(config)["script"].endswith(evil)
    # Contact data reaches the browser only as JSON over the API/WebSocket and is put in the page as text by
    # caller.js (textContent / text nodes, no innerHTML).
    js = await (await client.get("/static/caller.js")).text()
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "document.write" not in js
    # Notes with HTML are stored as typed (escaping happens on output).
    contact_id = panel.store.contacts(cid)[0]["id"]
    panel.store.insert_call("pbc-evil", cid, contact_id, 1, "pbc-evil", time.time())
    panel.store.update_session(sid, current_call_id="pbc-evil")
    panel.store.update_call("pbc-evil", session_id=sid)
    saved = await client.post(
        f"/api/sessions/{sid}/disposition", headers={"X-CSRF-Token": csrf}, json={"code": "talked", "notes": evil}
    )
    assert saved.status == 201
    assert panel.store.dispositions(cid)[0]["notes"] == evil


async def test_join_code_helpers() -> None:
    assert sc.normalize_join_code(" abcdefg - 1234567\n") == CODE
    assert sc.JOIN_CODE_RE.match(CODE)
    assert not sc.JOIN_CODE_RE.match("DROP TABLE;")


async def test_the_waiting_screen_says_why_nothing_is_dialled(panel: PanelKit) -> None:
    """All the contacts are outside their calling hours: the caller is told so and when they open (in the
    contacts' zone), pushed over the WebSocket, not "a couple of minutes"."""
    cid = _effort(panel, calling_hours_start="09:00")
    panel.store.add_contacts(cid, [{"first_name": "Cy", "phone": "+13125550100"}])  # Chicago
    client, csrf, _ = await _caller_for(panel, cid)
    sid = await _start_session(client, csrf, cid)
    ctl = panel.ctl
    ctl.waiting.clock = lambda: datetime(2026, 11, 25, 12, 30, tzinfo=UTC).timestamp()  # 6:30 in Chicago
    frames: list[str] = []
    ws = await client.ws_connect(f"/ws/session/{sid}")
    try:
        first = await _until(ws, lambda v: True, frames)
        assert "waiting" not in first, "only while waiting for a voter"
        ctl.legs[sid] = Leg(sid, cid, "vol-chan", "vol-bridge")
        await ctl.run(ctl.dialer.handle(d.VolunteerJoined(sid, cid), time.time()))
        idle = await _until(ws, lambda v: v["state"] == "idle", frames)
        w = idle["waiting"]
        assert w["code"] == "outside_hours" and not w["dialing"]
        assert "9:00 AM Central time (in 2 h 30 min)" in w["text"]
        assert w["until"] == datetime(2026, 11, 25, 15, 0, tzinfo=UTC).timestamp()
        # The organisers pause the effort: the next view says so.
        panel.store.update_campaign(cid, status="paused")
        view = await (await client.get(f"/api/sessions/{sid}")).json()
        assert view["waiting"]["code"] == "paused" and "paused" in view["waiting"]["text"]
    finally:
        await ws.close()
    assert not any("3125550100" in f for f in frames)
    page = await (await client.get(f"/call/{cid}/s/{sid}")).text()
    assert 'id="waiting-reason"' in page and 'id="waiting-title"' in page
