"""Typed models of citizen reports: usul, sanggah and pengaduan, with their history.

One table holds the three kinds because they share everything that matters to the
people who work them (reference, reporter, subject household, region, status); what
differs is the category list and, for an usul, whom it is for.

Report status lifecycle, drawn once:

    diterima ──▶ diverifikasi ──▶ ditindaklanjuti ──▶ selesai
        │              │                 │
        └──────────────┴─────────────────┴──────────▶ ditolak

    `selesai` and `ditolak` are final: nothing moves out of them. Every change is a
    ReportEvent (who, when, from, to, note); so are the creation and each merged
    duplicate, which keep the status and carry the new text as their note.

The subject NIK is stored whole because officers need it to find the household, but
it is personal data: logs and exports show it masked (bot.rules.nik.mask_nik).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.db import Base
from bot.conversation.models import Contact, utcnow

DESCRIPTION_MIN_CHARS = 10
DESCRIPTION_MAX_CHARS = 2000
NOTE_MAX_CHARS = 2000
NAME_MAX_CHARS = 200
ADDRESS_MAX_CHARS = 500
REGION_NAME_MAX_CHARS = 100
ACTOR_MAX_CHARS = 64
URL_MAX_CHARS = 1000
CONTENT_TYPE_MAX_CHARS = 100
SYSTEM_ACTOR = "sistem"


class ReportKind:
    USUL = "usul"
    SANGGAH = "sanggah"
    PENGADUAN = "pengaduan"

    ALL = (USUL, SANGGAH, PENGADUAN)
    # As the dashboard shows them.
    LABELS = {USUL: "Usul", SANGGAH: "Sanggah", PENGADUAN: "Pengaduan"}
    # As a sentence to the citizen says them ("Ringkasan usulan").
    WORDS = {USUL: "usulan", SANGGAH: "sanggahan", PENGADUAN: "pengaduan"}


class ReportStatus:
    DITERIMA = "diterima"
    DIVERIFIKASI = "diverifikasi"
    DITINDAKLANJUTI = "ditindaklanjuti"
    SELESAI = "selesai"
    DITOLAK = "ditolak"

    ALL = (DITERIMA, DIVERIFIKASI, DITINDAKLANJUTI, SELESAI, DITOLAK)
    # As the dashboard shows them.
    LABELS = {
        DITERIMA: "Diterima",
        DIVERIFIKASI: "Diverifikasi",
        DITINDAKLANJUTI: "Ditindaklanjuti",
        SELESAI: "Selesai",
        DITOLAK: "Ditolak",
    }
    # As a status notice to the citizen says them ("... sedang ditindaklanjuti petugas").
    WORDS = {
        DITERIMA: "sudah kami terima dan menunggu pemeriksaan petugas",
        DIVERIFIKASI: "sudah diperiksa (diverifikasi) petugas",
        DITINDAKLANJUTI: "sedang ditindaklanjuti petugas",
        SELESAI: "sudah selesai ditangani",
        DITOLAK: "tidak dapat diproses (ditolak)",
    }
    FINAL = frozenset({SELESAI, DITOLAK})
    TRANSITIONS: dict[str, frozenset[str]] = {
        DITERIMA: frozenset({DIVERIFIKASI, DITOLAK}),
        DIVERIFIKASI: frozenset({DITINDAKLANJUTI, DITOLAK}),
        DITINDAKLANJUTI: frozenset({SELESAI, DITOLAK}),
        SELESAI: frozenset(),
        DITOLAK: frozenset(),
    }


def can_transition(from_status: str, to_status: str) -> bool:
    """Whether the lifecycle above allows moving a report from one status to another."""
    return to_status in ReportStatus.TRANSITIONS.get(from_status, frozenset())


class ReportEventType:
    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    MERGED = "merged"


class ProposedFor:
    """Whom an usul is for: the reporter's own household or another one."""

    UNTUK_DIRI_SENDIRI = "untuk_diri_sendiri"
    UNTUK_ORANG_LAIN = "untuk_orang_lain"


class UsulReason:
    LANSIA_TUNGGAL = "lansia_tunggal"
    DISABILITAS = "disabilitas"
    KEHILANGAN_PEKERJAAN = "kehilangan_pekerjaan"
    RUMAH_TIDAK_LAYAK = "rumah_tidak_layak"
    LAINNYA = "lainnya"


class SanggahReason:
    MENINGGAL = "meninggal"
    PINDAH = "pindah"
    MAMPU = "mampu"
    DATA_GANDA = "data_ganda"
    TIDAK_DIKENAL = "tidak_dikenal"
    ASN_TNI_POLRI = "asn_tni_polri"


class ComplaintCategory:
    DANA_BELUM_DITERIMA = "dana_belum_diterima"
    POTONGAN_PUNGLI = "potongan_pungli"
    KARTU_DIPEGANG_ORANG_LAIN = "kartu_dipegang_orang_lain"
    KARTU_HILANG_RUSAK = "kartu_hilang_rusak"
    DATA_SALAH = "data_salah"
    LAYANAN_PETUGAS = "layanan_petugas"
    LAINNYA = "lainnya"


@dataclass(frozen=True)
class Choice:
    """A code stored in the database and the Indonesian label a citizen sees."""

    code: str
    label: str


# The order is the number a citizen types to pick a choice ("2" is the second).
PROPOSED_FOR_CHOICES: tuple[Choice, ...] = (
    Choice(ProposedFor.UNTUK_DIRI_SENDIRI, "Untuk keluarga saya sendiri"),
    Choice(ProposedFor.UNTUK_ORANG_LAIN, "Untuk keluarga lain (tetangga/warga)"),
)

CATEGORIES: dict[str, tuple[Choice, ...]] = {
    ReportKind.USUL: (
        Choice(UsulReason.LANSIA_TUNGGAL, "Lansia tunggal"),
        Choice(UsulReason.DISABILITAS, "Penyandang disabilitas"),
        Choice(UsulReason.KEHILANGAN_PEKERJAAN, "Kehilangan pekerjaan"),
        Choice(UsulReason.RUMAH_TIDAK_LAYAK, "Rumah tidak layak huni"),
        Choice(UsulReason.LAINNYA, "Lainnya"),
    ),
    ReportKind.SANGGAH: (
        Choice(SanggahReason.MENINGGAL, "Sudah meninggal"),
        Choice(SanggahReason.PINDAH, "Sudah pindah"),
        Choice(SanggahReason.MAMPU, "Mampu / tidak layak"),
        Choice(SanggahReason.DATA_GANDA, "Data ganda"),
        Choice(SanggahReason.TIDAK_DIKENAL, "Nama/alamat tidak dikenal"),
        Choice(SanggahReason.ASN_TNI_POLRI, "Keluarga ASN/TNI/Polri"),
    ),
    ReportKind.PENGADUAN: (
        Choice(ComplaintCategory.DANA_BELUM_DITERIMA, "Dana belum diterima"),
        Choice(ComplaintCategory.POTONGAN_PUNGLI, "Potongan / pungutan liar"),
        Choice(ComplaintCategory.KARTU_DIPEGANG_ORANG_LAIN, "KKS atau PIN dipegang orang lain"),
        Choice(ComplaintCategory.KARTU_HILANG_RUSAK, "Kartu hilang / rusak"),
        Choice(ComplaintCategory.DATA_SALAH, "Data salah"),
        Choice(ComplaintCategory.LAYANAN_PETUGAS, "Layanan agen / petugas"),
        Choice(ComplaintCategory.LAINNYA, "Lainnya"),
    ),
}


def category_codes(kind: str) -> tuple[str, ...]:
    return tuple(choice.code for choice in CATEGORIES.get(kind, ()))


def choice_label(choices: tuple[Choice, ...], code: str | None) -> str | None:
    return next((choice.label for choice in choices if choice.code == code), None)


def category_label(kind: str, code: str | None) -> str | None:
    """The Indonesian label of a category, or None when the kind has no such code."""
    return choice_label(CATEGORIES.get(kind, ()), code)


def choices_menu(choices: tuple[Choice, ...]) -> str:
    """Numbered lines a form can show ("1. Lansia tunggal"); the numbers pick the choice."""
    return "\n".join(f"{number}. {choice.label}" for number, choice in enumerate(choices, 1))


class Report(Base):
    """One usul, sanggah or pengaduan, from the moment it is filed until it is closed.

    `reference` is what the citizen quotes (see bot.reports.refs). `routed_to` names
    who works the report: a Kemendagri region code (province "32" or regency "3201")
    until officers exist. `proposed_for` is set for an usul only.
    """

    __tablename__ = "reports"
    __table_args__ = (
        # Duplicate detection: the same reporter's reports of one kind in the last day.
        Index("ix_reports_reporter_kind_created", "reporter_contact_id", "kind", "created_at"),
        Index("ix_reports_status_kind", "status", "kind"),
        Index("ix_reports_province", "province_code"),
        Index("ix_reports_subject_nik", "subject_nik"),
        # The "Sinyal" page and summary: every complaint since a date (migration 0011).
        Index("ix_reports_kind_created", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    reporter_contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    reporter_channel: Mapped[str] = mapped_column(String(16))
    subject_nik: Mapped[Optional[str]] = mapped_column(String(16), default=None)
    subject_name: Mapped[Optional[str]] = mapped_column(String(NAME_MAX_CHARS), default=None)
    subject_address: Mapped[Optional[str]] = mapped_column(Text, default=None)
    province_code: Mapped[Optional[str]] = mapped_column(String(2), default=None)
    regency: Mapped[Optional[str]] = mapped_column(String(REGION_NAME_MAX_CHARS), default=None)
    district: Mapped[Optional[str]] = mapped_column(String(REGION_NAME_MAX_CHARS), default=None)
    village: Mapped[Optional[str]] = mapped_column(String(REGION_NAME_MAX_CHARS), default=None)
    category: Mapped[str] = mapped_column(String(40))
    proposed_for: Mapped[Optional[str]] = mapped_column(String(40), default=None)
    description: Mapped[str] = mapped_column(Text)
    is_sensitive: Mapped[bool] = mapped_column(default=False)
    routed_to: Mapped[Optional[str]] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(24), default=ReportStatus.DITERIMA)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    reporter: Mapped[Contact] = relationship()
    attachments: Mapped[list["ReportAttachment"]] = relationship(
        back_populates="report", cascade="all, delete-orphan", order_by="ReportAttachment.id"
    )
    events: Mapped[list["ReportEvent"]] = relationship(
        back_populates="report", cascade="all, delete-orphan", order_by="ReportEvent.id"
    )


class ReportAttachment(Base):
    """Evidence sent with a report: a WhatsApp media URL (Twilio's) and its content type."""

    __tablename__ = "report_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(URL_MAX_CHARS))
    content_type: Mapped[str] = mapped_column(String(CONTENT_TYPE_MAX_CHARS), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    report: Mapped[Report] = relationship(back_populates="attachments")


class ReportEvent(Base):
    """One entry of a report's history; `actor` is "sistem" or a staff username."""

    __tablename__ = "report_events"
    __table_args__ = (Index("ix_report_events_report_at", "report_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[Optional[str]] = mapped_column(String(24), default=None)
    to_status: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(ACTOR_MAX_CHARS), default=SYSTEM_ACTOR)
    note: Mapped[Optional[str]] = mapped_column(Text, default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    report: Mapped[Report] = relationship(back_populates="events")
