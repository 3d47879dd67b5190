"""An isolated phone bank for tests, benchmarks and drills: its own Asterisk instance on free ports,
its own data dir, and the controller as a real child process (so a test can kill it)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from phonebank import sim
from phonebank.asterisk import AsteriskRuntime
from phonebank.settings import Settings
from store.db import Store


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Pbx:
    """A running Asterisk instance of the project's, with the environment that points at it."""

    settings: Settings
    rt: AsteriskRuntime
    env: dict[str, str]

    @classmethod
    def start(cls, data_dir: Path, instance: str | None = None, extra_env: dict[str, str] | None = None) -> Pbx:
        """``extra_env``: settings over the defaults (e.g. a carrier trunk, another RTP range)."""
        rtp = 30000 + (os.getpid() % 30) * 1000
        env = {
            "PHONEBANK_DATA": str(data_dir),
            "PHONEBANK_INSTANCE": instance or f"t{os.getpid()}",
            "PHONEBANK_ARI_PORT": str(free_port()),
            "PHONEBANK_SIP_PORT": str(free_port(socket.SOCK_DGRAM)),
            "PHONEBANK_API_PORT": str(free_port()),
            "PHONEBANK_TLS_PORT": str(free_port()),
            "PHONEBANK_RTP_START": str(rtp),
            "PHONEBANK_RTP_END": str(rtp + 998),
            **(extra_env or {}),
        }
        with _environ(env):
            settings = Settings.from_env()
        rt = AsteriskRuntime.provision(settings)
        rt.up()
        sim.load(rt, [])
        return cls(settings, rt, env)

    def stop(self) -> None:
        self.rt.down()
        shutil.rmtree(self.rt.host_path(self.rt.inst), ignore_errors=True)

    def load_sim(self, numbers: list[sim.SimNumber]) -> None:
        sim.load(self.rt, numbers)

    def ari_credentials(self) -> tuple[str, str]:
        return self.settings.ari_credentials()

    def host_path(self, asterisk_path: str) -> Path:
        return self.rt.host_path(asterisk_path)


@dataclass
class ControllerProcess:
    pbx: Pbx
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.pbx.settings.api_port}"

    def start(self, timeout: float = 30) -> None:
        ready = self.log_path.with_suffix(".ready")
        ready.unlink(missing_ok=True)
        env = {**os.environ, **self.pbx.env, **self.extra_env}
        logf = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "phonebank.cli", "run", "--ready-file", str(ready)],
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"controller exited {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("controller did not become ready")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no clean-up code runs, as when the machine loses power."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.api + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.pbx.settings.api_token()}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


@functools.cache
def _day_prefix() -> str:
    # Chosen once per test run, with room for the whole run: the dialer calls nobody outside 8am-9pm in the
    # number's time zone, and the simulated network is no exception.
    return sim.daytime_prefix(margin_s=2 * 3600)


def day_number(suffix: int) -> str:
    """A simulated number (``suffix``: 4 digits) in a region where it is calling hours now."""
    return f"{_day_prefix()}{suffix:04d}"


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


async def until(predicate: Callable[[], Any], limit_s: float, what: str, interval: float = 0.25) -> Any:
    """``wait_until`` for async tests: sleeps without blocking the event loop."""
    deadline = time.monotonic() + limit_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s}s waiting for {what}")
        await asyncio.sleep(interval)


def read_wav_samples(path: Path) -> tuple[np.ndarray, int]:
    """Samples of a WAV Asterisk wrote (or is still writing: the header's sizes may be stale)."""
    raw = path.read_bytes()
    rate = int.from_bytes(raw[24:28], "little") or 8000
    pos = raw.find(b"data")
    start = pos + 8 if pos >= 0 else 44
    body = raw[start:]
    return np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.float64), rate


def tone_ratio(samples: np.ndarray, rate: int, freq: float) -> float:
    """How far a frequency stands above the speech band's median (power ratio). Measured on drill recordings:
    a voter's signature tone heard for a few seconds scores around 10^7; frequencies nobody played score up
    to a few hundred (prompts' and greetings' formants), typically under 10."""
    if samples.size < rate // 2:
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1.0 / rate)
    band = (freqs > 300) & (freqs < 3000)
    near = np.abs(freqs - freq) <= 2.0
    median = float(np.median(spectrum[band])) or 1e-9
    return float(spectrum[near].max()) / median


def db_rows(store_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    store = Store(store_path)
    try:
        return [dict(r) for r in store.conn.execute(sql, params).fetchall()]
    finally:
        store.close()
