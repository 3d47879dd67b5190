"""A volunteer's browser with computer audio, for tests and benchmarks: headless Debian Chromium whose fake
microphone plays a WAV we make (a tone signature the far end can find in a recording).

Chromium's media flags: ``--use-fake-ui-for-media-stream`` grants the microphone without a prompt,
``--use-fake-device-for-media-stream`` + ``--use-file-for-fake-audio-capture`` make the microphone play a file,
``--allow-loopback-in-peer-connection`` lets ICE use 127.0.0.1 (the PBX is on loopback here) and
``--ignore-certificate-errors`` accepts the PBX's self-signed certificate for its WSS port. Nothing leaves
127.0.0.1: background networking is off (phonebank/browser.py) and the page only knows loopback URLs.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from playwright.async_api import Browser, Playwright

from phonebank.browser import CHROMIUM_ARGS, chromium_path

# The browser's microphone signature: away from the voters' tones (2.7-3.4 kHz), the beep (440 Hz) and the
# prompts' strongest formants. Pulsed, so the browser's noise suppressor does not learn it as steady noise.
MIC_TONE_HZ = 1900
MIC_RATE = 48000


def make_mic_wav(
    path: Path,
    tone_hz: float = MIC_TONE_HZ,
    seconds: float = 10.0,
    on_s: float = 0.4,
    off_s: float = 0.2,
    level: float = 0.5,
) -> Path:
    """A 16-bit mono WAV: ``tone_hz`` in bursts (Chromium loops the file)."""
    n = int(seconds * MIC_RATE)
    t = np.arange(n) / MIC_RATE
    tone = np.sin(2 * np.pi * tone_hz * t)
    period = on_s + off_s
    phase = np.mod(t, period)
    # 10 ms ramps: no clicks, which would spread energy over every frequency.
    ramp = 0.01
    env = np.clip(np.minimum(phase / ramp, (on_s - phase) / ramp), 0, 1)
    samples = (tone * env * level * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(MIC_RATE)
        w.writeframes(samples.tobytes())
    return path


def media_args(mic_wav: Path, grant: bool = True) -> list[str]:
    args = [
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav}",
        "--allow-loopback-in-peer-connection",
        "--ignore-certificate-errors",
    ]
    return (["--use-fake-ui-for-media-stream"] if grant else []) + args


async def launch(pw: Playwright, mic_wav: Path, grant: bool = True) -> Browser:
    return await pw.chromium.launch(
        executable_path=str(chromium_path()), headless=True, args=CHROMIUM_ARGS + media_args(mic_wav, grant)
    )
