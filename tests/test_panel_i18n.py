"""The panel in Spanish (issue 14): the catalogue covers every string of the caller's screens, and a Spanish
caller's screens render with no English string of ours left; English stays the default (no browser, no Asterisk)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from babel.messages.extract import extract_python
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from panel import i18n, webphone
from tests.fakes import PanelKit

TEMPLATES = Path(i18n.HERE) / "templates"
# The caller's screens: joining, signing in, the audio step, the calling screen and its cards, the softphone page.
CALLER_TEMPLATES = [
    "base.html",
    "login.html",
    "_callin.html",
    *(f"caller/{p.name}" for p in sorted((TEMPLATES / "caller").glob("*.html"))),
]
CODE = "ABCDEFG-1234567"
ES = {"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"}


def _catalogue() -> dict[str, Any]:
    with (i18n.TRANSLATIONS_DIR / "es" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return {m.id: m for m in read_po(fh, locale="es") if m.id}


def _msgids(template: str) -> list[str]:
    """The strings a template marks for translation, as pybabel extract (babel.toml) sees them."""
    with (TEMPLATES / template).open("rb") as fh:
        found = babel_extract(fh, ("gettext", "ngettext", "_"), [], {"extensions": "", "trimmed": "true"})
        return [msg if isinstance(msg, str) else msg[0] for _, _, msg, _ in found]


def _caller_ids() -> set[str]:
    """The caller templates' strings and the default term codes the calling screen shows."""
    return {m for t in CALLER_TEMPLATES for m in _msgids(t)} | {
        m for _, _, m, _ in i18n.extract_default_labels(0, 0, 0, 0)
    }


def test_every_caller_string_has_a_spanish_translation() -> None:
    with (i18n.TRANSLATIONS_DIR / "es" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        assert not read_po(fh, locale="es").fuzzy, "a fuzzy catalogue header: pybabel compile would skip it"
    catalogue = _catalogue()
    ids = _caller_ids()
    assert len(ids) > 100  # the extraction found the screens' strings (not an empty pass)
    missing = sorted(m for m in ids if m not in catalogue)
    assert not missing, f"run pybabel extract/update (docs/PANEL.md): not in the catalogue: {missing}"
    empty = sorted(m for m in ids if not catalogue[m].string or catalogue[m].fuzzy)
    assert not empty, f"no Spanish yet: {empty}"
    for m in ids:  # a placeholder lost or misspelt in the translation would fail at render time
        assert sorted(re.findall(r"%\(\w+\)s", m)) == sorted(re.findall(r"%\(\w+\)s", catalogue[m].string)), m


class _Text(HTMLParser):
    """What a person reads on the page: text nodes and the attributes a browser shows (placeholder, label)."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.chunks += [v for k, v in attrs if k in ("placeholder", "label", "title", "aria-label") and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.chunks.append(data)


def _text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.chunks).split())


def _english_fragments() -> set[str]:
    """Each caller msgid's English words (markup and placeholders taken out), where Spanish says it differently."""
    catalogue = _catalogue()
    out: set[str] = set()
    for m in _caller_ids():
        if catalogue[m].string == m:
            continue  # the same in both languages ("Audio")
        plain = re.sub(r"<[^>]+>", " ", m).replace("&amp;", "&")
        for piece in re.split(r"%\(\w+\)s", plain):
            piece = " ".join(piece.split())
            if len(piece) >= 4 and piece.lower() != catalogue[m].string.lower():
                out.add(piece)
    return out


async def _pages(panel: PanelKit, headers: dict[str, str]) -> dict[str, str]:
    """Every caller screen as this browser gets it, from the join form to the calling screen (each audio)."""
    cid = int(panel.store.create_campaign("Get out the vote", join_code=CODE, script="Hi {first_name}")["id"])
    personal = int(panel.store.create_campaign("Own phones", join_code="HIJKLMN-7654321", dial_mode="personal")["id"])
    anon = await panel.anonymous()
    pages = {
        "join": await (await anon.get("/join", headers=headers)).text(),
        "effort": await (await anon.get(f"/join/{CODE}", headers=headers)).text(),
        "login": await (await anon.get("/login", headers=headers)).text(),
    }
    pre = await panel.pre_csrf(anon)
    signin = {"name": "Ana", "email": "ana@example.org", "phone": "2025550123", "_csrf": pre}
    pages["your_login"] = await (await anon.post(f"/join/{CODE}", data=signin, headers=headers)).text()
    user, password = panel.make_user("caller", name="Ana", campaign_id=cid)
    client, csrf = await panel.login(user["username"], password)
    pages["audio"] = await (await client.get(f"/call/{cid}", headers=headers)).text()
    pages["session_phone"] = await _session(client, csrf, cid, "phone", headers)
    pages["session_computer"] = await _session(client, csrf, cid, "computer", headers)
    chose = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": "sip"}, allow_redirects=False)
    pages["softphone"] = await (await client.get(chose.headers["Location"], headers=headers)).text()
    shown = await client.post(chose.headers["Location"], data={"_csrf": csrf}, headers=headers)
    pages["softphone_login"] = await shown.text()
    mine, mine_pw = panel.make_user("caller", name="Bea", campaign_id=personal)
    own, own_csrf = await panel.login(mine["username"], mine_pw)
    pages["audio_personal"] = await (await own.get(f"/call/{personal}", headers=headers)).text()
    pages["session_personal"] = await _session(own, own_csrf, personal, "personal", headers)
    return pages


async def _session(client: TestClient, csrf: str, cid: int, audio: str, headers: dict[str, str]) -> str:
    resp = await client.post(f"/call/{cid}", data={"_csrf": csrf, "audio": audio}, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    page = await client.get(resp.headers["Location"], headers=headers)
    assert page.status == 200
    return await page.text()


@pytest.fixture
def computer_audio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webphone, "webrtc_ws_url", lambda app: "wss://127.0.0.1:8089/ws")


async def test_a_spanish_callers_screens_have_no_english_left(panel: PanelKit, computer_audio: None) -> None:
    english = _english_fragments()
    pages = await _pages(panel, ES)
    for name, html in pages.items():
        assert '<html lang="es">' in html, name
        text = _text(html)
        left = sorted(e for e in english if re.search(rf"(?<!\w){re.escape(e)}(?!\w)", text))
        assert not left, f"{name}: English left on a Spanish page: {left}"
    assert "Buscando a su próximo votante" in pages["session_phone"]
    assert "Audio de la computadora" in pages["session_computer"] and 'id="webphone"' in pages["session_computer"]
    assert "Después marque" in pages["softphone_login"]
    assert "Su acceso para Get out the vote" in pages["your_login"]
    assert "Simpatizante" in pages["session_phone"] and "Número equivocado" in pages["session_phone"]


@pytest.mark.parametrize("headers", [{}, {"Accept-Language": "fr-FR,de;q=0.8"}], ids=["no-header", "no-catalogue"])
async def test_english_is_the_default_and_the_fallback(
    panel: PanelKit, computer_audio: None, headers: dict[str, str]
) -> None:
    pages = await _pages(panel, headers)
    assert all('<html lang="en">' in html for html in pages.values())
    assert "Join a phone bank" in pages["join"] and "Looking for your next voter" in pages["session_phone"]
    assert "Talked to correct person" in pages["session_phone"] and "Supporter" in pages["session_phone"]
    assert not any("Banco de llamadas" in html for html in pages.values())


async def test_the_language_switcher_is_a_stored_choice(panel: PanelKit) -> None:
    anon = await panel.anonymous()
    pre = await panel.pre_csrf(anon)
    # A cross-site form cannot set it; an unknown language is a clear refusal.
    assert (await anon.post("/lang", data={"lang": "es", "next": "/join"})).status == 403
    bad = await anon.post("/lang", data={"lang": "xx", "_csrf": pre, "next": "/join"}, allow_redirects=False)
    assert bad.status == 400 and "unknown language" in await bad.text()
    resp = await anon.post("/lang", data={"lang": "es", "_csrf": pre, "next": "//evil.example"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/"
    # The choice beats the browser's language, both ways.
    page = await (await anon.get("/join", headers={"Accept-Language": "en-US"})).text()
    assert '<html lang="es">' in page and "Unirse a un banco de llamadas" in page
    await anon.post("/lang", data={"lang": "en", "_csrf": pre, "next": "/join"})
    page = await (await anon.get("/join", headers=ES)).text()
    assert '<html lang="en">' in page and "Join a phone bank" in page


def test_browser_language_negotiation() -> None:
    assert i18n._accept_language("en;q=0.2, es-MX, fr;q=0.5") == ["es_MX", "fr", "en"]
    assert i18n._accept_language("es;q=0, *;q=0.1, de;q=bad") == []
    assert "es" in i18n.available() and i18n.available()[0] == "en"
    assert i18n.translations("es").gettext("Log in") == "Iniciar sesión"
    assert i18n.translations("en").gettext("Log in") == "Log in"


JS_LITERAL = r'"(?:[^"\\]|\\.)*"'


def _js_strings(script: str, fn: str = "t") -> list[str]:
    """The strings a panel script shows through t("...") (caller.js) or tr("...") (webphone.js), a literal or
    literals joined with +, JS escapes decoded as the browser does."""
    src = (i18n.HERE / "static" / script).read_text()
    calls = re.findall(rf"(?<![\w.$]){fn}\(\s*({JS_LITERAL}(?:\s*\+\s*{JS_LITERAL})*)", src)
    return ["".join(json.loads(lit) for lit in re.findall(JS_LITERAL, call)) for call in calls]


async def test_caller_js_strings_come_translated_from_the_page(panel: PanelKit) -> None:
    """caller.js shows no English of its own on a Spanish page: every t("...") is in the page's JSON block,
    translated, with the same {placeholders}."""
    wanted = set(_js_strings("caller.js")) | set(_js_strings("webphone.js", "tr"))
    assert len(wanted) > 70
    cid = int(panel.store.create_campaign("Get out the vote", join_code=CODE)["id"])
    user, password = panel.make_user("caller", name="Ana", campaign_id=cid)
    client, csrf = await panel.login(user["username"], password)
    for headers, spanish in ((ES, True), ({}, False)):
        html = await _session(client, csrf, cid, "phone", headers)
        block = re.search(r'<script type="application/json" id="caller-strings">(.*?)</script>', html, re.S)
        assert block, "the calling screen passes caller.js its strings"
        strings = json.loads(block.group(1))
        assert not wanted - set(strings), (
            f"caller.js strings missing from caller/_js_strings.html: {wanted - set(strings)}"
        )
        for english in wanted:
            said = strings[english]
            assert sorted(re.findall(r"\{\w+\}", said)) == sorted(re.findall(r"\{\w+\}", english)), english
            assert (said != english) if spanish else (said == english), english


def _server_messages() -> set[str]:
    """The messages panel/caller.py and panel/login.py mark N_("...") for the caller's pages."""
    out: set[str] = set()
    for module in ("caller.py", "login.py"):
        with (i18n.HERE / module).open("rb") as fh:
            out |= {m for _, _, m, _ in extract_python(fh, {"N_": None}, [], {}) if isinstance(m, str)}
    return out


async def test_server_messages_on_caller_pages_are_translated(panel: PanelKit) -> None:
    catalogue = _catalogue()
    marked = _server_messages()
    assert len(marked) >= 10
    assert not [m for m in marked if m not in catalogue or not catalogue[m].string], "pybabel extract/update"
    anon = await panel.anonymous()
    unknown = await anon.get("/join", params={"code": "NOPE-0000000"}, headers=ES)
    html = await unknown.text()
    assert unknown.status == 404 and "No encontramos ningún banco de llamadas" in html and "could not find" not in html
    pre = await panel.pre_csrf(anon)
    wrong = await anon.post("/login", data={"username": "nobody", "password": "x" * 12, "_csrf": pre}, headers=ES)
    html = await wrong.text()
    assert "Ese usuario y esa contraseña no coinciden" in html and "do not match" not in html
    english = await (await anon.get("/join", params={"code": "NOPE-0000000"})).text()
    assert "We could not find a phone bank with that code" in english
