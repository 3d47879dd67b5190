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
        out.append(SimNumber(
            number=row["number"].strip(), behaviour=behaviour, ring_s=float(row.get("ring_s") or 3),
            talk_s=float(row.get("talk_s") or 8), tone_hz=int(row.get("tone_hz") or 0),
            audio=(row.get("audio") or "").strip()))
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


def demo_network(count: int = 50, seed: int = 7, area: str = "202") -> list[SimNumber]:
    """A realistic mix for the demo: about a third people, a quarter machines, the rest busy, never
    answered or disconnected."""
    rng = random.Random(seed)
    mix = (["human"] * 34 + ["machine"] * 26 + ["busy"] * 12 + ["noanswer"] * 14 + ["unallocated"] * 10
           + ["congestion"] * 4)
    out = []
    for i in range(count):
        behaviour = rng.choice(mix)
        out.append(SimNumber(
            number=f"+1{area}555{(100 + i) % 10000:04d}",
            behaviour=behaviour,
            ring_s=round(rng.uniform(2, 9), 1),
            talk_s=round(rng.uniform(20, 60), 0),
            tone_hz=signature_tone(i),
            audio=rng.choice(HUMAN_GREETINGS) if behaviour == "human" else
            rng.choice(MACHINE_GREETINGS) if behaviour == "machine" else "",
        ))
    return out


def stage_file(rt: AsteriskRuntime, src: Path, name: str) -> str:
    """Copy a prompt into the instance's sounds dir; returns the path Asterisk plays it by (no extension)."""
    dest = rt.host_path(rt.sounds_dir) / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return f"{rt.sounds_dir}/{Path(name).with_suffix('')}"
