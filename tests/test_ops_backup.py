"""``phonebank backup`` / ``restore``: an online copy taken while the store is being written, restored into a fresh
directory with every row (issue 11, section 3)."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from phonebank import cli
from phonebank.backup import BackupError, Places, backup, restore
from phonebank.settings import Settings
from store.db import Store


def _rows(db: Path) -> dict[int, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT id, name FROM campaigns"))
    finally:
        conn.close()


def test_backup_during_writes_restores_every_row(tmp_path: Path) -> None:
    data, inst = tmp_path / "data", tmp_path / "inst"
    store = Store(data / "phonebank.db")
    for i in range(50):
        store.create_campaign(f"before {i}")
    Settings(data_dir=data).api_token()  # secrets.json
    (data / "uploads").mkdir()
    (data / "uploads" / "list.csv").write_text("First,Phone\nAda,+12025550123\n")
    (inst / "sounds" / "pb").mkdir(parents=True)
    (inst / "sounds" / "pb" / "abandon-1.wav").write_bytes(b"RIFF-abandon")
    (inst / "spool" / "recording").mkdir(parents=True)
    (inst / "spool" / "recording" / "vm-7.wav").write_bytes(b"RIFF-voicemail")
    (inst / "etc").mkdir()
    (inst / "etc" / "pjsip_local.conf").write_text("[trunk](+)\nsend_pai = yes\n")
    (inst / "etc" / "pjsip.conf").write_text("rendered: not backed up")
    before = _rows(data / "phonebank.db")

    # Another connection keeps committing while the backup runs (a live shift).
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        other = Store(data / "phonebank.db")
        try:
            while not stop.is_set():
                written.append(int(other.create_campaign(f"during {len(written)}")["id"]))
        finally:
            other.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:  # the writer is really going before the copy starts
            threading.Event().wait(0.005)
        manifest = backup(Places(data, inst, "main"), tmp_path / "bk")
        writes_after_copy = len(written)
        while len(written) < writes_after_copy + 20:  # and still after it
            threading.Event().wait(0.005)
    finally:
        stop.set()
        thread.join()
    store.close()

    bk = tmp_path / "bk"
    assert stat.S_IMODE(bk.stat().st_mode) == 0o700
    copied = _rows(bk / "phonebank.db")
    assert manifest["tables"]["campaigns"] == len(copied)  # type: ignore[index]
    live = _rows(data / "phonebank.db")
    assert set(before) <= set(copied)  # everything committed before the backup began
    assert all(live[k] == v for k, v in copied.items())  # nothing the source never had
    # One snapshot: the campaigns written during the copy are a prefix of the writer's sequence, not a scattering.
    during = sorted(k for k in copied if k not in before)
    assert during == sorted(written)[: len(during)]
    assert 20 <= len(during) < len(written)

    # Restore into a fresh directory: every row, the secrets, uploads and media.
    fresh, fresh_inst = tmp_path / "fresh", tmp_path / "fresh-inst"
    restore(Places(fresh, fresh_inst, "main"), bk)
    assert _rows(fresh / "phonebank.db") == copied
    restored = Store(fresh / "phonebank.db")  # opens (migrations find nothing to do) and reads
    assert {c["id"] for c in restored.campaigns()} == set(copied)
    restored.close()
    assert json.loads((fresh / "secrets.json").read_text()) == json.loads((data / "secrets.json").read_text())
    assert stat.S_IMODE((fresh / "secrets.json").stat().st_mode) == 0o600
    assert (fresh / "uploads" / "list.csv").read_text().startswith("First,Phone")
    assert (fresh_inst / "sounds" / "pb" / "abandon-1.wav").read_bytes() == b"RIFF-abandon"
    assert (fresh_inst / "spool" / "recording" / "vm-7.wav").read_bytes() == b"RIFF-voicemail"
    assert (fresh_inst / "etc" / "pjsip_local.conf").read_text().startswith("[trunk](+)")
    assert not (fresh_inst / "etc" / "pjsip.conf").exists()  # rendered again from the settings at start

    # A second restore over it is refused without --force; a backup of another instance is refused.
    with pytest.raises(BackupError, match="exists"):
        restore(Places(fresh, fresh_inst, "main"), bk)
    with pytest.raises(BackupError, match="instance"):
        restore(Places(tmp_path / "other", None, "demo2"), bk)
    with pytest.raises(BackupError, match="not empty"):
        backup(Places(data, inst, "main"), bk)


def test_cli_backup_and_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PHONEBANK_ASTERISK", "chroot")
    monkeypatch.setenv("PHONEBANK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PHONEBANK_INSTANCE", "bk-test")
    store = Store(tmp_path / "d1" / "phonebank.db")
    store.create_campaign("Get out the vote")
    store.close()
    assert cli.main(["--data", str(tmp_path / "d1"), "backup", str(tmp_path / "b")]) == 0
    assert json.loads(capsys.readouterr().out)["tables"]["campaigns"] == 1
    assert cli.main(["--data", str(tmp_path / "d2"), "restore", str(tmp_path / "b")]) == 0
    assert list(_rows(tmp_path / "d2" / "phonebank.db").values()) == ["Get out the vote"]
    assert cli.main(["--data", str(tmp_path / "d2"), "restore", str(tmp_path / "b")]) == 2
    assert "--force" in capsys.readouterr().err
    assert cli.main(["--data", str(tmp_path / "d3"), "restore", str(tmp_path / "nothing")]) == 2
    assert "not a phonebank backup" in capsys.readouterr().err
