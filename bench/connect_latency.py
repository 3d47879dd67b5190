"""How fast a live answer reaches a volunteer, on the real Asterisk and the simulated network.

Runs an isolated instance, drills N volunteers in, dials M simulated people, answers every wrap-up at once,
and reports from the times stored per call (the controller's clock as it handled each event: docs/ARCHITECTURE.md,
"Timers and clocks"):
  * AMD decision → voter in the volunteer's bridge (our controller's reaction: ARI event in, addChannel out)
  * answer → bridge (includes the detector's listening time)
  * answer → AMD decision (the detector alone)

    python bench/connect_latency.py [--volunteers 6] [--voters 60] [--amd ours|app_amd ...] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.ari import AriClient
from callin import drill
from phonebank.harness import ControllerProcess, Pbx, day_number, wait_until
from phonebank.sim import SimNumber
from store.db import Store


def stats_ms(values: list[float]) -> dict[str, float]:
    arr = np.array(values) * 1000.0
    return {
        "n": len(arr),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "max": float(arr.max()),
    }


def run(volunteers: int, voters: int, amd_mode: str) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        pbx = Pbx.start(Path(tmp) / "data", instance="bench")
        ctl = ControllerProcess(pbx, Path(tmp) / "controller.log")
        try:
            numbers = [
                SimNumber(day_number(3000 + i), "human", ring_s=1, talk_s=1, tone_hz=2700 + 10 * (i % 60))
                for i in range(voters)
            ]
            pbx.load_sim(numbers)
            store = Store(pbx.settings.db_path)
            cid = store.create_campaign("Latency bench", ring_timeout_s=15, amd_mode=amd_mode)["id"]
            store.update_campaign(cid, status="paused")
            store.add_contacts(cid, [{"phone": n.number} for n in numbers])
            ctl.start()
            sessions = [
                ctl.call("POST", "/api/sessions", {"campaign_id": cid, "name": f"B{i}"})[1] for i in range(volunteers)
            ]
            user, password = pbx.ari_credentials()

            async def join() -> None:
                async with AriClient(pbx.rt.ari_url(), user, password, "bench") as ari:
                    for s in sessions:
                        await drill.volunteer(ari, pbx.rt, s["code"], stay_s=1800)

            asyncio.run(join())
            wait_until(
                lambda: all(ctl.call("GET", f"/api/sessions/{s['id']}")[1]["phone_connected"] for s in sessions),
                30,
                what="volunteers to join",
            )
            store.update_campaign(cid, status="active")
            stop = threading.Event()

            def dispose() -> None:
                while not stop.is_set():
                    for s in sessions:
                        view = ctl.call("GET", f"/api/sessions/{s['id']}")[1]
                        if view["state"] == "wrapup":
                            ctl.call("POST", f"/api/sessions/{s['id']}/disposition", {"code": "talked"})
                    time.sleep(0.1)

            worker = threading.Thread(target=dispose, daemon=True)
            worker.start()
            wait_until(
                lambda: sum(1 for c in store.calls(cid) if c["ended_at"]) >= voters,
                60 + voters * 10 / volunteers,
                interval=1,
                what="all voters called",
            )
            stop.set()
            worker.join()
            all_calls = store.calls(cid)
            calls = [c for c in all_calls if c["bridged_at"]]
            store.close()
            outcomes: dict[str, int] = {}
            for c in all_calls:
                key = f"{c['outcome']}/{c['amd_status']}"
                if c["amd_status"] == "NOTSURE":
                    key += f"/{c['amd_cause']}"
                outcomes[key] = outcomes.get(key, 0) + 1
            return {
                "outcomes": outcomes,  # type: ignore[dict-item]
                "amd_decision_to_bridge_ms": stats_ms([c["bridged_at"] - c["amd_decided_at"] for c in calls]),
                "answer_to_bridge_ms": stats_ms([c["bridged_at"] - c["answered_at"] for c in calls]),
                "answer_to_amd_decision_ms": stats_ms([c["amd_decided_at"] - c["answered_at"] for c in calls]),
            }
        finally:
            ctl.stop()
            pbx.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--volunteers", type=int, default=6)
    p.add_argument("--voters", type=int, default=60)
    p.add_argument(
        "--amd",
        nargs="+",
        default=["ours", "app_amd"],
        choices=["ours", "app_amd"],
        help="detectors to compare, one run each (default: both)",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    for mode in args.amd:
        result = run(args.volunteers, args.voters, mode)
        if args.json:
            print(json.dumps({"amd": mode, **result}))
            continue
        print(
            f"connect latency, detector {mode}: {args.voters} simulated people answering, "
            f"{args.volunteers} drilled volunteers"
        )
        print("outcomes (outcome/AMD verdict):", result.pop("outcomes"))
        print(f"{'interval':32} {'n':>4} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
        for name, s in result.items():
            print(f"{name:32} {s['n']:>4} {s['p50']:>9.1f} {s['p95']:>9.1f} {s['max']:>9.1f}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
