"""`bansos notices ...`: plan, dry-run, run, pause, resume and watch notice campaigns.

Attached to the `bansos` group with `main.add_command(notices)`. The scheduler process
plans and sends on its own; these commands are for an operator who wants a campaign
now, wants to know what one would cost first, or needs to stop one.
"""
from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from bot.channels.routing import make_transport
from bot.config import Settings, load_settings
from bot.db import Database
from bot.notices.dispatcher import Dispatcher, DispatchReport
from bot.conversation.models import utcnow
from bot.notices.ops import (
    ResultGroup,
    Results,
    campaigns,
    due_now,
    estimate,
    flagged_recipients,
    is_paused,
    next_due,
    results,
    set_paused,
)
from bot.notices.planning import NoticePlanner, PlanReport
from bot.notices.models import CampaignSource
from bot.notices.pacing import SendingWindow
from bot.notices.scheduler import Lease, new_holder_id, renewed


@contextmanager
def _database() -> Iterator[tuple[Database, Settings]]:
    settings = load_settings()
    db = Database.from_settings(settings)
    try:
        yield db, settings
    finally:
        db.dispose()


def _counts(counter: Counter[str] | dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items())) or "none"


def _echo_plan(report: PlanReport) -> None:
    campaign = f"campaign {report.campaign_id}" if report.campaign_id else "no new campaign"
    click.echo(f"planned {report.total} notices ({_counts(report.planned)}), {campaign}")
    if report.skipped:
        click.echo(f"not planned: {_counts(report.skipped)}")


def _echo_results(found: Results, indent: str = "") -> None:
    line = ", ".join(f"{group} {found.total[group]}" for group in ResultGroup.ALL)
    click.echo(f"{indent}{found.count} notices: {line}")
    for channel, counter in sorted(found.by_channel.items()):
        per = ", ".join(f"{group} {counter[group]}" for group in ResultGroup.ALL if counter[group])
        click.echo(f"{indent}  {channel}: {per}")
    for reason, count in found.failure_reasons.most_common(5):
        click.echo(f"{indent}  not sent or failed, {reason}: {count}")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


@click.group()
def notices() -> None:
    """Disbursement notices by SMS and WhatsApp."""


@notices.command()
@click.option("--label", help="A name for the campaign (default: operator and the time).")
def plan(label: str | None) -> None:
    """Write every notice that is due now into the outbox (safe to repeat)."""
    with _database() as (db, settings):
        _echo_plan(NoticePlanner(db, settings).plan(CampaignSource.OPERATOR, label))


@notices.command("dry-run")
def dry_run() -> None:
    """Show what planning now would send, what it costs and how long it takes."""
    with _database() as (db, settings):
        preview = NoticePlanner(db, settings).preview()
        figures = estimate(preview.notices, settings)
        click.echo(f"would plan {figures.count} notices ({_counts(preview.planned)})")
        if preview.skipped:
            click.echo(f"not planned: {_counts(preview.skipped)}")
        click.echo(f"by channel: {_counts(figures.by_channel)}")
        click.echo(f"by zone: {_counts(figures.by_zone)}")
        click.echo(f"by region: {_counts(figures.by_region)}")
        segments = {f"{size} segment(s)": count for size, count in figures.by_segments.items()}
        click.echo(f"SMS by segments: {_counts(segments)}")
        click.echo(
            f"estimated cost: {figures.cost:,.2f} {figures.currency} "
            f"(SMS {settings.notice_sms_price} a segment, WhatsApp "
            f"{settings.notice_whatsapp_price} a message: NOTICE_SMS_PRICE, NOTICE_WHATSAPP_PRICE)"
        )
        click.echo(
            f"estimated duration: {_duration(figures.seconds)} at "
            f"{settings.notice_sms_rate:g}/s SMS and {settings.notice_whatsapp_rate:g}/s WhatsApp, "
            f"sent only {settings.notice_send_from}-{settings.notice_send_until} local time"
        )


@notices.command()
@click.option("--plan/--no-plan", "plan_first", default=True, help="Plan before sending (default).")
def run(plan_first: bool) -> None:
    """Plan, then send everything due now, with a progress bar; Ctrl-C stops cleanly."""
    with _database() as (db, settings):
        lease = Lease(db, f"cli {new_holder_id()}", settings.notice_lease_seconds)
        if not lease.acquire():
            current = lease.current()
            holder = current.holder if current else "another process"
            click.echo(
                f"the scheduler ({holder}) is sending notices now and will send these too; "
                "`bansos notices status` shows progress",
                err=True,
            )
            raise SystemExit(1)
        with renewed(lease) as lost:
            if plan_first:
                _echo_plan(NoticePlanner(db, settings).plan(CampaignSource.OPERATOR))
            if is_paused(db):
                click.echo("notices are paused; `bansos notices resume` to send", err=True)
                raise SystemExit(1)
            report = _send_with_progress(db, settings, lost)
        click.echo(f"this run: {_counts({k: v for k, v in report.as_dict().items() if v})}")
        _echo_results(results(db))


def _send_with_progress(db: Database, settings: Settings, lost: threading.Event) -> DispatchReport:
    window = SendingWindow.parse(settings.notice_send_from, settings.notice_send_until)
    total = due_now(db, window, utcnow())
    stopping = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = signal.signal(signal.SIGINT, stop)
    try:
        with click.progressbar(length=total, label="sending notices") as bar:
            return Dispatcher(db, make_transport(settings), settings).run(
                should_stop=lambda: stopping.is_set() or lost.is_set(), on_done=bar.update
            )
    finally:
        signal.signal(signal.SIGINT, previous)


@notices.command()
@click.option("--campaign", type=int, help="Pause one campaign only.")
def pause(campaign: int | None) -> None:
    """Stop sending (all notices, or one campaign); planning goes on, nothing is lost."""
    _switch(True, campaign)


@notices.command()
@click.option("--campaign", type=int, help="Resume one campaign only.")
def resume(campaign: int | None) -> None:
    """Send again after a pause."""
    _switch(False, campaign)


def _switch(paused: bool, campaign: int | None) -> None:
    with _database() as (db, _settings):
        if not set_paused(db, paused, f"cli {new_holder_id()}", campaign):
            click.echo(f"no campaign {campaign}", err=True)
            raise SystemExit(1)
    what = f"campaign {campaign}" if campaign is not None else "all notices"
    click.echo(f"{what}: {'paused' if paused else 'resumed'}")


@notices.command()
@click.option("--campaign", type=int, help="One campaign only.")
@click.option(
    "--campaigns", "limit", type=int, default=5, show_default=True, help="Campaigns to list."
)
def status(campaign: int | None, limit: int) -> None:
    """Results: sent, delivered, failed, pending; campaigns; who holds the scheduler lease."""
    with _database() as (db, settings):
        if campaign is not None:
            _echo_results(results(db, campaign))
            return
        click.echo("all notices" + (" (PAUSED)" if is_paused(db) else ""))
        _echo_results(results(db), "  ")
        upcoming = next_due(db)
        if upcoming is not None:
            click.echo(f"  earliest pending notice may go at {upcoming:%Y-%m-%d %H:%M} UTC")
        for view in campaigns(db, limit):
            state = " (paused)" if view.paused else ""
            click.echo(f"campaign {view.id} {view.label!r} from {view.source}{state}")
            _echo_results(view.results, "  ")
        current = Lease(db, "", settings.notice_lease_seconds).current()
        if current is not None and current.expires_at > utcnow():
            click.echo(f"scheduler lease: {current.holder} until {current.expires_at:%H:%M:%S} UTC")
        else:
            click.echo("scheduler lease: free (no scheduler running)")
        flagged, _ = flagged_recipients(db, limit=0)
        click.echo(f"recipients flagged for data cleaning: {flagged} (`bansos notices flagged`)")


@notices.command()
@click.option("--limit", type=int, default=50, show_default=True)
def flagged(limit: int) -> None:
    """Recipients whose number failed for good, for the data-cleaning team (masked)."""
    with _database() as (db, _settings):
        total, rows = flagged_recipients(db, limit)
    click.echo(f"{total} recipients flagged")
    for row in rows:
        when = f"{row.flagged_at:%Y-%m-%d}" if row.flagged_at else "-"
        click.echo(f"{row.masked_nik}  {row.masked_phone}  {when}  {row.reason}")
