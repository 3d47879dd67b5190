"""Helpers for tests that drive the panel's pages in a real browser."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, Page


async def eventually(page: Page, expression: str, limit_s: float = 10) -> None:
    """``wait_for_function`` evaluates a string, which the page's CSP forbids: poll with evaluate instead."""
    for _ in range(int(limit_s / 0.2)):
        if await page.evaluate(expression):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"never true: {expression}")


async def calling_screen(
    browser: Browser, base: str, username: str, password: str, campaign_id: int, locale: str | None = None
) -> tuple[Page, list[str]]:
    """A caller logged in on a personal-phone effort's calling screen, its first voter up; with the page's
    Content-Security-Policy complaints collected (a test asserts there are none)."""
    context = await browser.new_context(locale=locale) if locale else await browser.new_context()
    page = await context.new_page()
    csp: list[str] = []
    page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.goto(f"{base}/call/{campaign_id}")
    await page.click("#choose-audio")
    await eventually(page, "!document.getElementById('call-panel').hidden")
    return page, csp
