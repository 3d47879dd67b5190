"""The three ways a volunteer connects, side by side in one run on the real Asterisk: call-in (a drilled phone
through the call-in and its code), computer audio (headless Chromium, JsSIP over WSS, opus, DTLS-SRTP) and a SIP
softphone (PJSIP's pjsua2 with per-session credentials, ulaw over UDP).

  * connect: call-in from originate to "connected" (the drill keys the 10-digit code like a phone: ~4 s of DTMF
    are part of it); computer audio from the Connect click (credentials, WSS, REGISTER, INVITE, ICE, DTLS) to
    "connected"; softphone from starting the user agent (REGISTER) to "connected". "connected" = the session
    API says phone_connected (polled every 20 ms).
  * delay: the audio delay the PBX adds between voter and volunteer. The volunteer echoes what it hears (call-in:
    Echo() on the drilled phone; computer audio: the page sends the voter's track back); the simulated voter
    records what it sends and what it hears (MixMonitor t()/r(), one clock); one way = (echo onset - tone
    onset) / 2. Computer audio's figure includes the browser's jitter buffer and opus both ways. The softphone
    (pjsua2 with a null sound card) cannot echo: no delay figure for it.
  * CPU: Asterisk's own CPU time (/proc/PID/stat) over a window while K volunteers of one kind each talk to a
    voter who plays a tone, minus the idle baseline, per volunteer+voter pair. Each pair includes the voter's
    side (a Local channel playing tones), the same for every kind. Browsers and pjsua2 run on this machine too
    but are not counted: they are the volunteers' devices.

    python bench/audio_legs.py [--trials 3] [--delay-calls 2] [--cpu-legs 6] [--cpu-window 30] [--json]

Nothing leaves 127.0.0.1 (Chromium: background networking off, loopback ICE only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/ runs as a script

from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from bridge.ari import AriClient
from phonebank import webrtc_drill
from phonebank.harness import ControllerProcess, Pbx, day_number, read_wav_samples
from phonebank.sim import SimNumber
from store import users as u
from store.db import Store

ADMIN_PASSWORD = "bench-admin-password"
REPO = Path(__file__).resolve().parent.parent
ECHO_JS = """async () => {
  const pc = window.pbWebphone.connection();
  const heard = pc.getReceivers().map((r) => r.track).find((t) => t && t.kind === "audio");
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === "audio");
  await sender.replaceTrack(heard);
  return true;
}"""


def ms_stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": float("nan"), "max": float("nan")}
    arr = np.array(values) * 1000.0
    return {"n": len(arr), "p50": float(np.percentile(arr, 50)), "max": float(arr.max())}


def tone_onset(samples: np.ndarray, rate: int, hz: float, after_s: float = 0.0) -> float | None:
    """When ``hz`` starts (s): the complex envelope at hz (20 ms window) first passes 30 % of its peak."""
    x = samples.astype(np.float64)
    t = np.arange(len(x)) / rate
    w = max(1, int(0.02 * rate))
    env = np.abs(np.convolve(x * np.exp(-2j * np.pi * hz * t), np.ones(w) / w, mode="same"))
    start = int(after_s * rate)
    if len(env) <= start or env[start:].max() <= 0:
        return None
    idx = np.nonzero(env[start:] > 0.3 * env[start:].max())[0]
    return (start + int(idx[0])) / rate if len(idx) else None


class Bench:
    def __init__(self, pbx: Pbx, ctl: ControllerProcess, ari: AriClient, browser: Browser) -> None:
        self.pbx = pbx
        self.ctl = ctl
        self.ari = ari
        self.browser = browser
        self.store = Store(pbx.settings.db_path)
        self.context: BrowserContext | None = None
        self.number = 0
        self.procs: list[subprocess.Popen[bytes]] = []

    # ------------------------------------------------------------------ helpers
    async def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        status, data = await asyncio.to_thread(self.ctl.call, method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {data}")
        return data

    def voters(self, n: int, talk_s: float) -> list[SimNumber]:
        out = []
        for _ in range(n):
            self.number += 1
            out.append(
                SimNumber(
                    day_number(6000 + self.number),
                    "human",
                    ring_s=0.5,
                    talk_s=talk_s,
                    tone_hz=2700 + 40 * (self.number % 18),
                )
            )
        return out

    def effort(self, name: str, voters: list[SimNumber]) -> int:
        cid = int(self.store.create_campaign(name, ring_timeout_s=15, wrapup_limit_s=600)["id"])
        if voters:
            self.store.add_contacts(cid, [{"first_name": f"V{i}", "phone": n.number} for i, n in enumerate(voters)])
        return cid

    async def session(self, cid: int) -> dict[str, Any]:
        return await self.api("POST", "/api/sessions", {"campaign_id": cid, "name": "Bench"})

    async def connected(self, sid: int, limit_s: float = 60) -> float:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if (await self.api("GET", f"/api/sessions/{sid}"))["phone_connected"]:
                return time.monotonic()
            await asyncio.sleep(0.02)
        raise RuntimeError(f"session {sid} never connected")

    async def talking(self, sids: list[int], limit_s: float = 60) -> None:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            views = [await self.api("GET", f"/api/sessions/{s}") for s in sids]
            if all(v["state"] == "talking" for v in views):
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("volunteers not all talking")

    async def stop(self, sid: int) -> None:
        await self.api("POST", f"/api/sessions/{sid}/stop")

    # ------------------------------------------------------------------ the three legs
    async def callin(self, code: str, echo: bool = False) -> float:
        """Originate a drilled phone into the call-in; returns the monotonic time it was placed."""
        rt = self.pbx.rt
        self.number += 1
        drill_id = f"bench-{os.getpid()}-{self.number}"
        t0 = time.monotonic()
        await self.ari.post(
            f"channels/{drill_id}-leg",
            endpoint="Local/callin@pb-callin/n",
            context="pb-drill",
            extension="volunteer",
            priority=1,
            timeout=30,
            callerId=f'"Drill" <{self.number:06d}>',
            body={
                "variables": {
                    "PB_DRILL_CODE": code,
                    "PB_DRILL_DELAY": "0.3",
                    "PB_DRILL_STAY": "600",
                    "PB_DRILL_HEARD": f"{rt.rec_dir}/{drill_id}-heard.wav",
                    "PB_DRILL_BOTH": f"{rt.rec_dir}/{drill_id}-both.wav",
                    "PB_DRILL_KEYS": "",
                    "PB_DRILL_KEYS_AT": "0",
                    "PB_DRILL_SAY": "",
                    "PB_DRILL_ECHO": "1" if echo else "",
                }
            },
        )
        return t0

    async def webrtc(self, cid: int, sid: int) -> tuple[Page, float]:
        """A page with computer audio for the session; returns it and when Connect was clicked."""
        assert self.context is not None
        page = await self.context.new_page()
        await page.goto(f"{self.ctl.api}/call/{cid}/s/{sid}?audio=computer")
        await expect(page.locator("#webphone-connect")).to_be_enabled(timeout=20000)
        t0 = time.monotonic()
        await page.click("#webphone-connect")
        return page, t0

    async def softphone(self, sid: int, seconds: float) -> tuple[float, float | None]:
        """pjsua2 registering with the session's credentials and dialling in; (start, registered) times."""
        creds = await self.api("POST", f"/api/sessions/{sid}/sip", {"kind": "softphone"})
        t0 = time.monotonic()
        proc = spawn_softphone(creds, seconds)
        self.procs.append(proc)
        registered: float | None = None
        assert proc.stdout is not None
        while registered is None:
            line = await asyncio.to_thread(proc.stdout.readline)
            if not line:
                break
            try:
                event = json.loads(line)
            except ValueError:
                continue  # pjsip's own log lines
            if isinstance(event, dict) and event.get("event") == "registered":
                registered = time.monotonic()
        return t0, registered

    # ------------------------------------------------------------------ phases
    async def connect_times(self, trials: int, softphone: bool) -> dict[str, Any]:
        cid = self.effort("Connect bench", [])  # nobody to call: only the legs
        out: dict[str, Any] = {"callin": [], "webrtc": [], "softphone": [], "softphone_after_register": []}
        for _ in range(trials):
            s = await self.session(cid)
            t0 = await self.callin(s["code"])
            out["callin"].append(await self.connected(s["id"]) - t0)
            await self.stop(s["id"])
            s = await self.session(cid)
            page, t0 = await self.webrtc(cid, s["id"])
            out["webrtc"].append(await self.connected(s["id"]) - t0)
            await self.stop(s["id"])
            await page.close()
            if softphone:
                s = await self.session(cid)
                t0, reg = await self.softphone(s["id"], 20)
                t1 = await self.connected(s["id"])
                out["softphone"].append(t1 - t0)
                if reg is not None:
                    out["softphone_after_register"].append(t1 - reg)
                await self.stop(s["id"])
        return {k: ms_stats(v) for k, v in out.items()}

    async def delays(self, calls: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind in ("callin", "webrtc"):
            voters = self.voters(calls, talk_s=8)
            self.pbx.load_sim(voters)
            cid = self.effort(f"Delay bench {kind}", voters)
            s = await self.session(cid)
            page = None
            if kind == "callin":
                await self.callin(s["code"], echo=True)
            else:
                page, _ = await self.webrtc(cid, s["id"])
            await self.connected(s["id"])
            if page is not None:
                await expect(page.locator("#webphone-status")).to_have_text("Connected", timeout=20000)
                await page.evaluate(ECHO_JS)
            done: set[str] = set()
            deadline = time.monotonic() + 40 * calls
            while len(done) < calls and time.monotonic() < deadline:
                v = await self.api("GET", f"/api/sessions/{s['id']}")
                if v["state"] == "wrapup" and v["call_id"] not in done:
                    done.add(v["call_id"])
                    await self.api("POST", f"/api/sessions/{s['id']}/disposition", {"code": "supporter"})
                await asyncio.sleep(0.2)
            await self.stop(s["id"])
            if page is not None:
                await page.close()
            one_way = []
            for n in voters:
                files = sorted(self.pbx.rt.host_path(f"{self.pbx.rt.sim_dir}/vm").glob(f"heard-{n.digits}-*-in.wav"))
                if not files:
                    continue
                heard, rate = read_wav_samples(files[-1])
                sent, rate2 = read_wav_samples(files[-1].with_name(files[-1].name.replace("-in.wav", "-out.wav")))
                t_out = tone_onset(sent, rate2, n.tone_hz)
                t_in = tone_onset(heard, rate, n.tone_hz, after_s=t_out or 0.0) if t_out is not None else None
                if t_out is not None and t_in is not None:
                    one_way.append((t_in - t_out) / 2)
            out[kind] = ms_stats(one_way)
        return out

    def asterisk_cpu_s(self) -> float:
        pid = int(self.pbx.rt.host_path(f"{self.pbx.rt.inst}/run/asterisk.pid").read_text().split()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def cpu_window(self, window_s: float) -> float:
        c0, t0 = self.asterisk_cpu_s(), time.monotonic()
        await asyncio.sleep(window_s)
        return (self.asterisk_cpu_s() - c0) / (time.monotonic() - t0)

    async def codecs(self) -> list[str]:
        """The audio format Asterisk runs each volunteer device's channel in (PJSIP/pbsip…: WebRTC, softphone)."""
        out = []
        for ch in await self.ari.get("channels"):
            if ch["name"].startswith("PJSIP/pbsip"):
                v = await self.ari.get(f"channels/{ch['id']}/variable", variable="CHANNEL(audionativeformat)")
                out.append(v.get("value", "?"))
        return sorted(set(out))

    async def cpu(self, legs: int, window_s: float, softphone: bool, reverse: bool = False) -> dict[str, Any]:
        # The voters stop recording what they hear: production voters are plain trunk channels.
        await self.ari.post("asterisk/variable", variable="PB_SIM_HEARD", value="")
        out: dict[str, Any] = {"idle": await self.cpu_window(window_s)}
        kinds = ["callin", "webrtc"] + (["softphone"] if softphone else [])
        if reverse:  # to see whether the order of the windows (load drifting, Asterisk warming) shows in them
            kinds.reverse()
        for kind in kinds:
            voters = self.voters(legs, talk_s=window_s + 60)
            self.pbx.load_sim(voters)
            cid = self.effort(f"CPU bench {kind}", voters)
            sessions = [await self.session(cid) for _ in range(legs)]
            pages = []
            for s in sessions:
                if kind == "callin":
                    await self.callin(s["code"])
                elif kind == "webrtc":
                    pages.append((await self.webrtc(cid, s["id"]))[0])
                else:
                    await self.softphone(s["id"], window_s + 90)
            await self.talking([s["id"] for s in sessions], limit_s=90)
            await asyncio.sleep(2)
            codecs = await self.codecs()
            load = await self.cpu_window(window_s)
            out[kind] = {"cores": load, "per_pair": (load - out["idle"]) / legs, "codecs": codecs}
            for s in sessions:
                await self.stop(s["id"])
            for p in pages:
                await p.close()
            await asyncio.sleep(3)
        return out


def spawn_softphone(creds: dict[str, Any], seconds: float) -> subprocess.Popen[bytes]:
    """pjsua2 (tests/sipua.py) in its own process, left running beside the benchmark for ``seconds``."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.sipua",
            "--server",
            creds["sip_server"],
            "--user",
            creds["username"],
            "--password",
            creds["password"],
            "--register",
            "--call",
            creds["dial"],
            "--seconds",
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=str(REPO),
    )


def softphone_available() -> bool:
    try:
        import pjsua2  # noqa: F401
    except ImportError:
        return False
    return True


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        pbx = Pbx.start(Path(tmp) / "data", instance="benchaudio")
        ctl = ControllerProcess(pbx, Path(tmp) / "controller.log")
        bench: Bench | None = None
        try:
            ctl.start()
            store = Store(pbx.settings.db_path)
            u.create_user(store, "bench-admin", ADMIN_PASSWORD, "admin", name="Bench")
            store.close()
            user, password = pbx.ari_credentials()
            softphone = softphone_available() and not args.no_softphone
            mic = webrtc_drill.make_mic_wav(Path(tmp) / "mic.wav")
            async with AriClient(pbx.rt.ari_url(), user, password, "bench") as ari, async_playwright() as pw:
                await ari.post("asterisk/variable", variable="PB_SIM_HEARD", value="1")
                browser = await webrtc_drill.launch(pw, mic)
                bench = Bench(pbx, ctl, ari, browser)
                bench.context = await browser.new_context()
                page = await bench.context.new_page()
                await page.goto(f"{ctl.api}/login")
                await page.fill("input[name=username]", "bench-admin")
                await page.fill("input[name=password]", ADMIN_PASSWORD)
                await page.click("button[type=submit]")
                await page.close()
                result = {
                    "softphone": softphone,
                    "connect_ms": await bench.connect_times(args.trials, softphone),
                    "delay_one_way_ms": await bench.delays(args.delay_calls),
                    "cpu": await bench.cpu(args.cpu_legs, args.cpu_window, softphone, args.cpu_reverse),
                    "cpu_legs": args.cpu_legs,
                    "cpu_window_s": args.cpu_window,
                }
                await browser.close()
                return result
        finally:
            if bench is not None:
                for p in bench.procs:
                    if p.poll() is None:
                        p.terminate()
            ctl.stop()
            pbx.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=3, help="connects per kind")
    p.add_argument("--delay-calls", type=int, default=2, help="echoed voter calls per kind")
    p.add_argument("--cpu-legs", type=int, default=6, help="volunteers of each kind talking at once")
    p.add_argument("--cpu-window", type=float, default=30.0, help="seconds of CPU measured per kind")
    p.add_argument("--cpu-reverse", action="store_true", help="measure the kinds' CPU in reverse order")
    p.add_argument("--no-softphone", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    r = asyncio.run(run(args))
    if args.json:
        print(json.dumps(r))
        return 0
    kinds = ["callin", "webrtc"] + (["softphone"] if r["softphone"] else [])
    c, d, cpu = r["connect_ms"], r["delay_one_way_ms"], r["cpu"]
    print(
        f"audio legs on the real Asterisk: {args.trials} connects per kind, {args.delay_calls} echoed calls "
        f"per kind, CPU with {r['cpu_legs']} talking pairs per kind over {r['cpu_window_s']:g} s"
    )
    print(
        f"{'leg':11} {'connect p50 ms':>15} {'max':>8} {'one-way delay p50 ms':>21} {'max':>7} "
        f"{'Asterisk CPU/pair %':>20} {'pairs per core':>15}  device codec"
    )
    for k in kinds:
        dd = d.get(k, {"p50": float("nan"), "max": float("nan")})
        per = cpu[k]["per_pair"]
        per_core = 1 / per if per > 0 else float("inf")
        print(
            f"{k:11} {c[k]['p50']:>15.0f} {c[k]['max']:>8.0f} {dd['p50']:>21.1f} {dd['max']:>7.1f} "
            f"{100 * per:>20.2f} {per_core:>15.0f}  {','.join(cpu[k]['codecs']) or 'ulaw (Local)'}"
        )
    if r["softphone"] and c["softphone_after_register"]["n"]:
        print(f"softphone: REGISTER answered -> connected p50 {c['softphone_after_register']['p50']:.0f} ms")
    print(f"Asterisk idle: {100 * cpu['idle']:.2f} % of a core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
