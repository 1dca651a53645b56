"""Liveness and readiness probes."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from bot.services import Services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    """Ready only when the database and Rasa both answer; says which one is down."""
    services: Services = current_app.extensions["bansos"]
    checks = {
        "database": "ok" if services.db.ping() else "down",
        "rasa": "ok" if services.rasa.ping() else "down",
    }
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503
