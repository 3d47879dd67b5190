"""A Spanish caller's calling screen in a real browser (Debian's Chromium, locale es-MX) on the panel with a fake
ARI: what caller.js writes (status line, About pane, form errors) is Spanish too, and no English of ours shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.async_api import Browser

from store import caller as sc
from tests.fakes import PanelKit
from tests.pages import eventually
from tests.test_panel_i18n import _english_fragments, _js_strings

NOON_DC = datetime(2026, 11, 25, 17, 0, tzinfo=UTC).timestamp()


async def test_spanish_calling_screen_in_the_browser(
    panel: PanelKit, chromium: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sc, "clock", lambda: NOON_DC)
    cid = int(panel.store.create_campaign("Votar", join_code="VOTARYA-1234567", dial_mode="personal")["id"])
    panel.store.add_contacts(cid, [{"first_name": "Pat", "phone": "+12025551111", "city": "Springfield"}])
    user, password = panel.make_user("caller", name="Ana", campaign_id=cid)
    base = str(panel.server.make_url("")).rstrip("/")
    context = await chromium.new_context(locale="es-MX")
    page = await context.new_page()
    await page.goto(f"{base}/login")
    assert await page.get_attribute("html", "lang") == "es"
    await page.fill("input[name=username]", user["username"])
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.goto(f"{base}/call/{cid}")
    await page.click("#choose-audio")
    await eventually(page, "!document.getElementById('call-panel').hidden")
    await eventually(page, "document.getElementById('status-line').textContent.includes('Pat')")
    assert await page.text_content("#status-line") == "Llame a Pat desde su teléfono"
    assert "Ciudad" in (await page.text_content("#about") or "")
    await page.click("#save-next")  # no result picked: caller.js says so
    error = await page.text_content("#form-error") or ""
    assert error.startswith("Elija un resultado"), error
    # Nothing the caller reads is English of ours: the templates' strings and caller.js's own.
    text = " ".join((await page.inner_text("body")).split())
    english = _english_fragments() | {s for s in _js_strings("caller.js") if "{" not in s and len(s) >= 8}
    left = sorted(e for e in english if re.search(rf"(?<!\w){re.escape(e)}(?!\w)", text))
    assert not left, left
    await context.close()
