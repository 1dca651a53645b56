"""`bansos conversations export`: the dashboard's conversation export, for operators.

Attached to the `bansos` group with `main.add_command(conversations)`. Like the
dashboard's, every export is audited (actor "-", `via=cli`) and carries NIKs whole
only with an explicit `--include-nik`.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from bot.config import load_settings
from bot.handoff.conversation_export import ContactNotFound, InvalidExport, Period
from bot.services import build_services

_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _period(first: datetime | None, last: datetime | None) -> Period | None:
    if first is None and last is None:
        return None
    if first is None or last is None:
        raise click.UsageError("--from and --to go together.")
    return Period(first.date(), last.date())


@click.group()
def conversations() -> None:
    """Citizens' conversations: every message in and out."""


@conversations.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--contact", metavar="PHONE", help="One citizen's conversation, by phone number or WhatsApp id.")
@click.option("--region", metavar="CODE", help="Province (2 digits) or regency (4 digits) code; all when left out.")
@click.option("--from", "first", type=_DATE, metavar="YYYY-MM-DD", help="First day, in the citizen's local date.")
@click.option("--to", "last", type=_DATE, metavar="YYYY-MM-DD", help="Last day (included).")
@click.option("--include-nik", is_flag=True, help="Write NIKs whole (personal data: handle with care).")
def export_command(
    file: Path,
    contact: str | None,
    region: str | None,
    first: datetime | None,
    last: datetime | None,
    include_nik: bool,
) -> None:
    """Write one citizen's conversation (--contact) or a region's in a period (--from/--to) to FILE as UTF-8 CSV."""
    services = build_services(load_settings())
    try:
        lines = services.staff.conversation_export.for_cli(include_nik, contact, region, _period(first, last))
        with file.open("w", encoding="utf-8", newline="") as handle:
            handle.write(next(lines))
            count = 0
            for line in lines:
                handle.write(line)
                count += 1
    except ContactNotFound:
        raise click.ClickException(f"no conversation with {contact}") from None
    except InvalidExport as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        services.db.dispose()
    click.echo(f"exported {count} message(s) to {file}" + (" with full NIKs" if include_nik else ""))
