"""Computer audio (the browser's WebRTC leg): the JsSIP bundle the panel serves, and the caller page's CSP.

JsSIP comes from the npm registry, pinned in package-lock.json; ``make deps`` runs ``npm ci`` and bundles it
(esbuild, one IIFE file) into ``node_modules/.phonebank/jssip.min.js``. The panel serves that file itself: no CDN,
nothing fetched at run time, none of JsSIP's code in this repository. JsSIP's npm package ships CommonJS only, so
the bundle step is what makes it loadable by a ``<script>`` tag under ``script-src 'self'``.

The page talks SIP over a WebSocket to Asterisk's own HTTPS server (another origin: another port), so the
caller's session page widens ``connect-src`` to exactly that origin and nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from panel.common import SECURITY_HEADERS
from panel.i18n import N_
from panel.keys import CONTROLLER

REPO = Path(__file__).resolve().parent.parent
# Where ``npm run build`` puts the bundle; an installed (non-editable) panel points PHONEBANK_JSSIP_BUNDLE at it.
JSSIP_BUNDLE = Path(os.environ.get("PHONEBANK_JSSIP_BUNDLE") or REPO / "node_modules" / ".phonebank" / "jssip.min.js")
# Outside /static: that prefix serves panel/static only.
JSSIP_URL = "/vendor/jssip.min.js"
routes = web.RouteTableDef()
# The WebSocket URL browsers register on (wss://host:port/ws). Unset here, the controller's ``sip_public``
# (from phonebank.settings) says it; neither: computer audio is not offered.
WEBRTC_WS_URL: web.AppKey[str] = web.AppKey("webrtc_ws_url", str)


def bundle_installed() -> bool:
    return JSSIP_BUNDLE.is_file()


def ws_origin(url: str) -> str:
    """``wss://host:port`` of a WebSocket URL, or "" unless it is a plain wss:// URL (nothing to put in a CSP)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme != "wss" or not parts.hostname or any(c in url for c in " ;,'\"\n\r"):
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"wss://{host}" + (f":{port}" if port else "")


def webrtc_ws_url(app: web.Application) -> str:
    """The app's own setting, else what the controller tells devices with their SIP accounts."""
    if url := app.get(WEBRTC_WS_URL, ""):
        return url
    ctl = app.get(CONTROLLER)
    public = getattr(ctl, "sip_public", None) or {}
    return str(public.get("ws_url", "")) if isinstance(public, dict) else ""


def available(app: web.Application) -> str:
    """Why computer audio cannot be offered on this server ("" when it can)."""
    if not bundle_installed():
        return N_("Computer audio is not installed on this server (the organiser runs `make deps`).")
    if not ws_origin(webrtc_ws_url(app)):
        return N_("Computer audio is not set up on this server: call in by phone.")
    return ""


def csp(app: web.Application) -> str:
    """The panel's CSP with ``connect-src`` widened to the PBX's WebSocket origin, and only that."""
    base = SECURITY_HEADERS["Content-Security-Policy"]
    origin = ws_origin(webrtc_ws_url(app))
    if not origin:
        return base
    return base.replace("connect-src 'self'", f"connect-src 'self' {origin}", 1)


@routes.get(JSSIP_URL)
async def jssip_bundle(request: web.Request) -> web.StreamResponse:
    if not bundle_installed():
        raise web.HTTPNotFound(text="JsSIP is not installed: run `make deps` (npm ci).")
    return web.FileResponse(
        JSSIP_BUNDLE,
        headers={"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=3600"},
    )
