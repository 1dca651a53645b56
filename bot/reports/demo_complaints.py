"""Demo complaints with one planted cluster, so a fresh `make run` shows the "Sinyal" page at work.

Every demo village gets a few complaints spread over the last four months (the
statistic's baseline and period); one village, Andir in Kabupaten Bandung, gets
eight levy complaints in the last three weeks, each from a different reporter and
most naming the same agent. Its neighbours stay at their usual one or none.

Demo reporters have their own number range; seeding again replaces their complaints
(dated from today again) and touches nothing else.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.conversation.models import Channel, Contact, utcnow
from bot.db import Database
from bot.registry.demo import DEMO_SEED, PROFILES
from bot.reports.models import (
    SYSTEM_ACTOR,
    ComplaintCategory,
    Report,
    ReportEvent,
    ReportEventType,
    ReportKind,
    ReportStatus,
)
from bot.reports.refs import new_reference
from bot.reports.service import is_sensitive

# National numbers 0899-100-xxxxx: a range the random demo households do not use.
REPORTER_PREFIX = "+62899100"
PLANTED_DISTRICT = "320410"
PLANTED_VILLAGE = "Andir"
PLANTED_COUNT = 8
PLANTED_DAYS = 21
HISTORY_DAYS = 114

_TEXTS = {
    ComplaintCategory.POTONGAN_PUNGLI: (
        "Waktu pencairan dipotong Rp50.000 katanya untuk uang lelah",
        "Ada pungutan Rp20.000 per orang sebelum bantuan dibagikan",
    ),
    ComplaintCategory.KARTU_DIPEGANG_ORANG_LAIN: (
        "Kartu KKS saya disimpan ketua kelompok sejak bulan lalu",
        "PIN dan kartu dipegang orang lain, saya tidak bisa ambil sendiri",
    ),
    ComplaintCategory.DANA_BELUM_DITERIMA: (
        "Bantuan tahap ini belum masuk padahal tetangga sudah terima",
        "Saldo KKS masih kosong, belum ada pencairan sama sekali",
    ),
    ComplaintCategory.DATA_SALAH: ("Nama saya di data salah ketik, mohon diperbaiki",),
    ComplaintCategory.KARTU_HILANG_RUSAK: ("Kartu KKS saya patah dan tidak bisa dipakai di mesin",),
}
_PLANTED_TEXTS = (
    "Agen Darto memotong Rp50.000 setiap pencairan BPNT di Andir",
    "Di agen Darto uang bantuan dipotong 30 ribu, katanya biaya admin",
    "Agen Darto minta potongan Rp25.000 per KPM, yang tidak mau tidak dilayani",
    "Saya terima kurang Rp50.000, dipotong agen Darto tanpa bukti",
    "Pencairan di agen Darto selalu dipotong, warga takut melapor",
    "Ada pungutan di e-warong dekat balai desa Andir, Rp20.000 per orang",
    "Agen Darto bilang potongan untuk transport petugas",
    "Uang PKH saya dipotong agen Darto 40 ribu",
)


@dataclass(frozen=True)
class _Planned:
    category: str
    description: str
    province_code: str
    regency: str
    district: str
    village: str
    routed_to: str
    days_ago: float


def _plan(rng: random.Random) -> list[_Planned]:
    plans = []
    for profile in PROFILES:
        for district in profile.districts:
            where = (profile.code, district.regency, district.name)
            for village in district.villages:
                for category, texts in _TEXTS.items():
                    for _ in range(rng.choice((0, 0, 1, 1, 2))):
                        plans.append(_Planned(
                            category, rng.choice(texts), *where, village, district.prefix[:4],
                            rng.uniform(0, HISTORY_DAYS),
                        ))
    district = next(d for p in PROFILES for d in p.districts if d.prefix == PLANTED_DISTRICT)
    for number, text in enumerate(_PLANTED_TEXTS[:PLANTED_COUNT]):
        plans.append(_Planned(
            ComplaintCategory.POTONGAN_PUNGLI, text, PLANTED_DISTRICT[:2], district.regency, district.name,
            PLANTED_VILLAGE, PLANTED_DISTRICT[:4], 1 + number * (PLANTED_DAYS - 2) / PLANTED_COUNT,
        ))
    return plans


def _fresh_reference(session: Session, filed: datetime) -> str:
    """A reference no report has yet (collisions are rare, not impossible)."""
    while True:
        reference = new_reference(ReportKind.PENGADUAN, filed)
        if session.scalar(select(Report.id).where(Report.reference == reference)) is None:
            return reference


def seed_demo_complaints(db: Database, clock: Callable[[], datetime] = utcnow) -> int:
    """Replace the demo reporters' complaints with a fresh set; returns how many were filed."""
    now = clock()
    plans = _plan(random.Random(DEMO_SEED))
    with db.session() as session:
        demo_contacts = select(Contact.id).where(Contact.address.startswith(REPORTER_PREFIX))
        session.execute(delete(Report).where(Report.reporter_contact_id.in_(demo_contacts)))
        existing = {
            contact.address: contact
            for contact in session.scalars(select(Contact).where(Contact.address.startswith(REPORTER_PREFIX)))
        }
        for number, plan in enumerate(plans):
            address = f"{REPORTER_PREFIX}{number:05d}"
            contact = existing.get(address)
            if contact is None:
                contact = Contact(address=address, last_channel=Channel.SMS)
                session.add(contact)
                session.flush()
            filed = now - timedelta(days=plan.days_ago)
            status = ReportStatus.SELESAI if plan.days_ago > 45 else ReportStatus.DITERIMA
            report = Report(
                reference=_fresh_reference(session, filed),
                kind=ReportKind.PENGADUAN,
                reporter_contact_id=contact.id,
                reporter_channel=Channel.SMS,
                province_code=plan.province_code,
                regency=plan.regency,
                district=plan.district,
                village=plan.village,
                category=plan.category,
                description=plan.description,
                is_sensitive=is_sensitive(ReportKind.PENGADUAN, plan.category),
                routed_to=plan.routed_to,
                status=status,
                created_at=filed,
                updated_at=filed,
            )
            report.events.append(ReportEvent(
                event=ReportEventType.CREATED, to_status=ReportStatus.DITERIMA, actor=SYSTEM_ACTOR, at=filed,
            ))
            session.add(report)
    return len(plans)
