"""Typed models of disbursement notices: the outbox, its attempts, campaigns, the lease.

A notice is written to the outbox before anything is sent, under a unique key
(disbursement, kind, scheduled date): planning again, from the scheduler or an
operator, never adds a second row. The date is part of the key because a
disbursement that is postponed and rescheduled deserves a reminder for its new date;
for one date, each kind exists once.

Notice lifecycle, drawn once (bot/notices/dispatcher.py explains the crash-safety of it):

    pending ──claim──▶ claimed ──▶ sending ──▶ sent ──▶ delivered
       ▲                  │           │          └────▶ undelivered | failed  (status callback)
       │                  │           ├──────────────▶ failed     (permanent error, `reason`)
       ├──────────────────┘           │
       │  stale claim (its dispatcher died before sending): back to pending
       ├──────────────────────────────┤
       │  transient error: pending again after a backoff; WhatsApp failure: SMS next
       │  stale send (died during the provider call): looked up at the provider,
       │  adopted as sent when found there, pending again when not
    cancelled   (opted out or number flagged since planning, reminder out of date)

Every provider call is a `NoticeAttempt` with the message SID it got, so status
callbacks for any attempt (a WhatsApp try before an SMS fallback) find their notice.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.db import Base
from bot.conversation.models import utcnow


class NoticeKind:
    REMINDER = "reminder"  # H-N before the scheduled date
    DISBURSED = "disbursed"  # tersalur
    FAILED = "failed"  # gagal
    POSTPONED = "postponed"  # ditunda

    ALL = (REMINDER, DISBURSED, FAILED, POSTPONED)


class NoticeStatus:
    PENDING = "pending"
    CLAIMED = "claimed"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"

    OPEN = (PENDING, CLAIMED, SENDING)
    ALL = (PENDING, CLAIMED, SENDING, SENT, DELIVERED, UNDELIVERED, FAILED, CANCELLED)


class AttemptStatus:
    SENDING = "sending"  # handed to the provider; the answer is not recorded yet
    ACCEPTED = "accepted"  # the provider took it (its own status in NoticeAttempt.provider_status)
    REFUSED = "refused"  # the provider said no (error_code)
    NOT_SENT = "not_sent"  # a crash or network error, and the provider has no such message


class CampaignSource:
    SCHEDULER = "scheduler"
    OPERATOR = "operator"


class NoticeCampaign(Base):
    """The notices one planning run wrote; an operator can pause and resume it."""

    __tablename__ = "notice_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16))
    paused: Mapped[bool] = mapped_column(default=False)
    paused_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notice(Base):
    """One notice to one phone about one disbursement; the outbox row."""

    __tablename__ = "notices"
    __table_args__ = (
        UniqueConstraint(
            "disbursement_id", "kind", "scheduled_date", name="uq_notices_disbursement_kind_date"
        ),
        # The dispatcher asks "what is due now" over and over.
        Index("ix_notices_status_not_before", "status", "not_before"),
        Index("ix_notices_campaign_status", "campaign_id", "status"),
        Index("ix_notices_recipient", "recipient_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("notice_campaigns.id"))
    disbursement_id: Mapped[int] = mapped_column(
        ForeignKey("disbursements.id", ondelete="CASCADE")
    )
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    # The disbursement's date the notice speaks of (a calendar date where the recipient lives).
    scheduled_date: Mapped[date] = mapped_column(Date)
    to_address: Mapped[str] = mapped_column(String(20))
    province_code: Mapped[str] = mapped_column(String(2))
    zone: Mapped[str] = mapped_column(String(32))
    # WhatsApp for recipients with a smartphone; `channel` is what the next (or last)
    # attempt uses, SMS after a WhatsApp failure.
    preferred_channel: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(default=1)
    content_variables: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=NoticeStatus.PENDING)
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    claim_token: Mapped[Optional[str]] = mapped_column(String(32), default=None)
    claimed_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    provider: Mapped[Optional[str]] = mapped_column(String(16), default=None)
    provider_sid: Mapped[Optional[str]] = mapped_column(String(64), default=None)
    provider_status: Mapped[Optional[str]] = mapped_column(String(16), default=None)
    error_code: Mapped[Optional[str]] = mapped_column(String(16), default=None)
    reason: Mapped[Optional[str]] = mapped_column(String(200), default=None)
    sent_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    campaign: Mapped[NoticeCampaign] = relationship()
    attempt_log: Mapped[list["NoticeAttempt"]] = relationship(
        back_populates="notice", order_by="NoticeAttempt.id"
    )


class NoticeAttempt(Base):
    """One hand-over of a notice to the provider, written before the call is made."""

    __tablename__ = "notice_attempts"
    __table_args__ = (
        UniqueConstraint("provider", "provider_sid", name="uq_notice_attempts_provider_sid"),
        Index("ix_notice_attempts_notice", "notice_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    claim_token: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=AttemptStatus.SENDING)
    provider: Mapped[str] = mapped_column(String(16))
    provider_sid: Mapped[Optional[str]] = mapped_column(String(64), default=None)
    provider_status: Mapped[Optional[str]] = mapped_column(String(16), default=None)
    error_code: Mapped[Optional[str]] = mapped_column(String(16), default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(default=None)

    notice: Mapped[Notice] = relationship(back_populates="attempt_log")


class NoticeControl(Base):
    """The operators' switch for all notices: a single row (id 1), seeded by migration 0004."""

    __tablename__ = "notice_control"

    id: Mapped[int] = mapped_column(primary_key=True)
    paused: Mapped[bool] = mapped_column(default=False)
    changed_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    changed_by: Mapped[Optional[str]] = mapped_column(Text, default=None)


class SchedulerLease(Base):
    """Who may act as the scheduler of this database until when (see bot/notices/scheduler.py)."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(default=utcnow)
