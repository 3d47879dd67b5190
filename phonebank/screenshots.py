"""``make screenshots``: the panel's main screens rendered to PNG in docs/, at laptop and tablet widths.

Runs offline: the panel on a store seeded with a finished effort, an afternoon of calls and a caller talking to
a voter, on a controller whose ARI places no calls. What the pages show is exactly what they would show with
the PBX running; only the live audio is missing.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Page, async_playwright

from bridge import dialer as d
from bridge.ari_app import Controller, Leg
from panel.app import make_app
from phonebank import browser
from phonebank.demo import DEMO_SURVEY
from phonebank.harness import free_port
from phonebank.offline import FakeAri
from store import users as u
from store.db import Store

ADMIN = ("admin", "preview-password")
CALLER = ("caller", "preview-password")
SCRIPT = (
    "Hi, is this {first_name}? My name is ___ and I'm a volunteer with Fair Votes in {city}. "
    "Early voting starts Saturday — can we count on you to vote?"
)
SCRIPT_ES = (
    "Hola, ¿hablo con {first_name}? Me llamo ___ y soy voluntario de Fair Votes en {city}. La votación "
    "anticipada empieza el sábado: ¿podemos contar con su voto?"
)
# The demo's questions (with their Spanish version), and a free-text one so the screens show every kind.
SURVEY = [
    *DEMO_SURVEY,
    {
        "id": "q3",
        "text": "Anything we should know?",
        "kind": "text",
        "options": [],
        "show_if": None,
        "second_text": "¿Algo que debamos saber?",
    },
]
FIRST = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lena")


def seed(store: Store, ctl: Controller) -> dict[str, Any]:
    """An effort mid-shift: history for the dashboard, one caller talking to a voter."""
    rng = random.Random(7)
    u.create_user(store, ADMIN[0], ADMIN[1], "admin", name="Alex Organiser")
    caller = u.create_user(store, CALLER[0], CALLER[1], "caller", name="Sam Volunteer")
    now = time.time()
    cid = int(
        store.create_campaign(
            "Early vote push — Ward 3",
            org_name="Fair Votes",
            callback_number="2025550100",
            status="active",
            description="Remind supporters that early voting opens Saturday.",
            join_code="FAIRVTE-2026110",
            script=SCRIPT,
            survey=SURVEY,
            second_language="es",
            second_script=SCRIPT_ES,
            finished_at=now - 4 * 3600,
        )["id"]
    )
    store.add_contacts(
        cid,
        [
            {
                "first_name": FIRST[i % len(FIRST)],
                "last_name": f"Rivera{i}" if i % 3 else f"Okafor{i}",
                "phone": f"+1202555{2000 + i}",
                "city": "Washington",
                "state": "DC",
                "zip": f"2000{i % 9}",
                "extra": {"ward": "3", "party": rng.choice(["D", "I", "U"])},
            }
            for i in range(120)
        ],
    )
    volunteers = [store.create_session(cid, name)["id"] for name in ("Sam Volunteer", "Priya N.", "Tom K.")]
    store.conn.execute(
        "UPDATE sessions SET created_at = ?, joined_at = ? WHERE campaign_id = ?", (now - 3 * 3600, now - 3 * 3600, cid)
    )
    contacts = store.contacts(cid)
    start = now - 3 * 3600
    outcomes = ["connected"] * 5 + ["machine"] * 4 + ["no_answer"] * 5 + ["busy", "unallocated"]
    for i, contact in enumerate(contacts[1:90]):
        t = start + i * 110 + rng.uniform(0, 60)
        outcome = rng.choice(outcomes)
        call_id = f"pb-{uuid.uuid4().hex[:20]}"
        sid = volunteers[i % 3] if outcome == "connected" else None
        store.insert_call(call_id, cid, contact["id"], 1, call_id, t)
        answered = t + 8 if outcome in ("connected", "machine") else None
        abandoned = outcome == "connected" and i % 37 == 5
        store.update_call(
            call_id,
            ringing_at=t + 1,
            answered_at=answered,
            amd_status="MACHINE" if outcome == "machine" else ("HUMAN" if answered else None),
            bridged_at=t + 10 if sid and not abandoned else None,
            ended_at=t + rng.uniform(20, 200),
            outcome="abandoned" if abandoned else outcome,
            abandoned=int(abandoned),
            session_id=None if abandoned else sid,
        )
        store.conn.execute("UPDATE contacts SET attempts = 1 WHERE id = ?", (contact["id"],))
        store.release_contact(contact["id"], "abandoned" if abandoned else outcome, t + 60)
        if sid and not abandoned:
            code = rng.choice(["supporter", "supporter", "undecided", "opposed", "not_home"])
            answers = {"q1": rng.choice(["Yes", "Yes", "No", "Not sure"])}
            if answers["q1"] == "Yes":
                answers["q2"] = rng.choice(["Saturday", "Sunday", "Monday"])
            saved = store.add_disposition(sid, call_id, contact["id"], code, "", answers)
            call = store.call(call_id)
            assert call is not None, call_id  # recorded just above
            ended = call["ended_at"]
            store.conn.execute(
                "UPDATE dispositions SET created_at = ? WHERE id = ?", (ended + rng.uniform(10, 45), saved["id"])
            )
    # Sam is on a call with the first contact right now.
    talking = contacts[0]
    call_id = f"pb-{uuid.uuid4().hex[:20]}"
    store.insert_call(call_id, cid, talking["id"], 1, call_id, now - 40)
    store.update_call(call_id, answered_at=now - 30, amd_status="HUMAN", bridged_at=now - 28, session_id=volunteers[0])
    store.update_session(
        volunteers[0],
        user_id=caller["id"],
        channel_id="preview-leg",
        state="talking",
        current_call_id=call_id,
        joined_at=now - 3 * 3600,
    )
    ctl.legs[volunteers[0]] = Leg(volunteers[0], cid, "preview-leg", "preview-bridge")
    ctl.dialer.volunteers[volunteers[0]] = d.vol.Volunteer(
        volunteers[0], cid, state=d.vol.VState.TALKING, since=now - 28, call_id=call_id
    )
    for sid, state in zip(volunteers[1:], (d.vol.VState.IDLE, d.vol.VState.WRAPUP), strict=True):
        ctl.legs[sid] = Leg(sid, cid, f"preview-{sid}", f"preview-bridge-{sid}")
        ctl.dialer.volunteers[sid] = d.vol.Volunteer(sid, cid, state=state, since=now - 20)
    return {"campaign_id": cid, "session_id": volunteers[0], "contact_id": contacts[1]["id"]}


async def _login(page: Page, base: str, who: tuple[str, str]) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", who[0])
    await page.fill("input[name=password]", who[1])
    await page.click("button[type=submit]")


async def _coaching_shot(page: Page, base: str, cid: int, sid: int, target: Path) -> Path:
    """The dashboard's coach card as a captain uses it: the talking caller picked, a softphone as their audio,
    Listen pressed (the fake ARI takes the account), its one-off login shown. Stop after, so nothing lingers."""
    await page.goto(f"{base}/admin/efforts/{cid}/results")
    await page.select_option("#coach-session", str(sid))
    await page.check("input[name=audio][value=softphone]")
    await page.click("#coach-form button[value=listen]")
    await page.locator("#coach-softphone").wait_for(state="visible")
    await page.locator("#coach").screenshot(path=str(target))
    await page.click("#coach-stop")
    await page.locator("#coach-status").filter(has_text="ended").wait_for()
    return target


async def main(out: Path) -> int:
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "preview.db")
        ctl = Controller(ari=FakeAri(), store=store)
        # Where a softphone would sign in (no ws_url: computer audio is not offered, there is no PBX to reach).
        ctl.sip_public = {"sip_server": "pbx.example.org:5060", "domain": "pbx.example.org"}
        app = make_app(ctl, "+1 202 555 0100", "preview-token")
        ids = seed(store, ctl)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        cid, sid = ids["campaign_id"], ids["session_id"]
        shots = [
            (ADMIN, "efforts", "/admin/efforts"),
            (ADMIN, "effort-list-step", f"/admin/efforts/{cid}/list"),
            (ADMIN, "effort-script-step", f"/admin/efforts/{cid}/script"),
            (ADMIN, "effort-settings-step", f"/admin/efforts/{cid}/settings"),
            (ADMIN, "dashboard", f"/admin/efforts/{cid}/results"),
            (ADMIN, "contact-history", f"/admin/efforts/{cid}/contacts/{ids['contact_id']}"),
            (ADMIN, "plan", f"/admin/forecast?effort={cid}"),
            (None, "join", "/join/FAIRVTE-2026110"),
            (CALLER, "caller-on-call", f"/call/{cid}/s/{sid}"),
            # The same screens for a browser set to Spanish (the panel follows Accept-Language).
            ((*CALLER, "es"), "caller-on-call-es", f"/call/{cid}/s/{sid}"),
            ((*ADMIN, "es"), "dashboard-es", f"/admin/efforts/{cid}/results"),
        ]
        written = []
        try:
            async with async_playwright() as pw:
                chromium = await browser.launch(pw)
                for size_name, size in (("laptop", browser.LAPTOP), ("tablet", browser.TABLET)):
                    contexts: dict[Any, Page] = {}
                    for who, name, path in shots:
                        if who not in contexts:
                            lang = who[2] if who and len(who) > 2 else "en-US"
                            context = await chromium.new_context(viewport=size, locale=lang)
                            contexts[who] = await context.new_page()
                            if who:
                                await _login(contexts[who], base, (who[0], who[1]))
                        page = contexts[who]
                        await page.goto(base + path)
                        await page.wait_for_load_state("networkidle")
                        target = out / f"{name}-{size_name}.png"
                        await page.screenshot(path=str(target), full_page=True)
                        written.append(target)
                    written.append(
                        await _coaching_shot(contexts[ADMIN], base, cid, sid, out / f"coaching-{size_name}.png")
                    )
                await chromium.close()
        finally:
            await runner.cleanup()
            store.close()
    for shot in written:
        print(shot)
    return 0
