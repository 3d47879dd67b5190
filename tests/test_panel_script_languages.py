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


async def test_admin_writes_the_second_version_checked_like_the_first(panel: PanelKit) -> None:
    cid = int(panel.store.create_campaign("Two", script="Hi {first_name}!", survey=SURVEY)["id"])
    panel.store.add_contacts(cid, [{"first_name": "Ada", "phone": "+12025550101", "extra": {"Language": "Spanish"}}])
    admin, csrf = await panel.client("admin")
    page = await _text(admin, f"/admin/efforts/{cid}/script")
    assert 'name="second_language"' in page and 'name="second_script"' not in page  # none chosen yet
    # Choosing the language (and saving) brings the translation boxes.
    chose = await admin.post(f"/admin/efforts/{cid}/script", data=_form(csrf, language="en", second_language="es"))
    assert chose.status == 200  # followed to the page
    page = await chose.text()
    assert 'name="second_script"' in page and 'name="q0_second_text"' in page and 'name="q0_second_options"' in page
    assert panel.store.campaign(cid)["second_language"] == "es"  # type: ignore[index]
    # A field the list does not have is refused in the Spanish script too; nothing is saved, the input is kept.
    bad = await admin.post(
        f"/admin/efforts/{cid}/script",
        data=_form(
            csrf,
            language="en",
            second_language="es",
            second_script="Hola {nombre}",
            q0_second_text="¿Va a votar?",
            q0_second_options="Sí\nNo",
            q1_second_text="",
            q1_second_options="",
        ),
    )
    text = await bad.text()
    assert bad.status == 400 and "{nombre} is not a field" in text and "Hola {nombre}" in text
    assert "¿Va a votar?" in text
    assert panel.store.campaign(cid)["second_script"] == ""  # type: ignore[index]
    # Options: one label per option, in order.
    short = await admin.post(
        f"/admin/efforts/{cid}/script",
        data=_form(
            csrf, language="en", second_language="es", second_script="Hola {first_name}", q0_second_options="Sí"
        ),
    )
    assert short.status == 400 and "one translated option per option" in await short.text()
    # In Spanish for a Spanish admin, with the question named in Spanish too.
    short_es = await admin.post(
        f"/admin/efforts/{cid}/script",
        data=_form(
            csrf, language="en", second_language="es", second_script="Hola {first_name}", q0_second_options="Sí"
        ),
        headers={"Accept-Language": "es"},
    )
    assert (
        short_es.status == 400 and "Pregunta 1: escriba una opción traducida por cada opción" in await short_es.text()
    )
    # The same language twice, or one we do not offer: refused.
    same = await admin.post(f"/admin/efforts/{cid}/script", data=_form(csrf, language="es", second_language="es"))
    assert same.status == 400 and "must differ" in await same.text()
    ok = await admin.post(
        f"/admin/efforts/{cid}/script",
        data=_form(
            csrf,
            language="en",
            second_language="es",
            second_script="Hola {first_name}",
            q0_second_text="¿Va a votar?",
            q0_second_options="Sí\nNo",
            q1_second_text="",
            q1_second_options="",
        ),
        allow_redirects=False,
    )
    assert ok.status == 302, await ok.text()
    effort = panel.store.campaign(cid)
    assert effort is not None and effort["second_script"] == "Hola {first_name}"
    assert effort["survey"][0]["second_text"] == "¿Va a votar?" and effort["survey"][0]["second_options"] == [
        "Sí",
        "No",
    ]
    assert "second_text" not in effort["survey"][1]
    # The review shows both versions, and what is not translated yet.
    review = await _text(admin, f"/admin/efforts/{cid}/review")
    assert "Hola {first_name}" in review and "Hi {first_name}!" in review and "Sí = Yes" in review
    assert "Not translated into Español yet" in review and "q2&#39;s text" in review
    review_es = await admin.get(f"/admin/efforts/{cid}/review", headers={"Accept-Language": "es"})
    assert "el texto de q2" in await review_es.text()
    # Dropping the second language hides the translations; they are kept for when it comes back.
    assert (
        await admin.post(
            f"/admin/efforts/{cid}/script", data=_form(csrf, language="en", second_language=""), allow_redirects=False
        )
    ).status == 302
    effort = panel.store.campaign(cid)
    assert effort is not None and effort["second_language"] == "" and effort["second_script"] == "Hola {first_name}"
    assert effort["survey"][0]["second_options"] == ["Sí", "No"]
    assert 'name="second_script"' not in await _text(admin, f"/admin/efforts/{cid}/script")


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
        f"/api/personal/{sid}/disposition", headers=h, json={"code": "talked", "answers": {}, "language": "xx"}
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
    # The results say it too: the contact's history and the attempts CSV.
    admin, _ = await panel.client("admin")
    ana = next(c for c in panel.store.contacts(cid) if c["first_name"] == "Ana")
    assert "script read in es" in await _text(admin, f"/admin/efforts/{cid}/contacts/{ana['id']}")
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
