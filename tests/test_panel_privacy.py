"""Voters' numbers stay on the server unless the effort uses personal-phone dialing."""

from __future__ import annotations

import time

from bridge import dialer as d
from panel.views import session_view
from store.contacts import about_fields
from tests.fakes import PanelKit


def test_about_fields_drop_other_numbers_keep_the_rest() -> None:
    extra = {
        "ward": "3",
        "phone2": "+12025550100",
        "Cell": "yes",
        "Contact": "(202) 555-0100",
        "zip4": "20001-1234",
        "Precinct": "12",
        "Mobile number": "2025550101",
        "Notes": "home 202-555-0100",
        "Alt": "202/555/0100 ext 12",
        "Postal": "202-555-0100",
        "Born": "1950-03-04",
    }
    assert about_fields(extra) == {"ward": "3", "zip4": "20001-1234", "Precinct": "12", "Born": "1950-03-04"}


async def test_session_view_shows_a_number_only_for_personal_phone(panel: PanelKit) -> None:
    for mode, shown in (("power", False), ("personal", True)):
        cid = panel.store.create_campaign(f"Privacy {mode}", dial_mode=mode)["id"]
        panel.store.add_contacts(
            cid, [{"first_name": "Pat", "phone": "+12025550142", "extra": {"phone2": "+12025550143", "ward": "5"}}]
        )
        contact = panel.store.contacts(cid)[0]
        sid = panel.store.create_session(cid, "Vol")["id"]
        call_id = f"pb-privacy-{mode}"
        panel.store.insert_call(call_id, cid, contact["id"], 1, call_id, time.time())
        panel.ctl.dialer.volunteers[sid] = d.vol.Volunteer(sid, cid, state=d.vol.VState.TALKING, call_id=call_id)
        view = session_view(panel.ctl, sid, "+12025550100")
        assert view is not None
        text = repr(view)
        assert ("2025550142" in text) is shown
        assert "2025550143" not in text  # other numbers stay on the server, personal phone or not
        assert view["contact"]["extra"]["ward"] == "5"
