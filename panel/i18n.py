"""The panel's languages: gettext catalogues (Babel) read into Jinja2's i18n extension, one per request.

The catalogues are ``panel/translations/<lang>/LC_MESSAGES/messages.po``; they are compiled in memory when the
panel starts (Babel's own reader and writer), so a fresh clone runs without a build step and no binary ``.mo``
is committed that could drift from its ``.po``. ``pybabel compile`` still works for translators who want to
check a catalogue (docs/PANEL.md).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web
from babel import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

# N_ / M_ mark the messages the server composes (store.messages, a leaf the store uses too); re-exported here.
from store.messages import M_, N_, Message, fill, reason

__all__ = ["M_", "N_", "Message", "reason"]

HERE = Path(__file__).resolve().parent
TRANSLATIONS_DIR = HERE / "translations"
DEFAULT = "en"
# The language a user picked on the page (the switcher at the foot of every page); otherwise the browser's.
COOKIE = "phonebank_lang"


@functools.cache
def available() -> tuple[str, ...]:
    """English (the source strings) and every language that has a catalogue."""
    found = sorted(p.name for p in TRANSLATIONS_DIR.glob("*") if (p / "LC_MESSAGES" / "messages.po").is_file())
    return (DEFAULT, *found)


@functools.cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalogue for ``lang`` (English and unknown languages: the source strings as they are)."""
    po = TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT or not po.is_file():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)  # fuzzy entries are left out, as pybabel compile does
    buf.seek(0)
    return Translations(buf)


def translate(tr: NullTranslations, text: str) -> str:
    """``text`` in ``tr``'s language: a ``Message`` (``M_``) with its values, a marked string (``N_``), or stored
    text the catalogue may know (the default term codes); anything else as it is."""
    if isinstance(text, Message):
        return fill(tr.gettext, text.msgid, text.params)
    if not text:  # gettext("") is the catalogue's header, not an empty message
        return text
    return str(tr.gettext(text))


def _accept_language(header: str) -> list[str]:
    """The browser's languages, most wanted first (``es-MX,es;q=0.9,en;q=0.8`` -> es_MX, es, en)."""
    weighted: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and tag != "*" and q > 0:
            weighted.append((-q, i, tag.replace("-", "_")))
    return [tag for _, _, tag in sorted(weighted)]


def choose(request: web.Request) -> str:
    """The user's choice (cookie) if we have that language, else the best match for the browser, else English."""
    picked = request.cookies.get(COOKIE, "")
    if picked in available():
        return picked
    wanted = _accept_language(request.headers.get("Accept-Language", ""))
    return negotiate_locale(wanted, list(available()), sep="_") or DEFAULT


def name_of(lang: str) -> str:
    """A language's own name for itself (Español), for the switcher."""
    return (Locale.parse(lang).get_display_name(lang) or lang).capitalize()


def extract_default_labels(
    fileobj: object, keywords: object, comment_tags: object, options: object
) -> Iterator[tuple[int, str, str, list[str]]]:
    """A Babel extractor (babel.toml) for the default term codes' labels (store.db.DEFAULT_DISPOSITIONS): they are
    stored data, not template strings, but every effort starts with them, so the catalogue translates them too (an
    organiser's own labels are shown as typed)."""
    from store.db import DEFAULT_DISPOSITIONS

    for _code, label, _kind in DEFAULT_DISPOSITIONS:
        yield 0, "gettext", label, ["default term code (store/db.py)"]
