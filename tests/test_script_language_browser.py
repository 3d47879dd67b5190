"""An effort in two languages on the caller's screen, in a real browser (Debian's Chromium) on the panel with a fake
ARI: the voter's language from the list is preselected, the toggle (and its L key) switches the script, questions
and options, what is untranslated shows in the first language marked so, and the result records the language."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from playwright.async_api import Browser

from store import caller as sc
from tests.fakes import PanelKit
from tests.pages import calling_screen, eventually

NOON_DC = datetime(2026, 11, 25, 17, 0, tzinfo=UTC).timestamp()
SURVEY = [
    {
        "id": "q1",
        "text": "Will you vote?",
        "kind": "choice",
        "options": ["Yes", "No"],
        "show_if": None,
        "second_text": "¿Va a votar?",
        "second_options": ["Sí", "No voy"],
    },
    {"id": "q2", "text": "Which day?", "kind": "dropdown", "options": ["Saturday", "Sunday"], "show_if": None},
]


async def test_the_caller_switches_the_script_language_per_call(
    panel: PanelKit, chromium: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sc, "clock", lambda: NOON_DC)
    cid = int(
        panel.store.create_campaign(
            "Dos idiomas",
            join_code="DOSIDIO-1234567",
            dial_mode="personal",
            script="Hi {first_name}, this is Fair Votes.",
            survey=SURVEY,
            second_language="es",
            second_script="Hola {first_name}, le llamamos de Fair Votes.",
        )["id"]
    )
    panel.store.add_contacts(cid, [{"first_name": "Pat", "phone": "+12025551111", "extra": {"Language": "Spanish"}}])
    user, password = panel.make_user("caller", name="Casey Caller", campaign_id=cid)
    base = str(panel.server.make_url("")).rstrip("/")
    page, csp = await calling_screen(chromium, base, user["username"], password, cid)

    # Pat's list row says Spanish: the screen starts in Spanish.
    await eventually(page, "document.getElementById('script').textContent.startsWith('Hola Pat')")
    es = page.locator('#script-language button[data-lang="es"]')
    en = page.locator('#script-language button[data-lang="en"]')
    assert await es.get_attribute("aria-pressed") == "true" and await en.get_attribute("aria-pressed") == "false"
    assert await page.locator("#script-language kbd.shortcut").text_content() == "L"
    q1, q2 = page.locator('.question[data-qid="q1"]'), page.locator('.question[data-qid="q2"]')
    assert (await q1.locator(".q-text").inner_text()).strip() == "¿Va a votar?"
    assert await q1.locator(".choices label span").all_text_contents() == ["Sí", "No voy"]
    # q2 has no Spanish: shown in English, marked as such.
    assert "Which day?" in await q2.inner_text()
    assert await q2.locator(".untranslated").is_visible()
    assert "English" in (await q2.locator(".untranslated").text_content() or "")
    assert await q1.locator(".untranslated").is_hidden()

    # L switches to English and back; the choice made stays (an answer is the option, not its label).
    await page.locator('.question[data-qid="q1"] input[value="Yes"]').check()
    await page.locator("body").click(position={"x": 5, "y": 5})
    await page.keyboard.press("l")
    await eventually(page, "document.getElementById('script').textContent.startsWith('Hi Pat')")
    assert await en.get_attribute("aria-pressed") == "true"
    assert (await q1.locator(".q-text").inner_text()).strip() == "Will you vote?"
    assert await q2.locator(".untranslated").is_hidden()
    assert await page.locator('.question[data-qid="q1"] input[value="Yes"]').is_checked()
    await es.click()  # the toggle itself
    await eventually(page, "document.getElementById('script').textContent.startsWith('Hola Pat')")

    # Save & Next (1, then N): the result records Spanish and the answer is the option itself.
    await page.locator("body").click(position={"x": 5, "y": 5})
    await page.keyboard.press("1")
    await page.keyboard.press("n")
    row = None
    for _ in range(50):
        row = panel.store._one("SELECT id, language FROM dispositions ORDER BY id DESC LIMIT 1")
        if row:
            break
        await asyncio.sleep(0.2)
    assert row is not None and row["language"] == "es"
    assert panel.store.answers(row["id"]) == {"q1": "Yes"}
    assert csp == []
    await page.context.close()
