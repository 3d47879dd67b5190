"""``phonebank backup DEST`` / ``phonebank restore SRC``: everything a campaign would miss after losing the box.

A backup is a directory (mode 0700: it holds the secrets):

* ``phonebank.db``: the store, copied with SQLite's online backup API in one step. The store is in WAL mode, so the
  copy reads one consistent snapshot while the controller keeps writing (a live shift is not paused).
* ``data/``: everything else in the data directory (``secrets.json``, ``uploads/``, ``tls/``), files as they are.
* ``media/sounds/``, ``media/recording/``: the instance's prompts (abandon and voicemail messages made or uploaded
  in the panel) and the voicemail messages recorded by phone, which the store names by their Asterisk path.
* ``local/etc/pjsip_local.conf``: the carrier specifics ops wrote by hand beside the rendered config.
* ``manifest.json``: when, which instance, and the row count of every table (restore checks them).

Restore puts them back for the same ``PHONEBANK_INSTANCE`` (the store names media by the instance's path) into a
data directory that has no store yet, unless ``--force``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "phonebank.db"
# Instance directories with media the store refers to (Asterisk paths under the instance).
MEDIA_DIRS = {"sounds": "sounds", "recording": "spool/recording"}
# Hand-written config beside the rendered files (carrier specifics): never rendered, so only a backup has it.
LOCAL_CONFIG = ("etc/pjsip_local.conf",)


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message says why."""


@dataclass(frozen=True)
class Places:
    """Where the live files are: the data directory and the instance directory as the controller sees it."""

    data_dir: Path
    instance_dir: Path | None
    instance: str


def _table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def _copy_db(src: Path, dest: Path) -> dict[str, int]:
    """An online, consistent copy of ``src`` (read-only connection, one backup step) and its table counts."""
    # Not mode=ro: a read-only connection cannot open a WAL store whose -shm file is missing (controller stopped).
    source = sqlite3.connect(src, timeout=30)
    target = sqlite3.connect(dest)
    try:
        # pages=-1: the whole database in one step, i.e. inside one read transaction = one snapshot of the WAL.
        source.backup(target, pages=-1)
        check = target.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the copy of {src} failed its integrity check: {check}")
        return _table_counts(target)
    finally:
        target.close()
        source.close()


def _copy_tree(src: Path, dest: Path, skip: frozenset[str] = frozenset()) -> int:
    n = 0
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if rel.parts[0] in skip or not path.is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / rel)
        n += 1
    return n


def backup(places: Places, dest: Path) -> dict[str, object]:
    """Write a backup into the new or empty directory ``dest``; returns the manifest."""
    db = places.data_dir / DB_NAME
    if not db.exists():
        raise BackupError(f"no store at {db}")
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: back up into a new directory")
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o700)
    counts = _copy_db(db, dest / DB_NAME)
    (dest / DB_NAME).chmod(0o600)
    skip = frozenset({DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal"})
    data_files = _copy_tree(places.data_dir, dest / "data", skip)
    media_files = 0
    if places.instance_dir is not None:
        for name, sub in MEDIA_DIRS.items():
            src = places.instance_dir / sub
            if src.is_dir():
                media_files += _copy_tree(src, dest / "media" / name)
        for rel in LOCAL_CONFIG:
            if (places.instance_dir / rel).is_file():
                (dest / "local" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(places.instance_dir / rel, dest / "local" / rel)
    manifest: dict[str, object] = {
        "format": 1,
        "created": time.time(),
        "instance": places.instance,
        "tables": counts,
        "data_files": data_files,
        "media_files": media_files,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def restore(places: Places, src: Path, force: bool = False) -> dict[str, object]:
    """Put the backup in ``src`` back; refuses to overwrite a store unless ``force``. Returns the manifest."""
    try:
        manifest = json.loads((src / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{src} is not a phonebank backup (no readable manifest.json): {exc}") from exc
    if manifest.get("instance") != places.instance:
        raise BackupError(
            f"the backup is of instance {manifest.get('instance')!r}, this is {places.instance!r} "
            "(set PHONEBANK_INSTANCE: the store names media by the instance's path)"
        )
    db = places.data_dir / DB_NAME
    if db.exists() and not force:
        raise BackupError(
            f"{db} exists: restore into a fresh data directory, or --force to replace it (stop the controller first)"
        )
    places.data_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)  # a stale WAL would be replayed over the restored store
    counts = _copy_db(src / DB_NAME, db)
    db.chmod(0o600)
    if counts != manifest.get("tables"):
        raise BackupError(f"restored store's rows {counts} differ from the backup's manifest {manifest['tables']}")
    if (src / "data").is_dir():
        _copy_tree(src / "data", places.data_dir)
        secrets = places.data_dir / "secrets.json"
        if secrets.exists():
            os.chmod(secrets, 0o600)
    if places.instance_dir is not None:
        for name, sub in MEDIA_DIRS.items():
            if (src / "media" / name).is_dir():
                _copy_tree(src / "media" / name, places.instance_dir / sub)
        if (src / "local").is_dir():
            _copy_tree(src / "local", places.instance_dir)
    return manifest
