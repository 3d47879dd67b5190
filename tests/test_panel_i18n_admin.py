"""The organisers' screens in Spanish (issue 14): the catalogue is complete for everything the tooling extracts
(babel.toml: templates, the server's N_/M_ messages, the dashboard's words), and every admin and results page,
rendered for a Spanish browser, shows none of the English of our msgids (no browser, no Asterisk)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from babel.messages.pofile import read_po

from panel import i18n, login, results
from panel.results import dashboard_data
from store import caller as sc
from store import recordings
from store import results as r
from store.messages import M_, N_
from tests.fakes import PanelKit
from tests.test_panel_i18n import JS_LITERAL, _js_strings, _Text
from tests.test_panel_results import go_live, seed

ROOT = Path(i18n.HERE).parent
PO = i18n.TRANSLATIONS_DIR / "es" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def _catalogue() -> Any:
    with PO.open("rb") as fh:
        return read_po(fh, locale="es")


def _extracted(tmp_path: Path) -> Any:
    """What ``pybabel extract -F babel.toml`` (docs/PANEL.md) finds in the tree now."""
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [str(pybabel), "extract", "-F", "babel.toml", "--no-location", "-o", str(pot), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as fh:
        return read_po(fh)


def test_the_spanish_catalogue_is_complete(tmp_path: Path) -> None:
    """Every string the tooling extracts is in the Spanish catalogue, translated, not fuzzy, with the same
    placeholders; the catalogue itself has no blank or fuzzy entry (obsolete ones aside)."""
    catalogue = _catalogue()
    assert not catalogue.fuzzy, "a fuzzy catalogue header: pybabel compile would skip it"
    assert catalogue.plural_forms.startswith("nplurals=")
    extracted = [m.id for m in _extracted(tmp_path) if m.id]
    assert len(extracted) > 600  # templates, server messages and the dashboard's words all extracted
    missing = sorted(str(m) for m in extracted if m not in catalogue)
    assert not missing, f"run pybabel extract + update (docs/PANEL.md, Languages): not in the catalogue: {missing}"
    blank, fuzzy = [], []
    for m in catalogue:
        if not m.id:
            continue
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if not all(strings):
            blank.append(m.id)
        if m.fuzzy:
            fuzzy.append(m.id)
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        for said in strings:  # a placeholder lost or misspelt would fail (or show raw) at render time
            assert sorted(PLACEHOLDER.findall(ids[-1])) == sorted(PLACEHOLDER.findall(said)), m.id
    assert not blank, f"no Spanish yet: {blank}"
    assert not fuzzy, f"fuzzy (unchecked) translations: {fuzzy}"


def test_messages_with_values_are_translated_with_their_values() -> None:
    es = i18n.translations("es")
    msg = M_("Not saved: %(reason)s.", reason=M_("not a phone number"))
    assert msg == "Not saved: not a phone number." and isinstance(msg, str)  # English as a plain string
    assert i18n.translate(es, msg) == "No se guardó: no es un número de teléfono."
    typed = M_("Not created: %(reason)s.", reason="Login")  # a value as typed is not looked up
    assert i18n.translate(es, typed) == "No se creó: Login."
    assert i18n.translate(es, N_("Saved.")) == "Guardado."
    assert i18n.translate(i18n.translations("en"), msg) == str(msg)
    assert i18n.reason(ValueError(msg)) is msg
    assert set(results.CONTACT_STATUS_WORDS) == set(r.CONTACT_STATUSES)
    wait = M_("Too many failed attempts: wait %(wait)s and try again.", wait=login._wait_text(120))
    assert wait == "Too many failed attempts: wait 2 minutes and try again."
    assert i18n.translate(es, wait) == "Demasiados intentos fallidos: espere 2 minutos y vuelva a intentarlo."


def _english() -> set[str]:
    """Each msgid's English words (markup and placeholders taken out) where Spanish says it differently."""
    out: set[str] = set()
    for m in _catalogue():
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        for english in ids:
            if english in strings:
                continue  # the same in both languages ("Audio", "VAN ID")
            plain = re.sub(r"<[^>]+>", " ", english).replace("&amp;", "&").replace("%%", "%")
            for piece in PLACEHOLDER.split(plain):
                piece = " ".join(piece.split())
                if len(piece) >= 4 and all(piece.lower() != s.lower() for s in strings):
                    out.add(piece)
    return out


class _Prose(_Text):
    """The page's words as a person reads them, without <code> (term codes, outcome codes, join codes: the same
    identifiers in every language)."""

    def __init__(self) -> None:
        super().__init__()
        self._code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._code += tag == "code"
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self._code -= tag == "code"
        super().handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if not self._code:
            super().handle_data(data)


# VAN's own names, which the Spanish keeps as VAN spells them (the organiser types them into VAN or finds them in
# a VAN export): "Home Phone" is not our "Phone", "Refused" there is VAN's result, not our term code.
VAN_NAMES = ("Home Phone", "Cell Phone", '"Canvassed"', '"Not Home"', '"Refused"', '"Wrong Number"')


def _prose(html: str) -> str:
    parser = _Prose()
    parser.feed(html)
    text = " ".join(" ".join(parser.chunks).split())
    for name in VAN_NAMES:
        text = text.replace(name, " ")
    return text


def _left(html: str, english: set[str]) -> list[str]:
    text = _prose(html)
    return sorted(e for e in english if re.search(rf"(?<!\w){re.escape(e)}(?!\w)", text))


# A list in the file's own words (lower-case headers, Spanish data): nothing on the page is English but ours.
LISTA = (
    "first_name,last_name,phone,city,state,zip,barrio,phone_2\n"
    "Ana,García,(202) 555-0101,Hialeah,FL,33010,3,202-555-0191\n"
    "Beto,García,202-555-0101,Hialeah,FL,33010,3,\n"
    "Carmen,Ruiz,12345,Hialeah,FL,33012,5,202-555-0192 ext 4\n"
    "Dora,Luna,,Hialeah,FL,33012,5,\n"
)


async def _get(client: TestClient[Any, Any], url: str, status: int = 200) -> str:
    resp = await client.get(url)
    html = await resp.text()
    assert resp.status == status, (url, resp.status, html[:500])
    return html


async def _post(client: TestClient[Any, Any], url: str, data: Any, status: int = 200) -> str:
    resp = await client.post(url, data=data)
    html = await resp.text()
    assert resp.status == status, (url, resp.status, html[:500])
    return html


async def _admin_pages(panel: PanelKit) -> dict[str, str]:
    """Every organiser's screen, in the states that show the most of it, as a Spanish browser gets them."""
    admin, csrf = await panel.client("admin", username="jefa", name="Marta")
    admin.session.cookie_jar.update_cookies({i18n.COOKIE: "es"})
    pages: dict[str, str] = {"efforts_empty": await _get(admin, "/admin/efforts")}
    pages["new"] = await _get(admin, "/admin/efforts/new")
    pages["new_error"] = await _post(admin, "/admin/efforts/new", {"_csrf": csrf, "title": ""}, 400)
    made = await admin.post(
        "/admin/efforts/new", data={"_csrf": csrf, "title": "Campaña de otoño", "description": "Barrio 3"}
    )
    cid = int(re.search(r"/admin/efforts/(\d+)/", str(made.url)).group(1))  # type: ignore[union-attr]
    pages["edit_created"] = await made.text()
    pages["edit_error"] = await _post(
        admin,
        f"/admin/efforts/{cid}/edit",
        {"_csrf": csrf, "title": "x", "launch": "schedule", "start_at": "ayer"},
        400,
    )
    pages["list_empty"] = await _get(admin, f"/admin/efforts/{cid}/list")
    form = FormData()
    form.add_field("_csrf", csrf)
    form.add_field("file", LISTA.encode(), filename="lista.csv", content_type="text/csv")
    uploaded = await admin.post(f"/admin/efforts/{cid}/list/upload", data=form)
    pages["list_report"] = await uploaded.text()
    png = FormData()
    png.add_field("_csrf", csrf)
    png.add_field("file", b"\x89PNG\r\n\x1a\n" + bytes(64), filename="lista.csv", content_type="text/csv")
    refused = await admin.post(f"/admin/efforts/{cid}/list/upload", data=png)
    assert refused.status == 400
    pages["list_refused"] = await refused.text()
    assert "upload=" in str(uploaded.url), pages["list_report"][:500]
    token = str(uploaded.url).split("upload=")[1]
    mapping = re.findall(r'<select name="map".*?<option value="([^"]+)" selected', pages["list_report"], re.S)
    data = [("_csrf", csrf), ("token", token), ("household", "once"), ("skip_bad", "1")]
    data += [("expect_valid", re.search(r'name="expect_valid" value="(\d+)"', pages["list_report"]).group(1))]  # type: ignore[union-attr]
    imported = await admin.post(f"/admin/efforts/{cid}/list/import", data=data + [("map", m) for m in mapping])
    pages["list_imported"] = await imported.text()
    survey = {
        "_csrf": csrf,
        "op": "add",
        "script": "Hola {first_name}, le llamo de parte de la campaña.",
        "q_count": "0",
        "new_text": "¿Va a votar?",
        "new_kind": "choice",
        "new_options": "Sí\nTal vez",
    }
    pages["script"] = await (await admin.post(f"/admin/efforts/{cid}/script", data=survey)).text()
    pages["script_error"] = await _post(
        admin, f"/admin/efforts/{cid}/script", {**survey, "script": "Hola {telefono_secreto}", "new_text": ""}, 400
    )
    pages["settings"] = await _get(admin, f"/admin/efforts/{cid}/settings")
    pages["settings_error"] = await _post(
        admin,
        f"/admin/efforts/{cid}/settings",
        {"_csrf": csrf, "call_method": "computer", "dial_mode": "power", "dial_ratio": "muchas", "max_attempts": "0"},
        400,
    )
    recordings.request(panel.store, cid)
    pages["settings_record"] = await _get(admin, f"/admin/efforts/{cid}/settings")
    pages["review"] = await _get(admin, f"/admin/efforts/{cid}/review")
    pages["finish_error"] = await _post(admin, f"/admin/efforts/{cid}/finish", {"_csrf": csrf}, 400)
    finished = await admin.post(f"/admin/efforts/{cid}/finish", data={"_csrf": csrf, "confirm": "1"})
    pages["review_finished"] = await finished.text()
    pages["list_frozen"] = await _get(admin, f"/admin/efforts/{cid}/list")
    pages["frozen_refusal"] = await _post(admin, f"/admin/efforts/{cid}/list/clear", {"_csrf": csrf}, 409)
    paused = await admin.post(f"/admin/efforts/{cid}/pause", data={"_csrf": csrf, "back": "review"})
    pages["review_paused"] = await paused.text()
    pages["efforts"] = await _get(admin, "/admin/efforts")

    # Users and roles, with a shift login on the list and a refusal.
    panel.make_user("caller", name="Beto", campaign_id=cid, expires_at=time.time() + 3600)
    pages["users"] = await _get(admin, "/admin/users")
    pages["users_error"] = await _post(
        admin, "/admin/users", {"_csrf": csrf, "op": "create_user", "username": "x", "password": "corta"}, 400
    )
    pages["role_error"] = await _post(admin, "/admin/users", {"_csrf": csrf, "op": "save_role", "role_name": ""}, 400)

    # Results: the dashboard live (callers on the line, a call ringing), a contact's history, VAN, bans.
    s = seed(panel)
    go_live(panel, s)
    pages["dashboard"] = await _get(admin, f"/admin/efforts/{s['cid']}/results")
    pages["dashboard_search"] = await _get(admin, f"/admin/efforts/{s['cid']}/results?q=zzz&status=done")
    pages["contact"] = await _get(admin, f"/admin/efforts/{s['cid']}/contacts/{s['ids'][0]}")
    pages["contact_new"] = await _get(admin, f"/admin/efforts/{s['cid']}/contacts/{s['ids'][5]}")
    pages["van"] = await _get(admin, f"/admin/efforts/{s['cid']}/van")
    pages["van_saved"] = await _post(admin, f"/admin/efforts/{s['cid']}/van", {"_csrf": csrf})
    pages["bans"] = await _get(admin, f"/admin/efforts/{s['cid']}/bans")
    bad = {"_csrf": csrf, "action": "ban", "kind": "phone", "value": "no es un número"}
    pages["ban_error"] = await _post(admin, f"/admin/efforts/{s['cid']}/bans", bad, 400)
    good = {"_csrf": csrf, "action": "ban", "kind": "email", "value": "beto@example.org", "reason": "grosero"}
    pages["banned"] = await _post(admin, f"/admin/efforts/{s['cid']}/bans", good)
    pages["unbanned"] = await _post(
        admin, f"/admin/efforts/{s['cid']}/bans", {"_csrf": csrf, "action": "unban", "kind": "email", "value": "b"}
    )

    # Planning, feedback, the account page.
    pages["forecast"] = await _get(admin, "/admin/forecast")
    pages["forecast_error"] = await _post(admin, "/admin/forecast", {"_csrf": csrf, "list_size": "mucho"}, 400)
    sc.add_feedback(
        panel.store, kind="script", text="El guion es largo", user_id=None, campaign_id=cid, session_id=None
    )
    row = sc.add_feedback(panel.store, kind="problem", text="Se cortó", user_id=None, campaign_id=None, session_id=None)
    sc.resolve_feedback(panel.store, row["id"], resolved=True)
    pages["feedback"] = await _get(admin, "/admin/feedback")
    pages["feedback_all"] = await _get(admin, "/admin/feedback?show=all")
    pages["account"] = await _get(admin, "/account")

    # A role that may not: the refusal page.
    caller, _ = await panel.client("caller", name="Beto")
    caller.session.cookie_jar.update_cookies({i18n.COOKIE: "es"})
    pages["not_allowed"] = await _get(caller, "/admin/users", 403)
    return pages


async def test_every_admin_page_renders_in_spanish_with_no_english_left(panel: PanelKit) -> None:
    english = _english()
    assert len(english) > 500
    pages = await _admin_pages(panel)
    assert all('<html lang="es">' in html for html in pages.values())
    left = {name: found for name, html in pages.items() if (found := _left(html, english))}
    assert not left, f"English left on Spanish pages: {left}"
    # The pages are the states they claim to be, in Spanish.
    assert "Campañas de llamadas" in pages["efforts"] and "En pausa" in pages["efforts"]
    assert "El título es obligatorio." in pages["new_error"]
    assert "Asigne las columnas" in pages["list_report"] and "tienen problemas" in pages["list_report"]
    assert "falta el número de teléfono" in pages["list_report"] and "se llama a phone_2" in pages["list_report"]
    assert "Esto no es un archivo CSV: es una imagen PNG." in pages["list_refused"]
    assert "Lista importada. Se agregaron" in pages["list_imported"]
    assert "Preguntas de la encuesta" in pages["script"] and "Opción múltiple" in pages["script"]
    assert "No se guardó" in pages["script_error"] and "No se guardó" in pages["settings_error"]
    assert "Grabar por teléfono: llame al" in pages["settings_record"]
    assert "Sin identificador de llamada" in pages["review"]
    assert "La lista está congelada" in pages["frozen_refusal"]
    assert "acceso de turno, caduca" in pages["users"]
    assert "Voluntarios en línea" in pages["dashboard"] and "Hablando" in pages["dashboard"]
    assert "Asesorar a un voluntario" in pages["dashboard"] and "Simpatizante" in pages["dashboard"]
    assert "Ningún contacto coincide." in pages["dashboard_search"]
    assert "no es un número de teléfono" in pages["ban_error"]
    assert "Bloqueado. Se detuvieron 0 sesiones abiertas." in pages["banned"]
    assert "Asignación guardada." in pages["van_saved"]
    assert "escriba un número, por favor" in pages["forecast_error"]
    assert "Comentarios de los voluntarios" in pages["feedback_all"] and "Resuelto el" in pages["feedback_all"]
    assert "No permitido" in pages["not_allowed"] and "Crear y dirigir campañas" not in pages["not_allowed"]
    assert "Administrar usuarios y roles" in pages["not_allowed"] and "Su rol (voluntario)" in pages["not_allowed"]
    assert "Marta · administrador" in pages["users"] and "coordinador" in pages["users"]


async def test_the_live_dashboard_speaks_the_viewers_language(panel: PanelKit) -> None:
    """What the WebSocket sends (dashboard_data) is in the language the page was rendered in."""
    s = seed(panel)
    go_live(panel, s)
    english = _english()
    es = dashboard_data(panel.server.app, s["cid"], "es")
    words = " ".join(
        [t["label"] + " " + t["sub"] + " " + t["value"] for t in es["tiles"]]
        + [c["state_label"] for c in es["callers"]]
        + [it.get("text", "") + " " + it.get("title", "") for c in es["charts"].values() for it in _items(c)]
        + [item["label"] for item in es["charts"]["attempts"]["legend"]]
        + [es["callers_empty"]]
    )
    tiles = {t["id"]: t for t in es["tiles"]}
    assert tiles["volunteers"]["label"] == "Voluntarios en línea" and tiles["attempts"]["label"] == "Intentos"
    assert "contestadas" in tiles["attempts"]["sub"] and "límite" in tiles["abandon-rate"]["sub"]
    left = sorted(e for e in english if re.search(rf"(?<!\w){re.escape(e)}(?!\w)", words))
    assert not left, f"English left in the Spanish dashboard data: {left}"
    assert es["callers_empty"] == "Aún no se ha unido ningún voluntario."
    live = panel.ctl.dialer.volunteers
    live[s["alice"]] = dataclasses.replace(live[s["alice"]], coached="whisper")
    coached = {c["name"]: c for c in dashboard_data(panel.server.app, s["cid"], "es")["callers"]}["Alice"]
    assert coached["coached_text"] == "asesoría: susurrar" and coached["coached"] == "whisper"
    en = dashboard_data(panel.server.app, s["cid"])
    assert {t["id"]: t for t in en["tiles"]}["volunteers"]["label"] == "Volunteers on line"
    assert en["stats"] == es["stats"]  # the figures (and their keys) do not depend on the language


def _items(chart: Any) -> list[dict[str, Any]]:
    specs = chart if isinstance(chart, list) else [chart]
    return [it for c in specs for it in (c.get("spec", c)["items"])]


@pytest.mark.parametrize("headers", [{}, {"Accept-Language": "fr-FR"}], ids=["no-header", "no-catalogue"])
async def test_admin_pages_stay_english_by_default(panel: PanelKit, headers: dict[str, str]) -> None:
    admin, _ = await panel.client("admin")
    resp = await admin.get("/admin/efforts", headers=headers)
    html = await resp.text()
    assert '<html lang="en">' in html and "Phone bank efforts" in html and "Campañas" not in html


def test_results_js_writes_no_english_of_its_own() -> None:
    """Every sentence results.js shows goes through tr() (its strings come translated from the page, or from
    dashboard_data in the viewer's language): no literal sentence outside it."""
    src = (i18n.HERE / "static" / "results.js").read_text()
    calls = re.findall(rf"(?<![\w.$])tr\(\s*({JS_LITERAL}(?:\s*\+\s*{JS_LITERAL})*)", src)
    pieces = {literal for call in calls for literal in re.findall(JS_LITERAL, call)}
    # A sentence: a capitalised word, then a space and more words (not a header name such as "Content-Type").
    sentences = [lit for lit in re.findall(JS_LITERAL, src) if re.match(r'"[A-Z][a-z]+ \w', lit)]
    assert sentences, "the check found the script's sentences"
    assert not [s for s in sentences if s not in pieces], "results.js shows English outside tr()"


async def test_the_coaching_cards_script_strings_come_translated(panel: PanelKit) -> None:
    """results.js's tr() strings (and the modes it names) are in the dashboard's JSON block, in Spanish."""
    wanted = set(_js_strings("results.js", "tr")) | {"listen", "whisper", "barge"}
    s = seed(panel)
    admin, csrf = await panel.client("admin")
    admin.session.cookie_jar.update_cookies({i18n.COOKIE: "es"})
    html = await _get(admin, f"/admin/efforts/{s['cid']}/results")
    # The coach API's refusals, which the card shows as they come, are in the page's language too.
    stop = await admin.post(f"/api/efforts/{s['cid']}/coach", json={"mode": "stop"}, headers={"X-CSRF-Token": csrf})
    assert stop.status == 404 and (await stop.json())["error"] == "no está asesorando a nadie"
    block = re.search(r'<script type="application/json" id="coach-strings">(.*?)</script>', html, re.S)
    assert block, "the dashboard passes results.js its strings"
    strings = json.loads(block.group(1))
    assert not wanted - set(strings), f"results.js strings missing from the block: {wanted - set(strings)}"
    for english in wanted:
        said = strings[english]
        assert said != english and sorted(re.findall(r"\{\w+\}", said)) == sorted(re.findall(r"\{\w+\}", english))


async def test_why_an_effort_is_not_open_reads_spanish(panel: PanelKit) -> None:
    """The store's join refusals (store.caller.join_refusal) and sign-in checks reach a Spanish caller in Spanish."""
    panel.store.create_campaign("Campaña cerrada", join_code="CERRADA-1234567", status="closed")
    panel.store.create_campaign("Campaña abierta", join_code="ABIERTA-1234567")
    anon = await panel.anonymous()
    anon.session.cookie_jar.update_cookies({i18n.COOKIE: "es"})
    html = await _get(anon, "/join/CERRADA-1234567", 403)
    assert "Este banco de llamadas ya cerró." in html and "has closed" not in html
    signin = {"name": "Ana", "email": "ana-sin-arroba", "phone": "2025550123", "_csrf": await panel.pre_csrf(anon)}
    html = await _post(anon, "/join/ABIERTA-1234567", signin, 400)
    assert "se necesita una dirección de correo electrónico válida" in html and "is required" not in html


async def test_the_call_in_guard_alert_reads_spanish(panel: PanelKit) -> None:
    """Guessing at the call-in: the dashboard's alert (callin.guard.alert) in the viewer's language."""
    from callin import guard as g

    cid = panel.store.create_campaign("Campaña")["id"]
    now = time.time()
    for i in range(6):
        panel.ctl._guard(g.Wrong("+12025550177"), now - 600 + i)
    for i in range(14):
        panel.ctl._guard(g.Wrong(f"+1202555{i:04d}"), now - 60 + i)
    es = dashboard_data(panel.server.app, cid, "es")["callin_alert"]
    assert es.startswith("20 códigos de entrada incorrectos en la última hora, 1 número bloqueado. Puede que alguien")
    assert dashboard_data(panel.server.app, cid)["callin_alert"].startswith("20 wrong call-in codes in the last hour")
    admin, _ = await panel.client("admin")
    admin.session.cookie_jar.update_cookies({i18n.COOKIE: "es"})
    html = await _get(admin, f"/admin/efforts/{cid}/results")
    assert "20 códigos de entrada incorrectos" in html and "wrong call-in" not in html


async def test_the_waiting_reason_reads_spanish(panel: PanelKit) -> None:
    """Why nothing is dialled (bridge.waiting): on a Spanish dashboard's Dialling tile, and on the calling screen
    of a session that joined in Spanish; English for the others."""
    from bridge.volunteer import Volunteer, VState
    from panel.views import session_view

    cid = panel.store.create_campaign("Campaña en pausa", status="paused")["id"]
    es_session, en_session = panel.store.create_session(cid, "Ana"), panel.store.create_session(cid, "Bea")
    panel.store.update_session(es_session["id"], language="es")
    for s in (es_session, en_session):
        panel.ctl.dialer.volunteers[s["id"]] = Volunteer(s["id"], cid, state=VState.IDLE, since=time.time())
    tile = {t["id"]: t for t in dashboard_data(panel.server.app, cid, "es")["tiles"]}["dialing"]
    assert (
        tile["sub"] == "Los organizadores pusieron en pausa esta campaña; las llamadas se reanudan cuando la reactiven."
    )
    es = session_view(panel.ctl, es_session["id"], "callin")
    en = session_view(panel.ctl, en_session["id"], "callin")
    assert es and en and es["waiting"]["code"] == en["waiting"]["code"] == "paused"
    assert es["waiting"]["text"].startswith("Los organizadores pusieron en pausa")
    assert en["waiting"]["text"] == "The organisers have paused this effort; calls resume when they restart it."


def _unmarked(src: str) -> list[str]:
    """Words a template shows outside _(), {% trans %} and {{ values }}: text a translator never sees."""
    for pattern in (
        r"\{%-?\s*trans\b.*?endtrans\s*-?%\}",  # marked
        r"\{%-?\s*block body_class\s*%\}.*?\{%-?\s*endblock\s*%\}",  # a CSS class name
        r"\{#.*?#\}|<!--.*?-->|\{\{.*?\}\}|\{%.*?%\}",  # comments, values, tags
        r"<script\b.*?</script>|<style\b.*?</style>",
        r"&\w+;|/join/|[A-Z]{7}-\d{7}",  # entities, the join path, a join code's shape
    ):
        src = re.sub(pattern, " ", src, flags=re.S)
    shown = re.findall(r'\b(?:placeholder|title|aria-label|label|alt)="([^"]*)"', src)
    text = re.sub(r"<[^>]+>", " ", src) + " " + " ".join(shown)
    return re.findall(r"[A-Za-z]{2,}", text)


def test_every_template_marks_its_words_for_translation() -> None:
    """No English typed straight into a template (the catalogue checks above cannot see an unmarked string)."""
    templates = sorted((i18n.HERE / "templates").rglob("*.html"))
    assert len(templates) > 30
    left = {str(p.relative_to(i18n.HERE)): words for p in templates if (words := _unmarked(p.read_text()))}
    assert not left, f"wrap these in _() or {{% trans %}}: {left}"
