"""A volunteer calls in from a real SIP phone (SIPp over UDP, RFC 4733 keypad), joins with the session
code, stays on the line, and hangs up: the SIP side of the PBX config and the session's pause on hang-up."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest

from phonebank.harness import ControllerProcess, Pbx, free_port, until
from store.db import Store

pytestmark = pytest.mark.asterisk

SCENARIO_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="volunteer call-in">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Volunteer" <sip:volunteer@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:volunteer@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=volunteer 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Volunteer" <sip:volunteer@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:volunteer@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause milliseconds="1500"/>
"""

SCENARIO_TAIL = """  <pause milliseconds="{stay_ms}"/>
  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Volunteer" <sip:volunteer@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {bye_cseq} BYE
Contact: sip:volunteer@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


INFO = """  <send retrans="500"><![CDATA[
INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Volunteer" <sip:volunteer@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} INFO
Contact: sip:volunteer@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={digit}
Duration=160
]]></send>
  <recv response="200"/>
  <pause milliseconds="300"/>
"""


def scenario(code: str, stay_ms: int) -> str:
    """Keys go as SIP INFO (RFC 2976 dtmf-relay): SIPp's canned RFC 4733 captures all carry the same RTP
    timestamp, which a real PBX rightly drops as repeats of the first key."""
    keys = "".join(INFO.format(cseq=2 + i, digit=d) for i, d in enumerate(code))
    return SCENARIO_HEAD + keys + SCENARIO_TAIL.format(stay_ms=stay_ms, bye_cseq=2 + len(code))


async def test_volunteer_calls_in_over_sip(pbx: Pbx, controller: ControllerProcess, tmp_path: Path) -> None:
    assert shutil.which("sipp"), "SIPp (Debian sip-tester) is installed by make test"
    # A softphone endpoint from the shipped template, identified by its address, as ops would add one.
    local = pbx.rt.host_path(f"{pbx.rt.inst}/etc/pjsip_local.conf")
    local.write_text("[sipp](softphone-endpoint)\ndtmf_mode = info\n\n"
                     "[sipp-identify]\ntype = identify\nendpoint = sipp\nmatch = 127.0.0.1\n")
    pbx.rt.cli("module reload res_pjsip.so")
    store = Store(pbx.settings.db_path)
    cid = store.create_campaign("SIP call-in", status="paused")["id"]
    status, session = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Sam"})
    assert status == 201
    xml = tmp_path / "callin.xml"
    xml.write_text(scenario(session["code"], stay_ms=6000))
    sipp = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(xml), "-s", "callin", "-m", "1", "-l", "1", "-i", "127.0.0.1",
         "-p", str(free_port(socket.SOCK_DGRAM)), "-mi", "127.0.0.1",
         "-mp", str(free_port(socket.SOCK_DGRAM)), "-timeout", "40s", "-nostdin",
         f"127.0.0.1:{pbx.settings.sip_port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path)
    try:
        view = await until(lambda: (v := controller.call("GET", f"/api/sessions/{session['id']}")[1])
                           ["phone_connected"] and v, 20, "the SIP volunteer to join")
        assert view["state"] == "idle"
        leg = store.session(session["id"])
        assert leg is not None and leg["channel_id"] and "PJSIP/sipp" in (
            store.conn.execute("SELECT name FROM legs WHERE channel_id = ?", (leg["channel_id"],)).fetchone()[0])
        # The phone hangs up: the session is paused (disconnected), not ended, and nothing is dialled for it.
        out, _ = await asyncio.wait_for(sipp.communicate(), 40)
        assert sipp.returncode == 0, out.decode(errors="replace")[-2000:]
        gone = await until(lambda: (v := controller.call("GET", f"/api/sessions/{session['id']}")[1])
                           ["state"] == "disconnected" and v, 10, "the session to pause")
        assert gone["status"] == "open" and not gone["phone_connected"]
    finally:
        if sipp.returncode is None:
            sipp.kill()
            await sipp.wait()
        local.unlink(missing_ok=True)
        store.close()
