"""Roles at the door of each page, staff accounts, imports, the audit log, the figures,
and the CLI that creates the first admin."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from bot.db import Database
from bot.registry.models import Recipient
from bot.handoff.cli import create_admin, staff
from bot.handoff.staff_models import AuditEntry, StaffUser
from tests.support.staff import csrf_token, login, make_staff, post_form, signed_in

ADMIN_PAGES = ["/staff/admin/users", "/staff/admin/import", "/staff/admin/audit"]


@pytest.mark.parametrize(
    "role, overview, admin_pages",
    [("agent", 403, 403), ("supervisor", 200, 403), ("admin", 200, 200)],
)
def test_each_role_reaches_its_pages(app: Flask, role: str, overview: int, admin_pages: int) -> None:
    make_staff(app, "orang", role=role)
    client = signed_in(app, "orang")
    assert client.get("/staff/chats").status_code == 200
    assert client.get("/staff/reports").status_code == 200
    assert client.get("/staff/overview").status_code == overview
    assert {client.get(page).status_code for page in ADMIN_PAGES} == {admin_pages}


def test_overview_shows_the_figures(app: Flask) -> None:
    make_staff(app, "sri", role="supervisor")
    html = signed_in(app, "sri").get("/staff/overview").get_data(as_text=True)
    for words in ("percakapan hari ini", "menunggu balasan petugas", "median balasan pertama", "Pengaduan", "Ditolak"):
        assert words in html


def test_admin_creates_an_agent_who_can_then_sign_in(app: Flask, sqlite_db: Database) -> None:
    make_staff(app, "admin", role="admin")
    client = signed_in(app, "admin")
    response = post_form(client, "/staff/admin/users", "/staff/admin/users", {
        "username": "Ani.L", "full_name": "Ani Lestari", "role": "agent", "region": "7371", "password": "rahasia-ani-2026",
    })
    assert response.status_code == 302
    assert login(app.test_client(), "ani.l", "rahasia-ani-2026").status_code == 302
    with sqlite_db.session() as session:
        assert session.scalars(select(StaffUser.region).where(StaffUser.username == "ani.l")).one() == "7371"
        assert session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "admin")).all()[-1] == "user_created"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"username": "admin", "password": "panjang-sekali-1"}, "sudah dipakai"),
        ({"username": "x y", "password": "panjang-sekali-1"}, "Nama pengguna"),
        ({"username": "ani", "password": "pendek"}, "minimal 10"),
        ({"username": "ani", "password": "panjang-sekali-1", "region": "99"}, "Wilayah"),
    ],
)
def test_bad_accounts_are_refused_with_a_reason(app: Flask, fields: dict[str, str], message: str) -> None:
    make_staff(app, "admin", role="admin")
    client = signed_in(app, "admin")
    data = {"full_name": "Orang Baru", "role": "agent", "region": "", **fields}
    response = post_form(client, "/staff/admin/users", "/staff/admin/users", data)
    html = response.get_data(as_text=True) if response.status_code == 200 else client.get("/staff/admin/users").get_data(as_text=True)
    assert message in html


def test_changing_a_role_signs_the_user_out(app: Flask) -> None:
    agent = make_staff(app, "ani")
    make_staff(app, "admin", role="admin")
    ani = signed_in(app, "ani")
    admin = signed_in(app, "admin")
    page = f"/staff/admin/users/{agent.id}"
    post_form(admin, page, page, {"role": "supervisor", "region": "", "active": "y"})
    assert ani.get("/staff/chats").status_code == 302
    assert signed_in(app, "ani").get("/staff/overview").status_code == 200


def test_admins_cannot_demote_or_deactivate_themselves(app: Flask) -> None:
    admin_id = make_staff(app, "admin", role="admin").id
    client = signed_in(app, "admin")
    page = f"/staff/admin/users/{admin_id}"
    post_form(client, page, page, {"role": "agent", "region": "", "active": "y"})
    assert "tidak dapat diubah" in client.get(page).get_data(as_text=True)
    assert client.get("/staff/admin/users").status_code == 200


def test_admin_resets_a_password(app: Flask) -> None:
    agent = make_staff(app, "ani")
    make_staff(app, "admin", role="admin")
    page = f"/staff/admin/users/{agent.id}"
    post_form(signed_in(app, "admin"), page, f"{page}/password", {"password": "sandi-baru-ani-1", "confirm": "sandi-baru-ani-1"})
    assert login(app.test_client(), "ani", "sandi-baru-ani-1").status_code == 302


def test_import_from_the_dashboard_reports_bad_rows_and_is_audited(app: Flask, sqlite_db: Database) -> None:
    make_staff(app, "admin", role="admin")
    client = signed_in(app, "admin")
    csv_text = (
        "nik,name,birth_date,phone,province,regency,district,village,address,has_smartphone\n"
        "7371014501900003,Siti Aminah,1990-01-05,081234567890,73,Makassar,Tamalate,Mangasa,Jl. Mawar 1,true\n"
        "123,Salah,1990-01-05,,73,,,,,false\n"
    )
    token = csrf_token(client.get("/staff/admin/import").get_data(as_text=True))
    response = client.post("/staff/admin/import", data={
        "csrf_token": token, "kind": "recipients", "file": (io.BytesIO(csv_text.encode()), "kpm.csv"),
    }, content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "2 baris dibaca, 1 diimpor" in html
    with sqlite_db.session() as session:
        assert session.scalars(select(Recipient.name)).all() == ["Siti Aminah"]
        detail = session.scalars(select(AuditEntry.detail).where(AuditEntry.action == "import")).one()
    assert "kpm.csv" in detail and "bad=1" in detail


def test_an_import_larger_than_the_webhook_limit_is_accepted(app: Flask) -> None:
    make_staff(app, "admin", role="admin")
    client = signed_in(app, "admin")
    header = "nik,name,birth_date,phone,province,regency,district,village,address,has_smartphone\n"
    rows = "".join(f"73710145019{n:05d},Warga {n},1990-01-05,,73,,,,,false\n" for n in range(2000))
    token = csrf_token(client.get("/staff/admin/import").get_data(as_text=True))
    response = client.post("/staff/admin/import", data={
        "csrf_token": token, "kind": "recipients", "file": (io.BytesIO((header + rows).encode()), "besar.csv"),
    }, content_type="multipart/form-data")
    assert response.status_code == 200 and "2000 baris dibaca" in response.get_data(as_text=True)


def test_audit_log_is_for_admins_and_shows_who_did_what(app: Flask) -> None:
    make_staff(app, "admin", role="admin")
    make_staff(app, "ani")
    signed_in(app, "ani")
    client = signed_in(app, "admin")
    html = client.get("/staff/admin/audit?actor=ani").get_data(as_text=True)
    assert "login" in html and "staff:ani" in html
    assert "view_audit" in client.get("/staff/admin/audit?action=view_audit").get_data(as_text=True)


def test_cli_creates_the_first_admin_from_the_environment(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv("BANSOS_ADMIN_PASSWORD", "admin-rahasia-2026")
    result = CliRunner().invoke(create_admin, ["Admin"])
    assert result.exit_code == 0, result.output
    assert "admin admin created" in result.output
    again = CliRunner().invoke(create_admin, ["admin"])
    assert again.exit_code == 1 and "sudah dipakai" in again.output
    with sqlite_db.session() as session:
        user = session.scalars(select(StaffUser)).one()
    assert (user.username, user.role) == ("admin", "admin")


def test_cli_prompts_for_the_password_without_the_variable(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", sqlite_db.url)
    monkeypatch.delenv("BANSOS_ADMIN_PASSWORD", raising=False)
    result = CliRunner().invoke(create_admin, ["kepala"], input="sandi-kepala-001\nsandi-kepala-001\n")
    assert result.exit_code == 0, result.output
    short = CliRunner().invoke(create_admin, ["lain"], input="pendek\npendek\n")
    assert short.exit_code == 1 and "10" in short.output
    listing = CliRunner().invoke(staff, ["list"])
    assert "kepala" in listing.output and "admin" in listing.output
