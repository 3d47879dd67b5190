"""The operator's kit on disk: rendered files holding secrets are the owner's alone (issue 11, section 3)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from phonebank.asterisk import SECRET_FILES, AsteriskRuntime
from phonebank.settings import Settings, TrunkSettings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_rendered_secrets_are_mode_0600(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/lib/asterisk/modules").mkdir(parents=True)
    (root / "usr/lib/asterisk/modules/app_stasis.so").touch()
    (root / "usr/share/asterisk/sounds").mkdir(parents=True)
    trunk = TrunkSettings(host="sip.carrier.example", username="acct123", password="trunk-secret", register=True)
    settings = Settings(
        data_dir=tmp_path / "data",
        instance="modes",
        trunk=trunk,
        turn_urls="turn:t.example:3478",
        turn_user="pb",
        turn_password="turn-secret",
    )
    rt = AsteriskRuntime(settings, root)
    old = os.umask(0o022)  # a usual umask: without care every rendered file would be world-readable
    try:
        etc = rt.host_path(f"{rt.inst}/etc")
        etc.mkdir(parents=True)
        (etc / "pjsip.conf").write_text("old")  # an earlier render left a world-readable file behind
        (etc / "pjsip.conf").chmod(0o644)
        rt.render_config()
    finally:
        os.umask(old)
    assert "trunk-secret" in (etc / "pjsip.conf").read_text()
    assert "turn-secret" in (etc / "rtp.conf").read_text()
    assert settings.ari_credentials()[1] in (etc / "ari.conf").read_text()
    for name in SECRET_FILES:
        assert _mode(etc / name) == 0o600, name
    assert _mode(etc / "keys" / "https.key") == 0o600
    assert _mode(settings.secrets_path) == 0o600
    # Files without secrets stay readable (Asterisk and the controller share the tree).
    assert _mode(etc / "extensions.conf") == 0o644
    # Every file in the instance holding a password is among the 0600 ones.
    secrets = [settings.ari_credentials()[1], "trunk-secret", "turn-secret"]
    for path in etc.rglob("*"):
        if path.is_file() and path.suffix == ".conf" and any(s in path.read_text() for s in secrets):
            assert _mode(path) == 0o600, path


def test_secrets_json_is_created_0600(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        settings = Settings(data_dir=tmp_path / "d")
        token = settings.api_token()
    finally:
        os.umask(old)
    assert _mode(settings.secrets_path) == 0o600
    assert json.loads(settings.secrets_path.read_text())["api_token"] == token
