"""Spanish on the phone, on the real Asterisk: a volunteer whose session is Spanish calls in and the audio their phone
receives is Asterisk's Spanish recording, not the English one; an English volunteer still hears English; a caller who
keys nothing hears the call-in's prompt in English and then in Spanish; voters nobody could take hear the abandon
message in their list's language, else the effort's.

What a drilled phone receives is matched against the sound files themselves, 200 ms at a time (normalised
cross-correlation): a prompt arrives sample for sample, so each piece of its own file is found in what the phone
received (score ~1.0), while pieces of a recording it never received score 0.2-0.7. Piece by piece because the
recording of the received audio slips a frame now and then, which spoils one long correlation."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from bridge import language as lang
from bridge.ari import AriClient
from callin import drill
from phonebank.asterisk import SOUNDS_DIR, in_root
from phonebank.harness import ControllerProcess, Pbx, day_number, read_wav_samples, until
from phonebank.sim import SimNumber
from store.db import Store

pytestmark = pytest.mark.asterisk

# A piece of a file counts as received when it correlates at least this well somewhere in what the phone received.
# Measured on this PBX: pieces of what was played score 0.99-1.0, pieces of what was not at most 0.72.
PIECE = 1600  # 200 ms at 8 kHz
RECEIVED = 0.9
# The share of a file's pieces found: the whole file played (1.0) or none of it (0.0). Room for pieces lost: a frame
# slip inside a piece spoils that piece (measured: 13 of 16 pieces of a prompt played in full found, once).
MATCH = 0.6
NO_MATCH = 0.2


def sound_file(pbx: Pbx, language: str, name: str, out_dir: Path) -> Path:
    """The file Asterisk plays for ``sound:name`` on a channel in ``language``, as 8 kHz 16-bit WAV (its recordings
    are GSM; sox decodes them)."""
    found = sorted(in_root(pbx.rt.root, f"{SOUNDS_DIR}/{language}").glob(f"{name}.*"))
    assert found, f"no {language} sound {name}: provisioning should have installed or spoken it"
    target = out_dir / f"ref-{language}-{name}.wav"
    subprocess.run(["sox", str(found[0]), "-r", "8000", "-c", "1", "-b", "16", str(target)], check=True)
    return target


def best_match(heard: np.ndarray, reference: np.ndarray) -> float:
    """The highest normalised cross-correlation of ``reference`` against any stretch of ``heard`` (1: the very
    same samples, up to a gain)."""
    ref = reference - reference.mean()
    n = ref.size
    if heard.size < n or not ref.any():
        return 0.0
    size = 1 << int(np.ceil(np.log2(heard.size + n)))
    corr = np.fft.irfft(np.fft.rfft(heard, size) * np.conj(np.fft.rfft(ref, size)), size)[: heard.size - n + 1]
    # Energy of every window of ``heard`` as long as the reference (running sums).
    sq = np.concatenate(([0.0], np.cumsum(heard**2)))
    s = np.concatenate(([0.0], np.cumsum(heard)))
    energy = (sq[n:] - sq[:-n]) - (s[n:] - s[:-n]) ** 2 / n
    score = corr / (np.sqrt(np.maximum(energy, 1e-9)) * np.linalg.norm(ref))
    # Windows of near silence say nothing (their score is noise over noise).
    loud = energy > 1e-3 * float(np.max(energy))
    return float(np.max(score[loud])) if loud.any() else 0.0


def received(heard: np.ndarray, reference: np.ndarray, seconds: float | None = None) -> float:
    """The share of ``reference``'s 200 ms pieces (of its first ``seconds``, if given) found in ``heard``."""
    ref = reference if seconds is None else reference[: int(seconds * 8000)]
    pieces = [ref[i : i + PIECE] for i in range(0, ref.size - PIECE + 1, PIECE)]
    return sum(best_match(heard, p) >= RECEIVED for p in pieces) / len(pieces)


async def test_a_spanish_volunteer_hears_spanish_and_an_english_one_english(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient, tmp_path: Path
) -> None:
    # Provisioning gave Asterisk every sound the phone bank plays in every language (recorded or spoken).
    for language in lang.LANGUAGES:
        sounds = in_root(pbx.rt.root, f"{SOUNDS_DIR}/{language}")
        missing = [name for name in lang.SOUNDS if not any(sounds.glob(f"{name}.*"))]
        assert not missing, f"{language}: {missing}"

    store = Store(pbx.settings.db_path)
    # Paused: nobody is dialled, the volunteers only join.
    cid = store.create_campaign("Bilingual call-in", status="paused")["id"]
    sessions = {}
    for language, name in (("es", "Lucía"), ("en", "Lucy")):
        status, body = controller.call(
            "POST", "/api/sessions", {"campaign_id": cid, "name": name, "language": language}
        )
        assert status == 201, body
        sessions[language] = body
        assert store.session(body["id"])["language"] == language  # type: ignore[index]
    status, body = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "X", "language": "xx"})
    assert status == 400 and "language" in body["error"]

    references = {
        (language, name): read_wav_samples(sound_file(pbx, language, name, tmp_path))[0]
        for language in ("en", "es")
        for name in ("agent-loginok", "agent-pass")
    }
    # The two languages' recordings are told apart: the Spanish welcome holds no piece of the English one.
    assert received(references[("es", "agent-loginok")], references[("en", "agent-loginok")]) <= NO_MATCH

    # Both volunteers key their code 2 s into the English prompt (3.3 s long, the Spanish one queued behind it; a
    # loaded PBX may start it a few hundred ms late, so only its first 1.2 s are checked); a third caller keys
    # nothing for 9 s (the English and the Spanish prompt are heard in full), then a wrong code.
    legs = {
        language: await drill.volunteer(ari, pbx.rt, s["code"], stay_s=60, delay_s=2.0, caller=f"+1202555013{i}")
        for i, (language, s) in enumerate(sessions.items())
    }
    silent = await drill.volunteer(ari, pbx.rt, "0" * 10, stay_s=60, delay_s=9.0, caller="+12025550139")

    def connected(sid: int) -> bool:
        return bool(controller.call("GET", f"/api/sessions/{sid}")[1]["phone_connected"])

    await until(lambda: all(connected(s["id"]) for s in sessions.values()), 30, "both volunteers to join")
    joined_at = time.monotonic()
    # The welcome (about a second) is played once the leg is in its bridge; give it time to arrive whole.
    await asyncio.sleep(4)
    # The silent caller's prompts: English (about 3 s) then Spanish (about 4 s), before its code at 9 s.
    await until(lambda: silent.heard_wav.exists(), 10, "the silent caller's recording")
    await asyncio.sleep(max(0.0, 10.0 - (time.monotonic() - joined_at)))

    # Hung up, MixMonitor closes its files (it writes them in chunks while the call lasts).
    for leg in (*legs.values(), silent):
        await ari.delete(f"channels/{leg.channel_id}")
    sizes: list[tuple[int, ...]] = []

    def settled() -> bool:
        sizes.append(tuple(leg.heard_wav.stat().st_size for leg in (*legs.values(), silent)))
        return len(sizes) > 2 and sizes[-1] == sizes[-2] == sizes[-3]

    await until(settled, 10, "the recordings to be closed")
    heard = {language: read_wav_samples(leg.heard_wav)[0] for language, leg in legs.items()}
    heard["silent"] = read_wav_samples(silent.heard_wav)[0]
    welcome = {who: {x: received(heard[who], references[(x, "agent-loginok")]) for x in ("en", "es")} for who in heard}
    prompt = {who: {x: received(heard[who], references[(x, "agent-pass")]) for x in ("en", "es")} for who in heard}
    prompt_start = {who: received(heard[who], references[("en", "agent-pass")], seconds=1.2) for who in heard}
    print("welcome", welcome, "prompt", prompt, "prompt start", prompt_start)

    # The Spanish volunteer's phone received the Spanish welcome, not the English one; the English one's the reverse.
    assert welcome["es"]["es"] >= MATCH and welcome["es"]["en"] <= NO_MATCH, welcome
    assert welcome["en"]["en"] >= MATCH and welcome["en"]["es"] <= NO_MATCH, welcome
    # Before their code both heard the start of the call-in's prompt in its first language (English); keying 2 s
    # into it cut it short, so its Spanish half (queued behind it) never reached them.
    assert prompt_start["es"] >= MATCH and prompt_start["en"] >= MATCH, prompt_start
    assert prompt["es"]["es"] <= NO_MATCH and prompt["en"]["es"] <= NO_MATCH, prompt
    # A caller who keys nothing hears the whole prompt in English, then in Spanish; no welcome (no session yet).
    assert prompt["silent"]["en"] >= MATCH and prompt["silent"]["es"] >= MATCH, prompt
    assert welcome["silent"]["en"] <= NO_MATCH and welcome["silent"]["es"] <= NO_MATCH, welcome
    store.close()


async def test_abandoned_voters_hear_the_message_in_their_language(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient
) -> None:
    # Four people answer at once for one volunteer at 4:1: three are abandoned, so both languages are among them.
    voters = [
        SimNumber(day_number(1960 + i), "human", ring_s=2, talk_s=20, tone_hz=2500 + 70 * i, audio="human-hello-1")
        for i in range(4)
    ]
    spanish = {voters[0].number, voters[2].number}
    pbx.load_sim(voters)
    await ari.post("asterisk/variable", variable="PB_SIM_HEARD", value="1")  # the voters record what they hear
    store = Store(pbx.settings.db_path)
    try:
        cid = int(
            store.create_campaign(
                "Bilingual voters",
                org_name="Fair Votes",
                callback_number="2025550100",
                ring_timeout_s=15,
                dial_ratio=4.0,
            )["id"]
        )

        # The controller speaks the effort's abandon message (English: the effort's language) and a Spanish one.
        def prompts() -> dict[str, str] | None:
            row = store.campaign(cid) or {}
            es = lang.other_media(row).get("es", {}).get("abandon")
            return {"en": row["abandon_media"], "es": es} if row.get("abandon_media") and es else None

        media = await until(prompts, 30, "the abandon messages to be spoken")
        refs = {x: read_wav_samples(pbx.rt.host_path(f"{path}.wav"))[0] for x, path in media.items()}

        status, session = controller.call(
            "POST", "/api/sessions", {"campaign_id": cid, "name": "Vera", "language": "en"}
        )
        assert status == 201, session
        await drill.volunteer(ari, pbx.rt, session["code"], stay_s=120)
        await until(lambda: controller.call("GET", f"/api/sessions/{session['id']}")[1]["phone_connected"], 20, "join")
        store.add_contacts(
            cid,
            [
                # The list's own column says who speaks Spanish; the others have none (the effort's language).
                {
                    "first_name": f"V{i}",
                    "phone": v.number,
                    "extra": {"Language": "Spanish"} if v.number in spanish else {},
                }
                for i, v in enumerate(voters)
            ],
        )

        def abandoned_and_over() -> list[dict[str, object]] | None:
            calls = store.calls(cid)
            gone = [c for c in calls if c["abandoned"] and c["ended_at"]]
            return gone if len(gone) >= 3 else None

        gone = await until(abandoned_and_over, 90, "three abandoned calls to end")
        await asyncio.sleep(1)  # MixMonitor closes the voter's recording as the call ends
        phone_of = {c["id"]: c["phone"] for c in store.contacts(cid)}
        heard_by = {}
        for call in gone:
            phone = str(phone_of[call["contact_id"]])
            (path,) = sorted(pbx.rt.host_path(f"{pbx.rt.sim_dir}/vm").glob(f"heard-{phone.lstrip('+')}-*-in.wav"))
            heard = read_wav_samples(path)[0]
            heard_by[phone] = {x: received(heard, ref) for x, ref in refs.items()}
        print("abandoned voters heard", heard_by)
        assert {p in spanish for p in heard_by} == {True, False}, heard_by  # both languages abandoned
        for phone, got in heard_by.items():
            mine, other = ("es", "en") if phone in spanish else ("en", "es")
            assert got[mine] >= MATCH and got[other] <= NO_MATCH, (phone, got)
    finally:
        await ari.post("asterisk/variable", variable="PB_SIM_HEARD", value="")
        store.close()


async def test_a_refused_caller_hears_goodbye_in_each_language(
    pbx: Pbx, controller: ControllerProcess, ari: AriClient, tmp_path: Path
) -> None:
    """Three wrong codes: no code said which language the caller speaks, so the goodbye is said in each of the
    call-in's languages (English, then Spanish: callin.entry's Refuse, the dialplan's pb-say), as the prompts were."""
    refs = {x: read_wav_samples(sound_file(pbx, x, "vm-goodbye", tmp_path))[0] for x in ("en", "es")}
    assert received(refs["es"], refs["en"]) <= NO_MATCH  # the two recordings are told apart
    # A wrong code 1 s into the prompt, then two more right after it (ten digits each: no # needed).
    leg = await drill.volunteer(
        ari,
        pbx.rt,
        "0" * 10,
        stay_s=60,
        delay_s=1.0,
        later_keys="1" * 20,
        later_keys_after_s=1.0,
        caller="+12025550177",
    )

    async def gone() -> bool:
        return leg.channel_id not in {ch["id"] for ch in await ari.get("channels")}

    deadline = time.monotonic() + 60
    while not await gone():
        assert time.monotonic() < deadline, "the refused caller was never hung up"
        await asyncio.sleep(0.5)
    sizes: list[int] = []

    def settled() -> bool:
        sizes.append(leg.heard_wav.stat().st_size if leg.heard_wav.exists() else -1)
        return len(sizes) > 2 and sizes[-1] == sizes[-2] == sizes[-3] > 0

    await until(settled, 10, "the recording to be closed")
    heard = read_wav_samples(leg.heard_wav)[0]
    goodbye = {x: received(heard, refs[x]) for x in ("en", "es")}
    print("goodbye", goodbye)
    assert goodbye["en"] >= MATCH and goodbye["es"] >= MATCH, goodbye
