"""Benchmark the answering-machine detector on the labelled corpus (bench/amd_corpus.py).

Every clip is streamed through ``bridge.amd.AmdDetector`` in 20 ms chunks, exactly as a live call would feed it,
and the figures are reported separately for the tuning split and the held-out split (report the held-out one):

- humans kept %: people whose final decision is ``human`` (the rest would be hung up on, or pulled away from a
  volunteer by a late correction);
- machines caught %: machines whose final decision is ``machine``; of which caught at the first decision, and
  the late corrections (first ``human``, then ``machine``: the call would be pulled back from the volunteer)
  with their delay after the human decision;
- human decision time after greeting end, p50/p95 (ms): how long a person hears dead air after "hello";
- beep timing error, p50/p95 (ms): when our voicemail message would start minus when the beep ends, for
  machines with a beep (negative = the message would start over the beep); "in 0..300" = share within target;
- message start after greeting end for machines without a beep (informative, no target);
- CPU per channel and channels per core in real time, from the detector's own CPU time.

app_amd runs on the real Asterisk in the same run, on the same clips (``app_amd_outcomes``: an isolated
instance "amdbench", one simulated number per clip, calls through the same ``pb-outbound`` dialplan the live
path uses), with the project's default AMD() parameters and with Vicidial's; the table shows the detectors side
by side. ``--no-asterisk`` skips it for quick tuning runs.

    python -m bench.amd [--corpus data/amd-corpus] [--json] [--set name=value ...] [--per-kind] [--split S]
                        [--no-asterisk] [--no-vicidial] [--parallel 20] [--channels 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
import wave
from collections import Counter
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
    first_decision: str = ""  # before any late correction ("" = same as decision)
    first_ms: int | None = None


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
    first = det.first_decision
    assert first is not None
    return Outcome(
        decision=d.kind, decision_ms=d.at_ms, reason=d.reason,
        beep_ms=ev["beep"].at_ms if "beep" in ev else None,
        greeting_end_ms=ev["greeting_end"].at_ms if "greeting_end" in ev else None,
        cpu_s=cpu, frames=frames, first_decision=first.kind, first_ms=first.at_ms,
    )  # fmt: skip


# app_amd settings compared: the project's defaults (what a campaign gets unless it overrides them) and the
# values Vicidial ships. Both in AMD()'s argument order (bridge.ari_app.AMD_ARGS).
VICIDIAL_AMD = "2000,2000,1000,5000,120,50,4,256"


def app_amd_configs(vicidial: bool = True) -> dict[str, str]:
    from bridge.ari_app import AMD_ARGS, AMD_DEFAULTS

    cfgs = {"app_amd": ",".join(str(int(AMD_DEFAULTS[k])) for k in AMD_ARGS)}
    if vicidial:
        cfgs["app_amd_vicidial"] = VICIDIAL_AMD
    return cfgs


def stage_clip(src: Path, dest: Path) -> None:
    """The clip as Asterisk plays it: 8 kHz mono 16-bit WAV (16 kHz clips resampled by SoX, no dither)."""
    with wave.open(str(src), "rb") as w:
        rate = w.getframerate()
    if rate == 8000:
        dest.write_bytes(src.read_bytes())
    else:
        subprocess.run(["sox", "-V1", "-D", "-R", str(src), "-r", "8000", "-b", "16", "-c", "1", str(dest)], check=True)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def app_amd_outcomes(
    corpus: Path, clips: list[dict], configs: dict[str, str], parallel: int = 20, log=_log
) -> dict[str, dict]:
    """Run every clip through app_amd on the real Asterisk, once per AMD() parameter set.

    An isolated instance (``Pbx.start(..., instance="amdbench")``) gets each clip, as 8 kHz WAV, in its
    simulation folder, reachable as a simulated number with the ``clip`` behaviour (answers at once, plays
    exactly the clip, then silence). Calls ``Local/<digits>@pb-sim-pstn/n`` are originated into ``pb-outbound``
    extension ``amd`` with ``PB_AMD`` set, the same dialplan the live path runs; the verdict arrives as
    ``StasisStart`` with args ``["outbound", AMDSTATUS, AMDCAUSE]`` and the channel is hung up. Times come from
    Asterisk's own event timestamps: answer = ``ChannelStateChange`` to ``Up``, decision = ``StasisStart``.
    NOTSURE counts as human (the dialer passes it to a volunteer, bridge/dialer.py). beep_ms and greeting_end_ms
    stay None: app_amd does not time beeps. The instance is stopped whatever happens. Returns, per config name:
    ``{"args", "asterisk" (version), "calls", "parallel", "wall_s", "statuses", "outcomes": {clip id: Outcome}}``.
    """
    import tempfile

    from phonebank import sim
    from phonebank.harness import Pbx

    with tempfile.TemporaryDirectory(prefix="amdbench-") as tmp:
        pbx = Pbx.start(Path(tmp), instance="amdbench")
        try:
            sim_dir = pbx.host_path(pbx.rt.sim_dir)
            numbers, digits = [], {}
            for i, c in enumerate(clips):
                stage_clip(corpus / c["file"], sim_dir / f"amd-{c['id']}.wav")
                n = sim.SimNumber(number=f"+19990{i:06d}", behaviour="clip", audio=f"amd-{c['id']}")
                numbers.append(n)
                digits[c["id"]] = n.digits
            pbx.load_sim(numbers)
            version = pbx.rt.cli("core show version").split(" built ")[0].replace("Asterisk ", "").strip()
            out: dict[str, dict] = {}
            for name, args in configs.items():
                t0 = time.monotonic()
                outcomes = asyncio.run(_run_calls(pbx, clips, digits, name, args, parallel))
                wall = round(time.monotonic() - t0, 1)
                statuses: dict[str, int] = {}
                for o in outcomes.values():
                    st = o.reason.split("-")[0]
                    statuses[st] = statuses.get(st, 0) + 1
                out[name] = {
                    "args": args,
                    "asterisk": version,
                    "calls": len(clips),
                    "parallel": parallel,
                    "wall_s": wall,
                    "statuses": dict(sorted(statuses.items())),
                    "outcomes": outcomes,
                }
                log(f"{name} AMD({args}): {len(clips)} calls in {wall} s")
            return out
        finally:
            pbx.stop()


async def _run_calls(
    pbx, clips: list[dict], digits: dict[str, str], name: str, amd_args: str, parallel: int
) -> dict[str, Outcome]:
    from bridge.ari import AriClient
    from bridge.ari_app import ari_time

    user, password = pbx.ari_credentials()
    ari = AriClient(pbx.rt.ari_url(), user, password, pbx.settings.app)
    answered: dict[str, float] = {}
    verdict: dict[str, asyncio.Future] = {}

    async def on_event(ev: dict) -> None:
        ch = ev.get("channel") or {}
        cid = ch.get("id", "")
        fut = verdict.get(cid)
        if fut is None:
            return
        kind = ev.get("type")
        if kind == "ChannelStateChange" and ch.get("state") == "Up":
            answered.setdefault(cid, ari_time(ev))
        elif kind == "StasisStart" and not fut.done():
            fut.set_result((ev.get("args") or [], ari_time(ev)))
        elif kind in ("ChannelHangupRequest", "ChannelDestroyed") and not fut.done():
            fut.set_result((["outbound", "HANGUP", ev.get("cause_txt", "")], ari_time(ev)))

    async def one(c: dict, sem: asyncio.Semaphore) -> tuple[str, Outcome]:
        async with sem:
            # A verdict can be lost when the event WebSocket drops under load (the client reconnects, but events
            # sent meanwhile are gone): the call is then placed again, up to twice, under a new id.
            for attempt in range(3):
                # Asterisk matches channel ids by prefix too: end every id with a separator so none prefixes
                # another.
                cid = f"amdb-{name}-{c['id']}-{attempt}-"
                verdict[cid] = asyncio.get_running_loop().create_future()
                await ari.post(
                    f"channels/{cid}", endpoint=f"Local/{digits[c['id']]}@pb-sim-pstn/n", context="pb-outbound",
                    extension="amd", priority=1, timeout=30,
                    body={"variables": {"PB_CALL": cid, "PB_AMD": amd_args}},
                )  # fmt: skip
                try:
                    args, at = await asyncio.wait_for(verdict[cid], 40)
                except TimeoutError:
                    _log(f"{name}: no verdict for {c['id']} (attempt {attempt + 1}), placing it again")
                    answered.pop(cid, None)
                    continue
                finally:
                    with contextlib.suppress(Exception):
                        await ari.delete(f"channels/{cid}")
                break
            else:
                raise RuntimeError(f"{c['id']}: no verdict from app_amd in three attempts")
        status = args[1] if len(args) > 1 else "NOTSURE"
        cause = args[2] if len(args) > 2 else ""
        if cid not in answered or status == "HANGUP":
            raise RuntimeError(f"{cid}: call failed before AMD decided ({status} {cause})")
        decision = "machine" if status == "MACHINE" else "human"
        return c["id"], Outcome(decision, round(1000 * (at - answered[cid])), f"{status}/{cause}", None, None)

    events = asyncio.create_task(ari.run_events(on_event))
    try:
        await asyncio.wait_for(ari.connected.wait(), 15)
        sem = asyncio.Semaphore(parallel)
        results = await asyncio.gather(*(one(c, sem) for c in clips))
    finally:
        events.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await events
        await ari.close()
    return dict(results)


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
    # Late corrections: first decided human, then machine (the call would be pulled back from a volunteer).
    late = [c for c in machines if outs[c["id"]].first_decision == "human" and outs[c["id"]].decision == "machine"]
    late_after = [outs[c["id"]].decision_ms - outs[c["id"]].first_ms for c in late]
    lost_late = [c for c in humans if outs[c["id"]].first_decision == "human" and outs[c["id"]].decision != "human"]
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
        "machines_caught_first_pct": pct(len(caught) - len(late), len(machines)),
        "late_corrections": len(late),
        "late_correction_after_human_p50_ms": q(late_after, 50),
        "late_correction_after_human_p95_ms": q(late_after, 95),
        "late_correction_after_human_p25_p75_ms": [q(late_after, 25), q(late_after, 75)],
        "late_correction_after_3s_pct": pct(sum(ms > 3000 for ms in late_after), len(late_after)),
        "late_corrections_by_reason": dict(Counter(outs[c["id"]].reason for c in late)),
        "humans_lost_to_late_correction": len(lost_late),
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
        r = res.setdefault(k, {"n": 0, "right": 0, "first_right": 0})
        r["n"] += 1
        r["right"] += outs[c["id"]].decision == c["label"]
        # app_amd has one verdict (first_decision ""): its first is its final.
        r["first_right"] += (outs[c["id"]].first_decision or outs[c["id"]].decision) == c["label"]
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
        ("  of which at the first decision %", lambda s: fmt(s["machines_caught_first_pct"])),
        ("  late corrections (after human) n", lambda s: fmt(s["late_corrections"])),
        ("  late correction - human decision p50/p95 ms",
         lambda s: f"{fmt(s['late_correction_after_human_p50_ms'])} / {fmt(s['late_correction_after_human_p95_ms'])}"),
        ("human decision after greeting end p50 ms  [<= 400]", lambda s: fmt(s["human_delay_p50_ms"])),
        ("human decision after greeting end p95 ms  [<= 600]", lambda s: fmt(s["human_delay_p95_ms"])),
        ("machine decision from answer p50 / p95 ms", lambda s: f"{s['machine_decision_p50_ms']} / "
                                                                 f"{s['machine_decision_p95_ms']}"),
        ("beeps heard / beep clips caught", lambda s: f"{s['beeps_heard']} / {s['beep_clips']}"),
        ("message start - beep end p50 ms", lambda s: fmt(s["beep_error_p50_ms"])),
        ("message start - beep end p95 ms", lambda s: fmt(s["beep_error_p95_ms"])),
        ("message start within 0..300 ms of beep end %", lambda s: fmt(s["beep_within_0_300_pct"])),
        ("no beep: message start - greeting end p50/p95 ms",
         lambda s: f"{fmt(s['nobeep_start_after_greeting_p50_ms'])} / {fmt(s['nobeep_start_after_greeting_p95_ms'])}"),
    ]  # fmt: skip
    splits = [s for s in ("tune", "held_out") if s in report["splits"]]
    cols = [("ours", sp, report["splits"][sp]) for sp in splits]
    amd = report["app_amd"] if isinstance(report["app_amd"], dict) else {}
    for name, r in amd.items():
        cols += [(name, sp, r["splits"][sp]) for sp in splits]
    w = max(len(r[0]) for r in rows)
    cw = max(16, *(len(f"{d} {sp}") for d, sp, _ in cols))
    print(f"{'':{w}}  " + "  ".join(f"{d:>{cw}}" for d, _, _ in cols))
    print(f"{'':{w}}  " + "  ".join(f"{sp:>{cw}}" for _, sp, _ in cols))
    for name, f in rows:
        print(f"{name:{w}}  " + "  ".join(f"{f(sr):>{cw}}" for _, _, sr in cols))
    c = report["cpu"]
    print(
        f"\nours, CPU: {c['cpu_per_frame_us']} µs per 20 ms frame analysed = {c['cpu_per_channel_pct']}% of a core "
        f"per channel → ~{c['channels_per_core']} channels per core"
    )
    t = report.get("throughput")
    if t:
        print(
            f"ours, lock-step run: {t['channels']} channels × {t['audio_s']} s of audio in {t['cpu_s']} s CPU "
            f"= {t['realtime_factor']}× real time on one core (~{t['channels_per_core']} channels per core)"
        )
    if amd:
        for name, r in amd.items():
            print(
                f"{name}: AMD({r['args']}) on Asterisk {r['asterisk']}, {r['calls']} calls, {r['parallel']} at a "
                f"time, {r['wall_s']} s; statuses {r['statuses']}"
            )
    else:
        print(f"app_amd: {report['app_amd']}")
    for d, sp, sr in cols:
        print(f"{d} {sp}: missed humans {sr['missed_humans'] or '-'}; missed machines {sr['missed_machines'] or '-'}")
    if "per_kind" in report:
        kinds = sorted({k for sp in splits for k in report["per_kind"][sp]})
        heads = [("ours", sp, report["per_kind"][sp]) for sp in splits]
        heads += [(name, sp, r["per_kind"][sp]) for name, r in amd.items() for sp in splits]
        print("\nright at the first decision / right in the end / clips, by kind")
        print(f"{'':22}  " + "  ".join(f"{d + ' ' + sp:>{cw}}" for d, sp, _ in heads))
        for k in kinds:
            cells = []
            for _, _, pk in heads:
                r = pk.get(k)
                cells.append(f"{r['first_right']}/{r['right']}/{r['n']} {r['right_pct']:.0f}%" if r else "-")
            print(f"{k:22}  " + "  ".join(f"{x:>{cw}}" for x in cells))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("data/amd-corpus"))
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override an AmdParams field")
    ap.add_argument("--split", choices=["tune", "held_out"], help="only this split (tune while tuning)")
    ap.add_argument("--per-kind", action="store_true", help="also break results down by clip kind")
    ap.add_argument("--channels", type=int, default=100, help="channels in the lock-step CPU run (0 = skip)")
    ap.add_argument("--no-asterisk", action="store_true", help="skip app_amd on Asterisk (our detector only)")
    ap.add_argument("--no-vicidial", action="store_true", help="run app_amd with the project defaults only")
    ap.add_argument("--parallel", type=int, default=20, help="app_amd calls at a time")
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
        "app_amd": "not run (--no-asterisk)",
    }
    split_names = [s for s in ("tune", "held_out") if any(c["split"] == s for c in clips)]
    for s in split_names:
        sc = [c for c in clips if c["split"] == s]
        report["splits"][s] = summarize(sc, outs)
        report.setdefault("per_kind", {})[s] = per_kind(sc, outs)
    if args.channels:
        report["throughput"] = throughput(args.corpus, clips, params, args.channels)
    if not args.no_asterisk:
        configs = app_amd_configs(vicidial=not args.no_vicidial)
        runs = app_amd_outcomes(args.corpus, clips, configs, args.parallel)
        report["app_amd"] = {}
        for name, run in runs.items():
            r = report["app_amd"][name] = {k: v for k, v in run.items() if k != "outcomes"}
            r["splits"], r["per_kind"] = {}, {}
            for s in split_names:
                sc = [c for c in clips if c["split"] == s]
                r["splits"][s] = summarize(sc, run["outcomes"])
                r["per_kind"][s] = per_kind(sc, run["outcomes"])
    if not args.per_kind and not args.json:
        report.pop("per_kind", None)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
