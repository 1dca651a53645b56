"""Signing in to the dashboard: hashed passwords, sessions, CSRF, lockout, logout."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.db import Database
from bot.models import utcnow
from bot.staff_models import AuditEntry, StaffUser
from bot.staff_users import LOCKOUT, MAX_FAILED_LOGINS
from tests.support.staff import PASSWORD, csrf_token, login, make_staff, post_form, signed_in, staff_services


def audit_actions(db: Database) -> list[tuple[str, str]]:
    with db.session() as session:
        return list(session.execute(select(AuditEntry.action, AuditEntry.target).order_by(AuditEntry.id)).tuples())


def test_passwords_are_stored_hashed(app: Flask, sqlite_db: Database) -> None:
    make_staff(app, "andi")
    with sqlite_db.session() as session:
        stored = session.scalars(select(StaffUser.password_hash)).one()
    assert PASSWORD not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


@pytest.mark.parametrize("path", ["/staff/", "/staff/chats", "/staff/reports", "/staff/chats/1", "/staff/overview", "/staff/admin/users"])
def test_pages_need_a_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_polling_without_a_session_is_a_401_not_a_redirect(client: FlaskClient) -> None:
    response = client.get("/staff/chats.json")
    assert response.status_code == 401 and response.json == {"error": "login required"}


def test_login_then_logout(app: Flask, client: FlaskClient, sqlite_db: Database) -> None:
    make_staff(app, "andi")
    response = login(client, "ANDI ", PASSWORD)
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/chats")
    assert client.get("/staff/chats").status_code == 200
    response = post_form(client, "/staff/chats", "/staff/logout")
    assert response.status_code == 302
    assert client.get("/staff/chats").status_code == 302
    assert [a for a, _ in audit_actions(sqlite_db)] == ["user_created", "login", "logout"]


@pytest.mark.parametrize("username, password", [("andi", "salah-sekali-123"), ("tidakada", PASSWORD), ("", ""), ("andi", "")])
def test_wrong_credentials_are_refused_alike(app: Flask, client: FlaskClient, username: str, password: str) -> None:
    make_staff(app, "andi")
    response = login(client, username, password)
    assert response.status_code in (200, 401)
    assert client.get("/staff/chats").status_code == 302


def test_login_form_without_csrf_token_is_refused(app: Flask, client: FlaskClient, sqlite_db: Database) -> None:
    make_staff(app, "andi")
    response = client.post("/staff/login", data={"username": "andi", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/staff/chats").status_code == 302
    assert [a for a, _ in audit_actions(sqlite_db)] == ["user_created"]


def test_a_post_with_a_wrong_csrf_token_is_refused(app: Flask, sqlite_db: Database) -> None:
    make_staff(app, "andi", role="supervisor")
    client = signed_in(app, "andi")
    assert client.post("/staff/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.post("/staff/admin/users", data={"username": "x"}).status_code == 400
    assert client.get("/staff/chats").status_code == 200


def test_lockout_after_five_failures_even_for_the_right_password(app: Flask, client: FlaskClient, sqlite_db: Database) -> None:
    make_staff(app, "andi")
    for _ in range(MAX_FAILED_LOGINS):
        login(client, "andi", "salah-sekali-123")
    response = login(client, "andi", PASSWORD)
    assert response.status_code == 401 and "dikunci" in response.get_data(as_text=True)
    assert client.get("/staff/chats").status_code == 302
    actions = [a for a, _ in audit_actions(sqlite_db)]
    assert actions.count("login_failed") == MAX_FAILED_LOGINS and "account_locked" in actions

    directory = staff_services(app).directory
    directory.clock = lambda: utcnow() + LOCKOUT + timedelta(seconds=1)
    assert login(client, "andi", PASSWORD).status_code == 302


def test_an_admin_can_lift_a_lockout(app: Flask, sqlite_db: Database) -> None:
    agent = make_staff(app, "andi")
    make_staff(app, "admin", role="admin")
    locked_out = app.test_client()
    for _ in range(MAX_FAILED_LOGINS):
        login(locked_out, "andi", "salah-sekali-123")
    admin = signed_in(app, "admin")
    page = f"/staff/admin/users/{agent.id}"
    assert "Buka kunci" in admin.get(page).get_data(as_text=True)
    post_form(admin, page, f"{page}/unlock")
    assert login(locked_out, "andi", PASSWORD).status_code == 302


def test_changing_a_password_ends_that_users_sessions(app: Flask) -> None:
    agent = make_staff(app, "andi")
    client = signed_in(app, "andi")
    staff_services(app).directory.set_password(agent.id, "kata-sandi-baru-456")
    assert client.get("/staff/chats").status_code == 302
    assert login(client, "andi", "kata-sandi-baru-456").status_code == 302


def test_deactivated_users_are_signed_out_and_cannot_sign_in(app: Flask) -> None:
    agent = make_staff(app, "andi")
    admin = make_staff(app, "admin", role="admin")
    client = signed_in(app, "andi")
    staff_services(app).directory.update_user(agent.id, "agent", None, False, admin)
    assert client.get("/staff/chats").status_code == 302
    assert login(client, "andi").status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/staff/\\evil", "javascript:alert(1)"])
def test_login_never_redirects_off_the_dashboard(app: Flask, client: FlaskClient, target: str) -> None:
    make_staff(app, "andi")
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    response = client.post(f"/staff/login?next={target}", data={"csrf_token": token, "username": "andi", "password": PASSWORD})
    assert response.headers["Location"].endswith("/staff/chats")


def test_login_keeps_a_dashboard_next_page(app: Flask, client: FlaskClient) -> None:
    make_staff(app, "andi")
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    response = client.post("/staff/login?next=/staff/reports", data={"csrf_token": token, "username": "andi", "password": PASSWORD})
    assert response.headers["Location"].endswith("/staff/reports")


def test_pages_are_not_cached_framed_or_scripted_from_elsewhere(app: Flask) -> None:
    make_staff(app, "andi")
    response = signed_in(app, "andi").get("/staff/chats")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "https://" not in response.get_data(as_text=True), "no asset from a CDN"


def test_session_cookie_is_http_only_and_same_site(app: Flask, client: FlaskClient) -> None:
    make_staff(app, "andi")
    response = login(client, "andi")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_twilio_webhooks_need_no_csrf_token(client: FlaskClient) -> None:
    # Signature checking, not CSRF, guards them: an unsigned post is 403, not 400.
    assert client.post("/webhooks/twilio/messages", data={"From": "+6281234567890"}).status_code == 403
