"""A simulated carrier OUTSIDE the PBX under test, for benchmarks and fault tests.

A second Asterisk instance (same root, own ports) runs the simulated telephone network (``phonebank.sim``: people
answering with audio, busy, no answer, machines) behind a SIP trunk. The PBX under test reaches it the way
docs/OPERATIONS.md tells ops to set up a real carrier — the ``PHONEBANK_TRUNK_*`` settings, rendered by
``phonebank.asterisk.trunk_section`` (digest auth on every INVITE, registration) — so the PBX does only a PBX's
work: SIP, RTP and its controller, while greetings and tones are played by the carrier's Asterisk.

Volunteers join from outside too: the carrier places a call to the PBX's call-in DID over the same trunk (it
arrives in ``pb-inbound`` as a phone call would) and keys in the session code.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from bridge.ari import AriClient
from phonebank import sim
from phonebank.harness import Pbx

# The account the PBX registers and authenticates with; the carrier's endpoint for it has the same name (the
# registrar finds the AOR by the To user, and identifies the PBX's INVITEs by their From user).
TRUNK_USER = "pbtrunk"

# Appended to the carrier's own dialplan: a volunteer calling the PBX's DID keys the session code, then stays.
VOLUNTEER_CONTEXT = """
; ---- phonebank.carrier: a volunteer's phone on the carrier's side, calling the PBX's call-in DID
[carrier-volunteer]
exten => s,1,Wait(${PB_DRILL_DELAY})
 same => n,SendDTMF(${PB_DRILL_CODE},250,120)
 same => n,Wait(${PB_DRILL_STAY})
 same => n,Hangup()
"""


def carrier_pjsip(password: str) -> str:
    """The carrier's side of the trunk: it challenges the PBX's INVITEs and REGISTERs (digest), accepts its
    registration, and sends it calls (to its registered contact) for volunteers calling in."""
    return f"""; ---- phonebank.carrier: the PBX under test, as a customer of this carrier
[{TRUNK_USER}]
type = endpoint
context = pb-sim-pstn
disallow = all
allow = ulaw,alaw
direct_media = no
rtp_symmetric = yes
force_rport = yes
rewrite_contact = yes
dtmf_mode = rfc4733
auth = {TRUNK_USER}-auth
aors = {TRUNK_USER}

[{TRUNK_USER}-auth]
type = auth
auth_type = userpass
username = {TRUNK_USER}
password = {password}

[{TRUNK_USER}]
type = aor
max_contacts = 1
remove_existing = yes
"""


@dataclass
class Carrier:
    """The carrier's Asterisk instance and the trunk credentials it gave the PBX."""

    pbx: Pbx
    password: str

    @classmethod
    def start(cls, data_dir: Path, instance: str, rtp_start: int) -> Carrier:
        pbx = Pbx.start(
            data_dir,
            instance=instance,
            extra_env={"PHONEBANK_RTP_START": str(rtp_start), "PHONEBANK_RTP_END": str(rtp_start + 1998)},
        )
        carrier = cls(pbx, secrets.token_urlsafe(12))
        rt = pbx.rt
        etc = rt.host_path(f"{rt.inst}/etc")
        (etc / "pjsip_local.conf").write_text(carrier_pjsip(carrier.password))
        (etc / "pjsip_local.conf").chmod(0o600)
        with (etc / "extensions.conf").open("a") as f:
            f.write(VOLUNTEER_CONTEXT)
        rt.cli("module reload res_pjsip.so")
        rt.cli("dialplan reload")
        return carrier

    def trunk_env(self) -> dict[str, str]:
        """The PBX's settings for this carrier, as an operator would write them for a real one."""
        return {
            "PHONEBANK_TRUNK_HOST": "127.0.0.1",
            "PHONEBANK_TRUNK_PORT": str(self.pbx.settings.sip_port),
            "PHONEBANK_TRUNK_USER": TRUNK_USER,
            "PHONEBANK_TRUNK_PASSWORD": self.password,
            "PHONEBANK_TRUNK_REGISTER": "yes",
        }

    def load(self, numbers: list[sim.SimNumber]) -> None:
        """How each number on the carrier's network answers."""
        self.pbx.load_sim(numbers)

    def registered(self) -> bool:
        """The PBX's registration is in (so calls for the DID can reach it)."""
        return "Avail" in self.pbx.rt.cli(f"pjsip show aor {TRUNK_USER}") or f"{TRUNK_USER}/sip:" in self.pbx.rt.cli(
            "pjsip show contacts"
        )

    def client(self) -> AriClient:
        user, password = self.pbx.ari_credentials()
        return AriClient(self.pbx.rt.ari_url(), user, password, "carrier")

    async def volunteer(
        self,
        ari: AriClient,
        code: str,
        did: str,
        channel_id: str,
        *,
        stay_s: int = 3600,
        delay_s: float = 1.5,
        caller: str = "",
    ) -> None:
        """A volunteer's phone on the carrier's network calls the PBX's DID, keys ``code`` and stays."""
        await ari.post(
            f"channels/{channel_id}",
            endpoint=f"PJSIP/{did}@{TRUNK_USER}",
            context="carrier-volunteer",
            extension="s",
            priority=1,
            timeout=30,
            callerId=f'"Volunteer" <{caller or channel_id[-8:]}>',
            body={"variables": {"PB_DRILL_CODE": code, "PB_DRILL_DELAY": str(delay_s), "PB_DRILL_STAY": str(stay_s)}},
        )

    def stop(self) -> None:
        self.pbx.stop()
