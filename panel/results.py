"""Placeholder: filled in by the panel work."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    pass


def dashboard_data(app: web.Application, campaign_id: int) -> dict[str, object]:
    from panel.web import STORE

    return app[STORE].campaign_stats(campaign_id)
