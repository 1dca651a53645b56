"""Prometheus's `/metrics`, on the public listener only for a caller with METRICS_TOKEN.

Without METRICS_TOKEN it answers 404 here, as if there were no such page; an
operator who keeps the figures off the public listener altogether serves them on a
bind of their own with `python -m bot.metrics_server` (METRICS_BIND) instead.
"""
from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from bot.scrape import scrape
from bot.services import Services

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():  # type: ignore[no-untyped-def]
    services: Services = current_app.extensions["bansos"]
    token = services.settings.metrics_token
    if not token:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return Response(
            "401 Unauthorized\n", 401,
            {"WWW-Authenticate": 'Bearer realm="metrics"', "Content-Type": "text/plain; charset=utf-8"},
        )
    return Response(scrape(services.db), headers={"Content-Type": CONTENT_TYPE_LATEST})
