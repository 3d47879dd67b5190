"""The call-in instructions without a DID (issue 13): no "Call callin" as if it were a phone number. Callers are
shown the extension and that a SIP softphone reaches it; admins are warned. With a DID: a tel: link, no warning."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from panel.common import callin_dialable
from tests.fakes import PanelKit, start_panel
from tests.test_panel_caller import _caller_for, _effort, _start_session


@pytest.fixture
async def no_did_panel(tmp_path: Path) -> AsyncIterator[PanelKit]:
    kit = await start_panel(tmp_path, callin_number="callin")  # PHONEBANK_CALLIN_NUMBER unset
    try:
        yield kit
    finally:
        await kit.close()


def test_callin_dialable() -> None:
    for number in ("+12025550100", "(202) 555-0100", "+44 20 7946 0958", "5000"):
        assert callin_dialable(number), number
    for number in ("callin", "", "+", "12", "sip:callin@pbx", "join"):
        assert not callin_dialable(number), number


async def test_without_a_did_callers_get_the_extension_and_the_softphone_way(no_did_panel: PanelKit) -> None:
    panel = no_did_panel
    cid = _effort(panel, status="active")
    client, csrf, _ = await _caller_for(panel, cid)
    audio = await (await client.get(f"/call/{cid}")).text()
    assert "You call callin" not in audio
    assert '<strong class="big-number callin-ext">callin</strong> from a SIP softphone' in audio
    assert "no phone number to call in yet" in audio
    sid = await _start_session(client, csrf, cid)
    page = await (await client.get(f"/call/{cid}/s/{sid}")).text()
    assert 'href="tel:callin"' not in page
    assert 'Call <strong class="big-number callin-ext">callin</strong> from a SIP softphone' in page
    assert 'class="flash small no-callin-number"' in page and "a regular phone cannot reach it" in page
    # The admin is told, on the efforts list and on Review.
    admin, _ = await panel.client("admin")
    listing = await (await admin.get("/admin/efforts")).text()
    assert 'id="no-did-warning"' in listing and "PHONEBANK_CALLIN_NUMBER is not set" in listing
    review = await (await admin.get(f"/admin/efforts/{cid}/review")).text()
    assert "Volunteers have no phone number to call in" in review and "Everything is in place" not in review


async def test_with_a_did_it_is_a_number_to_call_and_no_warning(panel: PanelKit) -> None:
    cid = _effort(panel, status="active")
    client, csrf, _ = await _caller_for(panel, cid)
    sid = await _start_session(client, csrf, cid)
    page = await (await client.get(f"/call/{cid}/s/{sid}")).text()
    assert 'Call <a class="big-number" href="tel:+12025550100">+12025550100</a>' in page
    assert "no-callin-number" not in page and "from a SIP softphone" not in page.split('id="phone-panel"')[1][:600]
    admin, _ = await panel.client("admin")
    assert 'id="no-did-warning"' not in await (await admin.get("/admin/efforts")).text()
    assert "Volunteers have no phone number" not in await (await admin.get(f"/admin/efforts/{cid}/review")).text()
