"""Keyboard shortcuts on the caller's screen, in a real browser (Debian's Chromium) on the panel with a fake ARI:
the keys are shown on the page, pick term codes and press the buttons, and do nothing while the caller types."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from playwright.async_api import Browser

from store import caller as sc
from tests.fakes import PanelKit
from tests.pages import calling_screen, eventually

# Noon in Washington DC (the numbers are 202s): inside calling hours whenever the test runs.
NOON_DC = datetime(2026, 11, 25, 17, 0, tzinfo=UTC).timestamp()


async def test_shortcuts_shown_and_working_but_not_while_typing(
    panel: PanelKit, chromium: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sc, "clock", lambda: NOON_DC)
    cid = int(panel.store.create_campaign("Keys", join_code="KEYSKEY-1234567", dial_mode="personal")["id"])
    panel.store.add_contacts(cid, [{"first_name": "Pat", "phone": "+12025551111"}])
    user, password = panel.make_user("caller", name="Casey Caller", campaign_id=cid)
    base = str(panel.server.make_url("")).rstrip("/")
    page, csp = await calling_screen(chromium, base, user["username"], password, cid)

    # Shown on the page: a key badge on every term code (1, 2, ...) and on the buttons.
    radios = page.locator('#term-codes input[name="code"]')
    n = await radios.count()
    assert n >= 2
    badges = await page.locator("#term-codes kbd.shortcut").all_text_contents()
    assert badges == [str(i + 1) for i in range(min(n, 9))]
    assert await page.locator("#save-next kbd.shortcut").text_content() == "N"
    assert await page.locator("#couldnt-reach kbd.shortcut").text_content() == "R"

    await page.locator("body").click(position={"x": 5, "y": 5})
    await page.keyboard.press("2")
    assert await radios.nth(1).is_checked() and not await radios.nth(0).is_checked()
    # Typing a note: digits and letters are text, not shortcuts.
    await page.click("#notes")
    await page.keyboard.type("1 nre")
    assert await page.input_value("#notes") == "1 nre"
    assert await radios.nth(1).is_checked() and not await radios.nth(0).is_checked()
    assert await page.locator("#reach-reasons").is_hidden()
    # R opens "I couldn't reach" (its select takes the focus: keys there are the select's).
    await page.locator("body").click(position={"x": 5, "y": 5})
    await page.keyboard.press("r")
    await eventually(page, "!document.getElementById('reach-reasons').hidden")
    await page.keyboard.press("1")  # focus is in the no-contact select: not a term code
    assert await radios.nth(1).is_checked()
    await page.click("#cancel-reach")
    # N saves (Save & Next): the contact's result is recorded.
    await page.locator("body").click(position={"x": 5, "y": 5})
    await page.keyboard.press("1")
    await page.keyboard.press("n")
    code = await radios.nth(0).get_attribute("value")
    for _ in range(50):
        row = panel.store._one("SELECT code FROM dispositions ORDER BY id DESC LIMIT 1")
        if row:
            break
        await asyncio.sleep(0.2)
    assert row is not None and row["code"] == code
    assert csp == []
    await page.context.close()
