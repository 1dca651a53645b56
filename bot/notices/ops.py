"""What operators ask of the notice outbox: results, estimates, pause and resume.

The CLI (bot/notices/cli.py) only formats these; a dashboard can show the same.
Results fold the outbox's states into the five an operator thinks in: pending
(not yet handed to the provider), sent (handed over, no delivery report yet),
delivered, failed (refused, undelivered or given up on), cancelled (not sent on
purpose: opted out, number flagged, out of date).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from bot.config import Settings
from bot.db import Database
from bot.conversation.models import Channel, utcnow
from bot.rules.nik import mask_nik
from bot.notices.planning import whatsapp_ready
from bot.notices.models import Notice, NoticeCampaign, NoticeControl, NoticeStatus
from bot.notices.pacing import SendingWindow
from bot.rules.phone import mask_phone
from bot.rules.regions import PROVINCES, WIB, WIT, WITA
from bot.registry.models import Recipient


class ResultGroup:
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"

    ALL = (PENDING, SENT, DELIVERED, FAILED, CANCELLED)


RESULT_GROUP: dict[str, str] = {
    NoticeStatus.PENDING: ResultGroup.PENDING,
    NoticeStatus.CLAIMED: ResultGroup.PENDING,
    NoticeStatus.SENDING: ResultGroup.PENDING,
    NoticeStatus.SENT: ResultGroup.SENT,
    NoticeStatus.DELIVERED: ResultGroup.DELIVERED,
    NoticeStatus.UNDELIVERED: ResultGroup.FAILED,
    NoticeStatus.FAILED: ResultGroup.FAILED,
    NoticeStatus.CANCELLED: ResultGroup.CANCELLED,
}
ZONE_LABELS: dict[str, str] = {WIB[0]: WIB[1], WITA[0]: WITA[1], WIT[0]: WIT[1]}


@dataclass
class Results:
    """Notice counts by result group, overall and per channel; why things failed."""

    total: Counter[str] = field(default_factory=Counter)
    by_channel: dict[str, Counter[str]] = field(default_factory=dict)
    failure_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return sum(self.total.values())

    @property
    def done(self) -> int:
        return self.count - self.total[ResultGroup.PENDING]


def results(db: Database, campaign_id: int | None = None) -> Results:
    """Where the notices (of one campaign, or all) stand."""
    found = Results()
    with db.session() as session:
        query = select(Notice.channel, Notice.status, func.count()).group_by(
            Notice.channel, Notice.status
        )
        not_delivered = (NoticeStatus.FAILED, NoticeStatus.UNDELIVERED, NoticeStatus.CANCELLED)
        reasons = (
            select(Notice.reason, func.count())
            .where(Notice.status.in_(not_delivered))
            .group_by(Notice.reason)
        )
        if campaign_id is not None:
            query = query.where(Notice.campaign_id == campaign_id)
            reasons = reasons.where(Notice.campaign_id == campaign_id)
        for channel, status, count in session.execute(query):
            group = RESULT_GROUP[status]
            found.total[group] += count
            found.by_channel.setdefault(channel, Counter())[group] += count
        for reason, count in session.execute(reasons):
            found.failure_reasons[reason or "no reason recorded"] += count
    return found


@dataclass(frozen=True)
class CampaignView:
    id: int
    label: str
    source: str
    paused: bool
    created_at: datetime
    results: Results


def campaigns(db: Database, limit: int = 10) -> list[CampaignView]:
    """The newest campaigns with their results."""
    with db.session() as session:
        rows = session.scalars(
            select(NoticeCampaign).order_by(NoticeCampaign.id.desc()).limit(limit)
        ).all()
    return [
        CampaignView(row.id, row.label, row.source, row.paused, row.created_at, results(db, row.id))
        for row in rows
    ]


def set_paused(db: Database, paused: bool, by: str, campaign_id: int | None = None) -> bool:
    """Pause or resume all notices, or one campaign; False when there is no such campaign.

    Pausing stops claiming at once; notices already handed to a worker finish, so a
    pause takes effect within one batch (a couple of seconds at the configured rate).
    """
    with db.session() as session:
        if campaign_id is None:
            control = session.get(NoticeControl, 1)
            if control is None:
                control = NoticeControl(id=1)
                session.add(control)
            control.paused = paused
            control.changed_at = utcnow()
            control.changed_by = by
            return True
        changed = session.execute(
            update(NoticeCampaign)
            .where(NoticeCampaign.id == campaign_id)
            .values(paused=paused, paused_at=utcnow() if paused else None)
        ).rowcount
        return changed == 1


def is_paused(db: Database) -> bool:
    with db.session() as session:
        control = session.get(NoticeControl, 1)
        return bool(control and control.paused)


def due_now(db: Database, window: SendingWindow, now: datetime) -> int:
    """Pending notices the dispatcher would send now (due, sending hours, not paused)."""
    zones = window.open_zones(now)
    if not zones:
        return 0
    with db.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Notice)
                .join(NoticeCampaign, Notice.campaign_id == NoticeCampaign.id)
                .where(
                    Notice.status == NoticeStatus.PENDING,
                    Notice.not_before <= now,
                    Notice.zone.in_(zones),
                    NoticeCampaign.paused.is_(False),
                )
            )
            or 0
        )


def next_due(db: Database) -> datetime | None:
    """When the earliest pending notice may go (sending hours are applied when sent)."""
    with db.session() as session:
        return session.scalar(
            select(func.min(Notice.not_before)).where(Notice.status == NoticeStatus.PENDING)
        )


@dataclass
class Estimate:
    """A dry run's figures: counts by channel, region, zone and segments; cost; duration."""

    count: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)
    by_region: Counter[str] = field(default_factory=Counter)
    by_zone: Counter[str] = field(default_factory=Counter)
    by_segments: Counter[int] = field(default_factory=Counter)
    cost: float = 0.0
    currency: str = ""
    seconds: float = 0.0


def estimate(rows: Iterable[dict[str, Any]], settings: Settings) -> Estimate:
    """Cost and duration of sending `rows` (planned notices) with these settings.

    A WhatsApp notice counts as SMS when no template is configured, since that is how
    it would go. Duration is the time the rate limit needs, senders in parallel;
    notices outside the sending window wait for it on top of that.
    """
    result = Estimate(currency=settings.notice_price_currency)
    use_whatsapp = whatsapp_ready(settings)
    for row in rows:
        channel = row["channel"] if use_whatsapp else Channel.SMS
        result.count += 1
        result.by_channel[channel] += 1
        province = PROVINCES.get(row["province_code"])
        result.by_region[province.name if province else row["province_code"]] += 1
        result.by_zone[ZONE_LABELS.get(row["zone"], row["zone"])] += 1
        if channel == Channel.SMS:
            result.by_segments[row["segments"]] += 1
            result.cost += row["segments"] * settings.notice_sms_price
        else:
            result.cost += settings.notice_whatsapp_price
    rates = {Channel.SMS: settings.notice_sms_rate, Channel.WHATSAPP: settings.notice_whatsapp_rate}
    result.seconds = max(
        (
            count / rates[channel]
            for channel, count in result.by_channel.items()
            if rates[channel] > 0
        ),
        default=0.0,
    )
    return result


@dataclass(frozen=True)
class FlaggedView:
    masked_nik: str
    masked_phone: str
    reason: str
    flagged_at: datetime | None


def flagged_recipients(db: Database, limit: int = 100) -> tuple[int, list[FlaggedView]]:
    """Recipients whose registered number failed for good: (how many, the first `limit`)."""
    condition = Recipient.flagged_phone.is_not(None) & (Recipient.flagged_phone == Recipient.phone)
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(Recipient).where(condition))
        rows = session.scalars(
            select(Recipient)
            .where(condition)
            .order_by(Recipient.flagged_phone_at.desc())
            .limit(limit)
        ).all()
        return int(total or 0), [
            FlaggedView(
                mask_nik(row.nik),
                mask_phone(row.flagged_phone or ""),
                row.flagged_phone_reason or "",
                row.flagged_phone_at,
            )
            for row in rows
        ]
