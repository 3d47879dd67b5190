"""A volunteer calls in from a real SIP phone (SIPp over UDP; keypad in the media or as SIP INFO), joins with
the session code, stays on the line, and hangs up: the SIP side of the PBX config and the session's pause on
hang-up."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
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


def rfc4733_pcap(path: Path, digit: str, index: int) -> None:
    """One key press as RFC 4733 telephone-events (payload type 101) in a pcap SIPp can play. Each key gets
    its own RTP timestamp and sequence numbers: SIPp's canned captures all share one timestamp, which a real
    PBX rightly drops as repeats of the first key."""
    event = "0123456789*#".index(digit)
    records = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(10):  # 7 updates every 20 ms, then the end packet three times
        end = i >= 7
        payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, (min(i, 6) + 1) * 160)
        rtp = (
            struct.pack(
                "!BBHII", 0x80, (0x80 if i == 0 else 0) | 101, 1000 + 20 * index + i, 24000 * (index + 1), 0x1234ABCD
            )
            + payload
        )
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
        )
        total = sum(struct.unpack("!10H", ip))
        total = (total >> 16) + (total & 0xFFFF)
        ip = ip[:10] + struct.pack("!H", ~(total + (total >> 16)) & 0xFFFF) + ip[12:]
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        records.append(struct.pack("<IIII", 0, 20000 * i, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(records))


def scenario(code: str, stay_ms: int, keypad: str, workdir: Path) -> str:
    """The call-in with the code keyed as SIP INFO (RFC 2976 dtmf-relay) or in the media (RFC 4733)."""
    if keypad == "info":
        keys = "".join(INFO.format(cseq=2 + i, digit=d) for i, d in enumerate(code))
        return SCENARIO_HEAD + keys + SCENARIO_TAIL.format(stay_ms=stay_ms, bye_cseq=2 + len(code))
    keys = ""
    for i, d in enumerate(code):
        pcap = workdir / f"key{i}.pcap"
        rfc4733_pcap(pcap, d, i)
        keys += f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n  <pause milliseconds="400"/>\n'
    return SCENARIO_HEAD + keys + SCENARIO_TAIL.format(stay_ms=stay_ms, bye_cseq=2)


@pytest.mark.parametrize("keypad", ["rfc4733", "info"])
async def test_volunteer_calls_in_over_sip(
    pbx: Pbx, controller: ControllerProcess, tmp_path: Path, keypad: str
) -> None:
    assert shutil.which("sipp"), "SIPp (Debian sip-tester) is installed by make test"
    # A softphone endpoint from the shipped template, identified by its address, as ops would add one.
    local = pbx.rt.host_path(f"{pbx.rt.inst}/etc/pjsip_local.conf")
    local.write_text(
        f"[sipp](softphone-endpoint)\ndtmf_mode = {keypad}\n\n"
        "[sipp-identify]\ntype = identify\nendpoint = sipp\nmatch = 127.0.0.1\n"
    )
    pbx.rt.cli("module reload res_pjsip.so")
    store = Store(pbx.settings.db_path)
    cid = store.create_campaign("SIP call-in", status="paused")["id"]
    status, session = controller.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Sam"})
    assert status == 201
    xml = tmp_path / "callin.xml"
    xml.write_text(scenario(session["code"], 6000, keypad, tmp_path))
    sipp = await asyncio.create_subprocess_exec(
        "sipp",
        "-sf",
        str(xml),
        "-s",
        "callin",
        "-m",
        "1",
        "-l",
        "1",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port(socket.SOCK_DGRAM)),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_port(socket.SOCK_DGRAM)),
        "-timeout",
        "40s",
        "-nostdin",
        f"127.0.0.1:{pbx.settings.sip_port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        view = await until(
            lambda: (v := controller.call("GET", f"/api/sessions/{session['id']}")[1])["phone_connected"] and v,
            20,
            "the SIP volunteer to join",
        )
        assert view["state"] == "idle"
        leg = store.session(session["id"])
        assert (
            leg is not None
            and leg["channel_id"]
            and "PJSIP/sipp"
            in (store.conn.execute("SELECT name FROM legs WHERE channel_id = ?", (leg["channel_id"],)).fetchone()[0])
        )
        # The phone hangs up: the session is paused (disconnected), not ended, and nothing is dialled for it.
        out, _ = await asyncio.wait_for(sipp.communicate(), 40)
        assert sipp.returncode == 0, out.decode(errors="replace")[-2000:]
        gone = await until(
            lambda: (v := controller.call("GET", f"/api/sessions/{session['id']}")[1])["state"] == "disconnected" and v,
            10,
            "the session to pause",
        )
        assert gone["status"] == "open" and not gone["phone_connected"]
    finally:
        if sipp.returncode is None:
            sipp.kill()
            await sipp.wait()
        local.unlink(missing_ok=True)
        # Unload the identify too: Asterisk identifies by address before user name, so a leftover "127.0.0.1 is
        # sipp" would take every later SIP request from loopback (the per-session accounts' tests) for sipp.
        pbx.rt.cli("module reload res_pjsip.so")
        store.close()
