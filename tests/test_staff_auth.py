"""Signing in to the dashboard: hashed passwords, sessions, CSRF, lockout, logout."""
from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, session as flask_session
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from bot.db import Database
from bot.conversation.models import utcnow
from bot.handoff.staff_models import AuditEntry, StaffLoginSession, StaffUser
from bot.handoff.staff_users import LOCKOUT, MAX_FAILED_LOGINS, SESSION_LIFETIME
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


@pytest.mark.parametrize("path", ["/webhooks/twilio/messages", "/health", "/metrics", "/staffing"])
def test_an_officers_session_cookie_is_read_on_the_dashboards_pages_alone(app: Flask, client: FlaskClient,
                                                                          path: str) -> None:
    """The signed-in officer's cookie opens the session on /staff; a webhook, health or
    metrics request gets Flask's null session, however the cookie came with it."""
    make_staff(app, "andi")
    login(client, "andi", PASSWORD)
    cookie = client.get_cookie("session")
    assert cookie is not None
    headers = {"Cookie": f"session={cookie.value}"}
    with app.test_request_context("/staff/chats", headers=headers):
        assert flask_session.get("_user_id"), "the dashboard reads the officer's session"
    with app.test_request_context(path, headers=headers):
        assert app.session_interface.is_null_session(flask_session) and "_user_id" not in flask_session


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


# What an attacker or a mangled link may put in `next`: each must land on the dashboard home.
NASTY_NEXT = [
    pytest.param("/staff/\n", id="newline"),
    pytest.param("/staff/\r\nSet-Cookie: x=1", id="header injection"),
    pytest.param("/staff/\r", id="carriage return"),
    pytest.param("/staff/\tx", id="tab"),
    pytest.param("/staff/\x00", id="NUL"),
    pytest.param("/staff/\u2028", id="unicode line separator"),
    pytest.param("/staff/laporan-é", id="non-ASCII"),
    pytest.param("/staff/ x", id="space"),
    pytest.param("\\evil.example", id="backslashes"),
    pytest.param("/\\evil.example", id="slash backslash"),
    pytest.param("/staff/\\evil", id="backslash inside"),
    pytest.param("//evil.example", id="scheme-relative"),
    pytest.param("///evil.example", id="three slashes"),
    pytest.param("/staff//evil.example", id="double slash inside"),
    pytest.param("https://evil.example/staff/", id="absolute URL"),
    pytest.param("https:/staff/", id="scheme without host"),
    pytest.param("javascript:alert(1)", id="javascript"),
    pytest.param("/staff/../evil", id="dot-dot"),
    pytest.param("/staff/%2e%2e/evil", id="encoded dot-dot"),
    pytest.param("/staff/%2F%2Fevil", id="encoded slashes"),
    pytest.param("/staff/%0a", id="encoded newline"),
    pytest.param("staff/reports", id="relative"),
    pytest.param("/staffx/", id="prefix lookalike"),
    pytest.param("/staff/" + "a" * 3000, id="very long"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("target", NASTY_NEXT)
def test_an_odd_next_after_login_falls_back_to_the_dashboard_home(app: Flask, client: FlaskClient, target: str) -> None:
    make_staff(app, "andi")
    token = csrf_token(client.get("/staff/login", query_string={"next": target}).get_data(as_text=True))
    response = client.post(
        "/staff/login", query_string={"next": target},
        data={"csrf_token": token, "username": "andi", "password": PASSWORD},
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.netloc in ("", "localhost") and location.path == "/staff/chats"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/staff/\\evil", "javascript:alert(1)"])
def test_login_never_redirects_off_the_dashboard(app: Flask, client: FlaskClient, target: str) -> None:
    make_staff(app, "andi")
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    response = client.post(f"/staff/login?next={target}", data={"csrf_token": token, "username": "andi", "password": PASSWORD})
    assert response.headers["Location"].endswith("/staff/chats")


@pytest.mark.parametrize("target", ["/staff/reports", "/staff/reports?status=baru&kind=aduan", "/staff/chats/12#balas"])
def test_login_keeps_a_dashboard_next_page(app: Flask, client: FlaskClient, target: str) -> None:
    make_staff(app, "andi")
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    response = client.post("/staff/login", query_string={"next": target}, data={"csrf_token": token, "username": "andi", "password": PASSWORD})
    assert response.headers["Location"].endswith(target)


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


# ---- server-side sessions ----------------------------------------------------------


def copy_session_cookie(source: FlaskClient, target: FlaskClient) -> None:
    """What a thief does with a cookie read off a shared computer or a proxy log."""
    cookie = source.get_cookie("session")
    assert cookie is not None
    target.set_cookie("session", cookie.value)


def session_id_in_cookie(app: Flask, client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)["_user_id"]  # type: ignore[attr-defined]


def test_a_session_cookie_copied_before_logout_is_refused_after_it(app: Flask) -> None:
    make_staff(app, "andi")
    browser = signed_in(app, "andi")
    copy = app.test_client()
    copy_session_cookie(browser, copy)
    assert copy.get("/staff/chats").status_code == 200
    post_form(browser, "/staff/chats", "/staff/logout")
    assert copy.get("/staff/chats").status_code == 302
    assert copy.get("/staff/chats.json").status_code == 401


def test_logging_out_leaves_the_users_other_devices_signed_in(app: Flask) -> None:
    make_staff(app, "andi")
    laptop = signed_in(app, "andi")
    phone = signed_in(app, "andi")
    post_form(laptop, "/staff/chats", "/staff/logout")
    assert laptop.get("/staff/chats").status_code == 302
    assert phone.get("/staff/chats").status_code == 200


def test_logout_holds_on_every_web_host_sharing_the_database(app_config: dict[str, Any]) -> None:
    config = {**app_config, "secret_key": "one-key-for-every-host-0123456789"}
    host_a, host_b = create_app(config), create_app(config)
    make_staff(host_a, "andi")
    on_a = signed_in(host_a, "andi")
    on_b = host_b.test_client()
    copy_session_cookie(on_a, on_b)
    assert on_b.get("/staff/chats").status_code == 200
    post_form(on_a, "/staff/chats", "/staff/logout")
    assert on_b.get("/staff/chats").status_code == 302


def test_a_session_ends_after_eight_idle_hours(app: Flask) -> None:
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    staff_services(app).directory.clock = lambda: utcnow() + SESSION_LIFETIME + timedelta(seconds=1)
    assert client.get("/staff/chats").status_code == 302


def test_working_keeps_a_session_alive_through_a_long_shift(app: Flask) -> None:
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    directory = staff_services(app).directory
    start = utcnow()
    for hours in (6, 12, 18):
        directory.clock = lambda at=start + timedelta(hours=hours): at
        assert client.get("/staff/chats").status_code == 200


def test_the_database_keeps_only_a_hash_of_the_session_id(app: Flask, sqlite_db: Database) -> None:
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    session_id = session_id_in_cookie(app, client)
    with sqlite_db.session() as session:
        stored = session.scalars(select(StaffLoginSession.id_hash)).all()
    assert stored == [hashlib.sha256(session_id.encode()).hexdigest()]
    assert len(session_id) >= 40


@pytest.mark.parametrize("forged", ["", "1", "1:1", "x" * 43, "1:" + "9" * 400])
def test_a_session_id_the_database_does_not_know_signs_nobody_in(app: Flask, forged: str) -> None:
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    with client.session_transaction("/staff/chats") as cookie_session:
        cookie_session["_user_id"] = forged
    assert client.get("/staff/chats").status_code == 302


# ---- behind a reverse proxy --------------------------------------------------------

PROXY = "10.0.0.2"
CLIENT = "198.51.100.23"
PUBLIC_HOST = "bansos.example.go.id"


def login_through_proxy(app: Flask, forwarded_for: str) -> None:
    """Sign in as a browser does through a TLS-terminating proxy that adds X-Forwarded-*."""
    client = app.test_client()
    environ = {"REMOTE_ADDR": PROXY}
    proxy_headers = {"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https", "X-Forwarded-Host": PUBLIC_HOST}
    page = client.get("/staff/login", headers=proxy_headers, environ_base=environ)
    # Over HTTPS Flask-WTF wants a same-origin Referer; a browser sends one only if the policy allows it.
    assert page.headers["Referrer-Policy"] == "same-origin"
    response = client.post(
        "/staff/login",
        data={"csrf_token": csrf_token(page.get_data(as_text=True)), "username": "andi", "password": PASSWORD},
        headers={**proxy_headers, "Referer": f"https://{PUBLIC_HOST}/staff/login"},
        environ_base=environ,
    )
    assert response.status_code == 302


def login_ip(db: Database) -> str:
    with db.session() as session:
        return session.scalars(select(AuditEntry.ip).where(AuditEntry.action == "login")).one()


@pytest.mark.parametrize("forwarded_for", [CLIENT, f"203.0.113.66, {CLIENT}"], ids=["one address", "client-forged first entry"])
def test_behind_a_trusted_proxy_the_audit_log_records_the_clients_address(
    app_config: dict[str, Any], sqlite_db: Database, forwarded_for: str
) -> None:
    app = create_app({**app_config, "trusted_proxy_hops": 1})
    make_staff(app, "andi")
    login_through_proxy(app, forwarded_for)
    assert login_ip(sqlite_db) == CLIENT


def test_without_trusted_proxies_a_forwarded_for_header_is_ignored(app: Flask, sqlite_db: Database) -> None:
    make_staff(app, "andi")
    login_through_proxy(app, CLIENT)
    assert login_ip(sqlite_db) == PROXY
