"""Labelled answering-machine-detection corpus generator.

Each clip stands for what an answered outbound call hears from the moment of answer: a person saying "Hello?"
or a whole sentence (and then waiting), or a voicemail greeting, carrier message or intercept, then a beep or
not, in English or Spanish. Speech comes from espeak-ng (many accents, variants, speeds and pitches) and from
Asterisk's recorded Allison prompts; the room adds TV babble or street noise; the channel adds line noise, level
changes, a telephone band and a codec's damage (G.711 μ-law, GSM 06.10, clipping, lost packets). The held-out
split draws its texts, accents and variants from the other half of every list, with wider speaking rates and
pause lengths (see ``pool``).

The manifest records, per clip, the label, when the greeting ends (for a person: the end of the first thing
they say before waiting for an answer; for a machine: the end of its last speech), the beep's start and end,
and whether the clip belongs to the tuning or the held-out split. The held-out split is never to be used for
tuning. Everything is derived from one seed, so the same seed gives the same clips.

    python -m bench.amd_corpus [--out data/amd-corpus] [--count 600] [--seed 5] [--held-out 0.4]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ALLISON = Path("/var/cache/phonebank/asterisk-sid/usr/share/asterisk/sounds/en_US_f_Allison")

# Voices and variants that espeak-ng ships; variants change timbre and pitch so the same text is not always
# the same voice. The tuning and held-out splits use different accents and variants (see ``pool``), so a
# setting tuned on one set of voices is judged on others.
ESPEAK_LANGS = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-rp", "en-gb-x-gbclan", "en-us"]
ESPEAK_VARIANTS = [
    "", "f1", "f2", "f3", "f4", "f5", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "Alicia", "Andy", "Annie", "belinda", "benjamin", "david", "ed", "linda", "max", "michel", "paul",
    "quincy", "rob", "steph", "john", "Mike", "Denis", "Hugo", "anika", "Andrea", "Adam", "Alex",
]  # fmt: skip
SPANISH_LANGS = ["es", "es-419"]

NAMES = [
    "Maria", "Dave", "Karen", "Robert", "Jennifer", "Luis", "Priya", "Tom", "Angela", "Marcus", "Linda",
    "Kevin", "Rosa", "James", "Aisha", "Michael", "Susan", "Carlos", "Emily", "Derek", "Nora", "Sam",
]  # fmt: skip
SURNAMES = ["Smith", "Johnson", "Garcia", "Nguyen", "Patel", "Miller", "Brown", "Okafor", "Kowalski", "Lee"]

HUMAN_SHORT = [
    "Hello?", "Hello.", "Hi.", "Yeah?", "Yes?", "Hey.", "Hello?", "Yello.", "Hi there.", "Hello, who's this?",
    "Yeah, hello?", "Good evening.", "Hello!", "Mm, hello?", "Yes, hello?", "Hiya.", "Hello there.", "Speaking.",
]  # fmt: skip
HUMAN_NAME = [
    "This is {n}.", "{n} speaking.", "Hi, this is {n}.", "Hello, {n} here.", "{n}.", "Hello, this is {n}.",
    "It's {n}.", "{n} {s}.", "Yeah, this is {n}.", "Hey, {n} here.",
]  # fmt: skip
# Long greetings: one sentence of 3-5 s (spoken as phrases with breaths between), then the person waits.
HUMAN_LONG = [
    ["Good evening,", "{s} residence,", "this is {n} speaking."],
    ["Good afternoon,", "{s} residence,", "this is {n} speaking."],
    ["Hello,", "you've got {n},", "what can I do for you?"],
    ["Hello,", "this is {n} {s},", "how can I help you today?"],
    ["Hi there,", "this is {n} {s}", "speaking, who is this please?"],
    ["Good morning,", "you've reached the {s} household,", "{n} speaking."],
    ["{s} residence,", "{n} speaking,", "how can I help?"],
    ["Hello,", "{n} {s} speaking,", "sorry, I was just in the garden."],
    ["Yes, hello,", "this is {n},", "I think you were trying to reach me?"],
    ["Hello,", "good evening,", "this is the {s} family, {n} speaking."],
]  # fmt: skip
# Greetings that end in a question (a person asking who is calling, then waiting for the answer).
HUMAN_QUESTION = [
    "Hello, who's calling please?", "Yes? Who is this?", "Hello, can I help you?", "Hi, this is {n}, who's this?",
    "Hello? Who am I speaking to?", "{n} speaking, can I ask who's calling?", "Hello, is anybody there?",
    "Yes, hello, what is this about?",
]  # fmt: skip
HUMAN_FOLLOW = ["Hello?", "Hello? Anyone there?", "Who is this?", "Hello? Can you hear me?", "Yes?", "Hello??"]
HUMAN_ES_SHORT = ["¿Bueno?", "¿Aló?", "¿Diga?", "¿Sí?", "Hola.", "¿Bueno, sí?", "Dígame.", "¿Hola?"]
HUMAN_ES_NAME = ["Hola, habla {n}.", "Sí, soy {n}.", "{n}, dígame.", "Hola, soy {n} {s}."]
HUMAN_ES_LONG = [
    ["Buenas tardes,", "casa de la familia {s},", "habla {n}."],
    ["Hola,", "buenas noches,", "habla {n} {s}, ¿quién llama?"],
    ["Bueno,", "sí, aquí {n},", "¿en qué le puedo ayudar?"],
    ["Buenos días,", "residencia {s},", "le habla {n}."],
]  # fmt: skip
HUMAN_ES_FOLLOW = ["¿Bueno?", "¿Hola? ¿Quién habla?", "¿Aló?", "¿Me escucha?"]

VM_OPENERS = [
    "Hi, you've reached {n}.", "Hey, it's {n}.", "Hello, you have reached {n} {s}.", "Hi, this is {n}.",
    "You've reached the voicemail of {n} {s}.", "Hey there, you've reached {n}.", "Hi, it's {n} {s}.",
    "Hello, this is {n}.", "Hi! You've reached {n} and {m}.", "This is {n}.", "Hello, you've reached the {s}s.",
    "Hi, you've called {n} at {s} Plumbing.",
]  # fmt: skip
VM_MIDDLES = [
    "I can't come to the phone right now.", "Sorry I missed your call.", "I'm not available at the moment.",
    "We're not home right now.", "I'm either on the other line or away from my desk.",
    "I'm busy right now.", "Sorry, I can't take your call.", "We're out at the moment.",
]  # fmt: skip
VM_CLOSERS = [
    "Please leave a message and I'll get back to you.", "Leave your name and number after the beep.",
    "Leave a message and I'll call you back as soon as I can.", "Please leave a message after the tone.",
    "Leave a message.", "Thanks, and have a great day.", "Talk to you soon.",
    "Leave your name, number and a short message, and I'll return your call.", "Bye for now.",
    "Please leave a message and we'll call you back.",
]  # fmt: skip
VM_SHORT = [
    "Leave a message.", "{n}. Leave a message.", "It's {n}, leave a message.", "Leave it at the beep.",
    "You know what to do.", "{n}, leave a message.", "Hi, leave a message.", "Go ahead.", "{n}. Beep.",
    "Not here. Leave a message.",
]  # fmt: skip
CARRIER_TEXT = [
    ["The wireless customer you are calling is not available.", "Please leave a message after the tone."],
    ["The number you have dialed is not available.", "At the tone, please record your message.",
     "When you have finished recording, you may hang up."],
    ["Your call has been forwarded to an automated voice messaging system.", "{d} is not available.",
     "At the tone, please record your message."],
    ["The person you are trying to reach is not available.", "Please try your call again later."],
    ["The subscriber you have called is not available.", "Please leave a message."],
    ["The mailbox belonging to", "{d}", "is full and cannot accept messages.", "Goodbye."],
    ["Please leave a message for", "{d}."],
    ["The number you have dialled", "is not reachable at the moment.", "Please try again later."],
]  # fmt: skip
INTERCEPT_TEXT = [
    ["We're sorry, you have reached a number that has been disconnected or is no longer in service."],
    ["The number you have dialed is not in service.", "Please check the number and try again."],
    ["Your call cannot be completed as dialed.", "Please check the number and dial again."],
    ["The number you have dialled has not been recognised.", "Please check and try again."],
]  # fmt: skip
ES_VM = [
    ["Hola, has llamado a {n}.", "No puedo contestar en este momento.", "Deja tu mensaje después del tono."],
    ["Hola, soy {n}.", "Ahora no estoy.", "Deja tu mensaje y te llamo."],
    ["Buzón de voz de {n} {s}.", "Por favor, deje su mensaje."],
    ["Hola, habla {n}.", "Deja tu recado."],
]  # fmt: skip
ES_CARRIER = [
    ["El número que usted marcó no está disponible.", "Por favor, deje su mensaje después del tono."],
    ["El teléfono móvil al que llama está apagado o fuera del área de servicio.", "Inténtelo más tarde."],
    ["El número que usted ha marcado no existe.", "Verifique el número e intente de nuevo."],
    ["Su llamada está siendo transferida a un buzón de voz.", "Grabe su mensaje después del tono."],
]  # fmt: skip
ALLISON_CARRIER = [
    ["vm-theperson", "#digits", "vm-isunavail", "vm-intro"],
    ["vm-nobodyavail", "vm-intro"],
    ["vm-theperson", "#digits", "vm-isonphone", "vm-intro"],
    ["vm-theperson", "#digits", "vm-isunavail"],
    ["number-not-answering", "please-try-call-later"],
    ["vm-theperson", "#digits", "vm-isunavail", "vm-leavemsg"],
    ["vm-nobodyavail", "vm-leavemsg"],
    ["vm-mailboxfull", "vm-goodbye"],
]  # fmt: skip
ALLISON_INTERCEPT = [["cannot-complete-as-dialed", "check-number-dial-again"], ["ss-noservice"],
                     ["all-circuits-busy-now", "please-try-call-later"], ["feature-not-avail-line"]]  # fmt: skip
TRICK = [["Hello?", "Ha, gotcha. This is {n}, leave a message."], ["Hello?", "Just kidding, I'm not here."],
         ["Hi!", "Sorry, this is just my voicemail.", "Leave a message."],
         ["Yeah?", "Got you, I'm not here, leave a message."]]  # fmt: skip
BABBLE_TEXT = [
    "And now the weather for the weekend, with rain moving in from the west.", "Tonight on the late show.",
    "The game went into extra time after a late goal.", "Stay tuned for more after the break.",
    "In other news, the city council met on Tuesday to discuss the new budget.", "Buy one, get one free.",
    "Y ahora las noticias de la tarde.", "Did you see what she was wearing?",
]  # fmt: skip

# Shares within each label. Each kind is reported on its own by bench/amd.py so the mix is visible.
HUMAN_KINDS = {"short": 0.24, "name": 0.12, "double": 0.1, "late": 0.08, "long": 0.16, "question": 0.1,
               "noisy": 0.08, "spanish": 0.12}  # fmt: skip
MACHINE_KINDS = {"personal": 0.34, "short_vm": 0.12, "carrier": 0.17, "intercept": 0.07, "allison": 0.1,
                 "spanish": 0.14, "trick": 0.03, "pause_first": 0.03}  # fmt: skip
# What the line adds on top: background sound in the callee's room, and the damage a codec or network does.
BACKGROUNDS = {"": 0.7, "babble": 0.15, "street": 0.15}
DAMAGE = {"ulaw": 0.5, "gsm": 0.15, "none": 0.15, "clip": 0.1, "loss": 0.1}


def pool(items: list, split: str) -> list:
    """The tuning split draws from the even-indexed entries, the held-out split from the odd ones: different
    texts (and voices, variants, prompts) on each side, so the held-out figures are not on tuned material."""
    half = items[0::2] if split == "tune" else items[1::2]
    return half or items


@dataclass
class Clip:
    id: str
    file: str
    label: str
    kind: str
    split: str
    rate: int
    duration_ms: int
    speech_start_ms: int | None
    greeting_end_ms: int
    beep_start_ms: int | None = None
    beep_end_ms: int | None = None
    beep_hz: float | None = None
    voice: str = ""
    speed: int = 0
    snr_db: float = 0.0
    noise: str = ""
    ulaw: bool = False
    lang: str = "en"
    background: str = ""
    damage: str = ""
    text: str = ""
    segments: list[list[int]] = field(default_factory=list)


class Synth:
    """espeak-ng / Allison speech at a target rate, trimmed to the speech itself, cached per request."""

    def __init__(self) -> None:
        self._cache: dict[tuple, np.ndarray] = {}

    def espeak(self, text: str, voice: str, speed: int, pitch: int, rate: int) -> np.ndarray:
        key = ("e", text, voice, speed, pitch, rate)
        if key not in self._cache:
            wav = subprocess.run(
                ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
                check=True, capture_output=True,
            ).stdout  # fmt: skip
            self._cache[key] = trim(self._telephone(wav, "wav", rate))
        return self._cache[key]

    def allison(self, name: str, rate: int) -> np.ndarray:
        key = ("a", name, rate)
        if key not in self._cache:
            data = (ALLISON / f"{name}.gsm").read_bytes()
            self._cache[key] = trim(self._telephone(data, "gsm", rate))
        return self._cache[key]

    @staticmethod
    def _telephone(data: bytes, kind: str, rate: int) -> np.ndarray:
        # Narrowband calls carry 300-3400 Hz; wideband (16 kHz) calls keep more of the voice.
        band = ["sinc", "300-3400"] if rate == 8000 else ["sinc", "100-7000"]
        raw = subprocess.run(
            ["sox", "-D", "-R", "-t", kind, "-", "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-",
             "rate", str(rate), *band],
            input=data, check=True, capture_output=True,
        ).stdout  # fmt: skip
        return np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0


def trim(x: np.ndarray, rel_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing silence so segment boundaries (and so the labels) are where speech is."""
    if len(x) == 0:
        return x
    env = np.abs(x)
    thr = env.max() * 10 ** (rel_db / 20)
    idx = np.flatnonzero(env > thr)
    if len(idx) == 0:
        return x[:0]
    return x[idx[0] : idx[-1] + 1]


def tone(rate: int, hz: float, ms: float, level: float, shape: str = "sine") -> np.ndarray:
    n = int(rate * ms / 1000)
    t = np.arange(n) / rate
    if shape == "square":
        # Band-limited square-ish wave: some beeps are buzzy, not pure.
        x = np.sin(2 * np.pi * hz * t) + np.sin(2 * np.pi * 3 * hz * t) / 3
        x /= 1.33
    else:
        x = np.sin(2 * np.pi * hz * t)
    ramp = min(n // 2, int(rate * 0.005))
    if ramp:
        w = np.linspace(0, 1, ramp)
        x[:ramp] *= w
        x[-ramp:] *= w[::-1]
    return x * level


def ulaw_roundtrip(x: np.ndarray) -> np.ndarray:
    """G.711 μ-law encode/decode (continuous-curve approximation with 8-bit quantisation)."""
    mu = 255.0
    y = np.sign(x) * np.log1p(mu * np.minimum(np.abs(x), 1.0)) / np.log1p(mu)
    q = np.round(y * 127) / 127
    return np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu


def noise(rng: np.random.Generator, kind: str, n: int, rate: int) -> np.ndarray:
    w = rng.standard_normal(n)
    if kind == "white":
        x = w
    elif kind == "pink":
        spec = np.fft.rfft(w)
        f = np.fft.rfftfreq(n, 1 / rate)
        f[0] = f[1]
        x = np.fft.irfft(spec / np.sqrt(f), n)
    elif kind == "hum":
        t = np.arange(n) / rate
        hz = rng.choice([50.0, 60.0])
        x = sum(np.sin(2 * np.pi * hz * k * t + rng.uniform(0, 6.28)) / k for k in (1, 3, 5)) + 0.3 * w
    else:  # crackle: sparse clicks over hiss, like a bad line
        x = 0.3 * w
        clicks = rng.random(n) < 30 / rate
        x[clicks] += rng.choice([-1, 1], clicks.sum()) * 8
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


class Builder:
    """Lays segments on a timeline (in ms) and renders the clip."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.parts: list[tuple[int, np.ndarray]] = []
        self.t = 0
        self.speech: list[list[int]] = []

    def pause(self, ms: float) -> None:
        self.t += int(ms)

    def add(self, x: np.ndarray, is_speech: bool = True) -> tuple[int, int]:
        start = self.t
        self.parts.append((start, x))
        self.t += round(len(x) * 1000 / self.rate)
        if is_speech:
            self.speech.append([start, self.t])
        return start, self.t

    def render(self) -> np.ndarray:
        out = np.zeros(int(self.t * self.rate / 1000) + 1)
        for start, x in self.parts:
            i = int(start * self.rate / 1000)
            out[i : i + len(x)] += x[: len(out) - i]
        return out


def fill(text: str, rng: np.random.Generator) -> str:
    digits = " ".join(str(d) for d in rng.integers(0, 10, 7))
    return text.format(n=rng.choice(NAMES), m=rng.choice(NAMES), s=rng.choice(SURNAMES), d=digits)


def pick(rng: np.random.Generator, shares: dict[str, float]) -> str:
    keys = list(shares)
    p = np.array([shares[k] for k in keys])
    return str(rng.choice(keys, p=p / p.sum()))


def gsm_roundtrip(x: np.ndarray) -> np.ndarray:
    """GSM 06.10 encode/decode through SoX (8 kHz only), as a mobile leg would damage the audio."""
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes()
    raw = ["-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1"]
    gsm = subprocess.run(["sox", "-D", "-R", *raw, "-", "-t", "gsm", "-"], input=pcm, check=True,
                         capture_output=True).stdout  # fmt: skip
    out = subprocess.run(["sox", "-D", "-R", "-t", "gsm", "-r", "8000", "-", *raw, "-"], input=gsm, check=True,
                         capture_output=True).stdout  # fmt: skip
    y = np.frombuffer(out, "<i2").astype(np.float64) / 32768.0
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]


def packet_loss(rng: np.random.Generator, x: np.ndarray, rate: int) -> np.ndarray:
    """Drop 2-8% of 20 ms packets, in bursts of 1-3, replaced by silence (what a jitter buffer without
    concealment plays)."""
    n = rate // 50
    y = x.copy()
    frames = len(x) // n
    share = rng.uniform(0.02, 0.08)
    i = 0
    while i < frames:
        if rng.random() < share / 2:
            burst = int(rng.integers(1, 4))
            y[i * n : (i + burst) * n] = 0
            i += burst
        i += 1
    return y


class Backgrounds:
    """Sound in the callee's room, made once per rate and split: TV-like babble (several espeak voices talking
    over each other) and street noise (pink noise swelling as cars pass). Clips take random stretches of it."""

    def __init__(self, synth: Synth, seed: int) -> None:
        self._synth = synth
        self._seed = seed
        self._cache: dict[tuple[str, int, str], np.ndarray] = {}

    def get(self, kind: str, rate: int, split: str) -> np.ndarray:
        key = (kind, rate, split)
        if key not in self._cache:
            rng = np.random.default_rng([self._seed, 999, rate, 0 if split == "tune" else 1])
            n = rate * 30
            if kind == "babble":
                x = np.zeros(n)
                voices = pool(ESPEAK_LANGS, split)
                for _ in range(5):
                    t = 0
                    while t < n:
                        v = str(rng.choice(voices)) + "+" + str(rng.choice(pool(ESPEAK_VARIANTS[1:], split)))
                        y = self._synth.espeak(str(rng.choice(BABBLE_TEXT)), v, int(rng.integers(150, 200)),
                                               int(rng.integers(20, 80)), rate)  # fmt: skip
                        y = y[: n - t] / (np.sqrt(np.mean(y**2)) + 1e-12)
                        x[t : t + len(y)] += y * rng.uniform(0.5, 1.0)
                        t += len(y) + int(rng.uniform(0.05, 0.4) * rate)
            else:
                x = noise(rng, "pink", n, rate)
                t = np.arange(n) / rate
                swell = np.ones(n) * 0.4
                for _ in range(8):
                    c, w = rng.uniform(0, 30), rng.uniform(1.5, 4)
                    swell += np.exp(-(((t - c) / w) ** 2)) * rng.uniform(0.5, 1.5)
                x = x * swell
            self._cache[key] = x / (np.sqrt(np.mean(x**2)) + 1e-12)
        return self._cache[key]


def make_clip(idx: int, seed: int, synth: Synth, held_out: float,
              backgrounds: Backgrounds | None = None) -> tuple[Clip, np.ndarray]:  # fmt: skip
    # One generator per clip, derived from (seed, idx): a clip does not change when the count changes.
    rng = np.random.default_rng([seed, idx])
    split = "held_out" if np.random.default_rng([seed, idx, 1]).random() < held_out else "tune"
    tune = split == "tune"
    label = "human" if rng.random() < 0.5 else "machine"
    kind = pick(rng, HUMAN_KINDS if label == "human" else MACHINE_KINDS)
    rate = 16000 if rng.random() < 0.25 else 8000
    lang = "es" if kind == "spanish" else "en"
    variant = str(rng.choice(pool(ESPEAK_VARIANTS, split)))
    base = str(rng.choice(SPANISH_LANGS if lang == "es" else pool(ESPEAK_LANGS, split)))
    voice = base + (f"+{variant}" if variant else "")
    # Speaking rate and pitch: the held-out split reaches further both ways than the tuning split.
    speed = int(rng.integers(140, 200) if tune else rng.integers(130, 221))
    pitch = int(rng.integers(30, 70) if tune else rng.integers(20, 81))
    b = Builder(rate)
    level = 10 ** (rng.uniform(-28, -12) / 20) * np.sqrt(2)  # speech peak-ish level, varied per call
    texts: list[str] = []

    def choice(items: list) -> object:
        return items[int(rng.integers(len(items)))]

    def say(text: str, v: str = voice, s: int = speed) -> tuple[int, int]:
        t = fill(text, rng)
        texts.append(t)
        x = synth.espeak(t, v, s, pitch, rate)
        return b.add(x / (np.sqrt(np.mean(x**2)) + 1e-12) * level / np.sqrt(2))

    def phrases(parts: list[str], gap: tuple[float, float] = (60, 260)) -> tuple[int, int]:
        first = end = 0
        for i, ph in enumerate(parts):
            s, end = say(ph)
            first = s if i == 0 else first
            if i < len(parts) - 1:
                b.pause(rng.uniform(*gap))
        return first, end

    def sentence_pause() -> float:
        # People reading a greeting pause between sentences, most around 0.3-0.4 s; the held-out split draws
        # from a wider, slower distribution so no one pause length is what the detector learns.
        if tune:
            return float(np.clip(rng.lognormal(np.log(340), 0.4), 150, 900))
        return float(np.clip(rng.lognormal(np.log(400), 0.5), 120, 1100))

    def prompt(names: list[str]) -> None:
        for i, name in enumerate(names):
            if name == "#digits":
                for d in rng.integers(0, 10, 4):
                    x = synth.allison(f"digits/{d}", rate)
                    b.add(x / (np.sqrt(np.mean(x**2)) + 1e-12) * level / np.sqrt(2))
                    b.pause(rng.uniform(40, 120))
            else:
                x = synth.allison(name, rate)
                texts.append(name)
                b.add(x / (np.sqrt(np.mean(x**2)) + 1e-12) * level / np.sqrt(2))
            if i < len(names) - 1:
                b.pause(rng.uniform(150, 450))

    def sit() -> None:
        # Special information tones (SIT) before an intercept message: three rising tones.
        lev = level * rng.uniform(0.5, 1.2)
        for hz, ms in ((rng.choice([913.8, 985.2]), 276), (rng.choice([1370.6, 1428.5]), 276), (1776.7, 380)):
            b.add(tone(rate, hz, ms, lev), is_speech=False)
        b.pause(rng.uniform(50, 400))

    greeting_end = 0
    beep: tuple[int, int, float] | None = None
    speech_start: int | None = None
    snr = float(rng.uniform(18, 45))
    p_beep = 0.0
    noisy_start = 0

    if label == "human":
        initial = rng.uniform(1500, 3500) if kind == "late" else rng.uniform(150, 1200)
        if kind == "noisy":
            # The line is still settling when the person speaks: a burst of loud noise from answer.
            noisy_start = int(rng.uniform(300, 1500))
            initial = rng.uniform(100, noisy_start + 300)
        b.pause(initial)
        if kind in ("short", "noisy", "late"):
            speech_start, greeting_end = say(str(choice(pool(HUMAN_SHORT, split))))
            if kind == "noisy":
                snr = float(rng.uniform(8, 15))
        elif kind == "name":
            speech_start, greeting_end = say(str(choice(pool(HUMAN_NAME, split))))
        elif kind == "question":
            speech_start, greeting_end = say(str(choice(pool(HUMAN_QUESTION, split))))
        elif kind == "double":
            speech_start, greeting_end = say(str(choice(["Hello?", "Hello?", "Hi?", "Yeah?", "Hello."])))
        elif kind == "spanish":
            r = rng.random()
            if r < 0.5:
                speech_start, greeting_end = say(str(choice(HUMAN_ES_SHORT)))
            elif r < 0.75:
                speech_start, greeting_end = say(str(choice(HUMAN_ES_NAME)))
            else:
                speech_start, greeting_end = phrases(choice(HUMAN_ES_LONG))  # type: ignore[arg-type]
        else:  # long: one 3-5 s sentence in phrases with short breaths between them
            speech_start, greeting_end = phrases(choice(pool(HUMAN_LONG, split)))  # type: ignore[arg-type]
        # The person then waits for us; some say something again.
        if kind == "double":
            b.pause(rng.uniform(800, 2000))
            say("Hello?")
            b.pause(rng.uniform(800, 1800))
        else:
            b.pause(rng.uniform(1200, 2600))
            if rng.random() < 0.5:
                say(str(choice(HUMAN_ES_FOLLOW if lang == "es" else HUMAN_FOLLOW)))
                b.pause(rng.uniform(300, 1000))
    else:
        b.pause(rng.uniform(100, 1500))
        if kind in ("personal", "pause_first"):
            if kind == "pause_first":
                # A greeting that starts with a name and a long pause ("Maria. ... I can't come to the phone").
                parts = [str(choice(pool(HUMAN_NAME, split))), str(choice(VM_MIDDLES)), str(choice(VM_CLOSERS))]
            else:
                parts = [str(choice(pool(VM_OPENERS, split)))]
                if rng.random() < 0.75:
                    parts.append(str(choice(pool(VM_MIDDLES, split))))
                parts.append(str(choice(pool(VM_CLOSERS, split))))
                if rng.random() < 0.2:
                    parts.append(str(choice(VM_CLOSERS)))
            for i, ph in enumerate(parts):
                s, greeting_end = say(ph)
                speech_start = s if i == 0 else speech_start
                if i < len(parts) - 1:
                    b.pause(rng.uniform(700, 1200) if kind == "pause_first" and i == 0 else sentence_pause())
            p_beep = 0.85
        elif kind == "short_vm":
            speech_start, greeting_end = say(str(choice(pool(VM_SHORT, split))))
            p_beep = 0.9
        elif kind in ("carrier", "intercept", "spanish"):
            if kind == "intercept":
                sit()
                lines = choice(pool(INTERCEPT_TEXT, split))
            elif kind == "spanish":
                lines = choice(ES_VM + ES_CARRIER)
                if lines in ES_CARRIER[1:3] and rng.random() < 0.5:
                    sit()
                p_beep = 0.0 if lines in ES_CARRIER[1:3] else 0.75
            else:
                lines = choice(pool(CARRIER_TEXT, split))
                p_beep = 0.6
            if kind == "spanish":
                cv, cs = voice, speed
            else:
                cv = str(choice(["en-us", "en-us+f2", "en-us+f4", "en-gb+f3", "en-us+m3", "en-us-nyc+f5"]))
                cs = int(rng.integers(145, 175))
            for i, ph in enumerate(lines):  # type: ignore[arg-type]
                s, greeting_end = say(ph, cv, cs)
                speech_start = s if speech_start is None else speech_start
                if i < len(lines) - 1:  # type: ignore[arg-type]
                    b.pause(rng.uniform(150, 500) if kind != "spanish" else sentence_pause())
        elif kind == "allison":
            # Asterisk's own recorded prompts (the only language the project's Asterisk ships is English).
            carrier = rng.random() < 0.7
            names = choice(pool(ALLISON_CARRIER if carrier else ALLISON_INTERCEPT, split))
            if not carrier and rng.random() < 0.5:
                sit()
            speech_start = b.t
            prompt(names)  # type: ignore[arg-type]
            greeting_end = b.speech[-1][1]
            p_beep = 0.7 if carrier and "vm-mailboxfull" not in names else 0.0  # type: ignore[operator]
        else:  # trick: "Hello?" then a pause, then the rest of the greeting
            first, *rest = choice(TRICK)  # type: ignore[misc]
            speech_start, _ = say(first)
            b.pause(rng.uniform(900, 1800))
            _, greeting_end = phrases(rest, (200, 500))
            p_beep = 0.9
        if rng.random() < p_beep:
            b.pause(rng.uniform(100, 900))
            style = pick(rng, {"sine": 0.7, "asterisk": 0.12, "square": 0.08, "double": 0.1})
            beep_level = level * rng.uniform(0.6, 2.0)
            if style == "asterisk":
                x = synth.allison("beep", rate)
                x = x / (np.abs(x).max() + 1e-12) * beep_level
                s, e = b.add(x, is_speech=False)
                hz = 700.0
            elif style == "double":
                hz = float(rng.uniform(600, 1500))
                s, _ = b.add(tone(rate, hz, rng.uniform(150, 300), beep_level), is_speech=False)
                b.pause(rng.uniform(40, 140))
                _, e = b.add(tone(rate, hz, rng.uniform(150, 300), beep_level), is_speech=False)
            else:
                hz = float(rng.choice([440, 850, 1000, 1000, 1400, 2000, rng.uniform(400, 2000)]))
                s, e = b.add(tone(rate, hz, rng.uniform(200, 1000), beep_level, style), is_speech=False)
            beep = (s, e, round(hz, 1))
        # What the voicemail recording hears after the greeting: silence with line noise.
        b.pause(rng.uniform(1200, 2500))

    x = b.render()
    n_kind = pick(rng, {"white": 0.4, "pink": 0.3, "hum": 0.15, "crackle": 0.15})
    speech_rms = level / np.sqrt(2)
    line = noise(rng, n_kind, len(x), rate) * speech_rms * 10 ** (-snr / 20)
    if noisy_start:
        line[: int(noisy_start * rate / 1000)] *= 10 ** (rng.uniform(3, 10) / 20)
    x = x + line
    background = pick(rng, BACKGROUNDS)
    if background and backgrounds is not None:
        bg = backgrounds.get(background, rate, split)
        off = int(rng.integers(0, len(bg) - len(x))) if len(bg) > len(x) else 0
        seg = np.resize(bg[off:], len(x))
        x = x + seg * speech_rms * 10 ** (-rng.uniform(12, 25) / 20)
    damage = pick(rng, DAMAGE)
    if damage == "gsm" and rate != 8000:
        damage = "ulaw"
    if damage == "clip":
        # A bad codec or an overdriven line: the speech is driven 6-14 dB into hard clipping.
        x = np.clip(x * 10 ** (rng.uniform(6, 14) / 20) / (np.abs(x).max() + 1e-12), -1, 1) * 0.99
    elif damage == "loss":
        x = packet_loss(rng, ulaw_roundtrip(x), rate)
    elif damage == "gsm":
        x = gsm_roundtrip(x)
    ulaw = damage in ("ulaw", "clip")
    if ulaw:
        x = ulaw_roundtrip(x)
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    clip_id = f"{label[0]}{idx:04d}"
    clip = Clip(
        id=clip_id, file=f"{clip_id}.wav", label=label, kind=kind, split=split, rate=rate,
        duration_ms=int(len(pcm) * 1000 / rate), speech_start_ms=speech_start, greeting_end_ms=int(greeting_end),
        beep_start_ms=beep[0] if beep else None, beep_end_ms=beep[1] if beep else None,
        beep_hz=beep[2] if beep else None, voice=voice, speed=speed, snr_db=round(snr, 1), noise=n_kind,
        ulaw=ulaw or damage == "loss", lang=lang, background=background, damage=damage, text=" | ".join(texts),
        segments=b.speech,
    )  # fmt: skip
    return clip, pcm


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    path.write_bytes(buf.getvalue())


def generate(out: Path, count: int, seed: int, held_out: float) -> list[Clip]:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (Debian packages espeak-ng and sox)")
    out.mkdir(parents=True, exist_ok=True)
    synth = Synth()
    backgrounds = Backgrounds(synth, seed)
    clips = []
    for i in range(count):
        clip, pcm = make_clip(i, seed, synth, held_out, backgrounds)
        write_wav(out / clip.file, pcm, clip.rate)
        clips.append(clip)
    manifest = {
        "version": 2,
        "seed": seed,
        "count": count,
        "held_out_fraction": held_out,
        "notes": "times in ms from answer (start of file); split 'held_out' is never used for tuning",
        "clips": [asdict(c) for c in clips],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return clips


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data/amd-corpus"))
    ap.add_argument("--count", type=int, default=600)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--held-out", type=float, default=0.4, help="fraction of clips kept out of tuning")
    args = ap.parse_args(argv)
    clips = generate(args.out, args.count, args.seed, args.held_out)
    by = {}
    for c in clips:
        by[(c.split, c.label)] = by.get((c.split, c.label), 0) + 1
    summary = ", ".join(f"{s}/{lab}: {n}" for (s, lab), n in sorted(by.items()))
    print(f"wrote {len(clips)} clips and manifest.json to {args.out} ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
