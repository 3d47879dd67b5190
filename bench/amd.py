"""Benchmark the answering-machine detector on the labelled corpus (bench/amd_corpus.py).

Every clip is streamed through ``bridge.amd.AmdDetector`` in 20 ms chunks, exactly as a live call would feed it,
and the figures are reported separately for the tuning split and the held-out split (report the held-out one):

- humans kept %: people decided ``human`` (the rest would be hung up on);
- machines caught %: machines decided ``machine``;
- human decision time after greeting end, p50/p95 (ms): how long a person hears dead air after "hello";
- beep timing error, p50/p95 (ms): when our voicemail message would start minus when the beep ends, for
  machines with a beep (negative = the message would start over the beep); "in 0..300" = share within target;
- message start after greeting end for machines without a beep (informative, no target);
- CPU per channel and channels per core in real time, from the detector's own CPU time.

app_amd (Asterisk) results on the same clips are to be plugged in through ``app_amd_outcomes``; it is not run
here yet, and the report says so rather than show figures for it.

    python -m bench.amd [--corpus data/amd-corpus] [--json] [--set name=value ...] [--per-kind]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import wave
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from bridge.amd import FRAME_MS, AmdDetector, AmdParams

TARGETS = {"humans_kept_pct": 99.0, "machines_caught_pct": 95.0, "human_delay_p50_ms": 400,
           "human_delay_p95_ms": 600, "beep_error_max_ms": 300}  # fmt: skip


@dataclass
class Outcome:
    decision: str
    decision_ms: int
    reason: str
    beep_ms: int | None  # when the beep event was emitted (message would start)
    greeting_end_ms: int | None  # when the greeting_end event was emitted
    cpu_s: float = 0.0
    frames: int = 0  # frames analysed before the detector was done


def read_wav(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes()), w.getframerate()


def run_ours(pcm: bytes, rate: int, params: AmdParams) -> Outcome:
    det = AmdDetector(rate, params)
    step = rate * FRAME_MS // 1000 * 2
    frames = 0
    t0 = time.process_time()
    for i in range(0, len(pcm), step):
        det.feed(pcm[i : i + step])
        frames += 1
        if det.done:
            break
    det.finish()
    cpu = time.process_time() - t0
    ev = {e.kind: e for e in det.events}
    d = det.decision
    assert d is not None
    return Outcome(
        decision=d.kind, decision_ms=d.at_ms, reason=d.reason,
        beep_ms=ev["beep"].at_ms if "beep" in ev else None,
        greeting_end_ms=ev["greeting_end"].at_ms if "greeting_end" in ev else None,
        cpu_s=cpu, frames=frames,
    )  # fmt: skip


def app_amd_outcomes(corpus: Path, clips: list[dict]) -> dict[str, Outcome] | None:
    """Where app_amd on the real Asterisk plugs in: play each clip to a channel running AMD() and map
    AMDSTATUS/AMDCAUSE to an Outcome (decision_ms from answer; beep_ms None, app_amd does not time beeps).

    Not implemented in this offline benchmark: it needs the provisioned Asterisk. Returns None so the report
    shows app_amd as not run instead of inventing figures.
    """
    return None


def pct(a: int, b: int) -> float | None:
    return round(100.0 * a / b, 2) if b else None


def q(xs: list[float], p: float) -> int | None:
    return round(float(np.percentile(xs, p))) if xs else None


def summarize(clips: list[dict], outs: dict[str, Outcome]) -> dict:
    humans = [c for c in clips if c["label"] == "human"]
    machines = [c for c in clips if c["label"] == "machine"]
    kept = [c for c in humans if outs[c["id"]].decision == "human"]
    caught = [c for c in machines if outs[c["id"]].decision == "machine"]
    delays = [outs[c["id"]].decision_ms - c["greeting_end_ms"] for c in kept]
    beep_err, beep_ok = [], 0
    nobeep = []
    for c in caught:
        o = outs[c["id"]]
        start = o.beep_ms if o.beep_ms is not None else o.greeting_end_ms
        if start is None:
            continue
        if c["beep_end_ms"] is not None:
            err = start - c["beep_end_ms"]
            beep_err.append(err)
            beep_ok += 0 <= err <= TARGETS["beep_error_max_ms"]
        else:
            nobeep.append(start - c["greeting_end_ms"])
    beeps = [c for c in caught if c["beep_end_ms"] is not None]
    mdec = [outs[c["id"]].decision_ms for c in caught]
    return {
        "clips": len(clips),
        "humans": len(humans),
        "machines": len(machines),
        "humans_kept_pct": pct(len(kept), len(humans)),
        "machines_caught_pct": pct(len(caught), len(machines)),
        "human_delay_p50_ms": q(delays, 50),
        "human_delay_p95_ms": q(delays, 95),
        "human_delay_max_ms": max(delays) if delays else None,
        "machine_decision_p50_ms": q(mdec, 50),
        "machine_decision_p95_ms": q(mdec, 95),
        "beep_clips": len(beeps),
        "beeps_heard": sum(outs[c["id"]].beep_ms is not None for c in beeps),
        "beep_error_p50_ms": q(beep_err, 50),
        "beep_error_p95_ms": q(beep_err, 95),
        "beep_error_min_ms": min(beep_err) if beep_err else None,
        "beep_within_0_300_pct": pct(beep_ok, len(beep_err)),
        "nobeep_start_after_greeting_p50_ms": q(nobeep, 50),
        "nobeep_start_after_greeting_p95_ms": q(nobeep, 95),
        "missed_humans": [c["id"] for c in humans if c not in kept],
        "missed_machines": [c["id"] for c in machines if c not in caught],
    }


def per_kind(clips: list[dict], outs: dict[str, Outcome]) -> dict[str, dict]:
    res: dict[str, dict] = {}
    for c in clips:
        k = f"{c['label']}/{c['kind']}"
        r = res.setdefault(k, {"n": 0, "right": 0})
        r["n"] += 1
        r["right"] += outs[c["id"]].decision == c["label"]
    for r in res.values():
        r["right_pct"] = pct(r["right"], r["n"])
    return dict(sorted(res.items()))


def cpu_figures(outs: dict[str, Outcome]) -> dict:
    cpu = sum(o.cpu_s for o in outs.values())
    frames = sum(o.frames for o in outs.values())
    per_frame_us = 1e6 * cpu / frames
    return {
        "frames_analysed": frames,
        "cpu_per_frame_us": round(per_frame_us, 1),
        "cpu_per_channel_pct": round(100 * per_frame_us / (FRAME_MS * 1000), 3),
        "channels_per_core": int(FRAME_MS * 1000 / per_frame_us),
    }


def throughput(corpus: Path, clips: list[dict], params: AmdParams, channels: int = 100, seconds: int = 10) -> dict:
    """Serve `channels` calls at once from one process for `seconds` of audio: every 20 ms each channel gets a
    frame; a channel whose detector is done (or whose clip ran out) starts the next clip with a new detector,
    so every channel is always analysing, the busiest a detector ever is. CPU time over audio time."""
    audio = [read_wav(corpus / c["file"]) for c in clips]
    pos = [0] * channels
    nxt = channels
    dets = [AmdDetector(audio[i % len(audio)][1], params) for i in range(channels)]
    cur = [i % len(audio) for i in range(channels)]
    n_frames = seconds * 1000 // FRAME_MS
    t0 = time.process_time()
    for _ in range(n_frames):
        for ch in range(channels):
            pcm, rate = audio[cur[ch]]
            step = rate * FRAME_MS // 1000 * 2
            if dets[ch].done or pos[ch] + step > len(pcm):
                cur[ch], nxt = nxt % len(audio), nxt + 1
                pcm, rate = audio[cur[ch]]
                step = rate * FRAME_MS // 1000 * 2
                dets[ch], pos[ch] = AmdDetector(rate, params), 0
            dets[ch].feed(pcm[pos[ch] : pos[ch] + step])
            pos[ch] += step
    cpu = time.process_time() - t0
    return {
        "channels": channels,
        "audio_s": seconds,
        "cpu_s": round(cpu, 3),
        "realtime_factor": round(seconds / cpu, 2) if cpu else None,
        "channels_per_core": int(channels * seconds / cpu) if cpu else None,
    }


def parse_sets(items: list[str]) -> dict:
    types = {f.name: f.type for f in fields(AmdParams)}
    out = {}
    for it in items:
        k, v = it.split("=", 1)
        if k not in types:
            raise SystemExit(f"unknown parameter {k!r}; known: {', '.join(types)}")
        out[k] = float(v) if "float" in str(types[k]) else int(v)
    return out


def fmt(v: object) -> str:
    return "-" if v is None else str(v)


def print_table(report: dict) -> None:
    rows = [
        ("clips (humans / machines)", lambda s: f"{s['clips']} ({s['humans']} / {s['machines']})"),
        ("humans kept %  [>= 99]", lambda s: fmt(s["humans_kept_pct"])),
        ("machines caught %  [>= 95]", lambda s: fmt(s["machines_caught_pct"])),
        ("human decision after greeting end p50 ms  [<= 400]", lambda s: fmt(s["human_delay_p50_ms"])),
        ("human decision after greeting end p95 ms  [<= 600]", lambda s: fmt(s["human_delay_p95_ms"])),
        ("machine decision from answer p50 / p95 ms", lambda s: f"{s['machine_decision_p50_ms']} / "
                                                                 f"{s['machine_decision_p95_ms']}"),
        ("beeps heard / beep clips caught", lambda s: f"{s['beeps_heard']} / {s['beep_clips']}"),
        ("message start - beep end p50 ms", lambda s: fmt(s["beep_error_p50_ms"])),
        ("message start - beep end p95 ms", lambda s: fmt(s["beep_error_p95_ms"])),
        ("message start within 0..300 ms of beep end %", lambda s: fmt(s["beep_within_0_300_pct"])),
        ("no beep: message start - greeting end p50/p95 ms",
         lambda s: f"{s['nobeep_start_after_greeting_p50_ms']} / {s['nobeep_start_after_greeting_p95_ms']}"),
    ]  # fmt: skip
    splits = [s for s in ("tune", "held_out") if s in report["splits"]]
    w = max(len(r[0]) for r in rows)
    print(f"{'':{w}}  " + "  ".join(f"{s:>14}" for s in splits))
    for name, f in rows:
        print(f"{name:{w}}  " + "  ".join(f"{f(report['splits'][s]):>14}" for s in splits))
    c = report["cpu"]
    print(
        f"\nCPU: {c['cpu_per_frame_us']} µs per 20 ms frame analysed = {c['cpu_per_channel_pct']}% of a core "
        f"per channel → ~{c['channels_per_core']} channels per core"
    )
    t = report.get("throughput")
    if t:
        print(
            f"lock-step run: {t['channels']} channels × {t['audio_s']} s of audio in {t['cpu_s']} s CPU "
            f"= {t['realtime_factor']}× real time on one core (~{t['channels_per_core']} channels per core)"
        )
    print(f"app_amd: {report['app_amd']}")
    for s in splits:
        sp = report["splits"][s]
        print(f"{s}: missed humans {sp['missed_humans'] or '-'}; missed machines {sp['missed_machines'] or '-'}")
    if "per_kind" in report:
        for s in splits:
            print(f"\n{s} by kind:")
            for k, r in report["per_kind"][s].items():
                print(f"  {k:22} {r['right']:>4}/{r['n']:<4} {r['right_pct']}%")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("data/amd-corpus"))
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override an AmdParams field")
    ap.add_argument("--split", choices=["tune", "held_out"], help="only this split (tune while tuning)")
    ap.add_argument("--per-kind", action="store_true", help="also break results down by clip kind")
    ap.add_argument("--channels", type=int, default=100, help="channels in the lock-step CPU run (0 = skip)")
    args = ap.parse_args(argv)
    manifest_path = args.corpus / "manifest.json"
    if not manifest_path.exists():
        print(f"no corpus at {args.corpus}: run python -m bench.amd_corpus first", file=sys.stderr)
        return 2
    manifest = json.loads(manifest_path.read_text())
    params = replace(AmdParams(), **parse_sets(args.set))
    clips = [c for c in manifest["clips"] if args.split in (None, c["split"])]
    outs = {}
    for c in clips:
        pcm, rate = read_wav(args.corpus / c["file"])
        outs[c["id"]] = run_ours(pcm, rate, params)
    report: dict = {
        "corpus": str(args.corpus),
        "seed": manifest["seed"],
        "params": {f.name: getattr(params, f.name) for f in fields(AmdParams)},
        "splits": {},
        "cpu": cpu_figures(outs),
        "app_amd": "not run (needs the provisioned Asterisk; see app_amd_outcomes in bench/amd.py)",
    }
    for s in ("tune", "held_out"):
        sc = [c for c in clips if c["split"] == s]
        if sc:
            report["splits"][s] = summarize(sc, outs)
            report.setdefault("per_kind", {})[s] = per_kind(sc, outs)
    if args.channels:
        report["throughput"] = throughput(args.corpus, clips, params, args.channels)
    if app_amd_outcomes(args.corpus, clips) is not None:
        raise NotImplementedError("report app_amd alongside ours once app_amd_outcomes is implemented")
    if not args.per_kind and not args.json:
        report.pop("per_kind", None)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
