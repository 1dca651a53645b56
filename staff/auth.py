"""Signing in and out, and the role checks every page uses.

The session cookie holds "<user id>:<session version>": an account whose version
moved on (password changed, deactivated, role changed) is signed out at its next
request, which a signed cookie alone could not do.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

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

from bot.staff_services import StaffServices
from bot.staff_users import MAX_FAILED_LOGINS, LOCKOUT, StaffIdentity
from staff import bp
from staff.forms import ActionForm, LoginForm

login_manager = LoginManager()
login_manager.login_view = "staff.login"
login_manager.login_message = "Silakan masuk terlebih dahulu."
login_manager.session_protection = "basic"

F = TypeVar("F", bound=Callable[..., Any])


class StaffSession(UserMixin):
    """Flask-Login's view of a signed-in officer."""

    def __init__(self, identity: StaffIdentity) -> None:
        self.identity = identity

    def get_id(self) -> str:
        return f"{self.identity.id}:{self.identity.session_version}"


def services() -> StaffServices:
    return cast(StaffServices, current_app.extensions["bansos_staff"])


def me() -> StaffIdentity:
    """The signed-in officer (only inside views behind `login_required`)."""
    return cast(StaffSession, current_user).identity


def client_ip() -> str:
    return request.remote_addr or ""


@login_manager.user_loader
def _load(user_id: str) -> StaffSession | None:
    raw_id, _, raw_version = user_id.partition(":")
    if not (raw_id.isdigit() and raw_version.isdigit()):
        return None
    identity = services().directory.identity(int(raw_id), int(raw_version))
    return StaffSession(identity) if identity else None


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


def _safe_next(target: str | None) -> str:
    """Only a path inside the dashboard: never an open redirect to another site."""
    if target and target.startswith("/staff/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("staff.inbox")


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
            login_user(StaffSession(result.identity))
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
    if ActionForm().validate_on_submit():
        services().directory.logout(me(), client_ip())
    logout_user()
    session.clear()
    flash("Anda sudah keluar.", "info")
    return redirect(url_for("staff.login"))
