"""Helpers for tests that drive the panel's pages in a real browser."""

from __future__ import annotations

import asyncio

from playwright.async_api import Page


async def eventually(page: Page, expression: str, limit_s: float = 10) -> None:
    """``wait_for_function`` evaluates a string, which the page's CSP forbids: poll with evaluate instead."""
    for _ in range(int(limit_s / 0.2)):
        if await page.evaluate(expression):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"never true: {expression}")
