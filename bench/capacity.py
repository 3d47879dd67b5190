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
    .venv/bin/python bench/capacity.py --volunteers 25 --minutes 2 --with-admin-load --json   # imports, exports
    .venv/bin/python bench/capacity.py --volunteers 25 --soak --json    # 10 minutes, RSS slope, leftovers in Asterisk

Supersedes nothing: bench/connect_latency.py (simulation inside the PBX, one burst) stays for the detector
comparison it does (ours vs app_amd on identical answers).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.import_contacts import make_csv
from phonebank import sim
from phonebank.carrier import Carrier
from phonebank.harness import ControllerProcess, Pbx, wait_until
from store import efforts as ef
from store.contacts import check_list, csv_headers, guess_mapping
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
        self.proc = proc = subprocess.Popen(
            [sys.executable, str(HERE / "controller_probe.py"), "run", "--ready-file", str(ready)],
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: ready.exists() or proc.poll() is not None, timeout, 0.1, "controller ready")
        if proc.poll() is not None:
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
    volunteers: int,
    minutes: float,
    seed: int = 1,
    profile: bool = False,
    keep: Path | None = None,
    admin_load: bool = False,
    soak: bool = False,
) -> dict[str, Any]:
    """``admin_load``: the second half of the window also runs imports, exports and dashboards (AdminLoad);
    ``soak``: RSS sampled over the window and Asterisk checked for leftovers afterwards (soak_checks)."""
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
            admin = AdminLoad(ctl, pbx.settings.db_path, cid) if admin_load else None
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
            t_mid = t0 + window / 2
            admin_threads = []
            if admin is not None:
                admin_threads = [
                    threading.Thread(target=admin.write_probe, args=(stop,), daemon=True),
                    threading.Thread(target=admin.run, args=(t_mid, stop), daemon=True),
                ]
                for th in admin_threads:
                    th.start()
            peak = {"asterisk": 0.0, "controller": 0.0}
            samples: list[tuple[float, float, float]] = []
            next_sample = t0
            while time.time() - t0 < window:
                a, c = rss_mb(asterisk_pid), rss_mb(ctl_pid)
                peak["asterisk"] = max(peak["asterisk"], a)
                peak["controller"] = max(peak["controller"], c)
                if time.time() >= next_sample:
                    samples.append((time.time() - t0, a, c))
                    next_sample += RSS_SAMPLE_S
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
            for th in admin_threads:
                th.join(30)
            checks = soak_checks(pbx, carrier, store, cid, sessions) if soak else None
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
            lag_rows = [
                (float(at), float(lag))
                for at, lag in (line.split() for line in ctl.lag_file.read_text().splitlines())  # type: ignore[union-attr]
                if t0 <= float(at) <= t1
            ]
            lags = [lag for _, lag in lag_rows]
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
            if admin is not None:
                result["admin_load"] = {
                    "from_s": round(t_mid - t0),
                    **split_by_time(calls, kinds, heard, lag_rows, t_mid),
                    **admin.report(t_mid, t1, lag_rows),
                }
            if soak:
                result["soak"] = {**(checks or {}), **rss_trend(samples)}
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


# ---------------------------------------------------------------------------------------------- soak checks
RSS_SAMPLE_S = 5.0


def ari_get(pbx: Pbx, path: str) -> Any:
    user, password = pbx.ari_credentials()
    req = urllib.request.Request(f"{pbx.rt.ari_url()}/{path}")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def leftovers(pbx: Pbx, volunteers_on: int) -> dict[str, Any]:
    """What Asterisk holds vs what should remain: with ``volunteers_on`` volunteers still on the line and no call
    in progress, each volunteer's channel alone in its holding bridge (pb-vol-*), nothing else."""
    channels = ari_get(pbx, "channels")
    bridges = ari_get(pbx, "bridges")
    holding = [b for b in bridges if b.get("name", "").startswith("pb-vol-") and len(b.get("channels", [])) == 1]
    in_holding = {c for b in holding for c in b["channels"]}
    stuck_bridges = [b for b in bridges if b not in holding]
    stuck_channels = [c for c in channels if c["id"] not in in_holding]
    return {
        "channels": len(channels),
        "bridges": len(bridges),
        "volunteers_on": volunteers_on,
        "holding_bridges": len(holding),
        "stuck_channels": len(stuck_channels) + max(len(holding) - volunteers_on, 0),
        "stuck_bridges": len(stuck_bridges) + max(len(holding) - volunteers_on, 0),
        "stuck_examples": [c.get("name", c["id"]) for c in stuck_channels[:5]]
        + [f"bridge {b.get('name') or b['id']} ({len(b.get('channels', []))} ch)" for b in stuck_bridges[:5]],
    }


def soak_checks(pbx: Pbx, carrier: Carrier, store: Store, cid: int, sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """After the window: once the last conversations end, only the volunteers' holding bridges may remain; once
    the volunteers hang up (at the carrier, as a phone would), nothing may."""
    live = f"SELECT COUNT(*) FROM calls WHERE campaign_id = {cid} AND ended_at IS NULL"
    try:
        wait_until(lambda: store.conn.execute(live).fetchone()[0] == 0, 120, 1, "the last conversations to end")
    except TimeoutError:
        pass
    time.sleep(3)  # the last hang-ups' ARI requests (snoops, taps, bridges) to land
    on = leftovers(pbx, len(sessions))
    on["calls_open_in_store"] = store.conn.execute(live).fetchone()[0]

    async def hang_up() -> None:
        async with carrier.client() as ari:
            for s in sessions:
                try:
                    await ari.delete(f"channels/vol-{s['id']}")
                except Exception:  # already gone is fine: it is what we want
                    pass

    asyncio.run(hang_up())
    try:
        wait_until(lambda: not ari_get(pbx, "channels") and not ari_get(pbx, "bridges"), 20, 0.5, "Asterisk empty")
    except TimeoutError:
        pass
    off = leftovers(pbx, 0)
    return {
        "after_calls": on,
        "after_hangup": off,
        "stuck_channels": on["stuck_channels"] + off["stuck_channels"],
        "stuck_bridges": on["stuck_bridges"] + off["stuck_bridges"],
    }


def rss_trend(samples: list[tuple[float, float, float]]) -> dict[str, Any]:
    """RSS over the window, and its slope (least squares, MB per minute) over all of it and over the second half
    (after the ramp-up: the pool fills, the list's first calls are placed)."""

    def slope(rows: list[tuple[float, float, float]], i: int) -> float | None:
        if len(rows) < 3:
            return None
        t = np.array([r[0] / 60 for r in rows])
        return round(float(np.polyfit(t, np.array([r[i] for r in rows]), 1)[0]), 3)

    half = [r for r in samples if r[0] >= samples[-1][0] / 2] if samples else []
    return {
        "asterisk_rss_slope_mb_per_min": slope(samples, 1),
        "controller_rss_slope_mb_per_min": slope(samples, 2),
        "asterisk_rss_slope_2nd_half_mb_per_min": slope(half, 1),
        "controller_rss_slope_2nd_half_mb_per_min": slope(half, 2),
        # Every minute's first sample: what a reader can plot.
        "rss_by_minute": [
            {"min": round(t / 60, 1), "asterisk_mb": round(a, 1), "controller_mb": round(c, 1)}
            for t, a, c in samples
            if int(t) % 60 < RSS_SAMPLE_S
        ],
    }


# ---------------------------------------------------------------------------------------------- admin load
# What organisers do in the panel while a shift runs, in the second half of the window (--with-admin-load).
ADMIN_ROWS = 100_000  # the list import of issue 11 ("holds the loop 0.7-1 s")
DASHBOARDS = 4  # results dashboards open (each a WebSocket the panel recomputes up to once a second)
WRITE_PROBE_S = 0.1


class AdminLoad:
    """A 100k-row list import (upload, the checked page, import) into a draft effort, the CSV exports (that
    effort's 100k contacts, the live effort's attempts, its VAN export) and open dashboards, all through the panel
    with the API token, over and over until stopped; each request's time is kept. Beside it a write probe: a
    connection of its own takes SQLite's write lock (BEGIN IMMEDIATE) every 100 ms, so how long the controller's
    writes would wait for the lock while the admin work runs is measured, not guessed."""

    def __init__(self, ctl: ControllerProcess, db: Path, live_cid: int) -> None:
        self.ctl, self.db, self.live_cid = ctl, db, live_cid
        text, _bad = make_csv(ADMIN_ROWS)
        self.csv = text.encode()
        self.mapping = guess_mapping(csv_headers(text))
        self.valid = check_list(text, self.mapping).valid  # the import form's "expect_valid"
        self.ops: list[dict[str, Any]] = []
        self.write_waits: list[tuple[float, float]] = []

    def write_probe(self, stop: threading.Event) -> None:
        import sqlite3

        conn = sqlite3.connect(str(self.db), isolation_level=None, timeout=30)
        try:
            while not stop.is_set():
                t = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("COMMIT")
                self.write_waits.append((time.time(), (time.perf_counter() - t) * 1000))
                time.sleep(WRITE_PROBE_S)
        finally:
            conn.close()

    def run(self, start_at: float, stop: threading.Event) -> None:
        while time.time() < start_at and not stop.is_set():
            time.sleep(0.2)
        if not stop.is_set():
            asyncio.run(self._main(stop))

    async def _main(self, stop: threading.Event) -> None:
        headers = {"Authorization": f"Bearer {self.ctl.pbx.settings.api_token()}"}
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(self.ctl.api, headers=headers, timeout=timeout) as http:
            boards = [asyncio.create_task(self._dashboard(http, stop)) for _ in range(DASHBOARDS)]
            try:
                while not stop.is_set():
                    await self._cycle(http, stop)
            finally:
                for b in boards:
                    b.cancel()
                await asyncio.gather(*boards, return_exceptions=True)

    async def _timed(self, http: aiohttp.ClientSession, op: str, method: str, path: str, **kw: Any) -> str:
        t, at = time.perf_counter(), time.time()
        async with http.request(method, path, **kw) as resp:
            size = 0
            async for chunk in resp.content.iter_chunked(1 << 16):
                size += len(chunk)
            self.ops.append(
                {"op": op, "at": at, "s": round(time.perf_counter() - t, 3), "status": resp.status, "bytes": size}
            )
            return str(resp.url)

    async def _cycle(self, http: aiohttp.ClientSession, stop: threading.Event) -> None:
        store = Store(self.db)
        try:
            eid = ef.create_effort(store, f"Import {len(self.ops)}")["id"]
        finally:
            store.close()
        form = aiohttp.FormData()
        form.add_field("file", self.csv, filename="list.csv", content_type="text/csv")
        # The upload redirects to the list page, which checks the file under the guessed columns.
        url = await self._timed(http, "upload+check", "POST", f"/admin/efforts/{eid}/list/upload", data=form)
        token = re.search(r"upload=([\w-]+)", url)
        if token is None or stop.is_set():
            return
        body = [("token", token.group(1)), ("household", "once"), ("skip_bad", "1"), ("expect_valid", str(self.valid))]
        body += [("map", m) for m in self.mapping]
        await self._timed(http, "import", "POST", f"/admin/efforts/{eid}/list/import", data=body)
        for op, path in (
            ("export_contacts_100k", f"/admin/efforts/{eid}/export/contacts.csv"),
            ("export_attempts", f"/admin/efforts/{self.live_cid}/export/attempts.csv"),
            ("export_van", f"/admin/efforts/{self.live_cid}/export/van.csv"),
            ("dashboard_page", f"/admin/efforts/{self.live_cid}/results"),
        ):
            if stop.is_set():
                return
            await self._timed(http, op, "GET", path)

    async def _dashboard(self, http: aiohttp.ClientSession, stop: threading.Event) -> None:
        async with http.ws_connect(f"/ws/campaign/{self.live_cid}") as ws:
            async for msg in ws:
                if stop.is_set() or msg.type != aiohttp.WSMsgType.TEXT:
                    break
                self.ops.append({"op": "dashboard_push", "at": time.time(), "bytes": len(msg.data)})

    def report(self, t_mid: float, t1: float, lag_rows: list[tuple[float, float]]) -> dict[str, Any]:
        quiet = [w for at, w in self.write_waits if at < t_mid]
        loaded = [w for at, w in self.write_waits if t_mid <= at <= t1]
        per_op: dict[str, list[dict[str, Any]]] = {}
        for o in self.ops:
            per_op.setdefault(o["op"], []).append(o)
        return {
            "write_lock_wait_quiet_p99_ms": pct(quiet, 99),
            "write_lock_wait_quiet_max_ms": round(max(quiet), 1) if quiet else None,
            "write_lock_wait_loaded_p99_ms": pct(loaded, 99),
            "write_lock_wait_loaded_max_ms": round(max(loaded), 1) if loaded else None,
            "ops": {
                op: {
                    "count": len(v),
                    "s_max": max((o.get("s", 0.0) for o in v), default=None),
                    "statuses": sorted({o["status"] for o in v if "status" in o}),
                    "bytes_max": max(o["bytes"] for o in v),
                }
                for op, v in per_op.items()
            },
            # When each request ran and the worst lags came (s from the start of the loaded half): which one stalls.
            "timeline": [[o["op"], round(o["at"] - t_mid, 1), o["s"]] for o in self.ops if "s" in o],
            "lag_top": [[round(at - t_mid, 1), lag] for at, lag in sorted(lag_rows, key=lambda r: -r[1])[:12]],
        }


def split_by_time(
    calls: list[dict[str, Any]],
    kinds: dict[str, str],
    heard: dict[str, int],
    lag_rows: list[tuple[float, float]],
    t_mid: float,
) -> dict[str, Any]:
    """Loop lag and verdict → bridged for the quiet first half of the window and the loaded second half."""
    out: dict[str, Any] = {}
    for name, keep in (("quiet", lambda t: t < t_mid), ("loaded", lambda t: t >= t_mid)):
        part = [c for c in calls if c["answered_at"] and keep(c["answered_at"])]
        s = summarise(0, part, kinds, heard, [lag for at, lag in lag_rows if keep(at)])
        out[name] = {
            k: s[k]
            for k in (
                "answers",
                "lost_answers",
                "dead_air_p95_ms",
                "dead_air_over_listen_p95_ms",
                "bridge_p99_ms",
                "loop_lag_p99_ms",
                "loop_lag_max_ms",
            )
        }
        verdict = [
            (c["bridged_at"] - c["amd_decided_at"]) * 1000
            for c in part
            if c["bridged_at"] and c["amd_decided_at"] and kinds.get(c["phone"]) == "human"
        ]
        out[name]["bridge_max_ms"] = round(max(verdict), 1) if verdict else None
    return out


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
    p.add_argument(
        "--with-admin-load",
        action="store_true",
        help="second half of the window: 100k-row list imports, CSV and VAN exports, dashboards through the panel; "
        "loop lag, verdict → bridged and SQLite write-lock waits reported for each half (admin_load in the JSON)",
    )
    p.add_argument(
        "--soak",
        action="store_true",
        help="RSS sampled over the window (slope), Asterisk checked for stuck channels and bridges afterwards; "
        "--minutes defaults to 10",
    )
    args = p.parse_args()
    # The harness's own log lines (instances started, stopped) go to stderr: stdout is the table or the one JSON
    # object other tools read.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    if args.soak and "--minutes" not in sys.argv:
        args.minutes = 10.0
    if args.ramp:
        rows = []
        for n in (int(x) for x in args.ramp.split(",") if x.strip()):
            keep = args.keep / str(n) if args.keep else None
            rows.append(run_step(n, args.minutes, args.seed, args.profile, keep, args.with_admin_load, args.soak))
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
    result = run_step(
        args.volunteers, args.minutes, args.seed, args.profile, args.keep, args.with_admin_load, args.soak
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(table([result]))
        print("outcomes (number kind:outcome):", result["outcomes"])
        for key in (
            "asterisk_threads_cpu_pct",
            "controller_profile",
            "admin_load",
            "soak",
            "load_avg_before",
            "load_avg_after",
        ):
            if key in result:
                print(f"{key}: {result[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
