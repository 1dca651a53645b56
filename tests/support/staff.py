"""Staff accounts and signed-in dashboard clients for tests."""
from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from bot.handoff.staff_services import StaffServices
from bot.handoff.staff_users import StaffIdentity

PASSWORD = "kata-sandi-uji-123"
_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def staff_services(app: Flask) -> StaffServices:
    return app.extensions["bansos"].staff


def make_staff(
    app: Flask,
    username: str,
    role: str = "agent",
    region: str | None = None,
    full_name: str | None = None,
    password: str = PASSWORD,
) -> StaffIdentity:
    return staff_services(app).directory.create_user(
        username, password, role, full_name or username.title(), region
    )


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    return client.post("/staff/login", data={"csrf_token": token, "username": username, "password": password})


def signed_in(app: Flask, username: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    response = login(client, username, password)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def post_form(client: FlaskClient, page: str, path: str, data: dict[str, Any] | None = None) -> Any:
    """POST to `path` with the CSRF token taken from `page`, as a browser would."""
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **(data or {})})
