"""The `bansos` command line: database set-up, imports and operator tasks."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from bot.config import load_settings
from bot.db import Database
from bot.registry.demo import DEFAULT_RECIPIENTS, DEMO_PERSONAS, seed_demo
from bot.reports.demo_complaints import seed_demo_complaints
from bot.registry.importer import ImportFileError, ImportReport, import_disbursements, import_recipients
from bot.rules.logmask import configure_logging
from bot.notices.cli import notices
from bot.channels.content_cli import content
from bot.reports.cli import reports
from bot.conversation.retention_cli import purge
from bot.handoff.cli import create_admin, staff
from bot.handoff.conversations_cli import conversations


def _database() -> Database:
    return Database.from_settings(load_settings())


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


def _print_import(report: ImportReport) -> None:
    click.echo(
        f"{report.kind}: {report.rows} rows read, {report.imported} imported "
        f"({report.inserted} new, {report.updated} updated), {len(report.errors)} bad, "
        f"{report.seconds:.1f} s"
    )
    for error in report.errors:
        click.echo(f"line {error.line}: {error.reason}")


def _run_import(importer: Callable[[Database, Path], ImportReport], file: Path) -> None:
    """Bad rows are reported and the exit code stays 0; an unreadable file exits 1."""
    try:
        report = importer(_database(), file)
    except ImportFileError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    _print_import(report)


@main.command("import-recipients")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def import_recipients_command(file: Path) -> None:
    """Import recipients from a CSV file (nik,name,birth_date,phone,province,...)."""
    _run_import(import_recipients, file)


@main.command("import-disbursements")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def import_disbursements_command(file: Path) -> None:
    """Import disbursements from a CSV file (nik,program,period,amount,channel,...)."""
    _run_import(import_disbursements, file)


@main.command("seed-demo")
@click.option(
    "--recipients",
    default=DEFAULT_RECIPIENTS,
    show_default=True,
    help="random households besides the personas",
)
def seed_demo_command(recipients: int) -> None:
    """Load the synthetic demo data set (idempotent: running it again updates it)."""
    db = _database()
    db.upgrade()
    for report in seed_demo(db, recipients=recipients):
        _print_import(report)
    click.echo(f"demo complaints: {seed_demo_complaints(db)} (one planted cluster: menu Sinyal)")
    click.echo("try it with the households listed by: bansos demo-personas")


@main.command("demo-personas")
def demo_personas_command() -> None:
    """List the fixed demo households (NIK, phone, what each one shows)."""
    for persona in DEMO_PERSONAS:
        phone = persona.phone or "no phone registered"
        click.echo(f"{persona.name}\n  NIK   {persona.nik}\n  phone {phone}")
        click.echo(f"  shows {persona.shows}")


main.add_command(reports)
main.add_command(create_admin)
main.add_command(staff)
main.add_command(purge)
main.add_command(notices)
main.add_command(content)
main.add_command(conversations)
