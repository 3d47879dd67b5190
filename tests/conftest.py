"""Fixtures for the end-to-end tests: one real Asterisk per test session, a controller process per test.

If Asterisk cannot be provisioned the fixture raises and every test that needs it errors: the suite
fails rather than skipping, in CI and everywhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from bridge.ari import AriClient
from phonebank import browser as pb_browser
from phonebank.harness import ControllerProcess, Pbx
from tests.fakes import PanelKit, start_panel


@pytest.fixture(scope="session")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pbx]:
    pbx = Pbx.start(tmp_path_factory.mktemp("pbdata"))
    try:
        yield pbx
    finally:
        pbx.stop()


@pytest.fixture
def controller(pbx: Pbx, tmp_path: Path) -> Iterator[ControllerProcess]:
    ctl = ControllerProcess(pbx, tmp_path / "controller.log")
    ctl.start()
    try:
        yield ctl
    finally:
        ctl.stop()


@pytest.fixture
async def ari(pbx: Pbx) -> AsyncIterator[AriClient]:
    user, password = pbx.ari_credentials()
    client = AriClient(pbx.rt.ari_url(), user, password, "phonebank-tests")
    await client.open()
    try:
        yield client
    finally:
        # Leave no calls behind for the next test.
        for ch in await client.get("channels"):
            try:
                await client.delete(f"channels/{ch['id']}")
            except Exception:
                pass
        await asyncio.sleep(0.5)
        await client.close()


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium through Playwright (tests that need a fake microphone define their own)."""
    async with async_playwright() as pw:
        b = await pb_browser.launch(pw)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def panel(tmp_path: Path) -> AsyncIterator[PanelKit]:
    """The panel on a fake-ARI controller: pages, API and push without Asterisk (see tests/fakes.py)."""
    kit = await start_panel(tmp_path)
    try:
        yield kit
    finally:
        await kit.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many end-to-end tests really ran on Asterisk: CI must show them executed, not skipped."""
    counts = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        counts[outcome] = sum(
            1
            for r in terminalreporter.stats.get(outcome, [])
            if getattr(r, "when", "call") == "call" and "asterisk" in getattr(r, "keywords", {})
        )
    terminalreporter.write_line(
        f"tests on the real Asterisk: {counts['passed']} passed, {counts['failed'] + counts['error']} failed, "
        f"{counts['skipped']} skipped"
    )
