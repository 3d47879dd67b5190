"""``make demo``: Asterisk up, a simulated telephone network, a demo effort with voters, and the controller."""

from __future__ import annotations

import asyncio

from phonebank import sim
from phonebank.asterisk import AsteriskRuntime
from phonebank.service import serve
from phonebank.settings import Settings
from store.db import Store

DEMO_NAME = "Demo effort: Get out the vote"


def prepare(settings: Settings, rt: AsteriskRuntime, count: int) -> tuple[int, list[dict[str, object]]]:
    """Idempotent: reuses the demo effort and its sessions when run again."""
    rt.up()
    numbers = sim.demo_network(count)
    sim.load(rt, numbers)
    store = Store(settings.db_path)
    try:
        existing = [c for c in store.campaigns() if c["name"] == DEMO_NAME]
        if existing:
            cid = int(existing[0]["id"])
        else:
            voicemail = sim.stage_file(rt, sim.AUDIO_DIR / "voicemail-demo.wav", "voicemail-demo.wav")
            cid = int(store.create_campaign(
                DEMO_NAME, org_name="Fair Votes", callback_number="2025550100", ring_timeout_s=20,
                machine_action="voicemail", voicemail_media=voicemail, max_attempts=3)["id"])
            first = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo")
            store.add_contacts(cid, [
                {"first_name": first[i % len(first)], "last_name": f"Voter{i + 1}", "phone": n.number,
                 "city": "Washington", "state": "DC", "zip": f"200{i % 10:02d}", "extra": {"ward": str(1 + i % 8)}}
                for i, n in enumerate(numbers)])
        sessions = [s for s in store.open_sessions() if s["campaign_id"] == cid]
        while len(sessions) < 2:
            store.create_session(cid, f"Demo volunteer {len(sessions) + 1}")
            sessions = [s for s in store.open_sessions() if s["campaign_id"] == cid]
        return cid, sessions
    finally:
        store.close()


def main(settings: Settings, rt: AsteriskRuntime, count: int = 50) -> int:
    cid, sessions = prepare(settings, rt, count)
    api = f"http://{settings.api_bind}:{settings.api_port}"
    codes = "\n".join(f"    session {s['id']}: code {s['code']}" for s in sessions)
    print(f"""
Phone bank demo is up.
  Asterisk instance '{settings.instance}' (root {rt.root}), ARI {rt.ari_url()}
  Effort {cid}: "{DEMO_NAME}" — {count} simulated voters (people, machines, busy, no answer, disconnected)

Join as a volunteer — call in, enter your code, stay on the line:
{codes}
  From this machine (a simulated phone that keys the code and records what it hears):
    .venv/bin/phonebank drill volunteer --code {sessions[0]['code']}
  From a SIP softphone: add an endpoint from the softphone-endpoint template (docs/OPERATIONS.md)
  and dial any number; SIP listens on {settings.sip_bind}:{settings.sip_port}.

Watch and work the calls:
  curl {api}/api/sessions/{sessions[0]['id']}         (state and current voter)
  curl -XPOST {api}/api/sessions/{sessions[0]['id']}/disposition -d '{{"code":"supporter"}}'
  curl {api}/api/campaigns/{cid}/stats
  .venv/bin/phonebank asterisk cli            (the Asterisk console)

Ctrl-C stops the controller; `.venv/bin/phonebank asterisk down` stops Asterisk.
""", flush=True)
    asyncio.run(serve(settings, rt))
    return 0
