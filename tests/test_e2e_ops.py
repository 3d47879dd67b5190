"""The operator's kit on the real controller and Asterisk (issue 11, section 3): ``phonebank run`` tells systemd it
is ready, ``/healthz`` sees ARI, ``/metrics`` parses with prometheus_client's parser, and ``phonebank backup`` copies
the live store while the controller holds it open."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from phonebank.harness import ControllerProcess, Pbx

pytestmark = pytest.mark.asterisk

TOKEN = "e2e-metrics-token"


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_ready_health_metrics_and_live_backup(pbx: Pbx, tmp_path: Path) -> None:
    notify = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        sock.settimeout(30)
        ctl = ControllerProcess(
            pbx, tmp_path / "controller.log", extra_env={"NOTIFY_SOCKET": str(notify), "PHONEBANK_METRICS_TOKEN": TOKEN}
        )
        ctl.start()
        try:
            assert sock.recv(100) == b"READY=1"  # Type=notify in deploy/systemd/phonebank.service

            status, body = _get(f"{ctl.api}/healthz")
            assert status == 200 and json.loads(body) == {"ok": True, "store": True, "ari": True, "store_writes": True}

            assert _get(f"{ctl.api}/metrics")[0] == 401
            status, text = _get(f"{ctl.api}/metrics", TOKEN)
            assert status == 200
            families = {f.name: f for f in text_string_to_metric_families(text)}
            connected = families["phonebank_ari_connected"].samples[0].value
            assert connected == 1
            assert families["phonebank_amd_verdict_seconds"].type == "histogram"
            assert families["phonebank_event_loop_lag_seconds"].type == "histogram"
            assert "phonebank_calls_in_flight" in families and "phonebank_ari_reconnects" in families

            # The store is open in the running controller (WAL): back it up from another process.
            out = subprocess.run(
                [sys.executable, "-m", "phonebank.cli", "backup", str(tmp_path / "bk")],
                env={**os.environ, **pbx.env},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert out.returncode == 0, out.stderr
            manifest = json.loads(out.stdout)
            conn = sqlite3.connect(tmp_path / "bk" / "phonebank.db")
            try:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in manifest["tables"]}
            finally:
                conn.close()
            assert counts == manifest["tables"] and "campaigns" in counts
            assert (tmp_path / "bk" / "data" / "secrets.json").exists()
        finally:
            ctl.stop()
