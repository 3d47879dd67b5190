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
    # Asterisk's HTTPS server: secure WebSocket (WSS) for browsers' computer audio. It is the same HTTP server as
    # ARI, so whoever reaches this port also reaches ARI's password prompt: see docs/OPERATIONS.md.
    tls_bind: str = "127.0.0.1"
    tls_port: int = 8089
    # Production: a real certificate (PEM) and its key. Empty: a self-signed one is made in the data dir.
    tls_cert: str = ""
    tls_key: str = ""
    # The host volunteers' browsers and softphones use to reach Asterisk (shown with softphone credentials).
    sip_public_host: str = ""
    # ICE servers for volunteers behind NAT, comma separated (e.g. "stun:stun.example.org:3478",
    # "turn:turn.example.org:3478?transport=udp"), with the TURN server's user and password.
    stun_urls: str = ""
    turn_urls: str = ""
    turn_user: str = ""
    turn_password: str = ""
    # Failed SIP logins: "failures/window_s/ban_s" per address (empty: 10/60/600), and addresses never banned.
    sip_guard: str = ""
    sip_guard_exempt: str = ""
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
    # The call-in's languages, in the order a caller hears them until their code says which is theirs (callin.entry;
    # docs/OPERATIONS.md "Languages on the phone"): "en,es" says "enter your code" in English then Spanish; "en"
    # for an English-only phone bank.
    callin_languages: str = "en,es"
    trunk: TrunkSettings = field(default_factory=TrunkSettings)
    # The user Asterisk runs as (deploy/systemd: "pbx"): rendering gives it the instance tree. Empty: unchanged.
    asterisk_user: str = ""
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
            tls_bind=_env("TLS_BIND", "127.0.0.1"),
            tls_port=int(_env("TLS_PORT", "8089")),
            tls_cert=_env("TLS_CERT", ""),
            tls_key=_env("TLS_KEY", ""),
            sip_public_host=_env("SIP_PUBLIC_HOST", ""),
            stun_urls=_env("STUN_URLS", ""),
            turn_urls=_env("TURN_URLS", ""),
            turn_user=_env("TURN_USER", ""),
            turn_password=_env("TURN_PASSWORD", ""),
            sip_guard=_env("SIP_GUARD", ""),
            sip_guard_exempt=_env("SIP_GUARD_EXEMPT", ""),
            api_bind=_env("API_BIND", "127.0.0.1"),
            api_port=int(_env("API_PORT", "8080")),
            callin_number=_env("CALLIN_NUMBER", "callin"),
            public_url=_env("PUBLIC_URL", ""),
            trusted_proxies=_env("TRUSTED_PROXIES", ""),
            callin_limits=_env("CALLIN_LIMITS", ""),
            callin_languages=_env("CALLIN_LANGUAGES", "en,es"),
            trunk=trunk,
            asterisk_mode=_env("ASTERISK", "auto"),
            asterisk_user=_env("ASTERISK_USER", ""),
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
            # Created 0600 (no moment where the umask's mode lets another user read it).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(stored, indent=2))
            path.chmod(0o600)
            if os.geteuid() == 0:
                # Made by root (systemd's ExecStartPre renders Asterisk's config): the file belongs to whoever owns
                # the data directory, i.e. the controller's user.
                owner = self.data_dir.stat()
                os.chown(path, owner.st_uid, owner.st_gid)
        return stored[key]

    def ari_credentials(self) -> tuple[str, str]:
        """The ARI user and password."""
        return "phonebank", self._secret("ari_password", lambda: secrets.token_urlsafe(24))

    def api_token(self) -> str:
        """Bearer token for the JSON API from scripts and ops tools (the panel's users log in instead)."""
        return _env("API_TOKEN", "") or self._secret("api_token", lambda: secrets.token_urlsafe(32))

    def metrics_token(self) -> str:
        """Bearer token for /metrics only (Prometheus), so the scraper never holds the API token."""
        return _env("METRICS_TOKEN", "") or self._secret("metrics_token", lambda: secrets.token_urlsafe(32))

    def admin_password(self) -> str:
        """The first admin's password, made for ``make demo`` and printed by it."""
        return self._secret("admin_password", lambda: secrets.token_urlsafe(12))

    @property
    def public_sip_host(self) -> str:
        """The host name or address volunteers' devices reach Asterisk by."""
        if self.sip_public_host:
            return self.sip_public_host
        return "127.0.0.1" if self.tls_bind in ("0.0.0.0", "::", "") else self.tls_bind

    @property
    def ws_url(self) -> str:
        """Where browsers open their SIP-over-WebSocket connection."""
        return f"wss://{self.public_sip_host}:{self.tls_port}/ws"

    @property
    def sip_server(self) -> str:
        """What a softphone is told to register with (host:port, UDP)."""
        host = self.sip_public_host or ("127.0.0.1" if self.sip_bind in ("0.0.0.0", "::", "") else self.sip_bind)
        return f"{host}:{self.sip_port}"

    def ice_servers(self) -> list[dict[str, object]]:
        """RTCPeerConnection ``iceServers`` for browsers (STUN, then TURN with its credentials)."""
        servers: list[dict[str, object]] = []
        stun = [u.strip() for u in self.stun_urls.split(",") if u.strip()]
        turn = [u.strip() for u in self.turn_urls.split(",") if u.strip()]
        if stun:
            servers.append({"urls": stun})
        if turn:
            servers.append({"urls": turn, "username": self.turn_user, "credential": self.turn_password})
        return servers

    @property
    def dial_template(self) -> str:
        """How a voter's number becomes an Asterisk endpoint."""
        if self.trunk.configured:
            return "PJSIP/{number}@trunk"
        return "Local/{number}@pb-sim-pstn/n"
