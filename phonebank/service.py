"""The controller process: ARI app + dialer + JSON API in one asyncio loop."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import structlog
from aiohttp import web

from bridge import language, sip_guard
from bridge.ari import AriClient
from bridge.ari_app import Controller
from callin import guard
from panel.app import make_app
from panel.ops import METRICS_TOKEN
from phonebank import prompts, sdnotify, sim
from phonebank.asterisk import AsteriskRuntime
from phonebank.settings import Settings
from store.db import Store

log = structlog.get_logger(__name__)


def build_controller(settings: Settings, rt: AsteriskRuntime, store: Store) -> Controller:
    user, password = settings.ari_credentials()
    ari = AriClient(rt.ari_url(), user, password, settings.app)

    def make_prompt(text: str, asterisk_path: str, lang: str = language.DEFAULT) -> bool:
        return prompts.synthesize(text, rt.host_path(asterisk_path + ".wav"), voice=language.VOICES[lang])

    # What a volunteer's browser or softphone is told along with its per-session SIP account.
    sip_public = {
        "ws_url": settings.ws_url,
        "sip_server": settings.sip_server,
        "domain": settings.public_sip_host,
        "ice_servers": settings.ice_servers(),
    }
    return Controller(
        ari=ari,
        store=store,
        dial_template=settings.dial_template,
        sounds_dir=rt.sounds_dir,
        sip_public=sip_public,
        sip_guard=sip_guard.Guard(sip_guard.Limits.parse(settings.sip_guard, settings.sip_guard_exempt)),
        security_log=rt.host_path(f"{rt.inst}/log/security.log"),
        guard_conf=rt.host_path(f"{rt.inst}/etc/pjsip_guard.conf"),
        prompt_maker=make_prompt,
        recordings_dir=f"{rt.inst}/spool/recording",
        guard=guard.Guard(limits=guard.Limits.from_json(settings.callin_limits)),
        callin_languages=language.callin_languages(settings.callin_languages),
    )


async def serve(settings: Settings, rt: AsteriskRuntime, ready_file: Path | None = None) -> None:
    store = Store(settings.db_path)
    ctl = build_controller(settings, rt, store)
    await ctl.start()
    app = make_app(
        ctl,
        settings.callin_number,
        settings.api_token(),
        stage_media=lambda src, name: sim.stage_file(rt, src, name),
        public_url=settings.public_url,
        trusted_proxies=settings.trusted_proxies,
    )
    app[METRICS_TOKEN] = settings.metrics_token()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, settings.api_bind, settings.api_port)
    await site.start()
    log.info("service.ready", api=f"http://{settings.api_bind}:{settings.api_port}", ari=rt.ari_url())
    if ready_file:
        await asyncio.to_thread(ready_file.write_text, "ready\n")
    sdnotify.notify("READY=1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        sdnotify.notify("STOPPING=1")
        await runner.cleanup()
        await ctl.stop()
        store.close()
        log.info("service.stopped")
