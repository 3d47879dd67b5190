"""An effort's script and survey in two languages on the panel (issue 14): the admin writes the second version
(checked as the first), the review shows both, and the caller's screen gets both with the voter's language
preselected; each saved result records the language it was read in (aiohttp test client on a fake ARI)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from store import caller as sc
from tests.fakes import PanelKit

NOON_DC = datetime(2026, 11, 25, 17, 0, tzinfo=UTC).timestamp()
SURVEY: list[dict[str, Any]] = [
    {"id": "q1", "text": "Will you vote?", "kind": "choice", "options": ["Yes", "No"], "show_if": None},
    {"id": "q2", "text": "Anything else?", "kind": "text", "options": [], "show_if": None},
]


def _form(csrf: str, **extra: str) -> list[tuple[str, str]]:
    form = [
        ("_csrf", csrf),
        ("script", "Hi {first_name}!"),
        ("q_count", "2"),
        ("q0_id", "q1"),
        ("q0_text", "Will you vote?"),
        ("q0_kind", "choice"),
        ("q0_options", "Yes\nNo"),
        ("q0_show_if", ""),
        ("q1_id", "q2"),
        ("q1_text", "Anything else?"),
        ("q1_kind", "text"),
        ("q1_options", ""),
        ("q1_show_if", ""),
        ("op", "save"),
    ]
    return form + list(extra.items())


async def _text(client: TestClient, url: str) -> str:
    resp = await client.get(url)
    assert resp.status == 200, await resp.text()
    return await resp.text()


async def test_the_caller_gets_both_versions_and_each_result_its_language(
    panel: PanelKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sc, "clock", lambda: NOON_DC)
    survey = [{**SURVEY[0], "second_text": "¿Va a votar?", "second_options": ["Sí", "No"]}, SURVEY[1]]
    cid = int(
        panel.store.create_campaign(
            "Two",
            join_code="TWOLANG-1234567",
            dial_mode="personal",
            script="Hi {first_name}!",
            survey=survey,
            second_language="es",
            second_script="¡Hola {first_name}!",
        )["id"]
    )
    panel.store.add_contacts(
        cid,
        [
            {"first_name": "Ana", "phone": "+12025551111", "extra": {"Preferred Language": "Spanish"}},
            {"first_name": "Bo", "phone": "+12025552222", "extra": {"Preferred Language": "English"}},
        ],
    )
    user, password = panel.make_user("caller", name="Casey", campaign_id=cid)
    client, csrf = await panel.login(user["username"], password)
    resp = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "personal"}, allow_redirects=False)
    sid = int(resp.headers["Location"].rsplit("/", 1)[1])
    page = await _text(client, f"/call/{cid}/s/{sid}")
    config = json.loads(re.search(r'id="caller-config">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
    assert config["languages"] == [{"code": "en", "name": "English"}, {"code": "es", "name": "Español"}]
    assert config["second_script"] == "¡Hola {first_name}!" and config["survey"][0]["second_options"] == ["Sí", "No"]
    assert 'id="script-language"' in page and 'data-lang="es"' in page
    h = {"X-CSRF-Token": csrf}
    first = await (await client.post(f"/api/personal/{sid}/next", headers=h)).json()
    assert first["contact"]["first_name"] == "Ana" and first["contact"]["script_language"] == "es"
    # Read in Spanish; the answer is the option itself.
    bad = await client.post(
        f"/api/personal/{sid}/disposition", headers=h, json={"code": "talked", "answers": {}, "language": "fr"}
    )
    assert bad.status == 400 and "language" in (await bad.json())["error"]
    second = await (
        await client.post(
            f"/api/personal/{sid}/disposition",
            headers=h,
            json={"code": "talked", "answers": {"q1": "Yes"}, "language": "es"},
        )
    ).json()
    assert second["contact"]["first_name"] == "Bo" and second["contact"]["script_language"] == "en"
    await client.post(
        f"/api/personal/{sid}/disposition",
        headers=h,
        json={"code": "talked", "answers": {"q1": "Sí"}, "language": "en"},
    )
    rows = panel.store._all(
        "SELECT d.language, a.answer FROM dispositions d JOIN survey_answers a ON a.disposition_id = d.id"
    )
    assert sorted((r["language"], r["answer"]) for r in rows) == [("en", "Yes"), ("es", "Yes")]
    # The results' CSV says it too.
    admin, _ = await panel.client("admin")
    csv_text = await _text(admin, f"/admin/efforts/{cid}/export/attempts.csv")
    assert "script_language" in csv_text.splitlines()[0] and ",es" in csv_text


async def test_an_effort_in_one_language_shows_no_toggle(panel: PanelKit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sc, "clock", lambda: NOON_DC)
    cid = int(panel.store.create_campaign("One", dial_mode="personal", script="Hi", survey=SURVEY)["id"])
    user, password = panel.make_user("caller", name="Casey", campaign_id=cid)
    client, csrf = await panel.login(user["username"], password)
    resp = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "personal"}, allow_redirects=False)
    sid = int(resp.headers["Location"].rsplit("/", 1)[1])
    page = await _text(client, f"/call/{cid}/s/{sid}")
    assert 'id="script-language"' not in page and '"second_script": ""' in page
