"""Our answering-machine detector on live calls: RTP from Asterisk's external media, one detector per call.

Asterisk snoops the answered voter leg (their audio only) into a bridge with an external-media channel that
sends slin16 RTP to one UDP socket the controller owns. Packets are told apart by Asterisk's source port,
which the external-media channel reports as ``UNICASTRTP_LOCAL_PORT``. Each call's packets go, in order,
through the same streaming ``AmdDetector`` that ``phonebank amd classify`` uses; its events are handed to a
callback (the adapter turns them into the same verdict seam app_amd drives).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import structlog

from bridge.amd import AmdDetector, AmdParams, Event

log = structlog.get_logger(__name__)

RATE = 16000
RTP_HEADER = 12
# Packets that arrive before their call is registered (the externalMedia reply races the first RTP); bounded
# so stray streams (a tap being torn down) cannot grow memory over a long shift.
MAX_EARLY_PACKETS = 50
MAX_EARLY_SOURCES = 64
# A timestamp jump beyond this is a new timestamp base, not lost audio (the detector decides within 7 s).
MAX_GAP_MS = 10_000


def rtp_payload(packet: bytes) -> tuple[int, bytes] | None:
    """(timestamp, payload) of an RTP packet, or None if it is not one."""
    if len(packet) < RTP_HEADER or packet[0] >> 6 != 2:
        return None
    csrc = packet[0] & 0x0F
    start = RTP_HEADER + 4 * csrc
    if packet[0] & 0x10:  # header extension
        if len(packet) < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(packet[start + 2 : start + 4], "big")
    timestamp = int.from_bytes(packet[4:8], "big")
    payload = packet[start:]
    if packet[0] & 0x20 and payload:  # padding
        payload = payload[: -payload[-1]]
    return timestamp, payload


@dataclass
class _Listener:
    call_id: str
    detector: AmdDetector
    first_ts: int | None = None
    closed: bool = False


@dataclass
class AmdRtpServer(asyncio.DatagramProtocol):
    """One UDP socket for every call's detector."""

    on_event: Callable[[str, Event], None]
    host: str = "127.0.0.1"
    port: int = 0
    _by_source: dict[int, _Listener] = field(default_factory=dict)
    _early: dict[int, list[bytes]] = field(default_factory=dict)
    _transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def register(self, source_port: int, call_id: str, params: AmdParams | None = None) -> None:
        listener = _Listener(call_id, AmdDetector(RATE, params))
        self._by_source[source_port] = listener
        for packet in self._early.pop(source_port, []):
            self._feed(listener, packet)

    def unregister(self, call_id: str) -> None:
        for port, listener in list(self._by_source.items()):
            if listener.call_id == call_id:
                listener.closed = True
                del self._by_source[port]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        listener = self._by_source.get(addr[1])
        if listener is None:
            if addr[1] not in self._early and len(self._early) >= MAX_EARLY_SOURCES:
                self._early.pop(next(iter(self._early)))  # the oldest stray stream
            early = self._early.setdefault(addr[1], [])
            if len(early) < MAX_EARLY_PACKETS:
                early.append(data)
            return
        self._feed(listener, data)

    def _feed(self, listener: _Listener, packet: bytes) -> None:
        if listener.closed:
            return
        parsed = rtp_payload(packet)
        if parsed is None:
            return
        ts, payload = parsed
        if listener.first_ts is None:
            listener.first_ts = ts
        ahead = (ts - listener.first_ts) & 0xFFFFFFFF
        ahead_ms = (ahead - (1 << 32) if ahead >= 1 << 31 else ahead) * 1000 // RATE
        if -MAX_GAP_MS < ahead_ms < 0:
            # From just before the first packet (reordered): late, and its time is already counted. Taken unsigned
            # it looked 2^32 samples ahead, and the detector stepped 13 million frames of "lost" silence on the
            # event loop (bench/capacity.py at 50 volunteers: stalls of 1.4 and 2.2 s for every call).
            return
        if ahead_ms < 0 or ahead_ms - listener.detector.now_ms > MAX_GAP_MS:
            # Far beyond any real loss on the tap: the stream's timestamps have a new base. Carry on from here.
            listener.first_ts = (ts - listener.detector.now_ms * RATE // 1000) & 0xFFFFFFFF
        # slin16 on the wire is big-endian (RFC 3551 L16); the detector takes native little-endian samples.
        pcm = np.frombuffer(payload[: len(payload) // 2 * 2], dtype=">i2").astype("<i2").tobytes()
        now_ms = ((ts - listener.first_ts) & 0xFFFFFFFF) * 1000 // RATE
        for event in listener.detector.feed(pcm, now_ms):
            if event.kind in ("human", "machine"):
                # Audio that never arrived counts as silence: a verdict taken over a hole is worth knowing about.
                log.info(
                    "amd_live.decision",
                    call_id=listener.call_id,
                    kind=event.kind,
                    reason=event.reason,
                    at_ms=event.at_ms,
                    lost_ms=listener.detector.lost_ms,
                )
            try:
                self.on_event(listener.call_id, event)
            except Exception:
                log.exception("amd_live.callback_failed", call_id=listener.call_id)
