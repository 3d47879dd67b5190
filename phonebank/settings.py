"""Runtime settings: environment variables over defaults, secrets generated once into the data dir."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PHONEBANK_{name}", default)


@dataclass(frozen=True)
class TrunkSettings:
    """A real carrier trunk. Empty host means calls go to the simulated network."""

    host: str = ""
    port: int = 5060
    username: str = ""
    password: str = ""
    register: bool = False
    from_user: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    instance: str = "main"
    cache_dir: Path = Path("/var/cache/phonebank")
    app: str = "phonebank"
    ari_bind: str = "127.0.0.1"
    ari_port: int = 8088
    sip_bind: str = "127.0.0.1"
    sip_port: int = 5060
    rtp_start: int = 20000
    rtp_end: int = 20999
    api_bind: str = "127.0.0.1"
    api_port: int = 8080
    # The number volunteers dial (the DID on the trunk); shown to volunteers with their code.
    callin_number: str = "callin"
    # Where the panel is reached from volunteers' browsers (printed links).
    public_url: str = ""
    # Reverse proxies (addresses or networks, comma separated) whose X-Forwarded-For names the browser's address
    # for the login throttle; empty: the connecting address is the browser's.
    trusted_proxies: str = ""
    # Limits on guessing call-in codes (callin/guard.py Limits as JSON, e.g. '{"lock_after": 6}'); empty: defaults.
    callin_limits: str = ""
    trunk: TrunkSettings = field(default_factory=TrunkSettings)
    # "auto": a system Asterisk >= 20 if present, else the Debian sid root; "system" or "chroot" to force.
    asterisk_mode: str = "auto"

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> Settings:
        data = Path(data_dir or _env("DATA", str(REPO_ROOT / "data"))).resolve()
        trunk = TrunkSettings(
            host=_env("TRUNK_HOST", ""),
            port=int(_env("TRUNK_PORT", "5060")),
            username=_env("TRUNK_USER", ""),
            password=_env("TRUNK_PASSWORD", ""),
            register=_env("TRUNK_REGISTER", "no").lower() in ("1", "yes", "true"),
            from_user=_env("TRUNK_FROM_USER", ""),
        )
        return cls(
            data_dir=data,
            instance=_env("INSTANCE", "main"),
            cache_dir=Path(_env("CACHE", "/var/cache/phonebank")),
            app=_env("APP", "phonebank"),
            ari_port=int(_env("ARI_PORT", "8088")),
            sip_bind=_env("SIP_BIND", "127.0.0.1"),
            sip_port=int(_env("SIP_PORT", "5060")),
            rtp_start=int(_env("RTP_START", "20000")),
            rtp_end=int(_env("RTP_END", "20999")),
            api_bind=_env("API_BIND", "127.0.0.1"),
            api_port=int(_env("API_PORT", "8080")),
            callin_number=_env("CALLIN_NUMBER", "callin"),
            public_url=_env("PUBLIC_URL", ""),
            trusted_proxies=_env("TRUSTED_PROXIES", ""),
            callin_limits=_env("CALLIN_LIMITS", ""),
            trunk=trunk,
            asterisk_mode=_env("ASTERISK", "auto"),
        )

    @property
    def db_path(self) -> Path:
        return self.data_dir / "phonebank.db"

    @property
    def secrets_path(self) -> Path:
        return self.data_dir / "secrets.json"

    def _secret(self, key: str, make: Callable[[], str]) -> str:
        """A secret generated on first use and kept in the data dir (mode 0600)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.secrets_path
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        if key not in stored:
            stored[key] = make()
            path.write_text(json.dumps(stored, indent=2))
            path.chmod(0o600)
        return stored[key]

    def ari_credentials(self) -> tuple[str, str]:
        """The ARI user and password."""
        return "phonebank", self._secret("ari_password", lambda: secrets.token_urlsafe(24))

    def api_token(self) -> str:
        """Bearer token for the JSON API from scripts and ops tools (the panel's users log in instead)."""
        return _env("API_TOKEN", "") or self._secret("api_token", lambda: secrets.token_urlsafe(32))

    def admin_password(self) -> str:
        """The first admin's password, made for ``make demo`` and printed by it."""
        return self._secret("admin_password", lambda: secrets.token_urlsafe(12))

    @property
    def dial_template(self) -> str:
        """How a voter's number becomes an Asterisk endpoint."""
        if self.trunk.configured:
            return "PJSIP/{number}@trunk"
        return "Local/{number}@pb-sim-pstn/n"
