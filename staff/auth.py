"""Signing in and out, and the role checks every page uses.

The session cookie holds only the id of a server-side session (bot/handoff/staff_users.py),
and every request asks the database whether it is still alive: logout, a password
change, deactivation or a role change ends it on every web host at once, which a
signed cookie alone could not do.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from flask import (
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user

from bot.handoff.staff_services import StaffServices
from bot.handoff.staff_users import MAX_FAILED_LOGINS, LOCKOUT, StaffIdentity
from staff import bp
from staff.forms import LoginForm

login_manager = LoginManager()
login_manager.login_view = "staff.login"
login_manager.login_message = "Silakan masuk terlebih dahulu."
login_manager.session_protection = "basic"

F = TypeVar("F", bound=Callable[..., Any])


# A `next` page longer than this is not one the dashboard links to.
NEXT_MAX_CHARS = 512


class StaffSession(UserMixin):
    """Flask-Login's view of a signed-in officer: who, and which server-side session."""

    def __init__(self, identity: StaffIdentity, session_id: str) -> None:
        self.identity = identity
        self.session_id = session_id

    def get_id(self) -> str:
        return self.session_id


def services() -> StaffServices:
    return cast(StaffServices, current_app.extensions["bansos"].staff)


def me() -> StaffIdentity:
    """The signed-in officer (only inside views behind `login_required`)."""
    return cast(StaffSession, current_user).identity


def client_ip() -> str:
    """The caller's address for the audit log: the socket peer, or the client's address
    as given by TRUSTED_PROXY_HOPS reverse proxies (app.apply_proxy_fix has applied them)."""
    return request.remote_addr or ""


@login_manager.user_loader
def _load(session_id: str) -> StaffSession | None:
    identity = services().directory.identity(session_id)
    return StaffSession(identity, session_id) if identity else None


@login_manager.unauthorized_handler
def _unauthorized() -> Response:
    if request.path.endswith(".json"):
        response = jsonify(error="login required")
        response.status_code = 401
        return response
    return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))


def require(role: str) -> Callable[[F], F]:
    """Signed in, with `role` or above; anything less is 403."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not me().can(role):
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator


def _plain(text: str) -> bool:
    """Printable ASCII with no space or backslash: nothing a browser or werkzeug reads oddly."""
    return text.isascii() and text.isprintable() and " " not in text and "\\" not in text


def _safe_next(target: str | None) -> str:
    """The page to go to after login: a plain path inside the dashboard, else its home.

    Anything odd falls back rather than being repaired. A newline would make werkzeug
    refuse the Location header (a 500); browsers drop tabs and newlines and read a
    backslash as a slash, turning "/\\evil" into another site. So the value, and its
    path once percent-decoded, must be plain; it has no scheme or host, no empty
    segment ("//"), and no "." or ".." segment, which a browser would resolve to
    outside /staff/.
    """
    home = url_for("staff.inbox")
    if not target or len(target) > NEXT_MAX_CHARS or not _plain(target):
        return home
    parts = urlsplit(target)
    path = unquote(parts.path)
    if parts.scheme or parts.netloc or not _plain(path) or not path.startswith("/staff/"):
        return home
    segments = path.split("/")[2:]  # what follows "/staff/"
    if "" in segments[:-1] or any(segment in (".", "..") for segment in segments):
        return home
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("staff.inbox"))
    form = LoginForm()
    if form.validate_on_submit():
        result = services().directory.authenticate(form.username.data, form.password.data, client_ip())
        if result.identity is not None:
            session.clear()
            session.permanent = True
            login_user(StaffSession(result.identity, result.session_id))
            return redirect(_safe_next(request.args.get("next")))
        minutes = int(LOCKOUT.total_seconds() // 60)
        if result.locked:
            flash(f"Akun dikunci sementara. Coba lagi setelah {minutes} menit.", "error")
        else:
            flash(
                f"Nama pengguna atau kata sandi salah. Setelah {MAX_FAILED_LOGINS} kali salah, "
                f"akun dikunci {minutes} menit.",
                "error",
            )
        return render_template("staff/login.html", form=form), 401
    return render_template("staff/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Any:
    # The CSRF token was checked before this view (setup._protect), as for every POST.
    services().directory.logout(me(), cast(StaffSession, current_user).session_id, client_ip())
    logout_user()
    session.clear()
    flash("Anda sudah keluar.", "info")
    return redirect(url_for("staff.login"))
