"""A real SIP softphone for the end-to-end tests: PJSIP's own user agent (pjsua2, the ``pjsua2-python`` wheel) with
a null sound card, a recorder for what it hears and a tone it sends. It runs as its own process (pjsua2 keeps its
own threads and sockets) and reports what happens as JSON lines on stdout:

    python -m tests.sipua --server 127.0.0.1:5060 --user U --password P --register --call join \
        --record heard.wav --seconds 30

Events: {"event": "registered", "code": 200} (or another SIP status), {"event": "call", "state": "CONFIRMED",
"code": 200}, {"event": "media"}, {"event": "ended", "code": ..., "reason": ...}, {"event": "done"}.

With ``--stdin`` it stays (after registering, if asked) and takes commands, one a line: ``register`` (REGISTER
now, as its refresh timer would), ``call EXT``, ``hangup``, ``quit``; the events say what came of them.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import time
from collections.abc import Callable

import pjsua2 as pj


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


class Account(pj.Account):
    def __init__(self, answer: bool = False, record: str = "", tone_hz: int = 0) -> None:
        super().__init__()
        self.reg_code: int | None = None
        self.answer = answer
        self.record = record
        self.tone_hz = tone_hz
        self.incoming: Call | None = None

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = Call(self, self.record, self.tone_hz, prm.callId)
        emit(event="incoming")
        op = pj.CallOpParam()
        op.statusCode = 200 if self.answer and self.incoming is None else 486
        if op.statusCode == 200:
            self.incoming = call
        call.answer(op)

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        self.reg_code = int(prm.code)
        emit(event="registered", code=int(prm.code), reason=str(prm.reason))


class Call(pj.Call):
    def __init__(self, acc: pj.Account, record: str, tone_hz: int, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(acc, call_id)
        self.record = record
        self.tone_hz = tone_hz
        self.recorder: pj.AudioMediaRecorder | None = None
        self.tones: pj.ToneGenerator | None = None
        self.ended = False

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        ci = self.getInfo()
        emit(event="call", state=ci.stateText, code=int(ci.lastStatusCode), reason=str(ci.lastReason))
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ended = True
            emit(event="ended", code=int(ci.lastStatusCode), reason=str(ci.lastReason))

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        ci = self.getInfo()
        for i, mi in enumerate(ci.media):
            if mi.type != pj.PJMEDIA_TYPE_AUDIO or mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            am = self.getAudioMedia(i)
            if self.record and self.recorder is None:
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(self.record)
                am.startTransmit(self.recorder)
            if self.tone_hz and self.tones is None:
                self.tones = pj.ToneGenerator()
                self.tones.createToneGenerator()
                desc = pj.ToneDesc()
                desc.freq1 = self.tone_hz
                desc.freq2 = 0
                desc.on_msec = 1000
                desc.off_msec = 200
                tones = pj.ToneDescVector()
                tones.append(desc)
                self.tones.play(tones, True)
                self.tones.startTransmit(am)
            emit(event="media")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="host:port (UDP)")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--register", action="store_true")
    ap.add_argument("--call", default="", help="the extension or number to call")
    ap.add_argument("--record", default="")
    ap.add_argument("--tone", type=int, default=0, help="send this tone (Hz) to the other side")
    ap.add_argument("--answer", action="store_true", help="answer one incoming call (after --register)")
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to stay (the call hangs up after)")
    ap.add_argument("--stdin", action="store_true", help="take commands from stdin (see the module docstring)")
    args = ap.parse_args(argv)

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    # Send audio all the time (no silence suppression): the PBX hangs up legs that stay quiet for 20 s.
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.port = 0
    tcfg.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()

    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{args.user}@{args.server}"
    if args.register:
        acfg.regConfig.registrarUri = f"sip:{args.server}"
        acfg.regConfig.timeoutSec = 300
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", args.user, 0, args.password))
    acc = Account(args.answer, args.record, args.tone)
    acc.create(acfg)

    def pump(seconds: float, until: object = None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ep.libHandleEvents(20)
            if callable(until) and until():
                return

    if args.register:
        pump(10, lambda: acc.reg_code is not None)  # pjsua reports the final answer only
        if acc.reg_code is None:
            emit(event="registered", code=0, reason="no answer")
    call: Call | None = None
    if args.stdin:
        call = commands(acc, args, pump)
    elif args.call:
        call = Call(acc, args.record, args.tone)
        prm = pj.CallOpParam(True)
        call.makeCall(f"sip:{args.call}@{args.server}", prm)
        pump(args.seconds, lambda: call is not None and call.ended)
        if not call.ended:
            call.hangup(pj.CallOpParam(True))
            pump(2, lambda: call is not None and call.ended)
        if call.recorder is not None:
            del call.recorder  # closes the WAV (writes its header)
    elif args.seconds and args.register:
        pump(args.seconds, lambda: acc.incoming is not None and acc.incoming.ended)
        if acc.incoming is not None and not acc.incoming.ended:
            acc.incoming.hangup(pj.CallOpParam(True))
            pump(2, lambda: acc.incoming is not None and acc.incoming.ended)
    if args.register and acc.reg_code == 200:
        acc.setRegistration(False)
        pump(2)
    emit(event="done")
    # pjsua2's Python objects assert on their way out after a call ended; nothing is left to flush.
    os._exit(0)


def commands(acc: Account, args: argparse.Namespace, pump: Callable[..., None]) -> Call | None:
    """The --stdin loop: pjsua2's events are handled between lines (everything on this one thread)."""
    call: Call | None = None
    # Raw reads and our own line buffer: select() cannot see lines a buffered sys.stdin already took in.
    pending, eof = b"", False
    lines: list[str] = []
    while not eof:
        pump(0.05)
        if select.select([sys.stdin], [], [], 0)[0]:
            data = os.read(sys.stdin.fileno(), 4096)
            eof = not data
            pending += data
            *done, pending = pending.split(b"\n")
            lines += [x.decode() for x in done]
        while lines:
            words = lines.pop(0).split()
            if words == ["quit"]:
                eof = True
                break
            if words == ["register"]:
                acc.reg_code = None
                try:
                    acc.setRegistration(True)
                except pj.Error as exc:
                    emit(event="error", command="register", reason=str(exc.info()))
            elif words[:1] == ["call"] and len(words) == 2:
                call = Call(acc, args.record, args.tone)
                call.makeCall(f"sip:{words[1]}@{args.server}", pj.CallOpParam(True))
            elif words == ["hangup"] and call is not None and not call.ended:
                call.hangup(pj.CallOpParam(True))
    if call is not None and not call.ended:
        call.hangup(pj.CallOpParam(True))
        pump(2, lambda: call is not None and call.ended)
    return call


if __name__ == "__main__":
    sys.exit(main())
