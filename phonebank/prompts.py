"""Spoken prompts made on this machine (espeak-ng + sox), for campaigns that have not recorded their own."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


def synthesize(text: str, dest: Path, voice: str = "en-us", speed: int = 160) -> bool:
    """Write ``text`` as 8 kHz mono 16-bit WAV to ``dest``. False when the speech tools are missing."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        log.warning("prompts.tools_missing", need="espeak-ng sox")
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True, capture_output=True
        )
        subprocess.run(
            ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(dest), "norm", "-3"],
            check=True,
            capture_output=True,
        )
    return True
