"""The panel's shared names: what the app and each request carry, and the cookies.

A leaf: it imports no other panel screen, so every screen can import it without a circle. The composition root
(``panel/app.py``) fills the app keys; the middlewares (``panel/web.py``) fill the request keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from bridge.ari_app import Controller
from panel.throttle import LoginThrottle, RateLimiter
from store.db import Store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Puts an uploaded recording (a WAV file on this machine) where Asterisk can play it and returns the name
# Asterisk plays it by; the service wires it to the running instance.
StageMedia = Callable[[Path, str], str]

# The login cookie, and before login the double-submit cookie forms carry a token against (no login CSRF).
COOKIE = "pb_login"
PRE_COOKIE = "pb_pre"

STORE: web.AppKey[Store] = web.AppKey("store", Store)
CONTROLLER: web.AppKey[Controller] = web.AppKey("controller", Controller)
CALLIN_NUMBER: web.AppKey[str] = web.AppKey("callin_number", str)
API_TOKEN: web.AppKey[str] = web.AppKey("api_token", str)
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("templates", jinja2.Environment)
STAGE_MEDIA: web.AppKey[StageMedia] = web.AppKey("stage_media")
PUBLIC_URL: web.AppKey[str] = web.AppKey("public_url", str)
LIMITER: web.AppKey[RateLimiter] = web.AppKey("limiter", RateLimiter)
LOGIN_THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("login_throttle", LoginThrottle)

# Who is asking (None: nobody) and how they proved it ("cookie", "token" or None).
USER: web.RequestKey[dict[str, Any] | None] = web.RequestKey("user")
VIA: web.RequestKey[str | None] = web.RequestKey("via")
PRE_CSRF: web.RequestKey[str] = web.RequestKey("pre_csrf", str)
