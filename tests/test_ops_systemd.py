"""deploy/systemd: the units pass ``systemd-analyze verify`` (issue 11, section 3) and say what the kit promises.

``verify`` checks every Exec path exists and is executable; the units name the install's paths (/opt/phonebank,
the sid root), so they are verified against a scratch root holding executable stand-ins at exactly those paths
and the machine's own system units (sysinit.target and the rest). Never skipped: ``make deps`` installs systemd.
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from phonebank import sdnotify
from phonebank.cli import build_parser
from phonebank.settings import REPO_ROOT

UNITS = REPO_ROOT / "deploy" / "systemd"
NAMES = ("phonebank-asterisk.service", "phonebank.service")


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def _commands(name: str) -> list[list[str]]:
    service = _unit(name)["Service"]
    return [
        shlex.split(service[key].lstrip("+-@!:"))
        for key in ("ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload")
        if key in service
    ]


def _scratch_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    system = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir())
    shutil.copytree(system, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for name in NAMES:
        shutil.copy(UNITS / name, root / "etc/systemd/system" / name)
        for argv in _commands(name):
            stand_in = root / argv[0].lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("#!/bin/sh\n")
            stand_in.chmod(0o755)
    return root


def _verify(root: Path, *names: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze is missing: `make deps` installs the systemd package"
    return subprocess.run(
        [exe, "verify", "--man=no", "--generators=no", f"--root={root}", *(f"/etc/systemd/system/{n}" for n in names)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    root = _scratch_root(tmp_path)
    res = _verify(root, *NAMES)
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stdout + res.stderr
    # The check bites: a misspelt key is reported, a missing executable fails it.
    broken = root / "etc/systemd/system/phonebank.service"
    broken.write_text(broken.read_text().replace("UMask=", "UMaks="))
    assert "Unknown key" in (_verify(root, "phonebank.service").stderr)
    (root / "opt/phonebank/.venv/bin/phonebank").unlink()
    assert _verify(root, "phonebank-asterisk.service").returncode != 0


def test_units_run_unprivileged_with_restart_and_readiness() -> None:
    pbx, ctl = _unit("phonebank-asterisk.service")["Service"], _unit("phonebank.service")["Service"]
    assert pbx["User"] == "pbx" and ctl["User"] == "phonebank"  # neither runs as root
    assert pbx["Group"] == ctl["Group"] == "phonebank"  # they share prompts, recordings and the security log
    assert pbx["CapabilityBoundingSet"] == "" and ctl["CapabilityBoundingSet"] == ""
    assert pbx["Restart"] == "on-failure" and ctl["Restart"] == "always"
    assert ctl["Type"] == "notify"  # phonebank run says READY=1 (phonebank/sdnotify.py)
    assert "asterisk wait" in pbx["ExecStartPost"]  # Asterisk is ready when ARI answers
    assert "phonebank-asterisk.service" in _unit("phonebank.service")["Unit"]["After"]
    # The privileged helpers are ours and take these arguments.
    parser = build_parser()
    for name in NAMES:
        for argv in _commands(name):
            if argv[0].endswith("/phonebank"):
                parser.parse_args(argv[1:])


def test_sd_notify_reaches_the_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sdnotify.notify("READY=1")
        assert sock.recv(100) == b"READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not sdnotify.notify("READY=1")  # not under systemd: nothing to do
