"""The `bansos` command line: database set-up, imports and operator tasks."""
from __future__ import annotations

import click

from bot.config import load_settings
from bot.db import Database
from bot.logmask import configure_logging


def _database() -> Database:
    return Database(load_settings().database_url)


@click.group()
def main() -> None:
    """Asisten Bansos operator commands."""
    configure_logging()


@main.command("init-db")
def init_db() -> None:
    """Create the database or bring its schema up to date (keeps existing data)."""
    db = _database()
    db.upgrade()
    click.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")
