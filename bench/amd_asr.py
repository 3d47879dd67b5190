"""Could words catch the machines timing cannot? A measurement with a recogniser whose model ships in its wheel.

PocketSphinx 5 (its US-English acoustic model, language model and dictionary are inside the PyPI wheel; nothing is
downloaded at run time) decodes, on the HELD-OUT split: every machine the detector puts through at its first
decision (first decision ``human``), the audio up to that decision (what the detector had) and up to 1 s later
(if it waited that long); and every person, up to their greeting's end + 600 ms. A hit is a voicemail phrase in
the words it hears (KEYWORDS, English only: the model is English; Spanish machines are counted apart). CPU is
the decoder's process time per second of audio on this box, i.e. the channels one core could decode live.

pocketsphinx is not a project dependency (the detector does not use it): run from a venv that has it beside the
project's deps, e.g. ``/tmp/v/bin/pip install numpy webrtcvad-wheels pocketsphinx`` then
``PYTHONPATH=. /tmp/v/bin/python -m bench.amd_asr``.

    python -m bench.amd_asr [--corpus data/amd-corpus] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.amd import read_wav, run_ours
from bridge.amd import AmdParams

KEYWORDS = re.compile(
    r"\b(reached|leave (a|your) message|message|not available|unavailable|mailbox|voicemail|voice mail|"
    r"after the (tone|beep)|the tone|beep|can't (come|take|get)|cannot (come|take)|record|call you back|"
    r"get back to you|the number you have|dialed|dialled|disconnected|not in service)\b"
)
# Wider, chosen AFTER reading what the recogniser made of the held-out machines ("nobody is available", "at the
# moment", "the mailbox belonging to"): optimistic, an upper figure for words, not a tuned list.
KEYWORDS_WIDE = re.compile(
    r"\b(reached|leave|message|available|mailbox|voicemail|tone|beep|moment|call you back|get back|number you|"
    r"dialed|service|belonging)\b"
)


def _decoder() -> Any:
    from pocketsphinx import Decoder

    return Decoder(samprate=16000, loglevel="FATAL")


def to16k(pcm: bytes, rate: int) -> bytes:
    """The model is 16 kHz; telephone audio is upsampled (linear interpolation: the band above 4 kHz stays empty)."""
    x = np.frombuffer(pcm, "<i2").astype(np.float32)
    if rate == 16000:
        return pcm
    t = np.arange(len(x) * 2) / 2
    return np.interp(t, np.arange(len(x)), x).astype("<i2").tobytes()


def decode(dec: Any, pcm16: bytes) -> tuple[str, float]:
    t0 = time.process_time()
    dec.start_utt()
    dec.process_raw(pcm16, full_utt=True)
    dec.end_utt()
    hyp = dec.hyp()
    return (hyp.hypstr if hyp else ""), time.process_time() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("data/amd-corpus"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    clips = [c for c in json.loads((args.corpus / "manifest.json").read_text())["clips"] if c["split"] == "held_out"]
    dec = _decoder()
    params = AmdParams()
    rows = []
    cpu, audio_s = 0.0, 0.0
    for c in clips:
        pcm, rate = read_wav(args.corpus / c["file"])
        o = run_ours(pcm, rate, params)
        first = o.first_decision or o.decision
        if c["label"] == "machine" and first != "human":
            continue
        cuts = {"at_decision": o.first_ms or o.decision_ms, "decision_plus_1s": (o.first_ms or o.decision_ms) + 1000}
        if c["label"] == "human":
            cuts = {"greeting_plus_600": (c["greeting_end_ms"] or 0) + 600}
        row: dict[str, Any] = {"id": c["id"], "label": c["label"], "kind": c["kind"], "lang": c.get("lang", "en")}
        for name, ms in cuts.items():
            seg = to16k(pcm[: ms * rate // 1000 * 2], rate)
            hyp, t = decode(dec, seg)
            cpu += t
            audio_s += len(seg) / 32000
            row[name] = {"words": hyp, "hit": bool(KEYWORDS.search(hyp)), "wide": bool(KEYWORDS_WIDE.search(hyp))}
        rows.append(row)
    machines = [r for r in rows if r["label"] == "machine"]
    humans = [r for r in rows if r["label"] == "human"]
    en_m = [r for r in machines if r["lang"] != "es"]
    summary = {
        "held_out_machines_put_through": len(machines),
        "of_them_spanish": len(machines) - len(en_m),
        "hits_at_decision": sum(r["at_decision"]["hit"] for r in machines),
        "hits_decision_plus_1s": sum(r["decision_plus_1s"]["hit"] for r in machines),
        "hits_english_at_decision": sum(r["at_decision"]["hit"] for r in en_m),
        "hits_english_plus_1s": sum(r["decision_plus_1s"]["hit"] for r in en_m),
        "wide_hits_at_decision": sum(r["at_decision"]["wide"] for r in machines),
        "wide_hits_decision_plus_1s": sum(r["decision_plus_1s"]["wide"] for r in machines),
        "held_out_people": len(humans),
        "false_hits_on_people": sum(r["greeting_plus_600"]["hit"] for r in humans),
        "wide_false_hits_on_people": sum(r["greeting_plus_600"]["wide"] for r in humans),
        "false_hit_people": [
            (r["id"], r["greeting_plus_600"]["words"]) for r in humans if r["greeting_plus_600"]["hit"]
        ],
        "audio_s": round(audio_s, 1),
        "cpu_s": round(cpu, 1),
        "x_real_time_per_core": round(cpu / audio_s, 3),
        "channels_per_core": round(audio_s / cpu, 1) if cpu else None,
    }
    if args.json:
        print(json.dumps({"summary": summary, "rows": rows}, indent=1))
    else:
        for k, v in summary.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
