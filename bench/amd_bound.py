"""Oracle bound: the most machines ANY timing rule of the detector's family could catch at the first decision.

bench/amd_curve.py scales one setting and so shows one path through the rule space; this bounds the whole family.
The family is every rule of the form "human as soon as a silence after speech reaches f(speech so far)":
the detector's own ``short_turn`` / ``long_greeting`` rules with any threshold function f, with f free per bin of
first-turn length L (time from the first speech to the end of the last speech heard), optionally also per number
of speech runs so far (k), plus "human after f(∅) of silence with no speech at all". A tone is a machine. At the
deadline (``max_analysis_ms``) a clip no pause fired on is, in turn, a machine (the most favourable default for catching
machines), a human (every person kept; only machines with a tone before it caught), or whichever is right (the
"oracle" deadline: above any deadline rule, such as the detector's pause-inside-the-turn one). Machine-side rules
(speech resuming after a long turn, an over-long turn) need no modelling: not saying "human" is saying machine.

Per clip, the speech runs come from the detector itself (``AmdDetector`` with its decision rules switched off:
the same VAD, noise floor, tone masking and min_speech_ms as the live path), the clip followed by silence as the
live call hears it, up to the deadline (``max_analysis_ms``) or the first tone decision. A pause after run i
(end e_i, length g_i) fires "human" at e_i + f(bin) if f(bin) <= g_i. A machine is caught iff no pause fires
before its tone or the deadline; a person is kept iff one fires, and their delay is the first firing minus the
greeting's end (a person's own pause inside a long greeting counts as kept, at a negative delay).

f is fitted ON THE SPLIT ITSELF (tune, and held-out) by an exact mixed-integer program (scipy's HiGHS): one
threshold per bin from 20..3000 ms in 20 ms steps or "never", maximise machines caught subject to people kept
>= 99%, and the numbers of people decided within 600 / 400 ms of their greeting's end large enough for p95 <= 600
and p50 <= 400 (the counts np.percentile needs at the lowest rank, with the fewest people kept allowed: a
relaxation, so the ceiling is if anything too high); the ceiling printed is the solver's proven bound on that
program. A second, strict fit (the highest rank, every person kept) finds an f that does meet the targets: the
exact optimum lies between the two. Every f is re-scored exactly. No rule of the
family, however tuned, can beat the ceiling on that split: it is an upper bound, not a result to ship. The f
fitted on tune is also scored on held-out (what tuning could honestly get).

scipy is not a project dependency: run this from a venv that has it beside the project's deps, e.g.
``python -m venv /tmp/v && /tmp/v/bin/pip install numpy webrtcvad-wheels scipy`` then
``PYTHONPATH=. /tmp/v/bin/python -m bench.amd_bound``.

    python -m bench.amd_bound [--corpus data/amd-corpus] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.amd import q, read_wav
from bridge.amd import FRAME_MS, AmdDetector, AmdParams, Event

THRESHOLDS = list(range(20, 3001, 20))  # ms; index len(THRESHOLDS) = "never"
NEVER = len(THRESHOLDS)
# What a clip no pause fired on gets at the deadline: machine (the best for catching machines), human (every
# person kept, only machines with a tone before it caught), or "oracle": whichever is right (a person kept, a
# machine caught) — above any rule that mixes the two, so its ceiling bounds them all.
DEADLINES = ("machine", "human", "oracle")
KEEP, P95, P50 = 0.99, 600, 400


class _Runs(AmdDetector):
    """The detector with its decision rules off: only its speech runs and its tone decision are read."""

    def _decide_rules(self) -> list[Event]:
        return []


@dataclass
class Pauses:
    id: str
    label: str
    split: str
    greeting_end_ms: int
    horizon_ms: int  # a firing must come by then (before the tone decision, at most the deadline)
    tone: bool  # a tone decided "machine" before the deadline
    # (end of speech so far, its length from the first speech, runs so far, pause length); end 0 / length -1 /
    # runs 0 = the silence before any speech
    pauses: list[tuple[int, int, int, int]]


def speech_runs(pcm: bytes, rate: int, deadline_ms: int) -> tuple[list[tuple[int, int]], int | None]:
    """The detector's speech runs [(start, end)] up to deadline_ms (silence after the clip), and its tone time."""
    det = _Runs(rate)
    step = rate * FRAME_MS // 1000 * 2
    pcm = pcm + bytes(max(0, deadline_ms * rate // 1000 * 2 - len(pcm)) + step)
    runs: list[tuple[int, int]] = []
    tone_ms = None
    for i in range(0, deadline_ms * rate // 1000 * 2, step):
        det.feed(pcm[i : i + step])
        if det.decision is not None:
            tone_ms = det.decision.at_ms
            break
        if det._last_speech_end == det.now_ms and det._speech_run:
            start = det.now_ms - det._speech_run * FRAME_MS
            if runs and start <= runs[-1][1]:
                runs[-1] = (runs[-1][0], det.now_ms)
            else:
                runs.append((start, det.now_ms))
    return runs, tone_ms


def clip_pauses(corpus: Path, c: dict[str, Any], deadline_ms: int) -> Pauses:
    runs, tone_ms = speech_runs(*read_wav(corpus / c["file"]), deadline_ms)
    horizon = min(deadline_ms, tone_ms - FRAME_MS) if tone_ms is not None else deadline_ms
    pauses = [(0, -1, 0, (runs[0][0] if runs else horizon))]
    for i, (_, e) in enumerate(runs):
        nxt = runs[i + 1][0] if i + 1 < len(runs) else horizon
        pauses.append((e, e - runs[0][0], i + 1, max(0, nxt - e)))
    return Pauses(c["id"], c["label"], c["split"], c["greeting_end_ms"] or 0, horizon, tone_ms is not None, pauses)


@dataclass(frozen=True)
class Binning:
    name: str
    edges: tuple[int, ...]  # upper edges of L bins (ms); the last bin is open
    by_runs: bool = False  # also split by runs so far: 1, 2, 3+

    def bin(self, length: int, runs: int) -> tuple[int, int]:
        if length < 0:
            return (-1, 0)
        b = next((i for i, e in enumerate(self.edges) if length <= e), len(self.edges))
        return (b, min(runs, 3) if self.by_runs else 0)


BINNINGS = (
    Binning("detector's zones (≤700, ≤900, 1800-2200, ≥3200)", (700, 900, 1800, 2200, 3200)),
    Binning("L in 250 ms bins", tuple(range(250, 7001, 250))),
    Binning("L in 100 ms bins", tuple(range(100, 7001, 100))),
    Binning("L in 250 ms bins × runs so far (1, 2, 3+)", tuple(range(250, 7001, 250)), by_runs=True),
    Binning("L in 100 ms bins × runs so far (1, 2, 3+)", tuple(range(100, 7001, 100)), by_runs=True),
)


def _fires(p: Pauses, binning: Binning, until_ms: int) -> set[tuple[tuple[int, int], int]]:
    """(bin, threshold index) choices under which some pause of the clip fires by until_ms."""
    out = set()
    for end, length, runs, gap in p.pauses:
        room = min(gap, until_ms - end)
        b = binning.bin(length, runs)
        for j, t in enumerate(THRESHOLDS):
            if t > room:
                break
            out.add((b, j))
    return out


def _need(n_kept: int, pct: float) -> int:
    """People at or under a delay limit for np.percentile(delays, pct) to be able to stay under it (lowest rank)."""
    return math.floor(pct / 100 * (n_kept - 1)) + 1


def solve(
    clips: list[Pauses], binning: Binning, deadline: str, strict: bool = False
) -> tuple[dict[tuple[int, int], int], float | None]:
    """The f (bin -> threshold index) that catches the most machines under the people constraints (exact MILP),
    and the solver's proven bound on that maximum, as % of the split's machines.

    Not strict: the relaxed people constraints (a ceiling). Strict: sufficient ones (the highest rank np.percentile
    can interpolate from, with every person kept), so the f found meets the targets: a floor under the exact
    optimum, which lies between the two."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    humans = [c for c in clips if c.label == "human"]
    machines = [c for c in clips if c.label == "machine" and (c.tone or deadline != "human")]
    n_m_all = sum(c.label == "machine" for c in clips)
    bins = sorted({binning.bin(ln, r) for c in clips for _, ln, r, _ in c.pauses})
    bidx = {b: i for i, b in enumerate(bins)}
    nt = NEVER + 1
    nx = len(bins) * nt

    def xi(b: tuple[int, int], j: int) -> int:
        return bidx[b] * nt + j

    ny, nh = len(machines), len(humans)
    # variables: x (one-hot threshold per bin) | y machines caught | z kept | u within 600 | v within 400
    n = nx + ny + 3 * nh
    rows: list[tuple[dict[int, float], float, float]] = []
    for b in bins:
        rows.append(({xi(b, j): 1.0 for j in range(nt)}, 1, 1))
    for k, m in enumerate(machines):
        for b, j in _fires(m, binning, m.horizon_ms):
            rows.append(({nx + k: 1.0, xi(b, j): 1.0}, -np.inf, 1))
    for k, h in enumerate(humans):
        for off, until in ((0, h.horizon_ms), (nh, h.greeting_end_ms + P95), (2 * nh, h.greeting_end_ms + P50)):
            var = nx + ny + off + k
            if deadline != "machine" and until >= h.horizon_ms and not h.tone:
                continue  # decided human at the deadline anyway, within the limit: free
            coef = {var: 1.0}
            for b, j in _fires(h, binning, min(until, h.horizon_ms)):
                coef[xi(b, j)] = -1.0
            rows.append((coef, -np.inf, 0))
    n_kept_min = math.ceil(KEEP * nh)
    needs = (_need(n_kept_min, 95), _need(n_kept_min, 50))
    if strict:
        needs = (math.ceil(0.95 * (nh - 1)) + 1, math.ceil(0.5 * (nh - 1)) + 1)
    for off, need in ((0, n_kept_min), (nh, needs[0]), (2 * nh, needs[1])):
        rows.append(({nx + ny + off + k: 1.0 for k in range(nh)}, need, np.inf))
    a = lil_matrix((len(rows), n))
    lo, hi = np.empty(len(rows)), np.empty(len(rows))
    for r, (coef, lb, ub) in enumerate(rows):
        for col, v in coef.items():
            a[r, col] = v
        lo[r], hi[r] = lb, ub
    cost = np.zeros(n)
    cost[nx : nx + ny] = -1.0
    res = milp(cost, constraints=LinearConstraint(a.tocsr(), lo, hi), integrality=np.ones(n),
               bounds=Bounds(0, 1), options={"time_limit": 240})  # fmt: skip
    bound = round(100 * -res.mip_dual_bound / n_m_all, 1) if res.mip_dual_bound is not None else None
    if res.x is None:
        return {}, bound
    x = res.x[:nx].reshape(len(bins), nt)
    return {b: int(np.argmax(x[bidx[b]])) for b in bins}, bound


def score(clips: list[Pauses], binning: Binning, f: dict[Any, int], deadline: str) -> dict[str, Any]:
    """Exact figures of a threshold function on clips (the same definitions as bench/amd.py's summary)."""
    humans = [c for c in clips if c.label == "human"]
    machines = [c for c in clips if c.label == "machine"]
    delays, caught = [], 0
    for c in clips:
        fire = None
        for end, length, runs, gap in c.pauses:
            j = f.get(binning.bin(length, runs), NEVER)
            if j < NEVER and THRESHOLDS[j] <= gap and end + THRESHOLDS[j] <= c.horizon_ms:
                fire = end + THRESHOLDS[j]
                break
        if c.label == "machine":
            caught += fire is None and (c.tone or deadline != "human")
        elif fire is not None or (deadline != "machine" and not c.tone):
            at = fire if fire is not None else c.horizon_ms
            delays.append(at - c.greeting_end_ms)
    return {
        "machines_caught_first_pct": round(100 * caught / len(machines), 1),
        "humans_kept_pct": round(100 * len(delays) / len(humans), 1),
        "human_delay_p50_ms": q(delays, 50),
        "human_delay_p95_ms": q(delays, 95),
    }


def ok(s: dict[str, Any]) -> bool:
    return (
        s["humans_kept_pct"] >= 100 * KEEP
        and (s["human_delay_p95_ms"] or 0) <= P95
        and (s["human_delay_p50_ms"] or 0) <= P50
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("data/amd-corpus"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    manifest_path = args.corpus / "manifest.json"
    if not manifest_path.exists():
        print(f"no corpus at {args.corpus}: run python -m bench.amd_corpus first", file=sys.stderr)
        return 2
    deadline = AmdParams().max_analysis_ms
    clips = [clip_pauses(args.corpus, c, deadline) for c in json.loads(manifest_path.read_text())["clips"]]
    split = {s: [c for c in clips if c.split == s] for s in ("tune", "held_out")}
    rows = []
    for binning in BINNINGS:
        row: dict[str, Any] = {"family": binning.name}
        for dh in DEADLINES:
            r: dict[str, Any] = {}
            for name in ("tune", "held_out"):
                f, bound = solve(split[name], binning, dh)
                f_ok, _ = solve(split[name], binning, dh, strict=True)
                r[name] = {
                    "ceiling_pct": bound,
                    "ceiling_f": score(split[name], binning, f, dh) if f else None,
                    "best_meeting_targets": score(split[name], binning, f_ok, dh) if f_ok else None,
                }
                if name == "tune":
                    r["tune_f_on_held_out"] = score(split["held_out"], binning, f_ok, dh) if f_ok else None
            row[dh] = r
        rows.append(row)
        print(f"{binning.name}: done", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0

    def cell(s: dict[str, Any] | None) -> str:
        if s is None:
            return "infeasible"
        flag = "" if ok(s) else ", misses a people target"
        return (
            f"{s['machines_caught_first_pct']} ({s['humans_kept_pct']}% kept, "
            f"{s['human_delay_p50_ms']}/{s['human_delay_p95_ms']} ms{flag})"
        )

    print(
        "| family of f | at the deadline | held-out: ceiling | held-out: best f meeting the targets | "
        "tune: ceiling | tune: best f meeting the targets | that tune f on held-out |"
    )
    print("|---|---|---:|---|---:|---|---|")
    for row in rows:
        for name in DEADLINES:
            d = row[name]
            print(
                f"| {row['family']} | {name} | **{d['held_out']['ceiling_pct']}** | "
                f"{cell(d['held_out']['best_meeting_targets'])} | {d['tune']['ceiling_pct']} | "
                f"{cell(d['tune']['best_meeting_targets'])} | {cell(d['tune_f_on_held_out'])} |"
            )
    print(
        "\nmachines caught at the first decision %; ceiling = the solver's proven upper bound with the people targets "
        "relaxed; best f = an f that meets them on that split (people kept %, human delay p50/p95 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
