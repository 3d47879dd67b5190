"""Languages on the telephone (bridge.language), as tables; and where a root's sounds lie (phonebank.asterisk)."""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

import pytest

from bridge import language as lang
from phonebank.asterisk import in_root


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("es", "es"),
        ("es-MX", "es"),
        ("es_419", "es"),
        ("Spanish", "es"),
        ("Español", "es"),
        (" espanol ", "es"),
        ("EN", "en"),
        ("en-US", "en"),
        ("English", "en"),
        ("fr", None),  # a language the phone side does not speak
        ("", None),
        (None, None),
        (3, None),
    ],
)
def test_normalize(value: Any, expected: str | None) -> None:
    assert lang.normalize(value) == expected


@pytest.mark.parametrize(
    ("extra", "effort", "expected"),
    [
        ({"Language": "Spanish"}, "en", "es"),
        ({"preferred_language": "es-MX"}, "en", "es"),
        ({"Preferred Language": "ES"}, "en", "es"),
        ({"idioma": "español"}, "en", "es"),
        ({"language": "English"}, "es", "en"),
        ({"language": "Tagalog"}, "en", "en"),  # not one we speak: the effort's
        ({"language": ""}, "es", "es"),
        ({"city": "es"}, "en", "en"),  # not a language column
        ({}, "es", "es"),
        (None, "en", "en"),
    ],
)
def test_voter_language(extra: dict[str, Any] | None, effort: str, expected: str) -> None:
    assert lang.voter_language(extra, effort) == expected


EFFORT = {
    "language": "en",
    "abandon_media": "/x/abandon-1",
    "voicemail_media": "/x/vm-en",
    "media_by_language": json.dumps({"es": {"abandon": "/x/abandon-1-es"}}),
}


SPOKEN = {"en": {"abandon": "/x/abandon-1"}, "es": {"abandon": "/x/abandon-1-es"}}


@pytest.mark.parametrize(
    ("campaign", "kind", "language", "expected"),
    [
        (EFFORT, "abandon", "en", "/x/abandon-1"),
        (EFFORT, "abandon", "es", "/x/abandon-1-es"),
        (EFFORT, "voicemail", "es", "/x/vm-en"),  # no Spanish voicemail recorded: the effort's own
        (EFFORT, "voicemail", "en", "/x/vm-en"),
        ({**EFFORT, "language": "es"}, "abandon", "es", "/x/abandon-1"),  # a Spanish effort's own is Spanish
        ({**EFFORT, "media_by_language": "not json"}, "abandon", "es", "/x/abandon-1"),
        ({"abandon_media": ""}, "abandon", "es", ""),  # none at all: the dialplan's generic prompt
        # Spoken in English while the effort was English, then its language set to Spanish: the Spanish one.
        (
            {**EFFORT, "language": "es", "media_by_language": json.dumps(SPOKEN)},
            "abandon",
            "es",
            "/x/abandon-1-es",
        ),
        ({**EFFORT, "language": "es", "media_by_language": json.dumps(SPOKEN)}, "abandon", "en", "/x/abandon-1"),
        # The organiser's own recording (not a spoken one) is for the effort's language only.
        (
            {**EFFORT, "abandon_media": "/rec/mine", "media_by_language": json.dumps(SPOKEN)},
            "abandon",
            "en",
            "/rec/mine",
        ),
        (
            {**EFFORT, "abandon_media": "/rec/mine", "media_by_language": json.dumps(SPOKEN)},
            "abandon",
            "es",
            "/x/abandon-1-es",
        ),
    ],
)
def test_message_media(campaign: dict[str, Any], kind: str, language: str, expected: str) -> None:
    assert lang.message_media(campaign, kind, language) == expected


@pytest.mark.parametrize(
    ("campaign", "expected"),
    [
        ({"language": "en", "abandon_media": ""}, ["en", "es"]),
        ({"language": "es", "abandon_media": ""}, ["es", "en"]),
        ({"language": "en", "abandon_media": "/x/a"}, ["en", "es"]),  # from before: each spoken in its language
        (EFFORT, ["en"]),
        ({**EFFORT, "media_by_language": json.dumps(SPOKEN)}, []),
        ({**EFFORT, "language": "es", "media_by_language": json.dumps(SPOKEN)}, []),
    ],
)
def test_abandon_prompts_missing(campaign: dict[str, Any], expected: list[str]) -> None:
    assert lang.abandon_prompts_missing(campaign) == expected


def test_abandon_text() -> None:
    assert lang.abandon_text("en", "Fair Votes", "2025550100") == (
        "Sorry we missed you. This call was from Fair Votes. Please call us back at 2 0 2 5 5 5 0 1 0 0. Goodbye."
    )
    es = lang.abandon_text("es", "Fair Votes", "2025550100", custom="¡Hola!")
    assert es.startswith("¡Hola! Esta llamada era de Fair Votes.") and "2 0 2 5" in es


def test_every_sound_has_every_language() -> None:
    assert all(set(texts) == set(lang.LANGUAGES) for texts in lang.SOUNDS.values())
    assert set(lang.SOUND_PACKAGES) == set(lang.VOICES) == set(lang.LANGUAGES)


def test_in_root_follows_links_inside_the_root(tmp_path: Path) -> None:
    sounds = tmp_path / "usr/share/asterisk/sounds"
    (sounds / "es_MX_f_Allison").mkdir(parents=True)
    (tmp_path / "etc/alternatives").mkdir(parents=True)
    (tmp_path / "etc/alternatives/asterisk-prompt-es").symlink_to("/usr/share/asterisk/sounds/es_MX_f_Allison")
    (sounds / "es").symlink_to("/etc/alternatives/asterisk-prompt-es")
    (sounds / "up").symlink_to("../../../../../../..")  # never above the root
    assert in_root(tmp_path, "/usr/share/asterisk/sounds/es") == sounds / "es_MX_f_Allison"
    assert in_root(tmp_path, "/usr/share/asterisk/sounds/up/etc") == tmp_path / "etc"


def test_sounds_a_language_lacks_are_spoken_once_and_never_as_an_unprivileged_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The controller's own unit runs unprivileged: provisioning then installs nothing (no chroot, no apt) and writes
    nothing it may not; where it may, it speaks what a language's recordings lack, once."""
    from structlog.testing import capture_logs

    from phonebank import asterisk

    sounds = tmp_path / "usr/share/asterisk/sounds"
    (sounds / "es_MX_f_Allison").mkdir(parents=True)
    (sounds / "es").symlink_to("es_MX_f_Allison")
    recorded = set(lang.SOUNDS) - {"one-moment-please", "im-sorry"}
    for name in recorded:
        (sounds / "es_MX_f_Allison" / f"{name}.gsm").write_bytes(b"")
    monkeypatch.setattr(asterisk.os, "geteuid", lambda: 1000)

    def never(*args: object) -> None:
        raise AssertionError("no chroot, no apt without root")

    monkeypatch.setattr(asterisk, "_missing_sound_packages", never)
    monkeypatch.setattr(asterisk, "_chroot_apt_install", never)

    # Nothing may be written: what is missing is said, nothing made.
    monkeypatch.setattr(asterisk.os, "access", lambda path, mode: False)
    with capture_logs() as logs:
        assert asterisk.ensure_language_sounds(tmp_path, tmp_path) == []
    (warned,) = [e for e in logs if e["event"] == "asterisk.sounds_missing"]
    assert sorted(warned["sounds"]) == ["im-sorry", "one-moment-please"]

    monkeypatch.setattr(asterisk.os, "access", lambda path, mode: True)
    assert sorted(asterisk.ensure_language_sounds(tmp_path, tmp_path)) == ["es/im-sorry", "es/one-moment-please"]
    made = sounds / "es_MX_f_Allison" / "im-sorry.wav"
    with wave.open(str(made)) as w:  # as Asterisk plays it: 8 kHz mono 16-bit, and not empty
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2) and w.getnframes() > 800
    assert asterisk.ensure_language_sounds(tmp_path, tmp_path) == []  # once


@pytest.mark.parametrize("own", ["/rec/mine", "generated"])
def test_a_new_call_back_number_or_name_respeaks_every_languages_abandon_message(tmp_path: Path, own: str) -> None:
    """The spoken messages in the other languages name the organisation and the call-back number: changing either
    drops them (so the controller speaks them again), whether the effort's own message is the organiser's
    recording (kept) or a spoken one (dropped too); the organiser's own per-language recordings stay."""
    from store import efforts as ef
    from store.db import Store

    store = Store(tmp_path / "pb.db")
    cid = int(store.create_campaign("Calls", org_name="Fair Votes", callback_number="2025550100")["id"])
    own_media = own if own.startswith("/") else f"/s/abandon-{cid}"
    spoken = {
        "en": {"abandon": f"/s/abandon-{cid}"},
        "es": {"abandon": f"/s/abandon-{cid}-es", "voicemail": "/rec/vm-es"},
    }
    store.update_campaign(cid, abandon_media=own_media, media_by_language=spoken)
    campaign = store.campaign(cid)
    assert campaign is not None
    form = {"org_name": "Fair Votes", "callback_number": "2025550100", "abandon_message": campaign["abandon_message"]}
    same = ef.save_settings(store, campaign, form)
    assert lang.other_media(same) == spoken and same["abandon_media"] == own_media
    assert lang.abandon_prompts_missing(same) == []
    for change in ({"callback_number": "2025550111"}, {"org_name": "Fairer Votes"}):
        store.update_campaign(cid, abandon_media=own_media, media_by_language=spoken)
        campaign = store.campaign(cid)
        assert campaign is not None
        saved = ef.save_settings(store, campaign, {**form, **change})
        assert lang.other_media(saved) == {"es": {"voicemail": "/rec/vm-es"}}
        assert saved["abandon_media"] == ("" if own == "generated" else own)
        assert "es" in lang.abandon_prompts_missing(saved), "the Spanish message is spoken again"
    store.close()
