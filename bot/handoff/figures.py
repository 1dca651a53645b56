"""The few numbers a supervisor checks: load today, who waits, how fast people answer.

"Today" is the calendar day in WIB, where the national team works; first-response
time is measured over the handoffs opened in the last week, from escalation to the
first staff message the provider accepted, in wall-clock time (nights and weekends
included: that is what the citizen experiences).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, func, select

from bot.db import Database
from bot.handoff.models import Handoff, HandoffStatus
from bot.conversation.models import Direction, Message
from bot.rules.regions import DEFAULT_ZONE, format_date
from bot.reports.models import Report, ReportKind, ReportStatus

RESPONSE_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Figures:
    day_label: str
    conversations_today: int
    escalations_waiting: int
    escalations_unclaimed: int
    median_first_response_seconds: int | None
    first_responses_counted: int
    reports_by_kind_status: dict[str, dict[str, int]]

    @property
    def report_totals_by_status(self) -> dict[str, int]:
        return {
            status: sum(row[status] for row in self.reports_by_kind_status.values())
            for status in ReportStatus.ALL
        }


def dashboard_figures(db: Database, now: datetime) -> Figures:
    local = now.astimezone(ZoneInfo(DEFAULT_ZONE))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    with db.session() as session:
        conversations = session.scalar(
            select(func.count(distinct(Message.contact_id))).where(
                Message.direction == Direction.INBOUND, Message.created_at >= midnight
            )
        ) or 0
        waiting = session.scalar(
            select(func.count()).select_from(Handoff).where(
                Handoff.status.in_(HandoffStatus.OPEN), Handoff.waiting_since.is_not(None)
            )
        ) or 0
        unclaimed = session.scalar(
            select(func.count()).select_from(Handoff).where(Handoff.status == HandoffStatus.WAITING)
        ) or 0
        pairs = session.execute(
            select(Handoff.created_at, Handoff.first_response_at).where(
                Handoff.created_at >= now - RESPONSE_WINDOW, Handoff.first_response_at.is_not(None)
            )
        ).all()
        counts = session.execute(
            select(Report.kind, Report.status, func.count()).group_by(Report.kind, Report.status)
        ).all()
    waits = [(answered - opened).total_seconds() for opened, answered in pairs]
    by_kind = {kind: {status: 0 for status in ReportStatus.ALL} for kind in ReportKind.ALL}
    for kind, status, count in counts:
        if kind in by_kind and status in by_kind[kind]:
            by_kind[kind][status] = count
    return Figures(
        day_label=format_date(local.date()),
        conversations_today=conversations,
        escalations_waiting=waiting,
        escalations_unclaimed=unclaimed,
        median_first_response_seconds=int(statistics.median(waits)) if waits else None,
        first_responses_counted=len(waits),
        reports_by_kind_status=by_kind,
    )
