"""The simulated telephone network: per-number behaviour from data, rendered into Asterisk's dialplan.

A CSV (``number,behaviour,ring_s,talk_s,tone_hz,audio``) says how each number answers: ``human``
(greets, waits, then talks — a steady signature tone marks that voter's audio in recordings), ``machine``
(a long greeting, optionally a beep, then records the message left), ``busy``, ``noanswer``,
``unallocated`` or ``congestion``. Numbers not in the table do not exist. If ``<number>.wav`` is in the
simulation audio folder, that number plays it instead of its default greeting.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from phonebank.asterisk import AsteriskRuntime
from phonebank.settings import REPO_ROOT

AUDIO_DIR = REPO_ROOT / "data" / "sim" / "audio"
BEHAVIOURS = ("human", "machine", "busy", "noanswer", "unallocated", "congestion", "clip")
HUMAN_GREETINGS = ("human-hello-1", "human-hello-2", "human-hello-3")
MACHINE_GREETINGS = ("machine-greeting-1", "machine-greeting-2")
FAIL_CAUSES = {"busy": 17, "unallocated": 1, "congestion": 34}


@dataclass(frozen=True)
class SimNumber:
    number: str  # E.164
    behaviour: str
    ring_s: float = 3.0
    talk_s: float = 8.0
    tone_hz: int = 0
    audio: str = ""  # file stem in the simulation audio folder

    @property
    def digits(self) -> str:
        return self.number.lstrip("+")


def read_csv(text: str) -> list[SimNumber]:
    out = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        behaviour = (row.get("behaviour") or "").strip()
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"line {line}: behaviour must be one of {', '.join(BEHAVIOURS)}, not {behaviour!r}")
        out.append(
            SimNumber(
                number=row["number"].strip(),
                behaviour=behaviour,
                ring_s=float(row.get("ring_s") or 3),
                talk_s=float(row.get("talk_s") or 8),
                tone_hz=int(row.get("tone_hz") or 0),
                audio=(row.get("audio") or "").strip(),
            )
        )
    return out


def write_csv(numbers: list[SimNumber]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["number", "behaviour", "ring_s", "talk_s", "tone_hz", "audio"])
    for n in numbers:
        w.writerow([n.number, n.behaviour, n.ring_s, n.talk_s, n.tone_hz, n.audio])
    return buf.getvalue()


def signature_tone(index: int) -> int:
    """Distinct tones per voter so a recording tells which voter was heard. Above 2.6 kHz: a steady tone in
    the voice band is what an answering machine's beep looks like, and would (rightly) make the detector take
    a simulated person for a machine."""
    return 2700 + 23 * (index % 30)


def dialplan(numbers: list[SimNumber]) -> str:
    lines = ["; rendered by phonebank.sim from the simulated network table — do not edit"]
    for n in numbers:
        lines.append(f"exten => {n.digits},1,Set(EXTEN_DIALED=${{EXTEN}})")
        if n.behaviour == "human":
            greeting = f"${{PB_SIM}}/{n.audio or HUMAN_GREETINGS[0]}"
            args = f"{n.ring_s:g},{greeting},{n.tone_hz or 2700},{n.talk_s:g}"
            lines.append(f" same => n,Gosub(pb-sim-human,s,1({args}))")
        elif n.behaviour == "machine":
            greeting = f"${{PB_SIM}}/{n.audio or MACHINE_GREETINGS[0]}"
            lines.append(f" same => n,Gosub(pb-sim-machine,s,1({n.ring_s:g},{greeting},1))")
        elif n.behaviour == "noanswer":
            lines.append(" same => n,Gosub(pb-sim-noanswer,s,1)")
        elif n.behaviour == "clip":
            # Benchmarks (bench/amd.py): answer at once, play exactly this recording, then silence.
            lines.append(f" same => n,Gosub(pb-sim-clip,s,1(${{PB_SIM}}/{n.audio or n.digits}))")
        else:
            lines.append(f" same => n,Gosub(pb-sim-fail,s,1({n.ring_s:g},{FAIL_CAUSES[n.behaviour]}))")
    return "\n".join(lines) + "\n"


def load(rt: AsteriskRuntime, numbers: list[SimNumber], reload: bool = True) -> None:
    """Install the table and the shipped audio into the instance and reload the dialplan."""
    sim = rt.host_path(rt.sim_dir)
    (sim / "vm").mkdir(parents=True, exist_ok=True)
    for wav in AUDIO_DIR.glob("*.wav"):
        shutil.copyfile(wav, sim / wav.name)
    etc = rt.host_path(f"{rt.inst}/etc")
    (etc / "pb_sim_numbers.conf").write_text(dialplan(numbers))
    if reload and rt.running():
        rt.cli("dialplan reload")


def demo_network(count: int = 50, seed: int = 7, prefix: str | None = None) -> list[SimNumber]:
    """A realistic mix for the demo: about a third people, a quarter machines, the rest busy, never
    answered or disconnected. Numbers start with ``prefix`` (default: a region where it is calling hours now,
    since the dialer calls nobody outside 8am-9pm local)."""
    prefix = prefix or daytime_prefix(margin_s=3600)
    rng = random.Random(seed)
    mix = (
        ["human"] * 34
        + ["machine"] * 26
        + ["busy"] * 12
        + ["noanswer"] * 14
        + ["unallocated"] * 10
        + ["congestion"] * 4
    )
    out = []
    for i in range(count):
        behaviour = rng.choice(mix)
        out.append(
            SimNumber(
                number=f"{prefix}{(100 + i) % 10000:04d}",
                behaviour=behaviour,
                ring_s=round(rng.uniform(2, 9), 1),
                talk_s=round(rng.uniform(20, 60), 0),
                tone_hz=signature_tone(i),
                audio=rng.choice(HUMAN_GREETINGS)
                if behaviour == "human"
                else rng.choice(MACHINE_GREETINGS)
                if behaviour == "machine"
                else "",
            )
        )
    return out


def stage_file(rt: AsteriskRuntime, src: Path, name: str) -> str:
    """Copy a prompt into the instance's sounds dir; returns the path Asterisk plays it by (no extension)."""
    dest = rt.host_path(rt.sounds_dir) / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return f"{rt.sounds_dir}/{Path(name).with_suffix('')}"


# Simulated numbers by region: a prefix that 4 more digits make a valid number, and the zone phonenumbers gives
# it. Between them some region is always inside 8:00–21:00 local, so a test on the simulated network can dial at
# any hour without bending the calling-hours rule (the dialer checks every number's local time).
DAYTIME_REGIONS: tuple[tuple[str, str], ...] = (
    ("+1202555", "America/New_York"),
    ("+1787555", "America/Puerto_Rico"),
    ("+1808555", "Pacific/Honolulu"),
    ("+1671555", "Pacific/Guam"),
    ("+44207946", "Europe/London"),
)


def daytime_prefix(now: float | None = None, margin_s: float = 900.0) -> str:
    """A number prefix whose local time is inside calling hours from ``now`` until ``margin_s`` later. Complete
    it with 4 digits, e.g. ``prefix + "0123"``."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    for prefix, zone in DAYTIME_REGIONS:
        start = moment.astimezone(ZoneInfo(zone))
        end = (moment + timedelta(seconds=margin_s)).astimezone(ZoneInfo(zone))
        if start.hour >= 8 and (end.hour < 21 and end.date() == start.date()):
            return prefix
    raise RuntimeError("no simulated region is inside calling hours now")


def network_from_fates(
    fates: list[tuple[str, float, float]], talks: list[float], prefix: str, talk_offset_s: float = 2.2, seed: int = 11
) -> list[SimNumber]:
    """Simulated numbers that behave as ``bridge.pacing_sim.dial_fates`` drew: the n-th number answers (or not)
    the way the simulator's n-th dial does. ``talks`` are the conversation lengths of the humans in turn; each
    simulated person talks that long after being put through (``talk_offset_s``: from our human verdict to the
    end of their "hello" pause, which the person's ``talk_s`` does not include)."""
    rng = random.Random(seed)
    out: list[SimNumber] = []
    humans = 0
    for i, (kind, ring, _det) in enumerate(fates):
        number = f"{prefix}{i % 10000:04d}"
        if kind == "human":
            talk = talks[humans % len(talks)] if talks else 10.0
            humans += 1
            out.append(
                SimNumber(
                    number,
                    "human",
                    ring_s=round(ring, 1),
                    talk_s=round(max(1.0, talk - talk_offset_s)),
                    tone_hz=signature_tone(i),
                    audio=rng.choice(HUMAN_GREETINGS),
                )
            )
        elif kind == "machine":
            out.append(SimNumber(number, "machine", ring_s=round(ring, 1), audio=rng.choice(MACHINE_GREETINGS)))
        elif kind == "fast_fail":
            out.append(
                SimNumber(number, rng.choice(("busy", "busy", "unallocated", "congestion")), ring_s=round(ring, 1))
            )
        else:
            out.append(SimNumber(number, "noanswer"))
    return out
