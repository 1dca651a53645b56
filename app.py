"""The Flask application factory and the WSGI `app` used by gunicorn and `make run`."""
from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.config import load_settings
from bot.rules.logmask import configure_logging
from bot.services import build_services

# Twilio's largest form (1600 chars of text and ten media URLs) is far below this.
MAX_REQUEST_BYTES = 64 * 1024


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app; `config` overrides settings from the environment (tests use it)."""
    configure_logging()
    settings = load_settings().with_overrides(config)
    settings.require_secret_key()
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.effective_secret_key, MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES)
    app.extensions["bansos"] = build_services(settings)
    register_blueprints(app)
    register_error_handlers(app)
    apply_proxy_fix(app, settings.trusted_proxy_hops)
    return app


def apply_proxy_fix(app: Flask, hops: int) -> None:
    """Believe X-Forwarded-For/-Proto/-Host from exactly `hops` reverse proxies (0: none).

    Each proxy appends the address that called it, so only the last `hops` entries are
    ours; anything further left came from the client and is ignored. With it, `request.remote_addr`
    (the audit log's address) is the client's and `request.url` the public one. Kannel's
    allow-list must still see the real socket peer: webhooks/kannel.py reads it from the
    originals ProxyFix keeps in `werkzeug.proxy_fix.orig`.
    """
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def register_blueprints(app: Flask) -> None:
    from staff import bp as staff_bp
    from webhooks import blueprints

    for blueprint in blueprints():
        app.register_blueprint(blueprint)
    app.register_blueprint(staff_bp)


def register_error_handlers(app: Flask) -> None:
    """Short plain answers: no stack trace or HTML error page ever reaches a caller."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        return f"{exc.code} {exc.name}\n", exc.code, {"Content-Type": "text/plain; charset=utf-8"}

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        app.logger.exception("unhandled error")
        return "500 Internal Server Error\n", 500, {"Content-Type": "text/plain; charset=utf-8"}


def __getattr__(name: str) -> Any:
    """`app:app` for WSGI servers, built on first use rather than at import."""
    if name == "app":
        return create_app()
    raise AttributeError(name)
