"""`phonebank amd classify FILE.wav [FILE.wav …]`: run the answering-machine detector over recordings.

One JSON object per line per file, in the order given:
``{"file": "<path as given>", "decision": "human" | "machine", "decision_ms": <int>, "beep_ms": <int or null>,
"first_decision": "human" | "machine", "first_decision_ms": <int>}``

Times are ms from the start of the file (the moment of answer). ``decision`` is the final decision: for a
call first decided human and then corrected to machine (see bridge/amd.py), "machine", with ``decision_ms``
the time of the correction. ``beep_ms`` is when the detector reported the
beep, i.e. when it saw the tone end and a voicemail message would start; null when it heard no beep (humans,
machines without a beep). ``first_decision``/``first_decision_ms`` are the first verdict, the one the live path
acts on (puts the call through or not); they equal ``decision``/``decision_ms`` unless there was a late
correction (then ``first_decision`` is "human" and ``decision`` "machine"). The file is read 20 ms at a time
and fed to the same ``AmdDetector.feed`` the live call path uses.
A file that cannot be read (missing, not a WAV, not mono 16-bit 8/16 kHz) gets an error on
stderr, the other files are still classified, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import wave
from typing import Any

from bridge.amd import FRAME_MS, SAMPLE_RATES, AmdDetector, AmdParams

PROG = "phonebank amd classify"


class InputError(Exception):
    pass


def classify_file(path: str, params: AmdParams | None = None) -> dict[str, Any]:
    """Classify one WAV file by streaming it through the detector; raises InputError on unusable input."""
    try:
        w = wave.open(path, "rb")
    except FileNotFoundError:
        raise InputError("no such file") from None
    except IsADirectoryError:
        raise InputError("is a directory") from None
    except (wave.Error, EOFError) as e:
        raise InputError(f"not a PCM WAV file ({e})") from None
    except OSError as e:
        raise InputError(e.strerror or str(e)) from None
    with w:
        if w.getnchannels() != 1:
            raise InputError(f"{w.getnchannels()} channels; need mono")
        if w.getsampwidth() != 2:
            raise InputError(f"{8 * w.getsampwidth()}-bit samples; need 16-bit linear PCM")
        rate = w.getframerate()
        if rate not in SAMPLE_RATES:
            raise InputError(f"{rate} Hz; need 8000 or 16000 Hz")
        det = AmdDetector(rate, params)
        per_frame = rate * FRAME_MS // 1000
        while not det.done:
            chunk = w.readframes(per_frame)
            if not chunk:
                break
            det.feed(chunk)
        det.finish()
    decision, first = det.decision, det.first_decision
    assert decision is not None and first is not None  # finish() always decides
    beep = next((e.at_ms for e in det.events if e.kind == "beep"), None)
    return {
        "file": path,
        "decision": decision.kind,
        "decision_ms": int(decision.at_ms),
        "beep_ms": beep,
        "first_decision": first.kind,
        "first_decision_ms": int(first.at_ms),
    }


def classify_main(argv: list[str]) -> int:
    """Entry point for `phonebank amd classify`; argv is what follows `classify`."""
    ap = argparse.ArgumentParser(
        prog=PROG, description="Classify answered-call recordings as human or answering machine."
    )
    ap.add_argument("files", nargs="+", metavar="FILE.wav", help="mono 16-bit linear PCM WAV, 8 or 16 kHz")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # usage errors: argparse has already printed why
        return int(e.code or 0)
    status = 0
    for path in args.files:
        try:
            result = classify_file(path)
        except InputError as e:
            print(f"{PROG}: {path}: {e}", file=sys.stderr, flush=True)
            status = 1
            continue
        print(json.dumps(result), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(classify_main(sys.argv[1:]))
