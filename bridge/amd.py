"""Answering-machine detection, sans-IO.

Feed the audio an answered call hears, as it arrives (8 or 16 kHz, 16-bit signed little-endian linear PCM, in
chunks of any size; 20 ms RTP payloads are typical), and get events back, each stamped with its time from
answer in ms of audio:

- ``human`` or ``machine``: the decision;
- a *late correction*: after ``human``, the detector keeps listening for ``late_window_ms``; a beep, or the
  speaker going straight on into a long second sentence, emits a second decision, ``machine`` (reason
  ``late_tone``, ``late_sit`` or ``late_speech``). The live path pulls such a call back from the volunteer and
  treats it as a machine. There is never more than one correction, and never one from machine to human;
- for machines, then exactly one of ``beep`` (the tone has ended: a voicemail message can start now) or
  ``greeting_end`` (the greeting has been followed by a long silence and no beep: start the message now).

Why it works this way (see docs/AMD.md): a person answering says something ("Hello?", or a whole sentence)
and then waits for us; a machine keeps talking, and often beeps. So the detector tracks the first *turn* of
speech (speech with only short gaps in it) and decides ``human`` as soon as the turn is followed by a silence
long enough for its length (short turn → short silence). A long turn is decided by what follows it: silence
(a person waiting: ``human``), or more speech after a pause, or a beep (``machine``). A steady tone (a beep,
or the special information tones of an intercept) is a machine at any time.
Speech is found with WebRTC's VAD gated by an adaptive noise floor; tones by the purity and
stability of the strongest spectral peak. Everything is integer time from the audio itself, so the same
audio always gives the same events, whatever the wall clock.

The time budget per 20 ms frame is a few tens of microseconds, so one core runs hundreds of channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import webrtcvad

FRAME_MS = 20
# Digital zeros after a frame quieter than this are the line's own silence; after a louder one, a lost packet.
DIGITAL_QUIET_DB = -60.0
SAMPLE_RATES = (8000, 16000)
EventKind = Literal["human", "machine", "greeting_end", "beep"]


@dataclass(frozen=True)
class AmdParams:
    """Per-campaign detector settings; all times in ms.

    ``human_bias`` in [-1, 1] moves every threshold at once: above 0 the detector gives a speaker more time
    before calling them a machine and needs less silence before calling them a human (fewer people hung up
    on, more machines passed to volunteers); below 0 the reverse.
    """

    human_bias: float = 0.0
    # No speech at all by then: someone picked up and is waiting for us to speak; a machine would be talking.
    initial_silence_ms: int = 3000
    # Silence that ends a short turn (a greeting up to short_turn_ms long) and decides "human"; longer turns
    # need up to long_silence_ms, because machines pause between sentences and their first sentence is rarely
    # as short as "Hello?".
    short_turn_ms: int = 700
    short_silence_ms: int = 300
    long_turn_ms: int = 900
    long_silence_ms: int = 550
    # A first turn of mid_turn_from_ms..mid_turn_to_ms (a voicemail's opening sentence, "Hi, you've reached Maria
    # Lopez.", more often than a person's answer on the corpus) needs mid_silence_ms: its pause before the next
    # sentence is then not taken for a person waiting. Few people answer with a phrase this long, so the wait
    # costs the p95 delay little (docs/bench-amd.md, issue 10 follow-up; 0..0 turns it off).
    mid_turn_from_ms: int = 1800
    mid_turn_to_ms: int = 2200
    mid_silence_ms: int = 900
    # A turn longer than this is *long*: a person's long greeting ("Good afternoon, Johnson residence, this is
    # Robert speaking.", 3-5 s) or a machine. It is decided by what follows it: a person then waits for an
    # answer (long_wait_ms of silence: human), a machine goes on talking or beeps (machine, at once).
    max_human_turn_ms: int = 3200
    long_wait_ms: int = 580
    # ... but a breath inside the sentence is not the end of it: only speech after a pause of at least this
    # long counts as going on.
    long_resume_gap_ms: int = 350
    # At the max_analysis_ms deadline, a long turn with a pause this long inside it (between sentences) is a
    # machine; without one it may be a person still finishing one long sentence.
    sentence_pause_ms: int = 320
    # A turn longer than this is a machine outright: no one answering the phone talks this long unbroken.
    max_turn_ms: int = 6500
    # Speech must last this long to count (clicks and pops do not).
    min_speech_ms: int = 60
    # Hard stop: decide by then whatever has been heard (human, unless a rule said machine). Under the live
    # path's own verdict deadline (bridge.dialer.AMD_VERDICT_S, 7.5 s after the tap, then NOTSURE = put through;
    # docs/AMD.md), with room for the tap starting a little after answer and for a busy controller. 7 s, not
    # 5.5: a person answering with a 4-5 s sentence has finished it and is waiting by then, so the long-turn
    # rules judge them instead of a guess made mid-sentence from the pauses inside it.
    max_analysis_ms: int = 7000
    # After a machine decision, this much silence without a beep means the greeting has ended.
    greeting_end_silence_ms: int = 1300
    # Give up waiting for the greeting to end (endless carrier loops): start the message anyway.
    max_greeting_ms: int = 30000
    # A beep: a steady tone of beep_min_hz..beep_max_hz lasting at least beep_min_ms; its end is confirmed after
    # beep_guard_ms without the tone (bridges the gap of a double beep).
    beep_min_ms: int = 160
    beep_guard_ms: int = 160
    beep_min_hz: float = 300.0
    beep_max_hz: float = 2600.0
    # Share of a frame's energy in its strongest spectral peak for it to count as a tone frame.
    tone_purity: float = 0.85
    # Largest frequency (and level) change between consecutive frames of one tone.
    tone_max_drift_hz: float = 8.0
    tone_max_level_step_db: float = 1.5
    # VAD: WebRTC aggressiveness (0-3) and how far above the noise floor speech must be.
    vad_mode: int = 2
    speech_margin_db: float = 9.0
    min_speech_dbfs: float = -55.0
    # Within a turn, frames this far below the turn's loudest speech are not the speaker (a TV or street in the
    # background, 12-25 dB down): they neither extend the turn nor start a new one. 0 turns it off.
    speech_drop_db: float = 15.0
    # Late correction: after a ``human`` decision, keep listening for late_window_ms. A steady tone (a beep) in
    # that time, or the speaker going straight on (a second turn starting within late_gap_ms of the end of the
    # first and lasting late_turn_ms) means it was a machine after all: a second decision, ``machine``, follows
    # (then ``beep`` or ``greeting_end`` as for any machine). 0 turns it off.
    late_window_ms: int = 10000
    late_gap_ms: int = 1000
    late_turn_ms: int = 900
    # ... and only once the speech since the first turn began has lasted late_total_ms (0: at once).
    late_total_ms: int = 4000
    # A second turn this much louder than the first is the person after background sound, not a machine going on.
    louder_speaker_db: float = 10.0

    def effective(self) -> AmdParams:
        """Thresholds after applying human_bias (each moves by up to 30%)."""
        b = max(-1.0, min(1.0, self.human_bias))
        longer = 1.3**b
        shorter = 1 / longer
        return replace(
            self,
            human_bias=0.0,
            max_human_turn_ms=int(self.max_human_turn_ms * longer),
            max_turn_ms=int(self.max_turn_ms * longer),
            long_turn_ms=int(self.long_turn_ms * longer),
            short_turn_ms=int(self.short_turn_ms * longer),
            short_silence_ms=int(self.short_silence_ms * shorter),
            long_silence_ms=int(self.long_silence_ms * shorter),
            mid_silence_ms=int(self.mid_silence_ms * shorter),
            long_wait_ms=int(self.long_wait_ms * shorter),
        )


@dataclass(frozen=True)
class Event:
    """Something the detector has concluded, at ``at_ms`` of audio from answer.

    For ``beep``: ``start_ms``/``end_ms`` are the tone's bounds. For ``greeting_end``: ``end_ms`` is where the
    last speech ended. For decisions: ``reason`` says which rule fired.
    """

    kind: EventKind
    at_ms: int
    reason: str = ""
    start_ms: int | None = None
    end_ms: int | None = None


@dataclass
class _Tone:
    start_ms: int
    last_ms: int  # end of the last tone frame
    hz: float
    db: float
    freqs: list[float] = field(default_factory=list)


class AmdDetector:
    """Streaming detector for one call; feed() it audio, read the events it returns."""

    def __init__(self, sample_rate: int = 8000, params: AmdParams | None = None) -> None:
        if sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample rate must be 8000 or 16000, not {sample_rate}")
        self.rate = sample_rate
        self.params = params or AmdParams()
        self._p = self.params.effective()
        self._n = sample_rate * FRAME_MS // 1000
        self._bytes = self._n * 2
        self._vad = webrtcvad.Vad(self._p.vad_mode)
        # Zero-padding to twice the frame halves the bin spacing (25 Hz), enough to hold a tone's frequency.
        self._nfft = 2 * self._n
        self._window = np.hanning(self._n).astype(np.float32)
        freqs = np.fft.rfftfreq(self._nfft, 1 / sample_rate)
        self._band = np.flatnonzero((freqs >= 100) & (freqs <= 3800))
        self._tone_lo = int(np.searchsorted(freqs, self._p.beep_min_hz))
        self._tone_hi = int(np.searchsorted(freqs, self._p.beep_max_hz))
        self._bin_hz = sample_rate / self._nfft
        self._buf = bytearray()
        self.now_ms = 0  # audio time processed so far
        self.lost_ms = 0  # audio never received (now_ms gaps), filled with silence
        self.decision: Event | None = None
        self.done = False
        self.events: list[Event] = []
        self._floor_db = -75.0
        self._last_db = -100.0  # level of the last frame that was not digital silence
        self._block_min = 1e9
        self._block_len = 0
        self._block_mins: list[float] = []
        self._speech_run = 0  # consecutive speech frames
        self._peak_db = -100.0  # loudest speech frame so far (the speaker's level, for speech_drop_db)
        self._long_gap = False  # a long turn has paused: whatever sound comes next decides
        self._turn_max_gap = 0  # longest pause inside the first turn (ms)
        self._turn_start: int | None = None
        self._last_speech_end: int | None = None  # end of the last confirmed speech frame
        self._tone: _Tone | None = None
        self._tone_miss = 0
        self._sit = False
        self.first_decision: Event | None = None
        self._watch_until = 0  # while deciding "human" is open to a late correction (ms of audio)
        self._first_end: int | None = None  # end of the first turn, at the human decision
        self._t2_start: int | None = None  # start of the second turn, while watching
        self._t2_dead = False  # the second turn came too late or ended too short: only tones can correct
        self._first_peak = -100.0  # loudest speech up to the human decision
        self._rebase: bool | None = None  # None: not yet; True: waiting for the real first turn to end; False: done

    # -- input ---------------------------------------------------------------------------------------------

    def feed(self, pcm: bytes, now_ms: int | None = None) -> list[Event]:
        """Add audio; returns the events it caused (possibly none).

        ``now_ms`` (optional) is the media time from answer of the *start* of this chunk, e.g. from RTP
        timestamps; if it is ahead of the audio fed so far (lost packets), the gap is treated as silence
        without disturbing the noise estimate, so decision times stay on the call's clock.
        """
        out: list[Event] = []
        if now_ms is not None and not self._buf:
            gap = (now_ms - self.now_ms) // FRAME_MS
            for _ in range(max(0, gap)):
                out += self._step(None)
            self.lost_ms += max(0, gap) * FRAME_MS
        self._buf += pcm
        nb = self._bytes
        while len(self._buf) >= nb:
            frame = bytes(self._buf[:nb])
            del self._buf[:nb]
            out += self._step(frame)
        return out

    def finish(self) -> list[Event]:
        """The audio has ended (hang-up, end of file): decide now if not decided yet, and close the greeting."""
        out: list[Event] = []
        if self.done:
            return out
        if self.decision is None:
            p = self._p
            turn = self._turn_len()
            if turn is not None and turn >= p.short_turn_ms and self._silence_ms() < p.short_silence_ms:
                out.append(self._decide("machine", "eof_in_speech"))
            else:
                out.append(self._decide("human", "eof"))
        if not self.done and self.decision is not None and self.decision.kind == "machine":
            end = self._last_speech_end
            out.append(self._emit(Event("greeting_end", self.now_ms, "eof", None, end)))
        self.done = True
        return out

    # -- per frame -----------------------------------------------------------------------------------------

    def _step(self, frame: bytes | None) -> list[Event]:
        self.now_ms += FRAME_MS
        if self.done:
            return []
        if frame is None:
            return self._update(False, None, 0.0)
        if not any(frame):
            # Exact digital silence. On a line that was itself near-silent (a digital line with no comfort noise,
            # or the start of the call) it is the line, and the floor learns it; right after louder sound it is a
            # lost packet a jitter buffer filled with zeros, which must not drag the floor under the line's hiss
            # (the hiss would then look like speech): a gap, then.
            if self._last_db < DIGITAL_QUIET_DB:
                self._floor_update(-75.0)
            return self._update(False, None, 0.0)
        loud, tone_hz, db = self._measure(frame)
        self._last_db = db
        if loud and self._p.speech_drop_db and not self._speech_run and db < self._peak_db - self._p.speech_drop_db:
            loud = False
        speech = loud and self._vad.is_speech(frame, self.rate)
        if speech:
            self._peak_db = max(self._peak_db, db)
        return self._update(speech, tone_hz, db)

    def _measure(self, frame: bytes) -> tuple[bool, float | None, float]:
        """(loud enough to be speech, frequency if the frame is a pure tone, level in dBFS)."""
        p = self._p
        x = np.frombuffer(frame, "<i2").astype(np.float32) * (1 / 32768)
        db = 10 * float(np.log10(float(np.dot(x, x)) / self._n + 1e-10))
        # Noise floor by minimum statistics: the quietest frame of the last ~2 s (ten 200 ms blocks). It
        # follows a line that gets noisier within 2 s and is not raised by speech, which always has quieter
        # frames between words; never below -75 dBFS so digital silence cannot make hiss look like speech.
        self._floor_update(db)
        loud = db > self._floor_db + p.speech_margin_db and db > p.min_speech_dbfs
        if db < self._floor_db + 6:
            return loud, None, db
        return loud, self._tone_freq(x), db

    def _floor_update(self, db: float) -> None:
        self._block_min = min(self._block_min, db)
        self._block_len += 1
        if self._block_len == 10:
            self._block_mins.append(self._block_min)
            if len(self._block_mins) > 10:
                self._block_mins.pop(0)
            self._block_min, self._block_len = 1e9, 0
        self._floor_db = max(min(min(self._block_mins, default=1e9), self._block_min), -75.0)

    def _tone_freq(self, x: np.ndarray) -> float | None:
        spec = np.fft.rfft(x * self._window, self._nfft)
        pw = spec.real**2 + spec.imag**2
        lo, hi = self._tone_lo, self._tone_hi
        k = lo + int(np.argmax(pw[lo:hi]))
        total = float(pw[self._band].sum()) + 1e-20
        # The peak's main lobe plus its 2nd and 3rd harmonics: buzzy (square-ish) beeps are tones too, while
        # a vowel spreads its energy over harmonics of a lower fundamental.
        peak = float(pw[k - 3 : k + 4].sum())
        for h in (2, 3):
            if h * k + 4 <= self._band[-1]:
                peak += float(pw[h * k - 3 : h * k + 4].sum())
        if peak / total < self._p.tone_purity:
            return None
        a, b, c = np.log(pw[k - 1 : k + 2] + 1e-20)
        den = a - 2 * b + c
        off = 0.5 * (a - c) / den if den < 0 else 0.0
        return float((k + off) * self._bin_hz)

    def _update(self, is_speech: bool, tone_hz: float | None, db: float) -> list[Event]:
        p = self._p
        now = self.now_ms
        out = self._track_tone(tone_hz, db)
        if self.done:
            return out
        # A vowel can look like a tone for a few frames; only a tone that has lasted is not speech.
        if self._tone is not None and self._tone_miss == 0 and self._tone.last_ms - self._tone.start_ms >= 100:
            is_speech = False
        # Speech needs min_speech_ms of consecutive frames to count (clicks and pops do not); once it counts,
        # its first frames count too.
        if is_speech:
            self._speech_run += 1
            if self._speech_run * FRAME_MS >= p.min_speech_ms:
                if self._turn_start is None:
                    self._turn_start = now - self._speech_run * FRAME_MS
                elif self.decision is None and self._last_speech_end is not None:
                    # The longest pause inside the first turn so far (a breath, or a gap between sentences).
                    gap = now - self._speech_run * FRAME_MS - self._last_speech_end
                    self._turn_max_gap = max(self._turn_max_gap, gap)
                self._last_speech_end = now
        else:
            self._speech_run = 0
        if self.decision is None:
            out += self._decide_rules()
        elif self.decision.kind == "human":
            out += self._watch()
        elif self.decision.kind == "machine" and self._tone is None:
            last = self._last_speech_end if self._last_speech_end is not None else self.decision.at_ms
            if now - last >= p.greeting_end_silence_ms or now >= p.max_greeting_ms:
                out.append(self._emit(Event("greeting_end", now, "silence", None, self._last_speech_end)))
                self.done = True
        return out

    def _track_tone(self, hz: float | None, db: float) -> list[Event]:
        p = self._p
        now = self.now_ms
        out: list[Event] = []
        t = self._tone
        if hz is not None:
            # A beep holds both its frequency and its level; a vowel that peaks on one harmonic does not.
            if (
                t is not None
                and abs(hz - t.hz) <= p.tone_max_drift_hz
                and abs(hz - t.freqs[0]) <= 2 * p.tone_max_drift_hz
                and abs(db - t.db) <= p.tone_max_level_step_db
            ):
                t.last_ms, t.hz, t.db = now, hz, db
                t.freqs.append(hz)
                self._tone_miss = 0
            elif t is not None and self._tone_long_enough(t):
                # A confirmed tone followed by another (a frequency or level step, a two-tone beep, the next
                # special-information tone): one tone episode, which ends only after the guard time.
                self._sit = self._sit or self._sit_step(t, hz)
                t.last_ms, t.hz, t.db = now, hz, db
                t.freqs = [hz]
                self._tone_miss = 0
            else:
                out += self._end_tone()
                self._tone = _Tone(now - FRAME_MS, now, hz, db, [hz])
            if self._open() and self._tone is not None and self._tone_long_enough(self._tone):
                # A steady tone this long is itself proof of a machine; decide without waiting for it to end.
                out.append(self._decide("machine", "tone" if self.decision is None else "late_tone"))
            return out
        if t is None:
            return out
        self._tone_miss += 1
        if self._tone_miss * FRAME_MS >= p.beep_guard_ms or not self._tone_long_enough(t):
            out += self._end_tone()
        return out

    def _tone_long_enough(self, t: _Tone) -> bool:
        return t.last_ms - t.start_ms >= self._p.beep_min_ms

    @staticmethod
    def _sit_step(t: _Tone, hz: float) -> bool:
        return 850 <= t.hz <= 1500 and 1300 <= hz <= 1850 and hz - t.hz > 300

    def _end_tone(self) -> list[Event]:
        t, self._tone = self._tone, None
        self._tone_miss = 0
        out: list[Event] = []
        if t is None or not self._tone_long_enough(t):
            return out
        if self._open():
            late = self.decision is not None
            out.append(self._decide("machine", ("late_" if late else "") + ("sit" if self._sit else "tone")))
        if self._sit:
            # Intercept tones are not a voicemail beep: nothing to leave a message on.
            self._sit = False
            return out
        if self.decision is not None and self.decision.kind == "machine":
            out.append(self._emit(Event("beep", self.now_ms, "tone", t.start_ms, t.last_ms)))
            self.done = True
        return out

    def _open(self) -> bool:
        """Undecided, or decided human and still open to a late correction."""
        return self.decision is None or (self.decision.kind == "human" and not self.done)

    def _watch(self) -> list[Event]:
        """After "human": the speaker going straight on into a long second turn is a machine's next sentence."""
        p = self._p
        now = self.now_ms
        if now >= self._watch_until:
            self.done = True
            return []
        last = self._last_speech_end
        if self._rebase and last is not None and now - last >= p.short_silence_ms:
            # The louder speaker's turn has ended: from here on it is the first turn the late cue compares with.
            self._first_end, self._first_peak, self._rebase = last, self._peak_db, False
        if self._t2_dead or self._first_end is None:
            return []
        if self._t2_start is None:
            if last is not None and last > self._first_end and self._speech_run * FRAME_MS >= p.min_speech_ms:
                self._t2_start = now - self._speech_run * FRAME_MS
                if self._t2_start - self._first_end > p.late_gap_ms:
                    self._t2_dead = True
            elif now - self._first_end > p.late_gap_ms:
                self._t2_dead = True
            return []
        assert last is not None
        long_t2 = last - self._t2_start >= p.late_turn_ms
        start = self._turn_start if self._turn_start is not None else self._t2_start
        if long_t2 and last - start < p.late_total_ms:
            # "Hello? ... Who am I speaking to?": a person may go on once; all told still shorter than a long
            # greeting, and then they wait for us (long_wait_ms). A machine keeps going past it.
            if now - last >= p.long_wait_ms:
                self._t2_dead = True
            return []
        if long_t2:
            if self._rebase is None and self._peak_db > self._first_peak + p.louder_speaker_db:
                # Far louder than the "first turn": that was the TV or the street behind the person, who is only
                # now speaking. Their turn is the first one; only a turn after it can correct (once).
                self._rebase, self._first_end, self._t2_start = True, None, None
                return []
            return [self._decide("machine", "late_speech")]
        if now - last >= p.short_silence_ms:
            self._t2_dead = True  # a short second turn ("Hello? ... Hello?"): a person
        return []

    def _turn_len(self) -> int | None:
        if self._turn_start is None or self._last_speech_end is None:
            return None
        return self._last_speech_end - self._turn_start

    def _silence_ms(self) -> int:
        if self._last_speech_end is None or self._speech_run:
            return 0
        return self.now_ms - self._last_speech_end

    def _needed_silence(self, turn: int) -> int:
        p = self._p
        if p.mid_turn_from_ms < p.mid_turn_to_ms and p.mid_turn_from_ms <= turn <= p.mid_turn_to_ms:
            return p.mid_silence_ms
        if turn <= p.short_turn_ms:
            return p.short_silence_ms
        if turn >= p.long_turn_ms:
            return p.long_silence_ms
        f = (turn - p.short_turn_ms) / (p.long_turn_ms - p.short_turn_ms)
        return int(p.short_silence_ms + f * (p.long_silence_ms - p.short_silence_ms))

    def _decide_rules(self) -> list[Event]:
        p = self._p
        now = self.now_ms
        if self._tone is not None:
            return []
        turn = self._turn_len()
        if turn is None:
            if now >= p.initial_silence_ms:
                return [self._decide("human", "initial_silence")]
            return []
        if turn >= p.max_turn_ms:
            return [self._decide("machine", "long_turn")]
        silence = self._silence_ms()
        if turn >= p.max_human_turn_ms:
            # A long turn: a person who has said a whole sentence waits for an answer; a machine goes on (its
            # next sentence, or its beep, which the tone tracker decides on) within a pause.
            if silence >= p.long_wait_ms:
                return [self._decide("human", "long_greeting")]
            if silence >= p.long_resume_gap_ms:
                self._long_gap = True
            elif silence == 0 and self._long_gap:
                return [self._decide("machine", "long_turn")]
            if now >= p.max_analysis_ms:
                # Out of time (the live path wants a verdict before its own deadline) in the middle of a long turn.
                # A turn that has already paused between sentences (sentence_pause_ms or more) and gone on is a
                # machine reading its greeting; one without such a pause may be a person finishing one long
                # sentence, and hanging up on them is the worse error (a machine is then corrected late).
                if self._turn_max_gap >= p.sentence_pause_ms:
                    return [self._decide("machine", "long_turn")]
                return [self._decide("human", "max_analysis")]
            return []
        if silence >= self._needed_silence(turn):
            return [self._decide("human", "short_turn")]
        if now >= p.max_analysis_ms:
            return [self._decide("human", "max_analysis")]
        return []

    def _decide(self, kind: EventKind, reason: str) -> Event:
        ev = self._emit(Event(kind, self.now_ms, reason))
        self.decision = ev
        if self.first_decision is None:
            self.first_decision = ev
        if kind == "human":
            if self._p.late_window_ms > 0:
                self._watch_until = self.now_ms + self._p.late_window_ms
                self._first_end = self._last_speech_end
                self._first_peak = self._peak_db
                if reason == "max_analysis" and self._silence_ms() < self._p.short_silence_ms:
                    # Decided while they are still talking: the first turn ends when they stop, and only what
                    # comes after that can correct.
                    self._first_end, self._rebase = None, True
            else:
                self.done = True
        return ev

    def _emit(self, ev: Event) -> Event:
        self.events.append(ev)
        return ev


def classify_pcm(
    pcm: bytes, sample_rate: int, params: AmdParams | None = None, chunk_ms: int = FRAME_MS
) -> list[Event]:
    """Run a whole recording through the streaming detector, chunk by chunk as a call would deliver it."""
    det = AmdDetector(sample_rate, params)
    step = sample_rate * chunk_ms // 1000 * 2
    for i in range(0, len(pcm), step):
        det.feed(pcm[i : i + step])
        if det.done:
            break
    det.finish()
    return det.events
