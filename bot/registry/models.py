"""Typed models of the recipient registry: who receives what, when and how.

The registry is a copy of the DTKS/DTSEN extract an operator imports (see
bot/registry/importer.py); the assistant only reads it to answer status, schedule and
history questions. Natural keys make re-imports idempotent: a recipient is its NIK,
an enrolment is (recipient, programme), a disbursement is (recipient, programme,
period).

Disbursement lifecycle, drawn once:

    dijadwalkan ──▶ tersalur
         │   └────▶ gagal      (the bank or post office could not pay out)
         └────────▶ ditunda    (postponed; a new date follows in a later import)

NIK look-ups keep no NIK: only a keyed hash, so the rate limit can tell "the same
NIK again" from "another NIK" without the table becoming a list of who asked whom.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.db import Base
from bot.conversation.models import utcnow


class ProgramCode:
    """The programme codes of the import format and the seeded `programs` rows."""

    PKH = "PKH"
    BPNT = "BPNT"
    BLT = "BLT"
    PBI_JK = "PBI-JK"


class EnrolmentStatus:
    AKTIF = "aktif"
    NONAKTIF = "nonaktif"


class DisbursementStatus:
    DIJADWALKAN = "dijadwalkan"
    TERSALUR = "tersalur"
    GAGAL = "gagal"
    DITUNDA = "ditunda"

    ALL = (DIJADWALKAN, TERSALUR, GAGAL, DITUNDA)


class PaymentChannel:
    """Where the money is paid out: a Himbara bank (to the KKS card) or PT Pos."""

    BRI = "BRI"
    BNI = "BNI"
    MANDIRI = "Mandiri"
    BSI = "BSI"
    BTN = "BTN"
    PT_POS = "PT Pos"

    ALL = (BRI, BNI, MANDIRI, BSI, BTN, PT_POS)


class Recipient(Base):
    """A recipient household (KPM), identified by the NIK of its registered member."""

    __tablename__ = "recipients"
    __table_args__ = (
        UniqueConstraint("nik", name="uq_recipients_nik"),
        Index("ix_recipients_phone", "phone"),
        # The status check by name and village compares these (migration 0010).
        Index("ix_recipients_village_lower", text("lower(village)")),
        Index("ix_recipients_name_lower", text("lower(name)")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nik: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date] = mapped_column(Date)
    # E.164, the same form as Contact.address, so a sender is matched by equality.
    phone: Mapped[Optional[str]] = mapped_column(String(20), default=None)
    province_code: Mapped[str] = mapped_column(String(2))
    regency: Mapped[str] = mapped_column(String(100), default="")
    district: Mapped[str] = mapped_column(String(100), default="")
    village: Mapped[str] = mapped_column(String(100), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    has_smartphone: Mapped[bool] = mapped_column(default=False)
    # Data cleaning: the number a provider refused for good (unknown, landline,
    # invalid) and why. Notices skip the recipient while `phone` is still that
    # number; a corrected phone in a later import clears the doubt by itself.
    flagged_phone: Mapped[Optional[str]] = mapped_column(String(20), default=None)
    flagged_phone_reason: Mapped[Optional[str]] = mapped_column(String(100), default=None)
    flagged_phone_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    enrolments: Mapped[list["Enrolment"]] = relationship(back_populates="recipient")
    disbursements: Mapped[list["Disbursement"]] = relationship(back_populates="recipient")


class Program(Base):
    """A social-assistance programme; the rows are seeded by migration 0002."""

    __tablename__ = "programs"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    # PBI-JK pays the health-insurance premium to BPJS: nothing reaches the
    # household, so answers never quote its amount, date or channel.
    gives_cash: Mapped[bool] = mapped_column(default=True)


class Enrolment(Base):
    """A household's membership of one programme."""

    __tablename__ = "enrolments"
    __table_args__ = (
        UniqueConstraint("recipient_id", "program_code", name="uq_enrolments_recipient_program"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id", ondelete="CASCADE"))
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    status: Mapped[str] = mapped_column(String(16), default=EnrolmentStatus.AKTIF)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    recipient: Mapped[Recipient] = relationship(back_populates="enrolments")
    program: Mapped[Program] = relationship()


class Disbursement(Base):
    """One payment (or, for PBI-JK, one premium) of a programme for one period.

    `scheduled_date` is a calendar date where the recipient lives, not an instant;
    `disbursed_at` is when the registry first recorded it as paid out.
    """

    __tablename__ = "disbursements"
    __table_args__ = (
        UniqueConstraint(
            "recipient_id",
            "program_code",
            "period",
            name="uq_disbursements_recipient_program_period",
        ),
        Index("ix_disbursements_recipient_date", "recipient_id", "scheduled_date"),
        # The notice scheduler asks "what is dijadwalkan in the next days".
        Index("ix_disbursements_status_date", "status", "scheduled_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id", ondelete="CASCADE"))
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    period: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    # None only for programmes that pay no cash to the household (PBI-JK).
    channel: Mapped[Optional[str]] = mapped_column(String(16), default=None)
    scheduled_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=DisbursementStatus.DIJADWALKAN)
    disbursed_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    recipient: Mapped[Recipient] = relationship(back_populates="disbursements")
    program: Mapped[Program] = relationship()


class NikLookup(Base):
    """One look-up of someone else (by NIK, or by name and village) for the rate limit.

    `nik_hash` is a keyed hash of the NIK, or of the name and village looked up.

    `sender_key` is the contact's conversation key, which is what the action server
    knows the sender by; rows older than the rate-limit window are deleted as new
    ones are written, so the table never outlives its purpose.
    """

    __tablename__ = "nik_lookups"
    __table_args__ = (
        Index("ix_nik_lookups_sender_created", "sender_key", "created_at"),
        Index("ix_nik_lookups_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_key: Mapped[str] = mapped_column(String(64))
    nik_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
