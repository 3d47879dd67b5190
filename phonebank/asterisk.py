"""Provision and run the project's Asterisk.

A system Asterisk >= 20 is used where one exists. Otherwise Debian 12 has none, so a Debian sid root with
Asterisk 22 LTS is built once with debootstrap into the cache dir (outside the repo, reused across runs)
and Asterisk runs chrooted there. The chroot shares the network, so ARI on loopback is reachable.

Each instance (demo, one per test session) gets its own directory tree *inside* the root, at
``/var/lib/phonebank/<instance>``; Asterisk sees that path, the controller sees it under the root
(``host_path``). Recordings, prompts and simulated-network audio live there so both sides can read them.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path

import structlog

from bridge import language as lang
from phonebank import prompts, tls
from phonebank.settings import REPO_ROOT, Settings

log = structlog.get_logger(__name__)

TEMPLATE_DIR = REPO_ROOT / "config" / "asterisk"
CONFIG_FILES = (
    "asterisk.conf",
    "modules.conf",
    "http.conf",
    "ari.conf",
    "rtp.conf",
    "logger.conf",
    "amd.conf",
    "pjsip.conf",
    "extensions.conf",
    "indications.conf",
    "cdr.conf",
    "cel.conf",
    "features.conf",
    "acl.conf",
    "udptl.conf",
    "pjproject.conf",
    "ccss.conf",
    "websocket_client.conf",
    "sorcery.conf",
)
# Rendered files holding a password (ARI's, the trunk's digest, TURN's): owner only, from the moment they exist.
SECRET_FILES = frozenset({"ari.conf", "pjsip.conf", "rtp.conf"})
# Asterisk and the recorded core sounds of every language the phone side speaks (bridge.language.SOUND_PACKAGES).
SOUND_PACKAGES = tuple(p for ps in lang.SOUND_PACKAGES.values() for p in ps)
SID_PACKAGES = ",".join(("asterisk", "asterisk-modules", *SOUND_PACKAGES))
SOUNDS_DIR = "/usr/share/asterisk/sounds"
MIN_SYSTEM_MAJOR = 20


class AsteriskError(RuntimeError):
    """Asterisk could not be provisioned, started or reached."""


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``{{name}}`` placeholders; ``${...}`` is Asterisk's own syntax and stays untouched."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise AsteriskError(f"template placeholder {{{{{key}}}}} has no value")
        return values[key]

    return re.sub(r"\{\{(\w+)\}\}", sub, template)


def _system_asterisk_major() -> int | None:
    exe = shutil.which("asterisk")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Asterisk (\d+)", out)
    return int(m.group(1)) if m else None


@dataclass
class AsteriskRuntime:
    settings: Settings
    root: Path  # "/" for a system Asterisk

    @property
    def chrooted(self) -> bool:
        return self.root != Path("/")

    @property
    def inst(self) -> str:
        """The instance directory as Asterisk sees it."""
        return f"/var/lib/phonebank/{self.settings.instance}"

    def host_path(self, asterisk_path: str) -> Path:
        """Where the controller finds a file Asterisk names ``asterisk_path``."""
        return self.root / asterisk_path.lstrip("/")

    @property
    def conf(self) -> str:
        return f"{self.inst}/etc/asterisk.conf"

    @property
    def sim_dir(self) -> str:
        return f"{self.inst}/sim"

    @property
    def rec_dir(self) -> str:
        return f"{self.inst}/rec"

    @property
    def sounds_dir(self) -> str:
        return f"{self.inst}/sounds"

    def command(self, *args: str) -> list[str]:
        base = ["asterisk", "-C", self.conf, *args]
        return ["chroot", str(self.root), *base] if self.chrooted else base

    # ------------------------------------------------------------------ provisioning
    @classmethod
    def provision(cls, settings: Settings) -> AsteriskRuntime:
        mode = settings.asterisk_mode
        if mode in ("auto", "system"):
            major = _system_asterisk_major()
            if major is not None and major >= MIN_SYSTEM_MAJOR:
                return cls(settings, Path("/"))
            if mode == "system":
                raise AsteriskError(f"no system Asterisk >= {MIN_SYSTEM_MAJOR} (found {major})")
        root = ensure_sid_root(settings.cache_dir)
        ensure_hosts(root)
        ensure_language_sounds(root, settings.cache_dir)
        return cls(settings, root)

    def _moddir(self) -> str:
        for cand in (
            "usr/lib/x86_64-linux-gnu/asterisk/modules",
            "usr/lib/aarch64-linux-gnu/asterisk/modules",
            "usr/lib/asterisk/modules",
            "usr/lib64/asterisk/modules",
        ):
            if (self.root / cand / "app_stasis.so").exists():
                return "/" + cand
        raise AsteriskError(f"no Asterisk modules directory under {self.root}")

    def render_config(self) -> None:
        s = self.settings
        user, password = s.ari_credentials()
        values = {
            "inst": self.inst,
            "moddir": self._moddir(),
            "app": s.app,
            "ari_bind": s.ari_bind,
            "ari_port": str(s.ari_port),
            "ari_user": user,
            "ari_password": password,
            "sip_bind": s.sip_bind,
            "sip_port": str(s.sip_port),
            "rtp_start": str(s.rtp_start),
            "rtp_end": str(s.rtp_end),
            "sim_dir": self.sim_dir,
            "rec_dir": self.rec_dir,
            "trunk": trunk_section(s),
            "tls_bind": s.tls_bind,
            "tls_port": str(s.tls_port),
            "tls_cert": f"{self.inst}/etc/keys/https.crt",
            "tls_key": f"{self.inst}/etc/keys/https.key",
            "rtp_ice": rtp_ice_lines(s),
        }
        etc = self.host_path(f"{self.inst}/etc")
        for sub in (
            "etc",
            "etc/keys",
            "lib",
            "lib/keys",
            "spool",
            "spool/recording",
            "run",
            "log",
            "sim",
            "sim/vm",
            "rec",
            "sounds",
        ):
            self.host_path(f"{self.inst}/{sub}").mkdir(parents=True, exist_ok=True)
        # Asterisk (maybe chrooted) reads its certificate from the instance tree: copy the configured one, or the
        # self-signed one made for demos and tests, there.
        cert, key = tls.certificate(s)
        tls.install(cert, key, etc / "keys" / "https.crt", etc / "keys" / "https.key")
        for name in CONFIG_FILES:
            text = render((TEMPLATE_DIR / name).read_text(), values)
            if name in SECRET_FILES:
                write_private(etc / name, text)
            else:
                (etc / name).write_text(text)
        sim_numbers = etc / "pb_sim_numbers.conf"
        if not sim_numbers.exists():
            sim_numbers.write_text("; no simulated numbers loaded yet (phonebank sim load)\n")
        if s.asterisk_user:
            own_tree(self.host_path(self.inst), s.asterisk_user)
        if self.chrooted:
            # Sounds: Asterisk looks under sounds/<language>; sid installs en_US_f_Allison with an en link,
            # but make sure "en" resolves.
            en = self.root / "usr/share/asterisk/sounds/en"
            if not (en.exists() or en.is_symlink()):
                en.symlink_to("en_US_f_Allison")

    # ------------------------------------------------------------------ lifecycle
    def running(self) -> bool:
        try:
            res = subprocess.run(self.command("-rx", "core show version"), capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return res.returncode == 0 and "Asterisk" in res.stdout

    def up(self, timeout: float = 60.0) -> None:
        self.render_config()
        if self.running():
            self.cli("core reload")
            self._load_new_modules()
            log.info("asterisk.reloaded", instance=self.settings.instance)
        else:
            res = subprocess.run(self.command(), capture_output=True, text=True, timeout=60)
            if res.returncode != 0:
                raise AsteriskError(f"asterisk failed to start: {res.stderr.strip() or res.stdout.strip()}")
            log.info("asterisk.started", instance=self.settings.instance, root=str(self.root))
        self.wait_ari(timeout)

    def _load_new_modules(self) -> None:
        """`core reload` does not load modules added to modules.conf since start: load those by name."""
        wanted = re.findall(r"^load\s*=>\s*(\S+)", (TEMPLATE_DIR / "modules.conf").read_text(), re.M)
        loaded = set(re.findall(r"^(\S+\.so)\s", self.cli("module show"), re.M))
        for module in wanted:
            if module not in loaded:
                res = subprocess.run(
                    self.command("-rx", f"module load {module}"), capture_output=True, text=True, timeout=30
                )
                log.info("asterisk.module_loaded", module=module, ok=res.returncode == 0)

    def down(self, timeout: float = 30.0) -> None:
        if not self.running():
            return
        subprocess.run(self.command("-rx", "core stop now"), capture_output=True, timeout=30)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                log.info("asterisk.stopped", instance=self.settings.instance)
                return
            time.sleep(0.2)
        raise AsteriskError("asterisk did not stop")

    def cli(self, command: str) -> str:
        res = subprocess.run(self.command("-rx", command), capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise AsteriskError(f"asterisk -rx {command!r} failed: {res.stderr.strip()}")
        return res.stdout

    def ari_url(self) -> str:
        return f"http://{self.settings.ari_bind}:{self.settings.ari_port}/ari"

    def wait_ari(self, timeout: float) -> dict[str, object]:
        user, password = self.settings.ari_credentials()
        req = urllib.request.Request(f"{self.ari_url()}/asterisk/info")
        req.add_header("Authorization", "Basic " + b64encode(f"{user}:{password}".encode()).decode())
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    return json.loads(resp.read())
            except (urllib.error.URLError, OSError) as exc:
                last = exc
                time.sleep(0.3)
        raise AsteriskError(f"ARI not reachable at {self.ari_url()}: {last}")

    def status(self) -> str:
        if not self.running():
            return f"instance {self.settings.instance}: stopped (root {self.root})"
        uptime = self.cli("core show uptime").strip()
        return f"instance {self.settings.instance}: running (root {self.root}); ARI {self.ari_url()}\n{uptime}"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, with no moment where another user could open it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    path.chmod(0o600)  # an existing file keeps its old mode through O_CREAT


def own_tree(top: Path, user: str) -> None:
    """Give the instance tree to the user Asterisk runs as (PHONEBANK_ASTERISK_USER; deploy/systemd runs it as
    ``pbx`` with group ``phonebank``): directories setgid and group-writable so the controller (group
    ``phonebank``) and Asterisk share prompts, recordings, the security log and the SIP guard's ACL; files holding
    secrets stay 0600, the owner's alone."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise AsteriskError(f"PHONEBANK_ASTERISK_USER {user!r} is not a user on this machine") from exc
    for dirpath, _dirs, files in os.walk(top):
        os.chown(dirpath, entry.pw_uid, entry.pw_gid)
        os.chmod(dirpath, 0o2770)
        for name in files:
            os.chown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid)


def rtp_ice_lines(s: Settings) -> str:
    """rtp.conf lines that let Asterisk gather server-reflexive/relayed candidates itself (behind NAT)."""
    lines: list[str] = []
    stun = next((u.strip() for u in s.stun_urls.split(",") if u.strip()), "")
    turn = next((u.strip() for u in s.turn_urls.split(",") if u.strip()), "")
    if stun:
        lines.append(f"stunaddr = {_host_port(stun)}")
    if turn:
        lines += [
            f"turnaddr = {_host_port(turn)}",
            f"turnusername = {s.turn_user}",
            f"turnpassword = {s.turn_password}",
        ]
    return "\n".join(lines) or "; no STUN/TURN configured (PHONEBANK_STUN_URLS, PHONEBANK_TURN_URLS)"


def _host_port(url: str) -> str:
    """ "turn:host:3478?transport=udp" -> "host:3478"."""
    return url.split(":", 1)[-1].split("?", 1)[0]


def trunk_section(s: Settings) -> str:
    t = s.trunk
    if not t.configured:
        return "; no carrier trunk configured: outbound calls go to the simulated network (pb-sim-pstn)"
    lines = [
        "[trunk](trunk-endpoint)",
        "aors = trunk",
        f"from_user = {t.from_user or t.username}" if (t.from_user or t.username) else "",
        "outbound_auth = trunk-auth" if t.username else "",
        "",
        "[trunk]",
        "type = aor",
        f"contact = sip:{t.host}:{t.port}",
        # A carrier that stops answering is marked unreachable within ~20 s; from then on dials to it fail at once
        # (Asterisk refuses them) instead of each waiting out its ring timeout (bridge.dialer.carrier_failed).
        "qualify_frequency = 15",
        "qualify_timeout = 3",
        "",
        "[trunk-identify]",
        "type = identify",
        "endpoint = trunk",
        f"match = {t.host}",
    ]
    if t.username:
        lines += [
            "",
            "[trunk-auth]",
            "type = auth",
            "auth_type = userpass",
            f"username = {t.username}",
            f"password = {t.password}",
        ]
    if t.register and t.username:
        lines += [
            "",
            "[trunk-reg]",
            "type = registration",
            "outbound_auth = trunk-auth",
            f"server_uri = sip:{t.host}:{t.port}",
            f"client_uri = sip:{t.username}@{t.host}",
            "retry_interval = 60",
        ]
    return "\n".join(line for line in lines if line is not None)


def ensure_hosts(root: Path) -> None:
    """Give the chroot the host's /etc/hosts. debootstrap leaves none, so every name lookup inside went to DNS:
    Asterisk looks up the machine's own name (``ast_find_ourip``) for each RTP session it sets up, on the thread
    handling SIP. Where DNS does not answer (a box without network, a resolver down on election night) each
    lookup blocked SIP for up to the resolver's timeout: measured with bench/capacity.py, OPTIONS round trips of
    5 s at 75 volunteers, the trunk marked unreachable, and dials refused."""
    hosts = root / "etc" / "hosts"
    source = Path("/etc/hosts")
    text = source.read_text() if source.exists() else ""
    name = socket.gethostname()
    if not re.search(rf"\s{re.escape(name)}(\s|$)", text, re.M):
        text += f"127.0.1.1\t{name}\n"
    if "localhost" not in text:
        text = "127.0.0.1\tlocalhost\n" + text
    if not hosts.exists() or hosts.read_text() != text:
        hosts.write_text(text)


def in_root(root: Path, path: str, hops: int = 20) -> Path:
    """Where ``path`` as the root's own programs see it lies on the host: symlinks followed inside the root (Debian's
    sounds/<lang> are absolute links through /etc/alternatives, which on the host would point outside it)."""
    parts = [p for p in path.split("/") if p]
    done = root
    while parts:
        part = parts.pop(0)
        if part == "..":
            done = done.parent if done != root else root  # never above the root, as chroot sees it
            continue
        cand = done / part
        if cand.is_symlink() and hops > 0:
            hops -= 1
            target = os.readlink(cand)
            parts = [p for p in target.split("/") if p] + parts
            if target.startswith("/"):
                done = root
            continue
        done = cand
    return done


def _missing_sound_packages(root: Path) -> list[str]:
    wanted = list(SOUND_PACKAGES)
    res = subprocess.run(
        ["chroot", str(root), "dpkg-query", "-W", "-f", "${Package} ${Status}\n", *wanted],
        capture_output=True,
        text=True,
    )
    installed = {ln.split()[0] for ln in res.stdout.splitlines() if ln.endswith(" install ok installed")}
    return [p for p in wanted if p not in installed]


def _chroot_apt_install(root: Path, packages: list[str]) -> None:
    """apt inside the root (its own sources: Debian sid); the package lists are refreshed only when an install from
    the ones debootstrap left fails (they go stale as sid moves)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["chroot", str(root), "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    res = subprocess.run(install, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        subprocess.run(["chroot", str(root), "apt-get", "update", "-q"], capture_output=True, text=True, env=env)
        res = subprocess.run(install, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise AsteriskError(f"installing {' '.join(packages)} in {root} failed: {res.stderr[-2000:]}")


def ensure_language_sounds(root: Path, cache_dir: Path | None = None) -> list[str]:
    """Every language the phone side speaks has its sounds: Debian's recorded core sounds installed into the root
    (a root built before a language was added gets them now, with apt inside it), and any sound the phone bank plays
    that a language's recordings lack spoken with espeak-ng into ``sounds/<lang>/`` (where Asterisk looks for it).
    Idempotent, and serialised by a lock: several test sessions may provision at once. Returns what it made.
    ``root`` "/" (a system Asterisk): nothing is installed with apt, missing sounds are still spoken. Not root (the
    controller's own unit runs as an unprivileged user): nothing is installed or written, what is missing is logged
    (Asterisk then says those sounds in English); `make asterisk` or the PBX unit's start, as root, fills it in."""
    made: list[str] = []
    privileged = os.geteuid() == 0
    lock_dir = cache_dir if cache_dir is not None and privileged else Path(tempfile.gettempdir())
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / "phonebank-asterisk-sounds.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if root != Path("/") and privileged:
            missing = _missing_sound_packages(root)
            if missing:
                log.info("asterisk.installing_sounds", packages=missing)
                _chroot_apt_install(root, missing)
        for language in lang.LANGUAGES:
            sounds = in_root(root, f"{SOUNDS_DIR}/{language}")
            if not sounds.is_dir():
                log.warning("asterisk.no_sounds_dir", language=language, path=str(sounds))
                continue
            lacking = [n for n, texts in lang.SOUNDS.items() if language in texts and not any(sounds.glob(f"{n}.*"))]
            if lacking and not os.access(sounds, os.W_OK):
                log.warning("asterisk.sounds_missing", language=language, sounds=lacking, fix="make asterisk (as root)")
                continue
            for name in lacking:
                try:
                    spoken = prompts.synthesize(
                        lang.SOUNDS[name][language], sounds / f"{name}.wav", voice=lang.VOICES[language]
                    )
                except (OSError, subprocess.CalledProcessError) as exc:
                    log.warning("asterisk.sound_not_spoken", language=language, sound=name, error=str(exc))
                    continue
                if spoken:
                    made.append(f"{language}/{name}")
        if made:
            log.info("asterisk.sounds_spoken", sounds=made)
    return made


def ensure_sid_root(cache_dir: Path) -> Path:
    """The Debian sid root with Asterisk, built once and reused."""
    root = cache_dir / "asterisk-sid"
    if (root / "usr/sbin/asterisk").exists():
        return root
    cache_dir.mkdir(parents=True, exist_ok=True)
    if not shutil.which("debootstrap"):
        log.info("asterisk.installing_debootstrap")
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "debootstrap"], check=True, capture_output=True)
    tmp = cache_dir / "asterisk-sid.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    log.info("asterisk.debootstrap", root=str(root))
    res = subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={SID_PACKAGES}", "sid", str(tmp)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0 or not (tmp / "usr/sbin/asterisk").exists():
        raise AsteriskError(f"debootstrap of Debian sid with Asterisk failed: {res.stderr[-2000:]}")
    tmp.rename(root)
    return root
