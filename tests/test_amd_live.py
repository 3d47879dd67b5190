"""The RTP side of live detection: packet parsing, routing by source port, packets that beat registration."""

from __future__ import annotations

import struct

from bridge.amd import Event
from bridge.amd_live import AmdRtpServer, rtp_payload


def packet(seq: int, ts: int, payload: bytes, *, csrc: int = 0, ext: bytes = b"", pad: int = 0) -> bytes:
    first = 0x80 | (0x10 if ext else 0) | (0x20 if pad else 0) | csrc
    head = struct.pack("!BBHII", first, 118, seq, ts, 0xABCD) + b"\0\0\0\1" * csrc
    if ext:
        head += struct.pack("!HH", 0xBEDE, len(ext) // 4) + ext
    tail = (b"\0" * (pad - 1) + bytes([pad])) if pad else b""
    return head + payload + tail


def test_rtp_payload_skips_csrc_extension_and_padding() -> None:
    body = b"\x01\x02\x03\x04"
    assert rtp_payload(packet(1, 640, body)) == (640, body)
    assert rtp_payload(packet(1, 640, body, csrc=2)) == (640, body)
    assert rtp_payload(packet(1, 640, body, ext=b"\0" * 8)) == (640, body)
    assert rtp_payload(packet(1, 640, body, pad=4)) == (640, body)
    assert rtp_payload(b"\x00" * 20) is None  # not version 2
    assert rtp_payload(b"\x80") is None


def silence_packets(n: int, start_ts: int = 1000) -> list[bytes]:
    return [packet(i, start_ts + 320 * i, b"\0\0" * 320) for i in range(n)]  # 20 ms of slin16 each


def test_packets_route_by_source_port_and_early_ones_are_kept() -> None:
    events: list[tuple[str, Event]] = []
    server = AmdRtpServer(on_event=lambda call, ev: events.append((call, ev)))
    pkts = silence_packets(200)  # 4 s of silence: someone picked up and waits for us to speak
    for p in pkts[:10]:
        server.datagram_received(p, ("127.0.0.1", 40000))  # before the call is registered
    server.register(40000, "call-a")
    for p in pkts[10:]:
        server.datagram_received(p, ("127.0.0.1", 40000))
    server.datagram_received(pkts[0], ("127.0.0.1", 40002))  # someone else's stream: not call-a's
    decisions = [(call, ev.kind) for call, ev in events if ev.kind in ("human", "machine")]
    assert decisions == [("call-a", "human")]
    assert events[0][1].at_ms >= 2900, "timed on the stream's own clock (RTP timestamps), not arrival"


def test_unregistered_calls_hear_nothing_more() -> None:
    events: list[tuple[str, Event]] = []
    server = AmdRtpServer(on_event=lambda call, ev: events.append((call, ev)))
    server.register(40000, "call-b")
    server.unregister("call-b")
    for p in silence_packets(200):
        server.datagram_received(p, ("127.0.0.1", 40000))
    assert [c for c, _ in events] == []


def test_stray_streams_are_bounded() -> None:
    server = AmdRtpServer(on_event=lambda call, ev: None)
    for port in range(1000):
        for p in silence_packets(60):
            server.datagram_received(p, ("127.0.0.1", 20000 + port))
    assert len(server._early) <= 64 and all(len(v) <= 50 for v in server._early.values())


def test_a_packet_from_before_the_first_or_a_new_timestamp_base_is_not_hours_of_silence() -> None:
    """Measured (bench/capacity.py, 50 volunteers): a reordered packet older than the first made the detector
    step 2^32 samples of "lost" audio, stalling the controller's loop for seconds."""
    events: list[tuple[str, Event]] = []
    server = AmdRtpServer(on_event=lambda call, ev: events.append((call, ev)))
    server.register(40000, "call-c")
    pkts = silence_packets(200, start_ts=50_000)
    server.datagram_received(pkts[1], ("127.0.0.1", 40000))
    server.datagram_received(pkts[0], ("127.0.0.1", 40000))  # older than the first one seen
    listener = server._by_source[40000]
    assert listener.detector.lost_ms < 1000
    for p in pkts[2:100]:
        server.datagram_received(p, ("127.0.0.1", 40000))
    for base in (3_000_000_000, 1_000_000_000):  # new timestamp bases, "behind" and ahead of the first
        for p in [packet(i, base + 320 * i, b"\0\0" * 320) for i in range(50)]:
            server.datagram_received(p, ("127.0.0.1", 40000))
    # 199 packets fed (the late one dropped): the call's clock went on across the new base, no hole added.
    assert listener.detector.lost_ms < 1000 and 3900 <= listener.detector.now_ms <= 4100
