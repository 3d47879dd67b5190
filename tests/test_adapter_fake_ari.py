"""Edge cases of the adapter against a fake ARI (the real-Asterisk tests cover the normal path)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bridge import dialer as d
from bridge.ari_app import Controller, Leg
from bridge.commands import DropVoicemail, NeedContacts, PlayAbandonMessage
from phonebank.harness import day_number
from store.db import Store
from tests.fakes import FakeAri


async def test_concurrent_dial_requests_never_exceed_the_ratio(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Race")["id"]
    store.add_contacts(cid, [{"phone": day_number(1000 + i)} for i in range(20)])
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store)  # type: ignore[arg-type]
    ctl.refresh_campaigns()
    for sid in range(1, 4):
        ctl.dialer.volunteers[sid] = d.vol.Volunteer(sid, cid, since=float(sid))
    # Three requests computed at the same moment (events and the ticker racing): each is stale by the
    # time it runs, and originates yield to the loop.
    await asyncio.gather(*(ctl.run([NeedContacts(cid, 3)]) for _ in range(3)))
    originates = [c for c in ari.calls if c[0] == "POST" and c[1].startswith("channels/pbc-")]
    assert len(originates) == 3
    assert len(store.calls(cid)) == 3
    assert sum(1 for c in store.contacts(cid) if c["status"] == "dialing") == 3


async def test_originate_params_carry_campaign_amd_and_ring_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign(
        "Params",
        ring_timeout_s=22,
        caller_id="+12025550100",
        amd_mode="app_amd",
        amd_params={"greeting": 1800, "bogus": 1},
    )["id"]
    store.add_contacts(cid, [{"phone": day_number(1000)}])
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store, dial_template="PJSIP/{e164}@trunk")  # type: ignore[arg-type]
    ctl.refresh_campaigns()
    ctl.dialer.volunteers[1] = d.vol.Volunteer(1, cid)
    await ctl.run([NeedContacts(cid, 1)])
    (_, _, params) = next(c for c in ari.calls if c[1].startswith("channels/pbc-"))
    assert params["endpoint"] == f"PJSIP/{day_number(1000)}@trunk"
    assert params["timeout"] == 22 and params["callerId"] == "+12025550100"
    assert params["extension"] == "amd" and params["context"] == "pb-outbound"
    # app_amd gets the campaign's AMD() arguments, unknown keys dropped.
    assert params["body"]["variables"]["PB_AMD"] == "2500,1800,800,5000,100,50,3,256,5000"


async def test_our_detector_is_the_default_route(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Default")["id"]
    store.add_contacts(cid, [{"phone": day_number(1000)}])
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store)  # type: ignore[arg-type]
    ctl.refresh_campaigns()
    ctl.dialer.volunteers[1] = d.vol.Volunteer(1, cid)
    await ctl.run([NeedContacts(cid, 1)])
    (_, _, params) = next(c for c in ari.calls if c[1].startswith("channels/pbc-"))
    assert params["app"] == "phonebank" and params["appArgs"] == "outbound-ours"
    assert "context" not in params


async def test_restart_prompts_callers_who_were_keying_a_code(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store)  # type: ignore[arg-type]
    channels = {
        "keying": {"id": "keying", "dialplan": {"context": "pb-callin", "app_name": "Stasis"}},
        "elsewhere": {"id": "elsewhere", "dialplan": {"context": "pb-sim-pstn", "app_name": "Wait"}},
    }
    await ctl._restore_after_restart(channels, [], 100.0)
    assert set(ctl.entries) == {"keying"}
    assert ["sound:agent-pass"] == [c[2]["media"] for c in ari.calls if c[1] == "channels/keying/play"]


async def test_a_recording_cut_by_a_restart_is_not_kept(tmp_path: Path) -> None:
    from store import recordings

    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Rec", machine_action="hangup")["id"]
    code = recordings.request(store, cid)["code"]
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store, recordings_dir="/spool/recording")  # type: ignore[arg-type]
    event = {
        "type": "RecordingFinished",
        "recording": {"name": f"pb-rec-{code}-0a1b2c3d", "duration": 9, "target_uri": "channel:admin-leg"},
    }
    await ctl._recording_done(event, 100.0)
    assert store.campaign(cid)["voicemail_media"] == ""  # type: ignore[index]
    assert recordings.pending(store, code) is not None  # the admin can record again with the same code
    assert ari.calls[-1][1] == "channels/admin-leg/continue" and ari.calls[-1][2]["extension"] == "goodbye"
    # The normal path: a recording this controller started is kept.
    ctl._recordings.add(f"pb-rec-{code}-00ff00ff")
    await ctl._recording_done(
        {
            "type": "RecordingFinished",
            "recording": {"name": f"pb-rec-{code}-00ff00ff", "duration": 4, "target_uri": "channel:admin-leg"},
        },
        101.0,
    )
    assert store.campaign(cid)["voicemail_media"] == f"/spool/recording/pb-rec-{code}-00ff00ff"  # type: ignore[index]
    assert ari.calls[-1][2]["extension"] == "saved"


async def test_the_admins_abandon_message_is_spoken_with_who_called(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign(
        "Prompt",
        org_name="Fair Votes",
        callback_number="2025550100",
        abandon_message="Sorry, all our volunteers are busy.",
    )["id"]
    spoken: list[tuple[str, str, str]] = []

    def make(text: str, path: str, language: str) -> bool:
        spoken.append((text, path, language))
        return True

    ctl = Controller(ari=FakeAri(), store=store, sounds_dir="/snd", prompt_maker=make)  # type: ignore[arg-type]
    ctl.refresh_campaigns()
    await asyncio.gather(*ctl._tasks)
    (text, path, language), (text_es, path_es, language_es) = spoken
    assert language == "en" and text.startswith("Sorry, all our volunteers are busy.")
    assert "Fair Votes" in text and "2 0 2 5 5 5 0 1 0 0" in text  # the law's safe harbour: who, and a number
    assert store.campaign(cid)["abandon_media"] == path == f"/snd/abandon-{cid}"  # type: ignore[index]
    # The same in Spanish, for voters whose list says so; the admin's English sentence is not in it.
    assert language_es == "es" and text_es.startswith("Lamentamos") and "Fair Votes" in text_es
    assert "2 0 2 5 5 5 0 1 0 0" in text_es and "busy" not in text_es
    spoken = {"en": {"abandon": path}, "es": {"abandon": path_es}}  # each filed under its language
    assert json.loads(store.campaign(cid)["media_by_language"]) == spoken  # type: ignore[index]
    assert path_es == f"/snd/abandon-{cid}-es"
    # Made once: the next refresh finds both.
    ctl.refresh_campaigns()
    await asyncio.gather(*ctl._tasks)
    assert len(spoken) == 2


async def test_wrong_codes_carry_over_calls_and_lock_the_number_out(tmp_path: Path) -> None:
    from callin import guard as g
    from store import callin_guard

    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Guarded")["id"]
    session = store.create_session(cid, "Owner")
    ari = FakeAri()
    limits = g.Limits(tarpit_base_s=0.0, lock_after=2)
    ctl = Controller(ari=ari, store=store, guard=g.Guard(limits=limits))  # type: ignore[arg-type]

    async def call(ch: str, caller: str, *codes: str) -> None:
        await ctl.on_event(
            {
                "type": "StasisStart",
                "args": ["callin"],
                "channel": {"id": ch, "name": f"Local/{ch}", "caller": {"number": caller}},
            }
        )
        for code in codes:
            for digit in code:
                await ctl.on_event({"type": "ChannelDtmfReceived", "digit": digit, "channel": {"id": ch}})

    await call("a1", "+15550000001", "1" * 10, "2" * 10)
    # Two wrong codes from that number: a second call's code is not even looked up.
    await call("a2", "+15550000001", session["code"])
    assert (
        "POST",
        "channels/a2/continue",
        {"context": "pb-callin", "extension": "locked", "priority": 1, "body": None},
    ) in ari.calls
    assert session["id"] not in ctl.legs and ctl.entries["a2"].state.value == "refused"
    # The owner, from their own phone, gets in.
    await call("b1", "+15550000002", session["code"])
    assert any(c[1].endswith("/addChannel") and c[2] and c[2].get("channel") == "b1" for c in ari.calls)
    # What the guard knows is in the store for the next controller run.
    stored = g.from_json(callin_guard.load(store), limits)
    assert [n for n, _ in stored.wrong] == ["+15550000001"] * 2 and stored.locked[0][0] == "+15550000001"


async def test_stop_cancels_the_ringing_line_and_gives_the_contact_back(tmp_path: Path) -> None:
    """The adapter's side of a cancel: the voter channel is hung up, the call row says cancelled and the contact is
    pending again with its attempt given back (the live test: tests/test_e2e_leaving_volunteer.py)."""
    from bridge import volunteer as vol

    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Cancel")["id"]
    store.add_contacts(cid, [{"phone": day_number(1000)}])
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store)  # type: ignore[arg-type]
    ctl.refresh_campaigns()
    sid = store.create_session(cid, "Lee")["id"]
    await ctl.run(ctl.dialer.handle(d.VolunteerJoined(sid, cid), 1.0))
    (call_id,) = ctl.dialer.calls
    await ctl.on_event({"type": "ChannelStateChange", "channel": {"id": call_id, "state": "Ringing"}})
    await ctl.volunteer_action(sid, "stop")
    assert ("DELETE", f"channels/{call_id}", {}) in ari.calls
    row = store.call(call_id)
    assert row is not None and row["outcome"] == "cancelled" and not row["abandoned"]
    (contact,) = store.contacts(cid)
    assert contact["status"] == "pending" and contact["attempts"] == 0
    await ctl.on_event({"type": "ChannelDestroyed", "cause": 16, "channel": {"id": call_id}})
    assert store.call(call_id)["outcome"] == "cancelled"  # type: ignore[index]
    assert ctl.dialer.volunteers.get(sid) is None or ctl.dialer.volunteers[sid].state is vol.VState.ENDED


class RefusingAri(FakeAri):
    """Asterisk refuses every dial (a trunk or endpoint that does not exist)."""

    async def post(self, path: str, body: dict[str, object] | None = None, **params: object) -> object:
        if path.startswith("channels/pbc-"):
            from bridge.ari import AriHttpError

            raise AriHttpError("POST", path, 400, "Allocation failed")
        return await super().post(path, body, **params)


async def test_refused_dials_tell_callers_the_trunk_is_down(tmp_path: Path) -> None:
    from bridge import waiting as wt

    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("No trunk")["id"]
    store.add_contacts(cid, [{"phone": day_number(1000 + i)} for i in range(5)])
    ari = RefusingAri()
    ctl = Controller(ari=ari, store=store)  # type: ignore[arg-type]
    ctl.refresh_campaigns()
    ctl.dialer.volunteers[1] = d.vol.Volunteer(1, cid)
    for _ in range(wt.TRUNK_FAILURES):
        await ctl.run([NeedContacts(cid, 1)])
    reason = ctl.waiting.for_effort(ctl, cid)
    assert reason is not None and reason.code == "trunk_down" and "Allocation failed" in reason.text
    ctl.dialer.calls["pbc-ok"] = d.Call("pbc-ok", cid, 1)
    await ctl.on_event({"type": "ChannelStateChange", "channel": {"id": "pbc-ok", "state": "Ringing"}})
    assert ctl.trunk.error(cid) is None, "a call ringing: the trunk carries calls again"


async def test_the_cores_timers_wake_the_adapter(tmp_path: Path) -> None:
    """The adapter keeps no windows of its own: it asks the cores when they are due (next_wake) and hands them
    the time (handle_timers). Here the call-in's digit timeout and our detector's no-verdict deadline."""
    import time

    from bridge.ari_app import Leg
    from bridge.dialer import AMD_TIMEOUT_CAUSE, AMD_VERDICT_S

    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Timers", dial_mode="personal")["id"]  # places no lines: no pacing tick
    store.add_contacts(cid, [{"phone": day_number(1000)}])
    sid = store.create_session(cid, "Lee")["id"]
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store)  # type: ignore[arg-type]
    ctl.refresh_campaigns()
    assert ctl.next_wake() is None, "nothing timed yet"

    before = time.time()
    await ctl.on_event(
        {
            "type": "StasisStart",
            "args": ["callin"],
            "channel": {"id": "in1", "name": "Local/in1", "caller": {"number": "+15550001111"}},
        }
    )
    wake = ctl.next_wake()
    assert wake is not None and before + 10 <= wake <= time.time() + 10
    await ctl.handle_timers(wake - 0.01)
    assert ari.calls[-1][:2] == ("POST", "channels/in1/play") and ari.calls[-1][2]["media"] == "sound:agent-pass"
    await ctl.handle_timers(wake)
    assert ari.calls[-1][:2] == ("POST", "channels/in1/play")
    assert ari.calls[-1][2]["media"] == "sound:auth-incorrect,sound:agent-pass"
    ctl.entries.clear()

    # A voter answered and tapped, and no verdict ever comes: at the deadline the dialer puts them through.
    contact_id = store.contacts(cid)[0]["id"]
    store.insert_call("pbc-t", cid, contact_id, 0, "pbc-t", 100.0)
    ctl.legs[sid] = Leg(sid, cid, "vol-leg", "pb-vol-b")
    await ctl.run(ctl.dialer.handle(d.VolunteerJoined(sid, cid), 100.0), 100.0)
    ctl.dialer.handle(d.CallPlaced("pbc-t", cid, contact_id), 100.0)
    ctl.dialer.handle(d.CallAnswered("pbc-t"), 101.0)
    ctl.dialer.handle(d.DetectorListening("pbc-t"), 101.5)
    assert ctl.next_wake() == 101.5 + AMD_VERDICT_S
    await ctl.handle_timers(101.5 + AMD_VERDICT_S)
    assert ("POST", "bridges/pb-vol-b/addChannel", {"channel": "pbc-t", "body": None}) in ari.calls
    row = store.call("pbc-t")
    assert row is not None and row["amd_status"] == "HUMAN" and row["amd_cause"] == AMD_TIMEOUT_CAUSE
    assert row["amd_decided_at"] == 101.5 + AMD_VERDICT_S, "stamped with the time the timer fired"


async def test_a_voicemail_waits_for_the_detectors_beep(tmp_path: Path) -> None:
    """What our detector's events mean is the dialer's (DetectorHeard); the adapter plays the message when told
    and takes the tap off."""
    from bridge.amd import Event as AmdEvent

    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign(
        "Machines", dial_mode="personal", machine_action="voicemail", voicemail_media="custom/vm-1"
    )["id"]
    store.add_contacts(cid, [{"phone": day_number(1000)}])
    contact_id = store.contacts(cid)[0]["id"]
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store)  # type: ignore[arg-type]
    ctl.refresh_campaigns()
    store.insert_call("pbc-m", cid, contact_id, 0, "pbc-m", 100.0)
    ctl.dialer.handle(d.CallPlaced("pbc-m", cid, contact_id), 100.0)
    ctl.dialer.handle(d.CallAnswered("pbc-m"), 101.0)
    ctl._amd_taps["pbc-m"] = ("amds-pbc-m", "amdx-pbc-m", "amdb-pbc-m")  # as _tap_for_detector leaves it
    ctl.dialer.handle(d.DetectorListening("pbc-m"), 101.0)

    await ctl.on_event({"type": "PhonebankAmd", "channel": {"id": "pbc-m"}, "event": AmdEvent("machine", 2100, "x")})
    assert not [c for c in ari.calls if c[1].startswith("channels/pbc-m")], "nothing played or hung up yet"
    assert "pbc-m" in ctl._amd_taps, "the tap stays for the beep"
    row = store.call("pbc-m")
    assert row is not None and row["amd_status"] == "MACHINE" and row["amd_cause"] == "OURS-x-2100"

    await ctl.on_event({"type": "PhonebankAmd", "channel": {"id": "pbc-m"}, "event": AmdEvent("beep", 4200)})
    assert (
        "POST",
        "channels/pbc-m/play",
        {"media": "sound:custom/vm-1", "playbackId": "vm-pbc-m", "body": None},
    ) in ari.calls
    assert ("DELETE", "channels/amds-pbc-m", {}) in ari.calls and "pbc-m" not in ctl._amd_taps


async def test_a_spanish_volunteers_callin_turns_spanish_once_the_code_is_known(tmp_path: Path) -> None:
    """Bilingual prompt (each language named in the play request, each stoppable), the first key stops it, and the
    session's code sets the channel's language before the welcome (the live test: tests/test_e2e_spanish_callin.py)."""
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Bilingual")["id"]
    session = store.create_session(cid, "Lucía", language="es")
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store, callin_languages=("en", "es"))  # type: ignore[arg-type]
    await ctl.on_event(
        {
            "type": "StasisStart",
            "args": ["callin"],
            "channel": {"id": "c1", "name": "Local/c1", "caller": {"number": "1"}},
        }
    )
    plays = [c for c in ari.calls if c[1] == "channels/c1/play"]
    assert [(p[2]["media"], p[2]["lang"]) for p in plays] == [("sound:agent-pass", "en"), ("sound:agent-pass", "es")]
    for digit in session["code"]:
        await ctl.on_event({"type": "ChannelDtmfReceived", "digit": digit, "channel": {"id": "c1"}})
    stopped = [c[1] for c in ari.calls if c[0] == "DELETE" and c[1].startswith("playbacks/")]
    assert stopped == [f"playbacks/{p[2]['playbackId']}" for p in plays]
    paths = [c[1] for c in ari.calls]
    set_lang = ("POST", "channels/c1/variable", {"variable": "CHANNEL(language)", "value": "es", "body": None})
    assert set_lang in ari.calls
    welcome = next(
        i for i, c in enumerate(ari.calls) if c[1] == "channels/c1/play" and c[2]["media"] == "sound:agent-loginok"
    )
    assert ari.calls.index(set_lang) < welcome and "lang" not in ari.calls[welcome][2]  # the channel's: Spanish
    assert session["id"] in ctl.legs and paths.count("channels/c1/variable") == 1


async def test_the_abandon_message_and_voicemail_follow_the_voters_language(tmp_path: Path) -> None:
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign(
        "Voters",
        abandon_media="/snd/abandon-1",
        voicemail_media="/snd/vm-en",
        media_by_language={"es": {"abandon": "/snd/abandon-1-es"}},
    )["id"]
    store.add_contacts(
        cid,
        [
            {"phone": day_number(1000), "extra": {"Language": "Spanish"}},
            {"phone": day_number(1001), "extra": {}},
        ],
    )
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store)  # type: ignore[arg-type]
    ctl.refresh_campaigns()
    spanish, english = store.contacts(cid)
    for call_id, contact in (("pbc-es", spanish), ("pbc-en", english)):
        ctl.dialer.calls[call_id] = d.Call(call_id, cid, contact["id"])
        await ctl.run([PlayAbandonMessage(call_id), DropVoicemail(call_id, False)])

    def variables(call_id: str) -> list[tuple[str, str]]:
        return [(c[2]["variable"], c[2]["value"]) for c in ari.calls if c[1] == f"channels/{call_id}/variable"]

    assert variables("pbc-es") == [
        ("PB_MEDIA", "/snd/abandon-1-es"),
        ("CHANNEL(language)", "es"),
        ("PB_MEDIA", "/snd/vm-en"),  # no Spanish voicemail recorded: the effort's own
        ("CHANNEL(language)", "es"),
    ]
    assert variables("pbc-en") == [
        ("PB_MEDIA", "/snd/abandon-1"),
        ("CHANNEL(language)", "en"),
        ("PB_MEDIA", "/snd/vm-en"),
        ("CHANNEL(language)", "en"),
    ]


async def test_a_spanish_volunteers_computer_audio_replacing_their_phone_turns_spanish(tmp_path: Path) -> None:
    """A computer audio leg that takes the place of the phone one (the same bridge, voter and all) hears the
    session's language from then on, as one that joins fresh does (the beep before each voter, hold messages)."""
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Bilingual")["id"]
    session = store.create_session(cid, "Lucía", language="es")
    sid = session["id"]
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store)
    ctl.refresh_campaigns()
    ctl.legs[sid] = Leg(sid, cid, "phone-1", "pb-vol-1-x")
    await ctl.run(ctl.dialer.handle(d.VolunteerJoined(sid, cid), 1.0), 1.0)
    account, _ = await ctl.issue_sip_account(sid, "webrtc")
    chan = {"id": "web-1", "name": f"PJSIP/{account.username}-00000001"}
    await ctl.on_event({"type": "StasisStart", "args": ["sipleg", account.username], "channel": chan})
    assert ctl.legs[sid].channel_id == "web-1", "the new leg took the old one's place"
    set_lang = ("POST", "channels/web-1/variable", {"variable": "CHANNEL(language)", "value": "es", "body": None})
    assert set_lang in ari.calls


async def test_a_refused_caller_is_told_goodbye_in_each_callin_language(tmp_path: Path) -> None:
    """Three wrong codes: the adapter hands the call-in's languages to the dialplan (PB_LANGUAGES, pb-say) before
    it continues there; a one-language call-in sets nothing (the channel's language, as it was)."""
    from callin import guard as g

    store = Store(tmp_path / "pb.db")
    store.create_campaign("Refusals")
    for ch, languages in (("two", ("en", "es")), ("one", ("en",))):
        ari = FakeAri()
        guard = g.Guard(limits=g.Limits(tarpit_base_s=0.0))  # no wait between tries: three wrong codes at once
        ctl = Controller(ari=ari, store=store, guard=guard, callin_languages=languages)  # type: ignore[arg-type]
        start = {"type": "StasisStart", "args": ["callin"], "channel": {"id": ch, "name": f"Local/{ch}"}}
        await ctl.on_event({**start, "channel": {**start["channel"], "caller": {"number": f"+1555000{len(ch)}"}}})
        for digit in "1" * 30:
            await ctl.on_event({"type": "ChannelDtmfReceived", "digit": digit, "channel": {"id": ch}})
        paths = [c[1] for c in ari.calls if c[0] == "POST"]
        assert ctl.entries[ch].state.value == "refused" and f"channels/{ch}/continue" in paths
        variables = [c[2] for c in ari.calls if c[1] == f"channels/{ch}/variable"]
        if len(languages) > 1:
            assert variables == [{"variable": "PB_LANGUAGES", "value": "en,es", "body": None}]
            assert paths.index(f"channels/{ch}/variable") < paths.index(f"channels/{ch}/continue")
        else:
            assert variables == []
