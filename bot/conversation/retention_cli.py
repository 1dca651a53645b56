"""`bansos purge`: destroy chat logs whose retention period has ended.

Attached to the `bansos` group with `main.add_command(purge)`. Meant for a daily cron
job or systemd timer; `--dry-run` shows what would go without deleting anything.
"""
from __future__ import annotations

import click

from bot.config import load_settings
from bot.db import Database
from bot.conversation.retention import DEFAULT_RETENTION_DAYS, PurgeReport, purge_chats
from bot.media.store import make_media_store


def describe(report: PurgeReport) -> str:
    verb = "would delete" if report.dry_run else "deleted"
    return (
        f"{'dry run: ' if report.dry_run else ''}{verb} {report.messages} chat messages from "
        f"before {report.cutoff:%Y-%m-%d %H:%M} UTC, {report.staff_reply_links} staff-reply "
        f"links, {report.contacts} contacts left with nothing, {report.media_files} stored "
        f"photos/PDFs and {report.staff_sessions} ended staff sign-ins; reports with their evidence, "
        "handoff records, "
        "the audit log and opted-out numbers are kept"
    )


@click.command("purge")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=DEFAULT_RETENTION_DAYS,
    show_default=True,
    help="Retention period: chat messages older than this many days are deleted.",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
def purge(days: int, dry_run: bool) -> None:
    """Delete chat messages and their media older than the retention period (UU PDP: destroy on expiry)."""
    settings = load_settings()
    db = Database.from_settings(settings)
    try:
        store = make_media_store(settings, db)
        click.echo(describe(purge_chats(db, retention_days=days, dry_run=dry_run, media_store=store)))
    finally:
        db.dispose()
