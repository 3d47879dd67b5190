"""``make demo``: Asterisk up, a simulated telephone network, a demo effort with voters, and the controller."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from phonebank import sim
from phonebank.asterisk import AsteriskRuntime
from phonebank.service import serve
from phonebank.settings import Settings
from store import efforts, van
from store import users as u
from store.contacts import EXTERNAL_ID
from store.db import Store

DEMO_NAME = "Demo effort: Get out the vote"
DEMO_SCRIPT = (
    "Hi, is this {first_name}? I'm a volunteer with Fair Votes here in {city}. Early voting starts "
    "Saturday — can we count on you to vote?"
)
# The Spanish version callers can switch to (docs/PANEL.md "An effort in two languages"); voters whose list row
# says Spanish get it first.
DEMO_SCRIPT_ES = (
    "Hola, ¿hablo con {first_name}? Soy voluntario de Fair Votes aquí en {city}. La votación anticipada empieza "
    "el sábado: ¿podemos contar con su voto?"
)
DEMO_SURVEY = [
    {
        "id": "q1",
        "text": "Will you vote early?",
        "kind": "choice",
        "options": ["Yes", "No", "Not sure"],
        "show_if": None,
        "second_text": "¿Votará por anticipado?",
        "second_options": ["Sí", "No", "No estoy seguro"],
    },
    {
        "id": "q2",
        "text": "Which day works for you?",
        "kind": "dropdown",
        "options": ["Saturday", "Sunday", "Monday"],
        "show_if": {"question": "q1", "answer": "Yes"},
        "second_text": "¿Qué día le viene bien?",
        "second_options": ["Sábado", "Domingo", "Lunes"],
    },
]

DEMO_VANID_BASE = 1_000_001
# Where the demo's results go in VAN (an organiser sets this on the effort's "Results to VAN" page).
DEMO_VAN_MAPPING = {
    "results": {
        "talked": "Canvassed",
        "supporter": "Canvassed",
        "undecided": "Canvassed",
        "opposed": "Canvassed",
        "refused": "Refused",
        "not_home": "Not Home",
        "wrong_number": "Wrong Number",
        "moved": "Moved",
        "deceased": "Deceased",
        "disconnected": "Disconnected",
        "hostile": "Hostile",
    },
    "outcomes": {"no_answer": "No Answer", "busy": "Busy", "machine": "Machine", "voicemail_left": "Left Message"},
    "questions": {"q1": {"name": "Early Vote 2026", "responses": {"Yes": "Yes", "No": "No", "Not sure": "Undecided"}}},
}


def prepare(settings: Settings, rt: AsteriskRuntime, count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Idempotent: reuses the demo effort and its sessions when run again."""
    rt.up()
    store = Store(settings.db_path)
    try:
        existing = [c for c in store.campaigns() if c["name"] == DEMO_NAME]
        prefix = sim.daytime_prefix(margin_s=3600)
        if existing:
            # Run again (maybe at another hour): the demo's voters move to where it is calling hours now.
            store.conn.execute(
                "UPDATE contacts SET phone = ? || substr(phone, -4), next_attempt_at = 0 "
                "WHERE campaign_id = ? AND substr(phone, 1, length(phone) - 4) != ?",
                (prefix, existing[0]["id"], prefix),
            )
        numbers = sim.demo_network(count, prefix=prefix)
        sim.load(rt, numbers)
        if existing:
            cid = int(existing[0]["id"])
            if not existing[0]["join_code"]:  # made before the panel existed
                store.update_campaign(
                    cid,
                    join_code=efforts.new_join_code(),
                    script=DEMO_SCRIPT,
                    survey=DEMO_SURVEY,
                    finished_at=time.time(),
                )
        else:
            voicemail = sim.stage_file(rt, sim.AUDIO_DIR / "voicemail-demo.wav", "voicemail-demo.wav")
            cid = int(
                store.create_campaign(
                    DEMO_NAME,
                    org_name="Fair Votes",
                    callback_number="2025550100",
                    ring_timeout_s=20,
                    machine_action="voicemail",
                    voicemail_media=voicemail,
                    max_attempts=3,
                    description="Remind our supporters that early voting starts Saturday.",
                    join_code=efforts.new_join_code(),
                    finished_at=time.time(),
                    script=DEMO_SCRIPT,
                    survey=DEMO_SURVEY,
                    second_language="es",
                    second_script=DEMO_SCRIPT_ES,
                )["id"]
            )
            first = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo")
            store.add_contacts(
                cid,
                [
                    {
                        "first_name": first[i % len(first)],
                        "last_name": f"Voter{i + 1}",
                        "phone": n.number,
                        "city": "Washington",
                        "state": "DC",
                        "zip": f"200{i % 10:02d}",
                        # A VAN ID, as a VAN export brings it (store.contacts keeps it as the external id).
                        "extra": {
                            "ward": str(1 + i % 8),
                            EXTERNAL_ID: str(DEMO_VANID_BASE + i),
                            "language": "Spanish" if i % 3 == 2 else "English",
                        },
                    }
                    for i, n in enumerate(numbers)
                ],
            )
            van.set_mapping(store, cid, DEMO_VAN_MAPPING)
        if store._one("SELECT 1 FROM users WHERE username = 'admin'") is None:
            u.create_user(store, "admin", settings.admin_password(), "admin", name="Demo admin")
        sessions = [s for s in store.open_sessions() if s["campaign_id"] == cid]
        while len(sessions) < 2:
            store.create_session(cid, f"Demo volunteer {len(sessions) + 1}")
            sessions = [s for s in store.open_sessions() if s["campaign_id"] == cid]
        campaign = store.campaign(cid)
        assert campaign is not None
        return campaign, sessions
    finally:
        store.close()


def main(settings: Settings, rt: AsteriskRuntime, count: int = 50) -> int:
    campaign, sessions = prepare(settings, rt, count)
    cid = campaign["id"]
    store = Store(settings.db_path)
    try:
        fresh = u.authenticate(store, "admin", settings.admin_password()) is not None
    finally:
        store.close()
    admin_password = settings.admin_password() if fresh else "(the password you set)"
    panel = settings.public_url or f"http://{settings.api_bind}:{settings.api_port}"
    codes = "\n".join(f"    session {s['id']}: code {s['code']}" for s in sessions)
    pbx_https = settings.ws_url.replace("wss://", "https://", 1).removesuffix("/ws")  # Asterisk's TLS origin
    print(
        f"""
Phone bank demo is up.
  Asterisk instance '{settings.instance}' (root {rt.root}), ARI {rt.ari_url()}
  Effort {cid}: "{DEMO_NAME}" — {count} simulated voters (people, machines, busy, no answer, disconnected)

The panel: {panel}/
  Admin login:  admin / {admin_password}     (build efforts, watch results: {panel}/admin/efforts)
  Caller link:  {panel}/join/{campaign["join_code"]}     (sign in with name, email and phone; then choose
                "Call in", "Computer audio" or "SIP softphone")

Computer audio, from a browser on this machine (Chrome or Firefox, a headset): choose "Computer audio" on the
caller link. The demo's certificate is self-signed: open {pbx_https}/ once and accept the warning (the
page links it too), then Connect.

A volunteer's phone, from this machine (a simulated phone that keys the session code shown on the caller's
screen, stays on the line and records what it hears):
    .venv/bin/phonebank drill volunteer --code CODE
  Ready-made sessions for scripts (they start dialing as soon as the phone is in):
{codes}
  From a SIP softphone: choose "SIP softphone" on the caller link; it shows a login for this shift only
  (server {settings.sip_bind}:{settings.sip_port}, UDP, and a QR code) and the number to dial: no code to key.

Coaching (captains listen, whisper, barge): the admin has the "coach callers" permission. With a caller on
the line, open {panel}/admin/efforts/{cid}/results, pick the caller under "Coach a caller", choose your
audio and press Listen; Whisper, Barge and Listen then switch on the same line, Stop leaves.
  "Call in by phone": a one-off code; a simulated phone keys it with .venv/bin/phonebank drill volunteer --code CODE
  "This browser": computer audio on the dashboard itself (accept {pbx_https}/ once, as above)
  "SIP softphone": a login for this coaching only, gone when it ends

En español: the language switcher at the foot of every page (or a browser set to Spanish) gives the caller's
and the organiser's screens in Spanish.

Results back to VAN: the demo's voters carry VAN IDs and the effort a mapping to VAN's names; after some calls,
  {panel}/admin/efforts/{cid}/van downloads the file VAN's bulk upload takes, and what could not be mapped.

The JSON API (token kept in {settings.secrets_path}):
  curl -H "Authorization: Bearer {settings.api_token()}" {panel}/api/campaigns/{cid}/stats

Ctrl-C stops the controller; `.venv/bin/phonebank asterisk down` stops Asterisk.
""",
        flush=True,
    )
    asyncio.run(serve(settings, rt))
    return 0
