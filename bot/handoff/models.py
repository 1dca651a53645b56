"""Typed models of human handoff: a conversation a person has taken over from the bot.

Handoff lifecycle, drawn once:

    waiting ──(claim / assign)──▶ claimed
       │                            │
       └──────────┬─────────────────┘
                  ├──(hand back)──▶ returned   (the bot answers again; Rasa's tracker restarted)
                  └──(close)──────▶ closed     (with an outcome; the bot answers again too)

    `waiting` and `claimed` are open: while one is open, the contact's messages go to
    staff and never to Rasa. A contact has at most one open handoff (a partial unique
    index), so two messages escalating at the same moment cannot open two.

`waiting_since` is when the citizen started waiting for a person: set at escalation
and by the first message after a staff reply, cleared by the next staff reply. The
inbox sorts by it, and the wait time shown is measured from it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.db import Base
from bot.conversation.models import Contact, Message, utcnow
from bot.handoff.staff_models import REGION_MAX_CHARS, StaffUser

OUTCOME_NOTE_MAX_CHARS = 1000
_OPEN_SQL = "status IN ('waiting', 'claimed')"


class HandoffStatus:
    WAITING = "waiting"
    CLAIMED = "claimed"
    RETURNED = "returned"
    CLOSED = "closed"

    OPEN = (WAITING, CLAIMED)
    LABELS = {WAITING: "Menunggu", CLAIMED: "Ditangani", RETURNED: "Kembali ke bot", CLOSED: "Ditutup"}


class HandoffReason:
    """Why the bot stepped aside; distress comes first in every inbox."""

    REQUESTED = "requested"
    NOT_UNDERSTOOD = "not_understood"
    SENSITIVE_REPORT = "sensitive_report"
    DISTRESS = "distress"
    ABUSIVE = "abusive"

    ALL = (REQUESTED, NOT_UNDERSTOOD, SENSITIVE_REPORT, DISTRESS, ABUSIVE)
    URGENT = frozenset({DISTRESS})
    LABELS = {
        REQUESTED: "Minta petugas",
        NOT_UNDERSTOOD: "Bot tidak paham 2x",
        SENSITIVE_REPORT: "Laporan sensitif",
        DISTRESS: "Darurat / tertekan",
        ABUSIVE: "Kata kasar",
    }


class HandoffOutcome:
    """How a closed handoff ended, for the figures and for whoever reads the chat later."""

    RESOLVED = "resolved"
    REFERRED = "referred"
    NO_RESPONSE = "no_response"
    REPORT_FILED = "report_filed"
    ABUSIVE = "abusive"

    ALL = (RESOLVED, REFERRED, REPORT_FILED, NO_RESPONSE, ABUSIVE)
    LABELS = {
        RESOLVED: "Selesai terjawab",
        REFERRED: "Dirujuk ke dinas/pendamping",
        REPORT_FILED: "Dicatat sebagai laporan",
        NO_RESPONSE: "Warga tidak membalas",
        ABUSIVE: "Kasar / iseng",
    }


class Handoff(Base):
    """One stretch of a conversation that a person, not the bot, answers.

    `region` is where it is worked (a Kemendagri province or regency code, from the
    registered household or the sensitive report; None: the national queue) and
    `province_code` gives the citizen's time zone for office hours.
    """

    __tablename__ = "handoffs"
    __table_args__ = (
        Index(
            "uq_handoffs_open_contact",
            "contact_id",
            unique=True,
            sqlite_where=text(_OPEN_SQL),
            postgresql_where=text(_OPEN_SQL),
        ),
        Index("ix_handoffs_status_waiting", "status", "waiting_since"),
        Index("ix_handoffs_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    status: Mapped[str] = mapped_column(String(16), default=HandoffStatus.WAITING)
    reason: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(16))
    region: Mapped[Optional[str]] = mapped_column(String(REGION_MAX_CHARS), default=None)
    province_code: Mapped[Optional[str]] = mapped_column(String(2), default=None)
    report_reference: Mapped[Optional[str]] = mapped_column(String(20), default=None)
    assigned_to_id: Mapped[Optional[int]] = mapped_column(ForeignKey("staff_users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    first_response_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    waiting_since: Mapped[Optional[datetime]] = mapped_column(default=None)
    last_inbound_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    ended_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    ended_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("staff_users.id"), default=None)
    outcome: Mapped[Optional[str]] = mapped_column(String(24), default=None)
    outcome_note: Mapped[Optional[str]] = mapped_column(Text, default=None)

    contact: Mapped[Contact] = relationship()
    assigned_to: Mapped[Optional[StaffUser]] = relationship(foreign_keys=[assigned_to_id])

    @property
    def is_open(self) -> bool:
        return self.status in HandoffStatus.OPEN


class HandoffMessage(Base):
    """An outbound message a person (or the handoff itself) sent, so transcripts tell
    human turns from the bot's; `fell_back_to_sms` marks a WhatsApp reply sent by SMS
    because the 24-hour window had closed."""

    __tablename__ = "handoff_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    staff_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("staff_users.id"), default=None)
    fell_back_to_sms: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    message: Mapped[Message] = relationship()
    staff_user: Mapped[Optional[StaffUser]] = relationship()
