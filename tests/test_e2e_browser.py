"""The panel in a real browser (Debian's Chromium driven by Playwright) on the real Asterisk.

An admin builds an effort from a CSV with bad rows and finishes it; a caller joins by the effort code with a
shift login, a drilled phone leg calls in with the session code, a simulated voter answers and is put through;
the caller sees the voter (and no phone number anywhere in the page or its WebSocket traffic), fills the
survey, saves, stops; the dashboard and the exports show the result.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, WebSocket, expect

from bridge.ari import AriClient
from callin import drill
from phonebank import browser as pb_browser
from phonebank.harness import ControllerProcess, Pbx, day_number, until
from phonebank.sim import SimNumber
from store import users as u
from store.db import Store

pytestmark = pytest.mark.asterisk

ADMIN_PASSWORD = "admin-e2e-password"
VOTERS = [
    SimNumber(day_number(1700 + i), "human", ring_s=2, talk_s=90, tone_hz=2900 + 70 * i, audio="human-hello-1")
    for i in range(2)
]
CSV_TEXT = (
    "First Name,Last Name,Phone,City,State,Zip,Ward\n"
    f"Rosa,<b>Parks</b>,{VOTERS[0].number[2:]},Washington,DC,20001,3\n"
    f"Miles,Davis,{VOTERS[1].number},Washington,DC,20002,\n"  # no ward: the script shows a gap
    "Bad,Number,12345,Washington,DC,20001,3\n"
    "No,Phone,,Washington,DC,20001,3\n"
    f"Rosa,<b>Parks</b>,{VOTERS[0].number},Washington,DC,20001,3\n"
)


async def login(page: Page, base: str, username: str, password: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")


async def test_admin_builds_effort_caller_calls_results_show(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient, chromium: Browser, tmp_path: Path
) -> None:
    pbx.load_sim(VOTERS)
    store = Store(pbx.settings.db_path)
    u.create_user(store, "admin-e2e", ADMIN_PASSWORD, "admin", name="Ada Admin")
    base = controller.api

    # ---------------------------------------------------------------- the admin builds the effort
    admin = await (await chromium.new_context(viewport=pb_browser.LAPTOP)).new_page()
    await login(admin, base, "admin-e2e", ADMIN_PASSWORD)
    await admin.click("#new-effort")
    await admin.fill("input[name=title]", "Browser effort")
    await admin.fill("textarea[name=description]", "Made by the browser test")
    await admin.click("#create")
    cid = int(re.search(r"/admin/efforts/(\d+)/", admin.url).group(1))  # type: ignore[union-attr]
    await admin.goto(f"{base}/admin/efforts/{cid}/list")
    csv_path = tmp_path / "voters.csv"
    csv_path.write_text(CSV_TEXT)
    await admin.set_input_files("#csv-file", str(csv_path))
    await admin.click("#upload")
    errors = admin.locator("#row-errors")
    await expect(errors).to_contain_text("12345")
    await expect(errors).to_contain_text("missing")
    assert store.contacts(cid) == [], "nothing imported before the admin confirms"
    await admin.click("#import-valid")
    await until(lambda: len(store.contacts(cid)) == 2, 10, "the two valid rows imported")

    await admin.goto(f"{base}/admin/efforts/{cid}/script")
    store.update_campaign(
        cid,
        script="Hi {first_name}, this is a volunteer for ward {Ward}. Will you vote early?",
        survey=[
            {"id": "q1", "text": "Will you vote early?", "kind": "choice", "options": ["Yes", "No"], "show_if": None},
            {
                "id": "q2",
                "text": "Which day?",
                "kind": "dropdown",
                "options": ["Saturday", "Sunday"],
                "show_if": {"question": "q1", "answer": "Yes"},
            },
        ],
        ring_timeout_s=15,
    )
    await admin.goto(f"{base}/admin/efforts/{cid}/review")
    await admin.check("#finish-confirm")
    await admin.click("#finish")
    await until(lambda: store.campaign(cid)["status"] == "active", 10, "the effort finished")  # type: ignore[index]
    join_code = store.campaign(cid)["join_code"]  # type: ignore[index]
    assert re.fullmatch(r"[A-Z]{7}-\d{7}", join_code)

    # ---------------------------------------------------------------- a caller joins and calls
    context = await chromium.new_context(viewport=pb_browser.TABLET)
    caller = await context.new_page()
    ws_frames: list[str] = []

    def on_ws(ws: WebSocket) -> None:
        ws.on("framereceived", lambda payload: ws_frames.append(str(payload)))

    caller.on("websocket", on_ws)
    await caller.goto(f"{base}/join/{join_code}")
    await caller.fill("input[name=name]", "Casey Caller")
    await caller.fill("input[name=email]", "casey@example.org")
    await caller.fill("input[name=phone]", "202-555-0199")
    await caller.click("#get-login")
    login_id = (await caller.locator("#login-id").inner_text()).strip()
    password = (await caller.locator("#login-password").inner_text()).strip()
    await login(caller, base, login_id, password)
    await caller.goto(f"{base}/call/{cid}")
    await caller.click("#audio-callin")
    await caller.click("#choose-audio")
    session = await until(lambda: [s for s in store.open_sessions() if s["campaign_id"] == cid], 10, "a session")
    code = session[0]["code"]
    await expect(caller.locator(f'.keypad-code[data-code="{code}"]').first).to_be_visible()

    leg = await drill.volunteer(ari, pbx.rt, code, stay_s=300)
    await expect(caller.locator("#phone-status")).to_have_attribute("data-connected", "true", timeout=20000)
    await caller.click("#start-calling")
    name = caller.locator("#voter-name")
    await expect(name).to_be_visible(timeout=45000)
    voter_name = await name.inner_text()
    assert voter_name.startswith(("Rosa", "Miles"))
    await expect(caller.locator("#about")).to_contain_text("Washington")
    await expect(caller.locator("#script")).to_contain_text(f"Hi {voter_name.split()[0]}")
    ward = "3" if voter_name.startswith("Rosa") else "\u2014"  # an empty field is a gap, never "{Ward}"
    await expect(caller.locator("#script")).to_contain_text(f"for ward {ward}.")
    if voter_name.startswith("Rosa"):  # HTML in a contact field is shown as text, never run
        await expect(name).to_contain_text("<b>Parks</b>")

    # No voter number in the page or anything pushed to it (computer-dial effort).
    html = await caller.content()
    assert any('"talking"' in f for f in ws_frames), "the voter reached the page over the WebSocket"
    for voter in VOTERS:
        for form in (voter.number, voter.number[2:], voter.number[-4:] + "<"):
            assert form not in html
            assert not any(voter.number[2:] in f for f in ws_frames)

    await caller.locator("#survey input[type=radio][value=Yes]").check()
    await caller.locator("#survey select").select_option("Sunday")
    await caller.fill("#notes", "Wants a ride <script>alert(1)</script>")
    await caller.locator("input[value=supporter]").check()
    await caller.click("#save-next")
    await until(lambda: store.dispositions(cid), 15, "the disposition saved")
    saved = store.dispositions(cid)[0]
    assert saved["code"] == "supporter"
    assert store.answers(saved["id"]) == {"q1": "Yes", "q2": "Sunday"}

    await caller.click("#stop-calling")
    await expect(caller.locator("#thank-you")).to_be_visible(timeout=15000)
    await until(
        lambda: store.session(session[0]["id"])["status"] == "ended",
        15,  # type: ignore[index]
        "the session ended",
    )
    # Stop hangs up the volunteer's phone leg too (the drill's half of the Local channel goes with it).
    for _ in range(40):
        if leg.channel_id not in {c["id"] for c in await ari.get("channels")}:
            break
        await asyncio.sleep(0.25)
    else:
        raise AssertionError("the volunteer's phone leg is still up after Stop")

    # ---------------------------------------------------------------- results
    await admin.goto(f"{base}/admin/efforts/{cid}/results")
    await expect(admin.locator("#tile-contacts")).to_contain_text("1")
    async with admin.expect_download() as dl_info:
        await admin.click("#export-contacts")
    download = await dl_info.value
    text = await asyncio.to_thread(Path(await download.path()).read_text)
    rows = list(csv.DictReader(io.StringIO(text)))
    done = [r for r in rows if r.get("Will you vote early?") == "Yes"]
    assert len(done) == 1 and done[0]["Which day?"] == "Sunday"
    # The notes, with their HTML, on the contact's history page: shown as text.
    await admin.goto(f"{base}/admin/efforts/{cid}/contacts/{saved['contact_id']}")
    await expect(admin.locator("#dispositions")).to_contain_text("<script>alert(1)</script>")
    assert "<script>alert(1)" not in await admin.content()
