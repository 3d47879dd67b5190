"""Answering-machine detector: decisions, beep timing, streaming/rate handling, and the classify CLI.

Audio is synthesised here: a "voice" is a harmonic series on a wandering fundamental, shaped by moving
formants and chopped into syllables, which WebRTC's VAD takes for speech and which is not a tone; beeps and
special-information tones are sine waves; everything sits on low line noise.
"""

from __future__ import annotations

import json
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from bridge.amd import FRAME_MS, AmdDetector, AmdParams, Event, classify_pcm
from bridge.amd_cli import classify_main


def voice(rate: int, ms: float, seed: int, f0: float = 120.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(rate * ms / 1000)
    t = np.arange(n) / rate
    pitch = f0 * (1 + 0.12 * np.sin(2 * np.pi * 1.3 * t + rng.uniform(0, 6)) + 0.03 * rng.standard_normal())
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    f1 = 500 + 200 * np.sin(2 * np.pi * 3.1 * t + rng.uniform(0, 6))
    f2 = 1500 + 500 * np.sin(2 * np.pi * 2.3 * t + rng.uniform(0, 6))
    x = np.zeros(n)
    for k in range(1, int(3400 / f0)):
        fk = k * pitch
        amp = np.exp(-(((fk - f1) / 150) ** 2)) + 0.6 * np.exp(-(((fk - f2) / 200) ** 2)) + 0.05
        x += amp * np.sin(k * phase)
    # Syllables at ~4 per second, with short dips between them as in running speech.
    syl = np.clip(np.sin(np.pi * 4.2 * t + rng.uniform(0, 1)) ** 2 * 1.6, 0.08, 1.0)
    ramp = np.minimum(1, np.minimum(t, t[-1] - t) / 0.02)
    x = x * syl * ramp
    return x / np.sqrt(np.mean(x**2)) * 0.08


def sine(rate: int, hz: float, ms: float, level: float = 0.15) -> np.ndarray:
    t = np.arange(int(rate * ms / 1000)) / rate
    return level * np.sin(2 * np.pi * hz * t)


def gap(rate: int, ms: float) -> np.ndarray:
    return np.zeros(int(rate * ms / 1000))


def render(rate: int, parts: list[np.ndarray], seed: int = 0) -> bytes:
    x = np.concatenate(parts)
    x = x + np.random.default_rng(seed + 99).standard_normal(len(x)) * 0.002  # about -54 dBFS of line hiss
    return np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes()


def run(pcm: bytes, rate: int, chunk_bytes: int | None = None, params: AmdParams | None = None) -> list[Event]:
    det = AmdDetector(rate, params)
    step = chunk_bytes or rate * FRAME_MS // 1000 * 2
    for i in range(0, len(pcm), step):
        det.feed(pcm[i : i + step])
    det.finish()
    return det.events


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


def human_clip(rate: int = 8000, speech_ms: float = 500, seed: int = 1) -> tuple[bytes, int]:
    """Answer, 400 ms of nothing, "Hello?", then waiting; returns the audio and where the greeting ends."""
    pcm = render(rate, [gap(rate, 400), voice(rate, speech_ms, seed), gap(rate, 2500)], seed)
    return pcm, int(400 + speech_ms)


def machine_clip(rate: int = 8000, beep_hz: float | None = 1000.0, seed: int = 2) -> tuple[bytes, int, int]:
    """A 4.5 s greeting in three sentences, then a 500 ms beep; returns audio, beep start and end (ms)."""
    parts = [gap(rate, 300), voice(rate, 1800, seed), gap(rate, 250), voice(rate, 1200, seed + 1, 180)]
    parts += [gap(rate, 400), voice(rate, 1500, seed + 2), gap(rate, 400)]
    start = 300 + 1800 + 250 + 1200 + 400 + 1500 + 400
    if beep_hz is not None:
        parts.append(sine(rate, beep_hz, 500))
    parts.append(gap(rate, 1500))
    return render(rate, parts, seed), start, start + 500


# -- decisions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("speech_ms", [300, 500, 650])
def test_short_hello_is_human_soon_after_it_ends(speech_ms: int) -> None:
    pcm, greeting_end = human_clip(speech_ms=speech_ms, seed=speech_ms)
    events = run(pcm, 8000)
    assert kinds(events) == ["human"]
    delay = events[0].at_ms - greeting_end
    # Needs the configured 300 ms of silence, and must not leave the person in dead air much longer. (The quiet
    # tail of the last syllable, more than speech_drop_db under the loudest speech, already counts as silence.)
    assert 200 <= delay <= 400, delay


def test_long_greeting_with_beep_is_machine_and_message_starts_just_after_the_beep() -> None:
    pcm, beep_start, beep_end = machine_clip()
    events = run(pcm, 8000)
    assert kinds(events) == ["machine", "beep"]
    machine, beep = events
    assert machine.reason == "long_turn"
    # Past 3.2 s of talking the turn is long; the machine is known when it goes on after its next pause (the
    # third sentence starts at 3950 ms), without waiting for the beep.
    assert 3950 <= machine.at_ms <= 3950 + 120
    assert abs(beep.start_ms - beep_start) <= 40 and abs(beep.end_ms - beep_end) <= 40
    assert 0 <= beep.at_ms - beep_end <= 300


def test_greeting_without_beep_ends_after_long_silence() -> None:
    pcm, greeting_end, _ = machine_clip(beep_hz=None)
    greeting_end -= 400  # machine_clip's start-of-beep includes the 400 ms pause before it
    events = run(pcm, 8000)
    assert kinds(events) == ["machine", "greeting_end"]
    end = events[1]
    assert abs(end.end_ms - greeting_end) <= 60
    assert end.at_ms - greeting_end == pytest.approx(AmdParams().greeting_end_silence_ms, abs=60)


def test_short_greeting_followed_quickly_by_beep_is_machine() -> None:
    rate = 8000
    pcm = render(rate, [gap(rate, 300), voice(rate, 800, 5), gap(rate, 150), sine(rate, 850, 400), gap(rate, 1000)])
    events = run(pcm, rate)
    assert kinds(events) == ["machine", "beep"]
    assert events[0].reason == "tone"
    # Decided while the tone is still sounding, once it has lasted beep_min_ms.
    assert 1250 + AmdParams().beep_min_ms <= events[0].at_ms <= 1250 + 260
    assert 0 <= events[1].at_ms - 1650 <= 300


def test_special_information_tones_mean_machine_and_no_beep() -> None:
    rate = 8000
    sit = [sine(rate, 913.8, 276), sine(rate, 1370.6, 276), sine(rate, 1776.7, 380)]
    pcm = render(rate, [gap(rate, 200), *sit, gap(rate, 300), voice(rate, 3000, 7), gap(rate, 2000)])
    events = run(pcm, rate)
    assert kinds(events) == ["machine", "greeting_end"]
    assert events[0].at_ms < 200 + 276 + 100  # the first tone alone is enough


def test_silence_after_answer_is_a_waiting_human() -> None:
    rate = 8000
    events = run(render(rate, [gap(rate, 5000)]), rate)
    assert kinds(events) == ["human"]
    assert events[0].reason == "initial_silence"
    assert events[0].at_ms == AmdParams().initial_silence_ms


def test_human_bias_moves_the_longest_human_turn() -> None:
    rate = 8000
    pcm = render(rate, [gap(rate, 300), voice(rate, 5500, 11), gap(rate, 2500)])
    assert kinds(run(pcm, rate))[0] == "human"
    assert kinds(run(pcm, rate, params=AmdParams(human_bias=-1.0)))[0] == "machine"
    assert kinds(run(pcm, rate, params=AmdParams(human_bias=1.0)))[0] == "human"


def test_greeting_that_goes_straight_on_after_a_pause_is_corrected_to_machine() -> None:
    # "Hi, this is Maria." - a 450 ms pause, long enough to look like a person waiting - "I can't come to the
    # phone right now, please leave a message...": human first, then the late correction, then the beep.
    # The correction waits until the talking has gone on longer than a person's greeting (late_total_ms from
    # the start of the first turn): "Hello? ... Who am I speaking to?" is a person.
    rate = 8000
    parts = [gap(rate, 300), voice(rate, 600, 21), gap(rate, 450), voice(rate, 2000, 22), gap(rate, 300)]
    parts += [voice(rate, 2000, 24), gap(rate, 400), sine(rate, 1000, 500), gap(rate, 1500)]
    events = run(render(rate, parts, 21), rate)
    assert kinds(events) == ["human", "machine", "beep"]
    human, machine, beep = events
    assert human.reason == "short_turn" and machine.reason == "late_speech"
    assert abs(machine.at_ms - (300 + AmdParams().late_total_ms)) <= 100
    assert 0 <= beep.at_ms - (300 + 600 + 450 + 2000 + 300 + 2000 + 400 + 500) <= 300


def test_beep_after_a_short_greeting_and_a_pause_is_corrected_to_machine() -> None:
    # "Leave a message." then 700 ms of silence then the beep: it looks like a person until the beep.
    rate = 8000
    parts = [gap(rate, 300), voice(rate, 700, 23), gap(rate, 700), sine(rate, 850, 400), gap(rate, 1500)]
    events = run(render(rate, parts, 23), rate)
    assert kinds(events) == ["human", "machine", "beep"]
    assert events[1].reason == "late_tone"
    assert 0 <= events[2].at_ms - (300 + 700 + 700 + 400) <= 300


@pytest.mark.parametrize("pause_ms", [900, 1500])
def test_hello_pause_hello_stays_human(pause_ms: int) -> None:
    rate = 8000
    parts = [gap(rate, 300), voice(rate, 450, 31), gap(rate, pause_ms), voice(rate, 500, 32), gap(rate, 3000)]
    parts += [voice(rate, 2500, 33), gap(rate, 2000)]  # ...and later talks at length, as people do
    events = run(render(rate, parts, 31), rate)
    assert kinds(events) == ["human"]


def test_late_correction_can_be_turned_off() -> None:
    rate = 8000
    parts = [gap(rate, 300), voice(rate, 700, 23), gap(rate, 700), sine(rate, 850, 400), gap(rate, 1500)]
    pcm = render(rate, parts, 23)
    det = AmdDetector(rate, AmdParams(late_window_ms=0))
    events = det.feed(pcm)
    assert kinds(events) == ["human"] and det.done


def test_watching_ends_after_the_late_window() -> None:
    rate = 8000
    pcm, _ = human_clip()
    det = AmdDetector(rate)
    det.feed(pcm)
    assert det.decision is not None and det.decision.kind == "human" and not det.done
    det.feed(render(rate, [gap(rate, AmdParams().late_window_ms)]))
    assert det.done and det.first_decision is det.decision


# -- long greetings, and what a person does next (issue 10) --------------------------------------------------


def phrases(rate: int, lengths: list[int], breath_ms: int, seed: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for i, ms in enumerate(lengths):
        out += [voice(rate, ms, seed + i)] + ([gap(rate, breath_ms)] if i < len(lengths) - 1 else [])
    return out


# (case, audio after 300 ms of nothing, first decision, its reason, final decision)
CASES = [
    # "Good afternoon, Johnson residence, this is Robert speaking." (4.1 s with breaths), then waiting.
    ("long greeting, then waiting", [*phrases(8000, [900, 1300, 1700], 120, 40), gap(8000, 2500)],
     "human", "long_greeting", "human"),
    ("4.4 s greeting, then waiting", [*phrases(8000, [1200, 1400, 1600], 80, 50), gap(8000, 2500)],
     "human", "long_greeting", "human"),
    # A 5.3 s greeting has ended before the deadline (max_analysis_ms, 7 s): judged by the wait after it, not
    # guessed mid-sentence from the pauses inside it.
    ("5.3 s greeting, then waiting", [*phrases(8000, [1500, 1600, 1900], 150, 55), gap(8000, 2500)],
     "human", "long_greeting", "human"),
    # Still talking when the time is up (under the live path's deadline): put through, as a person finishing a
    # long greeting would be...
    ("still talking at the deadline, then waiting",
     [gap(8000, 1500), *phrases(8000, [1700, 1800, 1900], 150, 56), gap(8000, 2500)],
     "human", "max_analysis", "human"),
    # The same length of talk, then a pause a person would not leave in the middle of a greeting, then more.
    ("long sentence, pause, next sentence",
     [*phrases(8000, [1600, 1800], 150, 60), gap(8000, 400), voice(8000, 1500, 62), gap(8000, 2500)],
     "machine", "long_turn", "machine"),
    ("long sentence, pause, beep",
     [*phrases(8000, [1600, 1900], 150, 70), gap(8000, 450), sine(8000, 1000, 400), gap(8000, 2000)],
     "machine", "tone", "machine"),
    # ... unless the turn has already paused between sentences (sentence_pause_ms) and gone on: a machine.
    ("two sentences, still talking at the deadline",
     [gap(8000, 1000), voice(8000, 2000, 85), gap(8000, 400), *phrases(8000, [1600, 1500, 1500], 150, 86),
      gap(8000, 2000)],
     "machine", "long_turn", "machine"),
    # ... and a machine that goes on after a pause is pulled back (late_speech), one that beeps on the beep.
    ("still talking at the deadline, pause, next sentence",
     [gap(8000, 1500), *phrases(8000, [1700, 1800, 1900], 150, 56), gap(8000, 400), voice(8000, 1500, 81),
      gap(8000, 2000)],
     "human", "max_analysis", "machine"),
    ("5.3 s, pause, next sentence",
     [*phrases(8000, [1500, 1600, 1900], 150, 55), gap(8000, 400), voice(8000, 1500, 81), gap(8000, 2000)],
     "machine", "long_turn", "machine"),
    ("6 s without a pause, then waiting, beep",
     [gap(8000, 1500), voice(8000, 6000, 80), gap(8000, 700), sine(8000, 1000, 400), gap(8000, 2000)],
     "human", "max_analysis", "machine"),
    # Nobody answering the phone talks max_turn_ms (6.5 s) unbroken.
    ("7 s without a pause, beep", [voice(8000, 7000, 80), gap(8000, 300), sine(8000, 1000, 400), gap(8000, 2000)],
     "machine", "long_turn", "machine"),
    # A person who goes on once: "Hello? ... Who am I speaking to?", then waits.
    ("hello, pause, question", [voice(8000, 500, 90), gap(8000, 500), voice(8000, 1300, 91), gap(8000, 3000)],
     "human", "short_turn", "human"),
]  # fmt: skip


@pytest.mark.parametrize("case,parts,first,reason,final", CASES, ids=[c[0] for c in CASES])
def test_what_follows_a_turn_decides(case: str, parts: list[np.ndarray], first: str, reason: str,
                                     final: str) -> None:  # fmt: skip
    rate = 8000
    det = AmdDetector(rate)
    det.feed(render(rate, [gap(rate, 300), *parts], 7))
    det.finish()
    assert det.first_decision is not None and det.decision is not None
    assert (det.first_decision.kind, det.first_decision.reason, det.decision.kind) == (first, reason, final)


@pytest.mark.parametrize("pause_ms", [650, 800])
def test_a_two_second_opening_sentence_needs_a_longer_wait(pause_ms: int) -> None:
    # "Hi, you've reached Maria Lopez." (2 s), a pause a person would also leave after "Hi, this is Karen.",
    # then the next sentence and the beep: a first turn of mid_turn_from_ms..mid_turn_to_ms waits mid_silence_ms
    # (900), so the machine is caught at the first decision instead of being put through and pulled back.
    rate = 8000
    parts = [gap(rate, 300), voice(rate, 2000, 95), gap(rate, pause_ms), voice(rate, 1500, 96), gap(rate, 450)]
    parts += [sine(rate, 1000, 400), gap(rate, 2000)]
    det = AmdDetector(rate)
    det.feed(render(rate, parts, 9))
    det.finish()
    assert det.first_decision is not None and det.first_decision.kind == "machine"
    # Off (an empty band), the same pause is a person waiting: the rule is what catches it.
    events = run(render(rate, parts, 9), rate, params=AmdParams(mid_turn_from_ms=0, mid_turn_to_ms=0))
    assert events[0].kind == "human" and events[0].reason == "short_turn"


@pytest.mark.parametrize("speech_ms", [2000, 1200])
def test_a_person_after_a_mid_length_sentence_is_still_put_through(speech_ms: int) -> None:
    rate = 8000
    parts = [gap(rate, 300), voice(rate, speech_ms, 97), gap(rate, 3000)]
    events = run(render(rate, parts, 11), rate)
    assert kinds(events) == ["human"]
    # At most mid_silence_ms (900) of dead air for the 2 s sentence, long_silence_ms (550) for the 1.2 s one.
    assert events[0].at_ms - (300 + speech_ms) <= (960 if speech_ms == 2000 else 620)


def test_the_detector_decides_before_the_live_no_verdict_deadline() -> None:
    # The live path puts a call through as NOTSURE when no verdict came AMD_VERDICT_S after the tap; the detector's
    # own deadline must come first, with room for a busy controller, or its long-turn rules never get to decide.
    from bridge.dialer import AMD_LISTEN_S, AMD_VERDICT_S

    p = AmdParams()
    assert p.max_analysis_ms + 400 <= AMD_VERDICT_S * 1000
    assert AMD_VERDICT_S * 1000 + p.late_window_ms <= AMD_LISTEN_S * 1000, "the tap outlives the late window"
    rate = 8000
    # A turn still going at the deadline, with no pause between sentences: decided by then, as a person.
    events = run(render(rate, [gap(rate, 1500), voice(rate, 8000, 98), gap(rate, 1000)], 13), rate)
    assert events[0].kind == "human" and events[0].at_ms <= p.max_analysis_ms


def test_long_greeting_is_decided_within_600_ms_of_its_end() -> None:
    rate = 8000
    parts = [gap(rate, 300), *phrases(rate, [900, 1300, 1700], 120, 40), gap(rate, 2500)]
    end = 300 + 900 + 120 + 1300 + 120 + 1700
    events = run(render(rate, parts, 7), rate)
    assert kinds(events) == ["human"] and events[0].reason == "long_greeting"
    assert 0 < events[0].at_ms - end <= 600


def test_lost_packets_as_zeros_do_not_start_a_turn() -> None:
    # A jitter buffer that plays lost packets as digital silence: hiss, 60 ms holes, hiss. The holes must not
    # drag the noise floor down so far that the hiss becomes "speech" (a spurious "hello").
    rate = 8000
    x = np.random.default_rng(3).standard_normal(rate * 2) * 0.01  # -40 dBFS of line noise
    n = rate * FRAME_MS // 1000
    for k in range(10, 100, 17):
        x[k * n : (k + 3) * n] = 0
    pcm = np.round(x * 32767).astype("<i2").tobytes()
    events = run(pcm + render(rate, [voice(rate, 500, 5), gap(rate, 2000)], 5), rate)
    assert kinds(events) == ["human"] and events[0].reason == "short_turn"
    assert events[0].at_ms > 2000  # on the "hello", not on the hiss


def test_quiet_hello_on_a_digitally_silent_line_is_decided_promptly() -> None:
    # A line with no comfort noise at all (the simulated network plays silence/1, then the greeting): its zeros
    # are the line's silence, not lost packets, and a quiet "hello" after them is judged as on any line.
    rate = 8000
    hello = np.round(voice(rate, 500, 6) * 0.25 * 32767).astype("<i2").tobytes()  # about -34 dBFS
    zeros = b"\0\0" * rate
    events = run(zeros + hello + zeros * 3, rate)
    assert kinds(events) == ["human"] and events[0].reason == "short_turn"
    assert 200 <= events[0].at_ms - 1500 <= 400


def test_a_far_louder_speaker_after_background_talk_is_not_a_machine_going_on() -> None:
    # A TV in the room (20 dB under the person) before the person says "Good evening, this is Rosa.": the first
    # "turn" was the TV; the person's own sentence must not be taken for a machine's next sentence.
    rate = 8000
    tv = voice(rate, 500, 100) * 0.1
    parts = [gap(rate, 300), tv, gap(rate, 500), voice(rate, 1400, 101), gap(rate, 3000)]
    events = run(render(rate, parts, 9), rate)
    assert kinds(events) == ["human"]


def test_same_audio_same_events() -> None:
    pcm, _, _ = machine_clip(seed=4)
    assert run(pcm, 8000) == run(pcm, 8000)


# -- streaming, frame sizes and sample rates ---------------------------------------------------------------


@pytest.mark.parametrize("chunk_ms", [10, 20, 30, 60])
def test_any_chunk_size_gives_the_same_events(chunk_ms: int) -> None:
    pcm, _, _ = machine_clip(seed=3)
    assert run(pcm, 8000, chunk_bytes=8 * chunk_ms * 2) == run(pcm, 8000)


def test_odd_byte_chunks_are_reassembled() -> None:
    pcm, _ = human_clip(seed=8)
    assert run(pcm, 8000, chunk_bytes=7) == run(pcm, 8000)


def test_16khz_decides_like_8khz() -> None:
    for make in (human_clip, machine_clip):
        ev8 = run(make(8000)[0], 8000)
        ev16 = run(make(16000)[0], 16000)
        assert kinds(ev8) == kinds(ev16)
        for a, b in zip(ev8, ev16, strict=True):
            assert abs(a.at_ms - b.at_ms) <= 2 * FRAME_MS


def test_lost_packets_keep_the_call_clock() -> None:
    rate = 8000
    pcm, greeting_end = human_clip()
    frame = rate * FRAME_MS // 1000 * 2
    det = AmdDetector(rate)
    events: list[Event] = []
    for i, pos in enumerate(range(0, len(pcm), frame)):
        if 60 <= i < 65:  # five packets of the silence after "hello" never arrive
            continue
        events += det.feed(pcm[pos : pos + frame], now_ms=i * FRAME_MS)
    assert kinds(events) == ["human"]
    assert 200 <= events[0].at_ms - greeting_end <= 400


def test_unsupported_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="8000 or 16000"):
        AmdDetector(44100)


def test_classify_pcm_matches_streaming() -> None:
    pcm, _, _ = machine_clip(seed=6)
    assert classify_pcm(pcm, 8000) == run(pcm, 8000)


def test_one_core_runs_well_over_100_channels() -> None:
    pcm, _, _ = machine_clip(seed=9)
    frame = 8000 * FRAME_MS // 1000 * 2
    dets = [AmdDetector(8000) for _ in range(20)]
    frames = 0
    t0 = time.process_time()
    for pos in range(0, len(pcm), frame):
        for det in dets:
            det.feed(pcm[pos : pos + frame])
            frames += 1
    per_frame = (time.process_time() - t0) / frames
    # 100 channels in real time needs < 200 µs per 20 ms frame; leave room for a loaded CI machine.
    assert per_frame < 200e-6 / 2, per_frame


# -- command line ------------------------------------------------------------------------------------------


def write_wav(path: Path, pcm: bytes, rate: int, channels: int = 1, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def test_cli_prints_one_exact_json_line_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hpcm, _ = human_clip(rate=16000)
    mpcm, _, beep_end = machine_clip()
    h = write_wav(tmp_path / "human.wav", hpcm, 16000)
    m = write_wav(tmp_path / "machine.wav", mpcm, 8000)
    assert classify_main([str(h), str(m)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = [json.loads(line) for line in out.splitlines()]
    expected_human = run(hpcm, 16000)[0]
    assert lines[0] == {
        "file": str(h),
        "decision": "human",
        "decision_ms": expected_human.at_ms,
        "beep_ms": None,
        "first_decision": "human",
        "first_decision_ms": expected_human.at_ms,
    }
    assert list(lines[1]) == ["file", "decision", "decision_ms", "beep_ms", "first_decision", "first_decision_ms"]
    assert lines[1]["file"] == str(m) and lines[1]["decision"] == "machine"
    # No late correction: the first verdict is the final one.
    assert (lines[1]["first_decision"], lines[1]["first_decision_ms"]) == ("machine", lines[1]["decision_ms"])
    assert isinstance(lines[1]["decision_ms"], int) and isinstance(lines[1]["beep_ms"], int)
    assert 0 <= lines[1]["beep_ms"] - beep_end <= 300


def test_phonebank_amd_classify_command_prints_the_same_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The installed command, through phonebank.cli, not only classify_main.
    from phonebank.cli import main

    rate = 8000
    parts = [gap(rate, 300), voice(rate, 700, 23), gap(rate, 700), sine(rate, 850, 400), gap(rate, 1500)]
    f = write_wav(tmp_path / "late.wav", render(rate, parts, 23), rate)
    assert main(["amd", "classify", str(f)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert list(line) == ["file", "decision", "decision_ms", "beep_ms", "first_decision", "first_decision_ms"]
    assert (line["first_decision"], line["decision"]) == ("human", "machine")


def test_cli_reports_the_final_decision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rate = 8000
    parts = [gap(rate, 300), voice(rate, 700, 23), gap(rate, 700), sine(rate, 850, 400), gap(rate, 1500)]
    f = write_wav(tmp_path / "late.wav", render(rate, parts, 23), rate)
    assert classify_main([str(f)]) == 0
    line = json.loads(capsys.readouterr().out)
    events = run(render(rate, parts, 23), rate)
    assert kinds(events) == ["human", "machine", "beep"]
    # The live path acted on the first verdict (put through), then pulled the call back on the beep.
    assert line == {
        "file": str(f),
        "decision": "machine",
        "decision_ms": events[1].at_ms,
        "beep_ms": events[2].at_ms,
        "first_decision": "human",
        "first_decision_ms": events[0].at_ms,
    }
    assert line["first_decision_ms"] < line["decision_ms"]


def test_cli_reports_bad_files_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_wav(tmp_path / "good.wav", human_clip()[0], 8000)
    stereo = write_wav(tmp_path / "stereo.wav", b"\0\0" * 16000, 8000, channels=2)
    eight_bit = write_wav(tmp_path / "8bit.wav", b"\x80" * 8000, 8000, width=1)
    cd_rate = write_wav(tmp_path / "cd.wav", b"\0\0" * 44100, 44100)
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    missing = tmp_path / "missing.wav"
    files = [str(p) for p in (missing, stereo, good, eight_bit, cd_rate, text)]
    assert classify_main(files) == 1
    out, err = capsys.readouterr()
    assert [json.loads(line)["file"] for line in out.splitlines()] == [str(good)]
    errors = err.splitlines()
    assert len(errors) == 5
    for path, why in zip(
        (missing, stereo, eight_bit, cd_rate, text),
        ("no such file", "need mono", "need 16-bit", "need 8000 or 16000", "not a PCM WAV"),
        strict=True,
    ):
        line = next(e for e in errors if f": {path}: " in e)
        assert line.startswith("phonebank amd classify: ") and why in line


def test_cli_without_files_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert classify_main([]) == 2
    assert "usage: phonebank amd classify" in capsys.readouterr().err


# -- real speech (espeak-ng and sox are installed by make test) ----------------------------------------------


def test_espeak_hello_and_voicemail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def speak(name: str, text: str, tail_ms: int) -> Path:
        raw = tmp_path / f"{name}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", str(raw), text], check=True)
        out = tmp_path / f"{name}-8k.wav"
        subprocess.run(
            ["sox", str(raw), "-r", "8000", "-b", "16", "-c", "1", str(out), "pad", "0.3", f"{tail_ms / 1000}"],
            check=True,
        )
        return out

    hello = speak("hello", "Hello?", 2500)
    greeting = speak(
        "greeting", "Hi, you've reached Dave Miller. I can't come to the phone right now, please leave a message.", 0
    )
    with wave.open(str(greeting)) as w:
        pcm = w.readframes(w.getnframes())
    write_wav(greeting, pcm + render(8000, [gap(8000, 300), sine(8000, 1000, 600), gap(8000, 1500)]), 8000)
    assert classify_main([str(hello), str(greeting)]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["decision"] for r in results] == ["human", "machine"]
    assert results[0]["beep_ms"] is None and results[1]["beep_ms"] is not None


# -- the simulated network's "clip" behaviour (bench/amd.py plays each corpus clip through it) ---------------


def test_sim_clip_behaviour_renders_an_immediate_answer_and_the_clip() -> None:
    from phonebank import sim

    text = sim.dialplan([sim.SimNumber("+19990000007", "clip", audio="amd-h0007"), sim.SimNumber("+1999", "clip")])
    assert text.splitlines()[1:] == [
        "exten => 19990000007,1,Set(EXTEN_DIALED=${EXTEN})",
        " same => n,Gosub(pb-sim-clip,s,1(${PB_SIM}/amd-h0007))",
        "exten => 1999,1,Set(EXTEN_DIALED=${EXTEN})",
        " same => n,Gosub(pb-sim-clip,s,1(${PB_SIM}/1999))",
    ]
    assert sim.read_csv("number,behaviour\n+1999,clip\n")[0].behaviour == "clip"
    conf = (Path(__file__).resolve().parents[1] / "config/asterisk/extensions.conf").read_text()
    ctx = conf.split("[pb-sim-clip]", 1)[1]
    assert "Answer(,i)" in ctx and "Ringing" not in ctx and "PlayTones" not in ctx
