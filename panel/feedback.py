"""Placeholder: filled in by the panel work."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    pass
