"""`bansos reports ...`: list, export and move reports until the staff dashboard exists.

Attached to the `bansos` group with `main.add_command(reports)`. Listings show NIKs
masked; only an explicit `--include-nik` export carries them whole.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from bot.config import load_settings
from bot.rules.regions import PROVINCES
from bot.reports.service import ReportNotFound, ReportService, ReportView, StatusChangeNotAllowed
from bot.reports.models import ReportKind, ReportStatus
from bot.services import build_services

TABLE_COLUMNS = ("REFERENCE", "KIND", "CATEGORY", "STATUS", "PROV", "NIK", "CREATED (UTC)", "SENSITIVE")


@contextmanager
def _service() -> Iterator[ReportService]:
    """The report service on the configured database, closed when the command ends."""
    services = build_services(load_settings())
    try:
        yield services.reports
    finally:
        services.db.dispose()


def _filters(command: Callable[..., Any]) -> Callable[..., Any]:
    """The filters `list` and `export` share."""
    options = [
        click.option("--kind", type=click.Choice(ReportKind.ALL), help="usul, sanggah or pengaduan."),
        click.option("--status", type=click.Choice(ReportStatus.ALL), help="Current status."),
        click.option(
            "--province",
            type=click.Choice(sorted(PROVINCES)),
            show_choices=False,
            metavar="CODE",
            help="Two-digit Kemendagri province code, e.g. 32.",
        ),
        click.option(
            "--sensitive/--no-sensitive", default=None, help="Only sensitive reports, or none of them."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _row(view: ReportView) -> tuple[str, ...]:
    return (
        view.reference,
        view.kind,
        view.category,
        view.status,
        view.province_code or "-",
        view.masked_nik or "-",
        f"{view.created_at:%Y-%m-%d %H:%M}",
        "yes" if view.is_sensitive else "no",
    )


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    )


@click.group()
def reports() -> None:
    """Citizen reports (usul, sanggah, pengaduan)."""


@reports.command("list")
@_filters
def list_command(kind: str | None, status: str | None, province: str | None, sensitive: bool | None) -> None:
    """Print the matching reports, oldest first, with NIKs masked."""
    with _service() as service:
        views = service.list_reports(kind=kind, status=status, province=province, sensitive=sensitive)
    if not views:
        click.echo("no reports match")
        return
    click.echo(_table([TABLE_COLUMNS, *(_row(view) for view in views)]))
    click.echo(f"{len(views)} report(s)")


@reports.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@_filters
@click.option("--include-nik", is_flag=True, help="Write NIKs whole (personal data: handle with care).")
def export_command(
    file: Path,
    kind: str | None,
    status: str | None,
    province: str | None,
    sensitive: bool | None,
    include_nik: bool,
) -> None:
    """Write the matching reports to FILE as UTF-8 CSV."""
    with _service() as service, file.open("w", encoding="utf-8", newline="") as handle:
        count = service.export_csv(
            handle, kind=kind, status=status, province=province, sensitive=sensitive,
            include_nik=include_nik,
        )
    click.echo(f"exported {count} report(s) to {file}" + (" with full NIKs" if include_nik else ""))


@reports.command("set-status")
@click.argument("reference")
@click.argument("status", type=click.Choice(ReportStatus.ALL))
@click.option("--note", default="", help="Told to the reporter; required for ditolak.")
@click.option("--actor", required=True, help="Staff username making the change.")
def set_status_command(reference: str, status: str, note: str, actor: str) -> None:
    """Move report REFERENCE to STATUS and notify the reporter (unless they sent STOP)."""
    with _service() as service:
        try:
            report = service.change_status(reference, status, actor, note)
        except (ReportNotFound, StatusChangeNotAllowed) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{report.reference} is now {report.status}")
