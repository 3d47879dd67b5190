"""How many volunteers one box carries: the PBX under test with the carrier OUTSIDE it.

The simulated telephone network runs in a second Asterisk instance (``phonebank.carrier``) reached over a SIP
trunk configured as docs/OPERATIONS.md tells ops (digest auth, registration); volunteers call the PBX's call-in
DID from the carrier's side and key their session code. So the PBX under test does what it does on election
night: SIP for every leg, RTP between voters and volunteers, the AMD tap per answered call (snoop + external
media + bridge) and the controller; greetings, tones and ringing are the carrier's work.

One step: N volunteers join (staggered), a predictive effort dials a realistic list (people, machines, busy,
no answer; rings of 2–8 s; conversations of 15–45 s, wrap-ups of 3–8 s) for M minutes, then the stored calls
and the processes' counters are read:

* dead air: answer → voter in the volunteer's bridge, from Asterisk's own event timestamps (includes the
  detector's listening; ``listen_*`` is that listening alone, the audio time the detector needed, from its log)
* lost answers: people who answered and were never put through (abandoned, or judged a machine)
* bridge: AMD verdict → bridged; loop lag: the controller's event loop (bench/controller_probe.py)
* CPU (% of one core, over the dialling window) and peak RSS of the PBX's Asterisk and of the controller;
  the carrier's Asterisk is not counted (it shares the machine: see docs/BENCHMARKS.md)

    .venv/bin/python bench/capacity.py --volunteers 10 --minutes 1 [--json] [--profile]
    .venv/bin/python bench/capacity.py --ramp 10,25,50,75,100 --minutes 2

Supersedes nothing: bench/connect_latency.py (simulation inside the PBX, one burst) stays for the detector
comparison it does (ours vs app_amd on identical answers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from phonebank import sim
from phonebank.carrier import Carrier
from phonebank.harness import ControllerProcess, Pbx, wait_until
from store.db import Store

HERE = Path(__file__).resolve().parent
DID = "15550100"  # the call-in number the carrier routes to the PBX
CLK_TCK = os.sysconf("SC_CLK_TCK")
# What the knee allows on top of the detector's own listening time.
KNEE_SLACK_MS = 200.0


# ---------------------------------------------------------------------------------------------- processes
class ProbedController(ControllerProcess):
    """The real controller process, started through bench/controller_probe.py (an event-loop lag probe)."""

    lag_file: Path | None = None

    def start(self, timeout: float = 60) -> None:
        ready = self.log_path.with_suffix(".ready")
        ready.unlink(missing_ok=True)
        self.lag_file = self.log_path.with_suffix(".lag")
        env = {**os.environ, **self.pbx.env, **self.extra_env, "PB_BENCH_LAG_FILE": str(self.lag_file)}
        logf = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "controller_probe.py"), "run", "--ready-file", str(ready)],
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: ready.exists() or self.proc.poll() is not None, timeout, 0.1, "controller ready")
        if self.proc.poll() is not None:
            raise RuntimeError(f"controller exited: {self.log_path.read_text()[-3000:]}")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def rss_mb(pid: int) -> float:
    m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else 0.0


def thread_ticks(pid: int) -> dict[str, int]:
    """CPU ticks per thread name (threads of one name summed: Asterisk names its taskprocessors' threads)."""
    out: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        out[re.sub(r"\d+$", "", name)] += int(fields[11]) + int(fields[12])
    return dict(out)


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.array(values), q)), 1) if values else None


# ---------------------------------------------------------------------------------------------- the network
def network(count: int, seed: int) -> list[sim.SimNumber]:
    """A list as a predictive shift meets it: about a third people, a quarter machines, the rest busy, never
    answered or not in service; rings spread over 2–8 s so answers come spread out, not in a burst."""
    prefix = sim.daytime_prefix(margin_s=3 * 3600)
    rng = random.Random(seed)
    mix = ["human"] * 36 + ["machine"] * 26 + ["busy"] * 12 + ["noanswer"] * 14 + ["unallocated"] * 12
    out = []
    for i in range(count):
        kind = rng.choice(mix)
        out.append(
            sim.SimNumber(
                f"{prefix}{i % 10000:04d}",
                kind,
                ring_s=round(rng.uniform(2, 8), 1),
                talk_s=round(rng.uniform(15, 45)),
                tone_hz=sim.signature_tone(i),
                audio=rng.choice(sim.HUMAN_GREETINGS)
                if kind == "human"
                else rng.choice(sim.MACHINE_GREETINGS)
                if kind == "machine"
                else "",
            )
        )
    return out


def listen_ms(log_path: Path) -> dict[str, int]:
    """The detector's own listening (audio ms from answer to its verdict), per call, from the controller log."""
    out: dict[str, int] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if '"amd_live.decision"' not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        out.setdefault(rec["call_id"], int(rec["at_ms"]))
    return out


# ---------------------------------------------------------------------------------------------- one step
def run_step(
    volunteers: int, minutes: float, seed: int = 1, profile: bool = False, keep: Path | None = None
) -> dict[str, Any]:
    tag = f"{os.getpid() % 10000}"
    with tempfile.TemporaryDirectory(prefix="capacity-") as tmpdir:
        tmp = keep or Path(tmpdir)
        carrier = Carrier.start(tmp / "carrier", f"capc{tag}", rtp_start=12000)
        pbx: Pbx | None = None
        ctl: ProbedController | None = None
        try:
            pbx = Pbx.start(
                tmp / "pbx",
                f"capp{tag}",
                extra_env={**carrier.trunk_env(), "PHONEBANK_RTP_START": "16000", "PHONEBANK_RTP_END": "19998"},
            )
            wait_until(carrier.registered, 30, 0.5, "the PBX's registration at the carrier")
            numbers = network(int(volunteers * (minutes + 1) * 9) + 40, seed)
            carrier.load(numbers)
            kinds = {n.number: n.behaviour for n in numbers}
            store = Store(pbx.settings.db_path)
            cid = store.create_campaign(
                "Capacity bench", ring_timeout_s=25, amd_mode="ours", dial_mode="predictive", wrapup_limit_s=120
            )["id"]
            store.update_campaign(cid, status="paused")
            store.add_contacts(cid, [{"phone": n.number} for n in numbers])
            ctl = ProbedController(pbx, tmp / "controller.log")
            ctl.start()
            sessions = [
                ctl.call("POST", "/api/sessions", {"campaign_id": cid, "name": f"V{i}"})[1] for i in range(volunteers)
            ]

            async def join() -> None:
                async with carrier.client() as ari:
                    for i, s in enumerate(sessions):
                        await carrier.volunteer(ari, s["code"], DID, f"vol-{s['id']}", caller=f"1555020{i:04d}")
                        await asyncio.sleep(0.2)  # people join over a few seconds, not at one instant

            asyncio.run(join())
            joined = f"SELECT COUNT(*) FROM sessions WHERE campaign_id = {cid} AND state != 'waiting_for_phone'"
            wait_until(
                lambda: store.conn.execute(joined).fetchone()[0] >= volunteers,
                30 + volunteers,
                0.5,
                "volunteers to join",
            )
            asterisk_pid = int(pbx.host_path(f"{pbx.rt.inst}/run/asterisk.pid").read_text().split()[0])
            carrier_pid = int(carrier.pbx.host_path(f"{carrier.pbx.rt.inst}/run/asterisk.pid").read_text().split()[0])
            assert ctl.proc is not None
            ctl_pid = ctl.proc.pid
            stop = threading.Event()
            worker = threading.Thread(target=_dispose, args=(ctl, pbx.settings.db_path, cid, stop, seed), daemon=True)
            worker.start()
            spy = None
            window = minutes * 60
            if profile:
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "--pid",
                        str(ctl_pid),
                        "--duration",
                        str(int(window)),
                        "--format",
                        "raw",
                        "--rate",
                        "100",
                        "--nonblocking",
                        "-o",
                        str(tmp / "controller.pyspy.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            load_before = os.getloadavg()
            ast0, ctl0, thr0 = cpu_ticks(asterisk_pid), cpu_ticks(ctl_pid), thread_ticks(asterisk_pid)
            car0 = cpu_ticks(carrier_pid)
            t0 = time.time()
            store.update_campaign(cid, status="active")
            peak = {"asterisk": 0.0, "controller": 0.0}
            while time.time() - t0 < window:
                peak["asterisk"] = max(peak["asterisk"], rss_mb(asterisk_pid))
                peak["controller"] = max(peak["controller"], rss_mb(ctl_pid))
                time.sleep(1)
            t1 = time.time()
            ast1, ctl1, thr1 = cpu_ticks(asterisk_pid), cpu_ticks(ctl_pid), thread_ticks(asterisk_pid)
            car1 = cpu_ticks(carrier_pid)
            load_after = os.getloadavg()
            store.update_campaign(cid, status="paused")
            # Let the calls placed in the window finish ringing and being judged (conversations may go on).
            pending = (
                f"SELECT COUNT(*) FROM calls WHERE campaign_id = {cid} AND ended_at IS NULL AND "
                "bridged_at IS NULL AND outcome IS NULL"
            )
            try:
                wait_until(lambda: store.conn.execute(pending).fetchone()[0] == 0, 40, 1, "calls to settle")
                settled = True
            except TimeoutError:
                settled = False
            stop.set()
            worker.join(5)
            if spy is not None:
                try:
                    spy.wait(30)
                except subprocess.TimeoutExpired:
                    spy.kill()
            calls = [
                dict(r)
                for r in store.conn.execute(
                    "SELECT c.*, k.phone FROM calls c JOIN contacts k ON k.id = c.contact_id WHERE c.campaign_id = ? "
                    "AND c.originated_at < ?",
                    (cid, t1),
                ).fetchall()
            ]
            store.close()
            heard = listen_ms(ctl.log_path)
            lags = [
                float(line.split()[1])
                for line in ctl.lag_file.read_text().splitlines()  # type: ignore[union-attr]
                if t0 <= float(line.split()[0]) <= t1
            ]
            wall = t1 - t0
            result = summarise(volunteers, calls, kinds, heard, lags)
            result.update(
                {
                    "minutes": minutes,
                    "asterisk_cpu_pct": round((ast1 - ast0) / CLK_TCK / wall * 100, 1),
                    "controller_cpu_pct": round((ctl1 - ctl0) / CLK_TCK / wall * 100, 1),
                    # Not the PBX's work, but the same machine's cores.
                    "carrier_cpu_pct": round((car1 - car0) / CLK_TCK / wall * 100, 1),
                    "settled": settled,
                    "asterisk_rss_mb": round(peak["asterisk"], 1),
                    "controller_rss_mb": round(peak["controller"], 1),
                    "load_avg_before": [round(x, 2) for x in load_before],
                    "load_avg_after": [round(x, 2) for x in load_after],
                    "cores": os.cpu_count(),
                }
            )
            if profile:
                busiest = sorted(((thr1.get(k, 0) - thr0.get(k, 0), k) for k in thr1), reverse=True)[:8]
                result["asterisk_threads_cpu_pct"] = {k: round(v / CLK_TCK / wall * 100, 1) for v, k in busiest if v}
                result["controller_profile"] = profile_summary(tmp / "controller.pyspy.txt")
            return result
        finally:
            if ctl is not None:
                ctl.stop()
            if pbx is not None:
                pbx.stop()
            carrier.stop()


def _dispose(ctl: ControllerProcess, db: Path, cid: int, stop: threading.Event, seed: int) -> None:
    """Volunteers write up each conversation in 3–8 s, then save (the API the caller page uses)."""
    rng = random.Random(seed)
    store = Store(db)
    due: dict[tuple[int, str], float] = {}
    try:
        while not stop.is_set():
            now = time.time()
            for sid, call_id in store.conn.execute(
                "SELECT id, current_call_id FROM sessions WHERE campaign_id = ? AND state = 'wrapup'", (cid,)
            ):
                due.setdefault((sid, call_id or ""), now + rng.uniform(3, 8))
            for key, at in list(due.items()):
                if at <= now:
                    ctl.call("POST", f"/api/sessions/{key[0]}/disposition", {"code": "talked"})
                    del due[key]
            time.sleep(0.5)
    finally:
        store.close()


def summarise(
    volunteers: int, calls: list[dict[str, Any]], kinds: dict[str, str], heard: dict[str, int], lags: list[float]
) -> dict[str, Any]:
    answered = [c for c in calls if c["answered_at"]]
    people = [c for c in answered if kinds.get(c["phone"]) == "human"]
    bridged = [c for c in people if c["bridged_at"]]
    dead = [(c["bridged_at"] - c["answered_at"]) * 1000 for c in bridged]
    listen = [float(heard[c["id"]]) for c in bridged if c["id"] in heard]
    over = [(c["bridged_at"] - c["answered_at"]) * 1000 - heard[c["id"]] for c in bridged if c["id"] in heard]
    verdict = [(c["bridged_at"] - c["amd_decided_at"]) * 1000 for c in bridged if c["amd_decided_at"]]
    return {
        "volunteers": volunteers,
        "dials": len(calls),
        "answers": len(people),
        "lost_answers": len(people) - len(bridged),
        # Of those, the ones the pacing lost (nobody free: they heard the abandon message), not the PBX's delay.
        "abandoned": sum(1 for c in people if c["outcome"] == "abandoned"),
        "dead_air_p50_ms": pct(dead, 50),
        "dead_air_p95_ms": pct(dead, 95),
        "dead_air_p99_ms": pct(dead, 99),
        "listen_p50_ms": pct(listen, 50),
        "listen_p95_ms": pct(listen, 95),
        "dead_air_over_listen_p95_ms": pct(over, 95),
        "bridge_p99_ms": pct(verdict, 99),
        "loop_lag_p99_ms": pct(lags, 99),
        "loop_lag_max_ms": round(max(lags), 1) if lags else None,
        "machines_answered": sum(1 for c in answered if kinds.get(c["phone"]) == "machine"),
        "outcomes": dict(Counter(f"{kinds.get(c['phone'])}:{c['outcome']}" for c in calls)),
    }


def profile_summary(raw: Path, top: int = 12) -> dict[str, Any]:
    """py-spy's raw (collapsed) stacks → where the controller's busy time goes: the share of busy samples (not
    waiting in epoll) each function is on the stack for (inclusive), and the leaf functions (self)."""
    if not raw.exists():
        return {}
    total = busy = 0
    incl: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r" \(.*?([\w]+/[\w]+\.py|[\w]+\.py):\d+\)", r" (\1)", f) for f in stack.split(";")]
        if frames and frames[-1].startswith(("EpollSelector.select", "select (")):
            continue
        busy += n
        leaf[frames[-1]] += n
        for name in set(frames):
            incl[name] += n
    if not busy:
        return {"busy_pct": 0.0}
    skip = ("<module>", "main (", "cmd_run", "run (", "Runner.run", "BaseEventLoop.", "Handle._run", "_run_once")
    inclusive = [(k, v) for k, v in incl.most_common() if not k.startswith(skip)][:top]
    return {
        "busy_pct": round(busy / total * 100, 1),
        "inclusive_pct_of_busy": {k: round(v / busy * 100, 1) for k, v in inclusive},
        "self_pct_of_busy": {k: round(v / busy * 100, 1) for k, v in leaf.most_common(top)},
    }


def knee(rows: list[dict[str, Any]], pacing_excused: bool = False) -> int | None:
    """The largest count with no lost answer and dead air p95 within KNEE_SLACK_MS of the detector's listening.
    ``pacing_excused``: answers the predictive pacing abandoned (nobody free) do not count against the PBX."""

    def lost(r: dict[str, Any]) -> int:
        return int(r["lost_answers"]) - (int(r.get("abandoned", 0)) if pacing_excused else 0)

    ok = [
        r["volunteers"]
        for r in rows
        if lost(r) == 0
        and r["dead_air_p95_ms"] is not None
        and r["listen_p95_ms"] is not None
        and r["dead_air_p95_ms"] <= r["listen_p95_ms"] + KNEE_SLACK_MS
    ]
    return max(ok) if ok else None


COLUMNS = (
    ("volunteers", "vols"),
    ("answers", "answers"),
    ("lost_answers", "lost"),
    ("abandoned", "abandoned"),
    ("dead_air_p50_ms", "dead p50"),
    ("dead_air_p95_ms", "dead p95"),
    ("dead_air_p99_ms", "dead p99"),
    ("listen_p95_ms", "listen p95"),
    ("bridge_p99_ms", "bridge p99"),
    ("loop_lag_p99_ms", "lag p99"),
    ("asterisk_cpu_pct", "ast CPU%"),
    ("controller_cpu_pct", "ctl CPU%"),
    ("asterisk_rss_mb", "ast MB"),
    ("controller_rss_mb", "ctl MB"),
)


def table(rows: list[dict[str, Any]]) -> str:
    out = [" ".join(f"{title:>10}" for _, title in COLUMNS)]
    for r in rows:
        out.append(" ".join(f"{'-' if r.get(k) is None else r[k]:>10}" for k, _ in COLUMNS))
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--volunteers", type=int, default=10)
    p.add_argument("--minutes", type=float, default=1.0, help="dialling window per step")
    p.add_argument("--ramp", default="", help="comma-separated volunteer counts, one step each (prints the knee)")
    p.add_argument("--json", action="store_true", help="one step: print one JSON object")
    p.add_argument("--profile", action="store_true", help="py-spy on the controller, CPU per Asterisk thread")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", type=Path, help="keep the instances' files (logs, database) in this directory")
    args = p.parse_args()
    if args.ramp:
        rows = []
        for n in (int(x) for x in args.ramp.split(",") if x.strip()):
            rows.append(run_step(n, args.minutes, args.seed, args.profile, args.keep / str(n) if args.keep else None))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        print(table(rows))
        k, kp = knee(rows), knee(rows, pacing_excused=True)
        print(
            f"knee: {k if k is not None else 'none'} volunteers (0 lost answers, dead air p95 within "
            f"{KNEE_SLACK_MS:.0f} ms of the detector's listening p95); "
            f"{kp if kp is not None else 'none'} not counting the pacing's abandons; load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
        )
        return 0
    result = run_step(args.volunteers, args.minutes, args.seed, args.profile, args.keep)
    if args.json:
        print(json.dumps(result))
    else:
        print(table([result]))
        print("outcomes (number kind:outcome):", result["outcomes"])
        for key in ("asterisk_threads_cpu_pct", "controller_profile", "load_avg_before", "load_avg_after"):
            if key in result:
                print(f"{key}: {result[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
