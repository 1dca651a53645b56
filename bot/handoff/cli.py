"""`bansos create-admin` and `bansos staff ...`: dashboard accounts from the command line.

The first admin can only come from here (the dashboard needs someone to sign in).
Passwords come from BANSOS_ADMIN_PASSWORD when set, so scripts and `make` targets
need no terminal; otherwise they are prompted for, hidden and twice.
Attached to the `bansos` group with `main.add_command(create_admin)` and
`main.add_command(staff)`.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import click

from bot.handoff.audit import AuditLog
from bot.config import load_settings
from bot.db import Database
from bot.handoff.staff_models import StaffRole
from bot.handoff.staff_users import InvalidStaffUser, StaffDirectory

PASSWORD_ENV = "BANSOS_ADMIN_PASSWORD"


@contextmanager
def _directory() -> Iterator[StaffDirectory]:
    """The account directory on the configured database, its schema brought up to date."""
    db = Database.from_settings(load_settings())
    try:
        db.upgrade()
        yield StaffDirectory(db, AuditLog(db))
    finally:
        db.dispose()


def _password() -> str:
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.command("create-admin")
@click.argument("username")
@click.option("--full-name", default="Administrator", show_default=True, help="Name shown in the dashboard.")
def create_admin(username: str, full_name: str) -> None:
    """Create an admin account USERNAME (password from BANSOS_ADMIN_PASSWORD, else prompted)."""
    with _directory() as directory:
        try:
            user = directory.create_user(username, _password(), StaffRole.ADMIN, full_name)
        except InvalidStaffUser as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"admin {user.username} created; sign in at /staff/login")


@click.group()
def staff() -> None:
    """Staff dashboard accounts."""


@staff.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice(StaffRole.ALL), default=StaffRole.AGENT, show_default=True)
@click.option("--full-name", required=True, help="Name shown in the dashboard and checked against sensitive reports.")
@click.option("--region", default="", help="Kemendagri province (32) or regency (3201) code; empty: national.")
def create_user(username: str, role: str, full_name: str, region: str) -> None:
    """Create an account USERNAME (password from BANSOS_ADMIN_PASSWORD, else prompted)."""
    with _directory() as directory:
        try:
            user = directory.create_user(username, _password(), role, full_name, region)
        except InvalidStaffUser as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{user.role} {user.username} created")


@staff.command("list")
def list_users() -> None:
    """Print every account with its role, region and state."""
    with _directory() as directory:
        users = directory.list_users()
    if not users:
        click.echo("no accounts yet: bansos create-admin USERNAME")
        return
    for user in users:
        state = "active" if user.active else "inactive"
        if user.locked_until:
            state += f", locked until {user.locked_until:%Y-%m-%d %H:%M} UTC"
        click.echo(f"{user.username:<20} {user.role:<10} {user.region or 'national':<8} {state}  {user.full_name}")


@staff.command("set-password")
@click.argument("username")
def set_password(username: str) -> None:
    """Set USERNAME's password (BANSOS_ADMIN_PASSWORD, else prompted); also unlocks it."""
    with _directory() as directory:
        user = directory.find_by_username(username)
        if user is None:
            raise click.ClickException(f"no account {username}")
        try:
            directory.set_password(user.id, _password())
        except InvalidStaffUser as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"password of {user.username} set; their sessions have ended")
