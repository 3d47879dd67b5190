"""Headless Chromium for browser tests and screenshots: Debian's chromium driven by Playwright.

Playwright's own browser download is not used (closed network): we launch the system binary. Background
networking is off so Chromium makes no connections of its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.async_api import Browser, Playwright, ViewportSize

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",
]
LAPTOP: ViewportSize = {"width": 1280, "height": 800}
TABLET: ViewportSize = {"width": 768, "height": 1024}


def chromium_path() -> Path:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("chromium not found: `make test` installs Debian's chromium package")
    return Path(found)


async def launch(pw: Playwright) -> Browser:
    return await pw.chromium.launch(executable_path=str(chromium_path()), args=CHROMIUM_ARGS, headless=True)
