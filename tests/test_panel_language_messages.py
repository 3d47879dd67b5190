"""Call settings, messages in each language: the voicemail drop and the recorded abandon message per language
(store.efforts.set_messages, media_by_language), set on the settings page, shown on Review, played on the fake ARI."""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from bridge import dialer as d
from bridge import language as phone
from bridge.commands import DropVoicemail, PlayAbandonMessage
from phonebank.harness import day_number
from store import efforts as ef
from store.db import Store, StoreError
from tests.fakes import PanelKit
from tests.test_panel_admin import SETTINGS_OK, _new_effort, _page, _wav


def _form(csrf: str, files: dict[str, bytes], **fields: str) -> FormData:
    f = FormData()
    for k, v in {**SETTINGS_OK, "_csrf": csrf, **fields}.items():
        f.add_field(k, v)
    for name, data in files.items():
        f.add_field(name, data, filename=f"{name}.wav", content_type="audio/wav")
    return f


async def _post(client: TestClient[Any, Any], cid: int, form: FormData) -> Any:
    return await client.post(f"/admin/efforts/{cid}/settings", data=form, allow_redirects=False)


def _state(page: str, row: str, kind: str) -> str:
    """The data-state of a language's cell on the settings page (row ``messages-<lang>``)."""
    cell = page.split(f'id="{row}"', 1)[1].split(f'class="message-{kind}"', 1)[1]
    return cell.split('data-state="', 1)[1].split('"', 1)[0]


async def test_recordings_per_language_are_checked_stored_shown_and_played(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    page = await _page(admin, f"/admin/efforts/{cid}/settings")
    # The effort is in English; the phone side also speaks Spanish: a row per language, the effort's first.
    assert page.index('id="messages-en"') < page.index('id="messages-es"')
    assert 'name="voicemail_file_es"' in page and 'name="abandon_file_es"' in page and 'name="abandon_file_en"' in page
    assert 'name="voicemail_file_en"' not in page  # the effort's own voicemail is the Voicemail card's
    assert _state(page, "messages-es", "voicemail") == "none_voicemail"

    resp = await _post(
        admin,
        cid,
        _form(
            csrf,
            {
                "voicemail_file": _wav(),
                "voicemail_file_es": _wav(),
                "abandon_file_es": _wav(),
                "abandon_file_en": _wav(),
            },
            machine_action="voicemail",
        ),
    )
    assert resp.status == 302, await resp.text()
    c = panel.store.campaign(cid)
    assert c is not None
    media = json.loads(c["media_by_language"])
    es_vm, es_ab, en_ab = media["es"]["voicemail"], media["es"]["abandon"], c["abandon_media"]
    assert "en" not in media  # the effort's own abandon message is its column
    for path in (es_vm, es_ab, en_ab):
        assert not ef.is_spoken_abandon(path, cid)  # never taken for (and dropped as) a spoken message
        with wave.open(str(ef.media_dir(panel.store) / f"{Path(path).name}.wav")) as w:
            assert (w.getframerate(), w.getnchannels()) == (8000, 1)
    assert "-es-" in Path(es_vm).name and Path(es_ab).name.startswith(f"recorded-abandon-{cid}-es-")
    # What each voter hears is bridge.language's rule: Spanish voters the Spanish recordings, English the effort's.
    assert phone.message_media(c, "voicemail", "es") == es_vm and phone.message_media(c, "abandon", "es") == es_ab
    assert phone.message_media(c, "voicemail", "en") == c["voicemail_media"]
    assert phone.message_media(c, "abandon", "en") == en_ab
    # The controller speaks none over the Spanish recording (an English one is filed for a change of language).
    assert "es" not in phone.abandon_prompts_missing(c)

    page = await _page(admin, f"/admin/efforts/{cid}/settings")
    assert (
        _state(page, "messages-es", "voicemail") == "recorded" and _state(page, "messages-es", "abandon") == "recorded"
    )
    assert _state(page, "messages-en", "abandon") == "recorded"
    assert 'name="voicemail_default_es"' in page and 'name="abandon_default_en"' in page
    for url in (f"/admin/efforts/{cid}/message/voicemail/es.wav", f"/admin/efforts/{cid}/message/abandon/en.wav"):
        assert f'src="{url}"' in page
        audio = await admin.get(url)
        assert audio.status == 200 and (await audio.read())[:4] == b"RIFF"
    assert (await admin.get(f"/admin/efforts/{cid}/message/abandon/fr.wav")).status == 404
    caller, _ = await panel.client("caller")
    assert (await caller.get(f"/admin/efforts/{cid}/message/voicemail/es.wav")).status == 403

    review = await _page(admin, f"/admin/efforts/{cid}/review")
    es_row = review.split('id="review-messages-es"', 1)[1].split("</tr>", 1)[0]
    assert es_row.count('data-state="recorded"') == 2 and "Recorded" in es_row

    # On the fake ARI: a Spanish voter's abandon message and voicemail are the Spanish recordings.
    panel.store.add_contacts(cid, [{"phone": day_number(2000), "extra": {"Idioma": "Español"}}])
    (voter,) = panel.store.contacts(cid)
    panel.ctl.refresh_campaigns()
    panel.ctl.dialer.calls["pbc-es"] = d.Call("pbc-es", cid, voter["id"])
    await panel.ctl.run([PlayAbandonMessage("pbc-es"), DropVoicemail("pbc-es", False)])
    sent = [(x[2]["variable"], x[2]["value"]) for x in panel.ctl.ari.calls if x[1] == "channels/pbc-es/variable"]  # type: ignore[attr-defined]
    assert ("PB_MEDIA", es_ab) in sent and ("PB_MEDIA", es_vm) in sent and ("CHANNEL(language)", "es") in sent


async def test_a_bad_upload_is_refused_and_nothing_stored_is_lost(
    panel: PanelKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    good = await _post(admin, cid, _form(csrf, {"voicemail_file_es": _wav()}))
    assert good.status == 302
    before = panel.store.campaign(cid)
    staged = sorted(ef.media_dir(panel.store).glob("*.wav"))

    bad = await _post(admin, cid, _form(csrf, {"voicemail_file_es": b"RIFF....not a wave", "abandon_file_es": _wav()}))
    text = await bad.text()
    assert bad.status == 400 and "not a WAV file" in text
    assert 'id="err-voicemail_file_es"' in text
    # The good file beside it is not kept either, and says so.
    assert 'id="err-abandon_file_es"' in text and "choose the WAV file again" in text
    monkeypatch.setattr(ef, "MAX_WAV_BYTES", 1000)
    big = await _post(admin, cid, _form(csrf, {"abandon_file_en": _wav()}))
    assert big.status == 400 and "too large" in await big.text()
    monkeypatch.undo()
    both = await _post(admin, cid, _form(csrf, {"voicemail_file_es": _wav()}, voicemail_default_es="1"))
    assert both.status == 400 and "not both" in await both.text()
    # A settings field in error keeps every upload out too.
    other = await _post(admin, cid, _form(csrf, {"abandon_file_es": _wav()}, calling_hours_end="23:00"))
    assert other.status == 400 and 'id="err-abandon_file_es"' in await other.text()
    assert panel.store.campaign(cid) == before
    assert sorted(ef.media_dir(panel.store).glob("*.wav")) == staged


async def test_going_back_to_the_default_per_language(panel: PanelKit) -> None:
    admin, csrf = await panel.client("admin")
    cid = await _new_effort(admin, csrf)
    files = {
        "voicemail_file": _wav(),
        "voicemail_file_es": _wav(),
        "abandon_file_es": _wav(),
        "abandon_file_en": _wav(),
    }
    assert (await _post(admin, cid, _form(csrf, files, machine_action="voicemail"))).status == 302
    # The controller's spoken Spanish message would be filed beside; here the organiser's recordings are.
    resp = await _post(
        admin, cid, _form(csrf, {}, machine_action="voicemail", voicemail_default_es="1", abandon_default_en="1")
    )
    assert resp.status == 302, await resp.text()
    c = panel.store.campaign(cid)
    assert c is not None
    assert c["abandon_media"] == "" and json.loads(c["media_by_language"]) == {"es": {"abandon": _recorded_es(c)}}
    # Spanish voters now get the effort's voicemail; the English abandon message is spoken again, the Spanish
    # recording is not spoken over.
    assert phone.message_media(c, "voicemail", "es") == c["voicemail_media"]
    assert phone.abandon_prompts_missing(c) == ["en"]
    page = await _page(admin, f"/admin/efforts/{cid}/settings")
    assert _state(page, "messages-es", "voicemail") == "effort"
    assert "The effort&#39;s message (English)" in page or "The effort's message (English)" in page
    assert _state(page, "messages-en", "abandon") == "none_abandon"
    resp = await _post(admin, cid, _form(csrf, {}, abandon_default_es="1"))
    c = panel.store.campaign(cid)
    assert resp.status == 302 and c and json.loads(c["media_by_language"]) == {}
    assert phone.abandon_prompts_missing(c) == ["en", "es"]


def _recorded_es(campaign: dict[str, Any]) -> str:
    """The Spanish abandon recording, checked to be one uploaded here."""
    path = str(json.loads(campaign["media_by_language"])["es"]["abandon"])
    assert Path(path).name.startswith(f"recorded-abandon-{campaign['id']}-es-")
    return path


# ---------------------------------------------------------------------------------------------- the store
def test_set_messages_files_each_language(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign(
        "Voters", abandon_media="/snd/abandon-1", media_by_language={"es": {"abandon": "/snd/abandon-1-es"}}
    )["id"]
    c = store.campaign(cid)
    assert c is not None
    values = ef.set_messages(c, {("es", "voicemail"): "/m/vm-es", ("", "abandon"): "/m/rec-en"})
    assert values == {
        "abandon_media": "/m/rec-en",
        "media_by_language": {"es": {"abandon": "/snd/abandon-1-es", "voicemail": "/m/vm-es"}},
    }
    c = store.update_campaign(cid, **values)
    assert ef.set_messages(c, {("es", "voicemail"): "", ("es", "abandon"): ""}) == {"media_by_language": {}}
    with pytest.raises(StoreError):
        ef.set_messages(c, {("", "voicemail"): "/m/x"})  # the effort's own voicemail is the settings' upload
    with pytest.raises(StoreError):
        ef.set_messages(c, {("es", "greeting"): "/m/x"})
    with pytest.raises(StoreError):
        ef.set_messages(c, {("e s", "voicemail"): "/m/x"})


@pytest.mark.parametrize(
    ("path", "spoken"),
    [
        ("/snd/abandon-7", True),
        ("/snd/abandon-7-es", True),
        ("/snd/abandon-70", False),
        ("/media/recorded-abandon-7-es-0a1b2c", False),
        ("/media/voicemail-7-es-0a1b2c", False),
        ("", False),
    ],
)
def test_spoken_or_recorded_abandon(path: str, spoken: bool) -> None:
    assert ef.is_spoken_abandon(path, 7) is spoken


def test_a_new_organisation_name_respeaks_the_spoken_messages_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    media = {"es": {"abandon": "/m/recorded-abandon-1-es-ab12"}, "vi": {"abandon": "/snd/abandon-1-vi"}}
    cid = store.create_campaign("Voters", abandon_media="/snd/abandon-1", media_by_language=media)["id"]
    c = store.campaign(cid)
    assert c is not None
    saved = ef.save_settings(store, c, {"org_name": "New Name"}, {("es", "voicemail"): "/m/voicemail-1-es-cd34"})
    assert saved["abandon_media"] == ""
    assert json.loads(saved["media_by_language"]) == {
        "es": {"abandon": "/m/recorded-abandon-1-es-ab12", "voicemail": "/m/voicemail-1-es-cd34"}
    }
    # The controller speaks the English one again, not over the organiser's Spanish recording.
    assert phone.abandon_prompts_missing(saved) == ["en"]


def test_staged_messages_are_named_by_kind_and_language(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Voters")["id"]
    kept: list[str] = []

    def stage(path: Path, name: str) -> str:
        kept.append(name)
        return str(path.with_suffix(""))

    abandon = ef.stage_message(store, cid, _wav(), stage, "abandon", "es")
    assert Path(abandon).name.startswith(f"recorded-abandon-{cid}-es-") and not ef.is_spoken_abandon(abandon, cid)
    assert Path(ef.stage_voicemail(store, cid, _wav(), stage)).name.startswith(f"voicemail-{cid}-")
    assert all((ef.media_dir(store) / name).is_file() for name in kept)
    with pytest.raises(StoreError):
        ef.stage_message(store, cid, _wav(), stage, "abandon", "../x")
