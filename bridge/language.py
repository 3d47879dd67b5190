"""Languages on the telephone, pure: which language a call hears, and what Asterisk needs for each language.

Asterisk plays ``sound:NAME`` from ``sounds/<the channel's language>/NAME`` (falling back to English when the file is
missing there), so once a channel's language is set (``CHANNEL(language)``) every later prompt, beep and hold
message on it is in that language. A volunteer hears the call-in in their session's language (the panel's language
when they joined); a voter hears the abandon message and the voicemail drop in their list's language when the list
has a language column, else in the effort's language (docs/OPERATIONS.md, "Languages on the phone").

Adding a language: its Asterisk core sounds package in ``SOUND_PACKAGES``, a voice and the texts below, and the
panel's catalogue (docs/PANEL.md, "Languages").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from callin.entry import DEFAULT_LANGUAGE
from store.efforts import is_spoken_abandon, language_names
from store.efforts import voter_language as listed_language
from store.textfold import fold

# Asterisk's own default (config/asterisk/asterisk.conf defaultlanguage): a channel nobody set hears English.
DEFAULT = DEFAULT_LANGUAGE
# The languages the phone side speaks: Asterisk has (or is given) sounds for each.
LANGUAGES = ("en", "es")
# Debian's recorded core sounds per language (phonebank.asterisk installs them into the Asterisk root).
SOUND_PACKAGES: dict[str, tuple[str, ...]] = {
    "en": ("asterisk-core-sounds-en", "asterisk-core-sounds-en-gsm"),
    "es": ("asterisk-core-sounds-es", "asterisk-core-sounds-es-gsm"),
}
# espeak-ng voices for what is spoken on this machine (generated abandon messages, sounds a package lacks).
VOICES = {"en": "en-us", "es": "es-419"}

# Every Asterisk sound the phone bank plays by name (callin.entry, the dialplan, the adapter's beep), with what it
# says in each language: the text is spoken with espeak-ng at install for a language whose recorded sounds lack it.
SOUNDS: dict[str, dict[str, str]] = {
    "agent-pass": {
        "en": "Please enter your password followed by the pound key.",
        "es": "Por favor, marque su código seguido de la tecla numeral.",
    },
    "auth-incorrect": {"en": "Login incorrect.", "es": "Código incorrecto."},
    "agent-loginok": {"en": "Agent logged in.", "es": "Agente conectado."},
    "vm-goodbye": {"en": "Goodbye.", "es": "Adiós."},
    "one-moment-please": {"en": "One moment please.", "es": "Un momento, por favor."},
    "im-sorry": {"en": "I'm sorry.", "es": "Lo siento."},
    "please-try-call-later": {"en": "Please try your call again later.", "es": "Por favor, llame más tarde."},
    "vm-msgsaved": {"en": "Message saved.", "es": "Mensaje guardado."},
    "tt-allbusy": {
        "en": "All representatives are busy.",
        "es": "Todos nuestros representantes están ocupados.",
    },
}

# Names of a language besides those store.efforts.language_names gives (its code and its English, Spanish and own
# names): the three-letter codes some exports write, and Spain's name for Spanish.
_MORE_NAMES = {"en": ("eng",), "es": ("spa", "castellano")}

# The abandon message the controller speaks for an effort that recorded none (the law's safe harbour: who called
# and a number to call back). ``{custom}`` is the organiser's own sentence, in the effort's language only.
ABANDON_TEXT = {
    "en": "{custom} This call was from {org}. Please call us back at {number}. Goodbye.",
    "es": "{custom} Esta llamada era de {org}. Por favor, llámenos al {number}. Adiós.",
}
ABANDON_SORRY = {"en": "Sorry we missed you.", "es": "Lamentamos no haber podido atenderle."}


def normalize(value: Any) -> str | None:
    """A language we speak on the phone from what a panel, a session row or a list says ("es-MX", "Spanish",
    "Español" -> "es"); None for empty or unknown values (the caller's default then applies)."""
    if not isinstance(value, str):
        return None
    text = fold(value.strip()).replace("_", "-")
    if not text:
        return None
    for lang in LANGUAGES:
        names = language_names(lang) | set(_MORE_NAMES.get(lang, ()))
        if text in names or text.split("-")[0] in names:
            return lang
    return None


def of(value: Any, default: str = DEFAULT) -> str:
    """``normalize``, else ``default``."""
    return normalize(value) or default


def voter_language(extra: Mapping[str, Any] | None, effort_language: str) -> str:
    """The voter's language when the list has a language column naming one we speak (the same reading as the
    caller's script language, store.efforts.voter_language), else the effort's."""
    return listed_language(dict(extra or {}), list(LANGUAGES)) or of(effort_language)


def callin_languages(setting: str) -> tuple[str, ...]:
    """The call-in's languages from its setting ("en,es"): the ones we speak, in order, each once; English if none."""
    out: list[str] = []
    for part in setting.split(","):
        found = normalize(part)
        if found and found not in out:
            out.append(found)
    return tuple(out) or (DEFAULT,)


def effort_language(campaign: Mapping[str, Any]) -> str:
    return of(campaign.get("language"))


def other_media(campaign: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The effort's messages per language: ``{"es": {"abandon": path, "voicemail": path}}`` (every spoken abandon
    message is there, the one in the effort's own language too)."""
    raw = campaign.get("media_by_language") or "{}"
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: {kk: str(vv) for kk, vv in v.items()} for k, v in data.items() if isinstance(v, dict)}


def message_media(campaign: Mapping[str, Any], kind: str, lang: str) -> str:
    """The abandon message (``kind`` "abandon") or voicemail drop ("voicemail") a voter speaking ``lang`` hears:
    the organiser's own recording when the voter speaks the effort's language; else the effort's message in the
    voter's language when it has one; else the effort's own. A spoken (generated) message is not the organiser's
    recording: it says which language it is in, so an effort whose language changed after its message was spoken
    does not play it to the wrong voters."""
    own = str(campaign.get(f"{kind}_media") or "")
    per_language = other_media(campaign)
    spoken = {paths.get(kind) for paths in per_language.values()}
    if own and own not in spoken and lang == effort_language(campaign):
        return own
    return per_language.get(lang, {}).get(kind) or own


def abandon_text(lang: str, org: str, callback_number: str, custom: str = "") -> str:
    """The spoken abandon message in ``lang``: the organiser's sentence (or a default one), who called and the
    number to call back, read digit by digit."""
    template = ABANDON_TEXT.get(lang, ABANDON_TEXT[DEFAULT])
    return template.format(
        custom=custom.strip() or ABANDON_SORRY.get(lang, ABANDON_SORRY[DEFAULT]),
        org=org,
        number=" ".join(callback_number),
    )


def abandon_prompts_missing(campaign: Mapping[str, Any]) -> list[str]:
    """The languages whose spoken abandon message is to be made, the effort's own first. While the effort has no
    abandon message of its own (new, or what it says changed: store.efforts.save_settings drops it) all of them,
    since all name the same organisation and number, but those the organiser recorded one in; otherwise those it
    has none in."""
    own = effort_language(campaign)
    ordered = [own, *(lang for lang in LANGUAGES if lang != own)]
    have = other_media(campaign)
    # An organiser's recording in a language (the settings' per-language upload) is never spoken over.
    cid = int(campaign.get("id") or 0)
    recorded = {x for x, paths in have.items() if paths.get("abandon") and not is_spoken_abandon(paths["abandon"], cid)}
    if not campaign.get("abandon_media"):
        return [lang for lang in ordered if lang not in recorded]
    return [lang for lang in ordered if not have.get(lang, {}).get("abandon")]
