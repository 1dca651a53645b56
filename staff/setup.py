"""What the dashboard needs from the app: sessions, CSRF, its services, headers and filters.

CSRF is checked for every POST to this blueprint only (WTF_CSRF_CHECK_DEFAULT is
off), so Twilio's webhooks, which cannot carry a token, are not affected.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, Request, Response, render_template, request
from flask.blueprints import BlueprintSetupState
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect

from bot.rules.regions import DEFAULT_ZONE
from bot.handoff.staff_users import SESSION_LIFETIME
from staff import bp
from staff.auth import login_manager

csrf = CSRFProtect()

# Registry extracts run to hundreds of thousands of rows; every other form is tiny.
IMPORT_MAX_BYTES = 100 * 1024 * 1024
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_ZONE = ZoneInfo(DEFAULT_ZONE)


class DashboardSessions(SecureCookieSessionInterface):
    """Flask's signed session cookie, opened for the dashboard's pages alone.

    Every other request (the providers' webhooks, health, metrics) gets Flask's null
    session, which reads no cookie and writes none: building the cookie's signing
    serializer on every webhook cost about 2 % of the web process's CPU per message
    (issue 15).
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        prefix = bp.url_prefix or ""
        if request.path != prefix and not request.path.startswith(prefix + "/"):
            return None
        return super().open_session(app, request)


@bp.record_once
def _init_app(state: BlueprintSetupState) -> None:
    app: Flask = state.app
    services = app.extensions["bansos"]
    # The dashboard is the only user of the session cookie, so its settings are app-wide.
    # The cookie lives as long as the server-side session it names (bot/handoff/staff_users.py).
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=int(SESSION_LIFETIME.total_seconds()),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=services.settings.public_base_url.startswith("https://"),
    )
    app.session_interface = DashboardSessions()
    csrf.init_app(app)
    login_manager.init_app(app)
    app.jinja_env.filters["wib"] = wib
    app.jinja_env.filters["duration"] = duration


@bp.before_request
def _protect() -> None:
    if request.endpoint == "staff.admin_import":
        request.max_content_length = IMPORT_MAX_BYTES
    if request.method == "POST":
        csrf.protect()


@bp.after_request
def _headers(response: Response) -> Response:
    """Pages carry personal data: never cached, framed, or leaked through a Referer.

    The Referer goes to the dashboard itself only ("same-origin", not "no-referrer"):
    over HTTPS, Flask-WTF refuses a POST whose Referer is missing or from another host.
    """
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "staff.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError) -> tuple[str, int]:
    return render_template("staff/error.html", title="Sesi kedaluwarsa", message=(
        "Formulir ini tidak sah atau sudah kedaluwarsa. Muat ulang halaman lalu coba lagi."
    )), 400


@bp.errorhandler(403)
def _forbidden(exc: Exception) -> tuple[str, int]:
    return render_template("staff/error.html", title="Tidak diizinkan", message=(
        "Peran atau wilayah Anda tidak mencakup halaman ini."
    )), 403


@bp.errorhandler(404)
def _not_found(exc: Exception) -> tuple[str, int]:
    return render_template("staff/error.html", title="Tidak ditemukan", message=(
        "Halaman, percakapan atau laporan ini tidak ada."
    )), 404


def wib(value: datetime | None) -> str:
    """A stored UTC time as the national team reads it."""
    if value is None:
        return "-"
    return value.astimezone(_ZONE).strftime("%d/%m/%Y %H.%M WIB")


def duration(seconds: int | None) -> str:
    """A wait as "3 mnt", "2 jam 5 mnt" or "1 hari 4 jam"."""
    if seconds is None:
        return "-"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} mnt"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} jam {minutes} mnt"
    days, hours = divmod(hours, 24)
    return f"{days} hari {hours} jam"
