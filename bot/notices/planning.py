"""Planning disbursement notices, and their texts.

What is planned, each time the planner runs (the scheduler runs it every few minutes;
an operator can run it at once with `bansos notices plan`):

- a reminder N days before a scheduled (dijadwalkan) disbursement, N from
  NOTICE_DAYS_BEFORE (default 3, "H-3"); a disbursement planned late, inside those N
  days, still gets its reminder, on the day it is planned;
- a notice when a disbursement is paid out (tersalur), failed (gagal) or postponed
  (ditunda), for disbursements scheduled at most NOTICE_OUTCOME_LOOKBACK_DAYS ago,
  so the first import of a year of history does not message everyone about old
  payments.

Every notice goes into the outbox (bot/notices/models.py) under its unique key; a
disbursement that already has its notice is not even read again, and a concurrent
planner's duplicate insert is ignored by the database. Nobody is planned for whom a
notice cannot or must not go out: no phone, a number that is not a mobile one or was
flagged as failing, a contact who opted out (STOP), a programme that pays no cash
to the household (PBI-JK). Each planned notice waits for its first sending time:
08:00 (the window's opening) in the recipient's own zone on the reminder day, or
now, pushed to the next opening when it is night there.

Texts are Indonesian, GSM-7 and one SMS segment where the facts allow it: the name
masked, programme, period, amount, where to collect, the date, and that collecting
is free of any fee. When the full text is too long, the masked name is cut to its
first word, then the closing advice to its short form. WhatsApp recipients get the
same facts through an approved template (TWILIO_NOTICE_CONTENT_SID) whose
variables are:

    {{1}} masked name   {{2}} programme and period   {{3}} amount
    {{4}} where         {{5}} date                   {{6}} what happened

for a template such as:

    Info bansos untuk {{1}}: {{6}}
    Program: {{2}}
    Jumlah: {{3}}
    Tempat: {{4}}
    Tanggal: {{5}}
    Pengambilan bansos GRATIS, tanpa potongan. Info: 171.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.db import Database
from bot.conversation.models import Channel, Contact, utcnow
from bot.rules.nik import mask_name
from bot.notices.models import (
    CampaignSource,
    Notice,
    NoticeCampaign,
    NoticeKind,
    NoticeStatus,
)
from bot.notices.pacing import SendingWindow
from bot.rules.phone import is_mobile
from bot.rules.regions import format_date, format_local, zone_for_province
from bot.registry.models import (
    Disbursement,
    DisbursementStatus,
    PaymentChannel,
    Program,
    Recipient,
)
from bot.rules.smstext import segment_count, to_gsm7
from bot.registry.status import channel_label, format_rupiah

# The disbursement status each notice kind speaks of.
KIND_FOR_STATUS: dict[str, str] = {
    DisbursementStatus.DIJADWALKAN: NoticeKind.REMINDER,
    DisbursementStatus.TERSALUR: NoticeKind.DISBURSED,
    DisbursementStatus.GAGAL: NoticeKind.FAILED,
    DisbursementStatus.DITUNDA: NoticeKind.POSTPONED,
}
STATUS_FOR_KIND: dict[str, str] = {kind: status for status, kind in KIND_FOR_STATUS.items()}

# (what happened, closing advice, short closing advice) per kind; {date} and {where} filled in.
_TEXTS: dict[str, tuple[str, str, str]] = {
    NoticeKind.REMINDER: (
        "cair {date} {where}.",
        "Ambil GRATIS, tanpa potongan. Info 171",
        "GRATIS, tanpa potongan.",
    ),
    NoticeKind.DISBURSED: (
        "sudah cair {date} {where}.",
        "Ambil GRATIS, tanpa potongan. Info 171",
        "GRATIS, tanpa potongan.",
    ),
    NoticeKind.FAILED: (
        "{where} gagal disalurkan {date}.",
        "Tanya pendamping/171. Bansos GRATIS, tanpa potongan.",
        "Info 171. GRATIS, tanpa potongan.",
    ),
    NoticeKind.POSTPONED: (
        "{where} ditunda dari {date}.",
        "Jadwal baru menyusul. Bansos GRATIS, tanpa potongan.",
        "Tunggu jadwal baru. GRATIS, tanpa potongan.",
    ),
}
_HEADLINES: dict[str, str] = {
    NoticeKind.REMINDER: "Bantuan akan cair.",
    NoticeKind.DISBURSED: "Bantuan sudah cair.",
    NoticeKind.FAILED: "Penyaluran bantuan gagal. Hubungi pendamping sosial atau 171.",
    NoticeKind.POSTPONED: "Penyaluran bantuan ditunda. Jadwal baru akan dikabarkan.",
}
INSERT_CHUNK = 2000


class SkipReason:
    NO_PHONE = "no phone"
    NOT_MOBILE = "not a mobile number"
    FLAGGED = "number flagged for data cleaning"
    OPTED_OUT = "opted out"


@dataclass(frozen=True)
class NoticeFacts:
    """What a notice says, before it is worded for a channel."""

    kind: str
    name: str
    program: str
    period: str
    amount: int
    payment_channel: str | None
    day: str  # the date as the recipient reads it

    @property
    def where(self) -> str:
        preposition = "di" if self.payment_channel == PaymentChannel.PT_POS else "ke"
        return f"{preposition} {channel_label(self.payment_channel)}"


def sms_text(facts: NoticeFacts) -> str:
    """The SMS: GSM-7, one segment when some wording of these facts fits in one."""
    happened, advice, short_advice = _TEXTS[facts.kind]
    masked = mask_name(facts.name)
    variants = (
        (masked, advice),
        (masked.split(" ")[0], advice),
        (masked.split(" ")[0], short_advice),
    )
    text = ""
    for name, closing in variants:
        what = happened.format(date=facts.day, where=facts.where)
        text = to_gsm7(
            f"Bansos {name}: {facts.program} {facts.period} "
            f"{format_rupiah(facts.amount)} {what} {closing}"
        )
        if segment_count(text) == 1:
            break
    return text


def template_variables(facts: NoticeFacts) -> dict[str, str]:
    """The WhatsApp template's variables (see the module docstring for the template)."""
    return {
        "1": mask_name(facts.name),
        "2": f"{facts.program} {facts.period}",
        "3": format_rupiah(facts.amount),
        "4": channel_label(facts.payment_channel),
        "5": facts.day,
        "6": _HEADLINES[facts.kind],
    }


def whatsapp_ready(settings: Settings) -> bool:
    """WhatsApp notices need an approved template, and a sender unless in the sandbox."""
    return bool(settings.twilio_notice_content_sid) and (
        bool(settings.twilio_whatsapp_from) or not settings.twilio_enabled
    )


@dataclass
class PlanReport:
    """What one planning run wrote (or, for a preview, would write), and whom it left out."""

    campaign_id: int | None = None
    planned: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    notices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.planned.values())


@dataclass(frozen=True)
class _Candidate:
    disbursement_id: int
    program: str
    period: str
    amount: int
    payment_channel: str | None
    scheduled_date: date
    disbursed_at: datetime | None
    recipient_id: int
    name: str
    phone: str | None
    province_code: str
    has_smartphone: bool
    flagged_phone: str | None
    opted_out: bool | None


class NoticePlanner:
    """Writes the notices that are due into the outbox; safe to run again at any time."""

    def __init__(
        self, db: Database, settings: Settings, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.clock = clock
        self.window = SendingWindow.parse(settings.notice_send_from, settings.notice_send_until)
        self.days_before = settings.notice_days_before
        self.lookback = settings.notice_outcome_lookback_days
        self.use_whatsapp = whatsapp_ready(settings)

    def plan(self, source: str = CampaignSource.SCHEDULER, label: str | None = None) -> PlanReport:
        """Plan now, as one campaign; a run that finds nothing new leaves no campaign."""
        started = time.perf_counter()
        now = self.clock()
        report = PlanReport()
        with self.db.session() as session:
            campaign = NoticeCampaign(
                label=(label or f"{source} {now:%Y-%m-%d %H:%M} UTC")[:100],
                source=source,
                created_at=now,
            )
            session.add(campaign)
            session.flush()
            rows: list[dict[str, Any]] = []
            for row in self._rows(session, now, report, flag=True):
                rows.append(row | {"campaign_id": campaign.id})
                if len(rows) >= INSERT_CHUNK:
                    _insert_new(session, rows)
                    rows = []
            if rows:
                _insert_new(session, rows)
            report.planned = Counter(
                dict(
                    session.execute(
                        select(Notice.kind, func.count())
                        .where(Notice.campaign_id == campaign.id)
                        .group_by(Notice.kind)
                    ).all()
                )
            )
            if report.total:
                report.campaign_id = campaign.id
            else:
                session.delete(campaign)
        report.seconds = time.perf_counter() - started
        return report

    def preview(self) -> PlanReport:
        """What `plan` would write now, without writing anything (the dry run)."""
        started = time.perf_counter()
        report = PlanReport()
        with self.db.session() as session:
            for row in self._rows(session, self.clock(), report, flag=False):
                report.notices.append(row)
                report.planned[row["kind"]] += 1
        report.seconds = time.perf_counter() - started
        return report

    def _rows(
        self, session: Session, now: datetime, report: PlanReport, flag: bool
    ) -> Iterator[dict[str, Any]]:
        mobile: dict[str, bool] = {}
        not_mobile: set[str] = set()
        for kind, candidate in self._candidates(session, now):
            reason = self._skip_reason(candidate, mobile)
            if reason is not None:
                report.skipped[reason] += 1
                if reason == SkipReason.NOT_MOBILE and candidate.phone:
                    not_mobile.add(candidate.phone)
                continue
            yield self._row(kind, candidate, now)
        if flag and not_mobile:
            session.execute(
                update(Recipient)
                .where(Recipient.phone.in_(sorted(not_mobile)))
                .values(
                    flagged_phone=Recipient.phone,
                    flagged_phone_reason=SkipReason.NOT_MOBILE,
                    flagged_phone_at=now,
                )
            )

    def _candidates(self, session: Session, now: datetime) -> Iterator[tuple[str, _Candidate]]:
        """Disbursements that need a notice of some kind and have none yet."""
        today = now.date()
        # The widest range any zone could need (local dates differ by up to a day);
        # each row is then checked against its own zone's date.
        ranges = {
            NoticeKind.REMINDER: (
                today - timedelta(days=1),
                today + timedelta(days=self.days_before + 1),
            ),
            NoticeKind.DISBURSED: (today - timedelta(days=self.lookback + 1), None),
            NoticeKind.FAILED: (today - timedelta(days=self.lookback + 1), None),
            NoticeKind.POSTPONED: (today - timedelta(days=self.lookback + 1), None),
        }
        for kind, (low, high) in ranges.items():
            stmt = _candidate_query(kind).where(Disbursement.scheduled_date >= low)
            if high is not None:
                stmt = stmt.where(Disbursement.scheduled_date <= high)
            # Page by id: a campaign of 100,000 is never held in memory at once, and no
            # cursor stays open while the pages before it are being inserted.
            after = 0
            while True:
                page = session.execute(
                    stmt.where(Disbursement.id > after).limit(INSERT_CHUNK)
                ).all()
                for values in page:
                    candidate = _Candidate(*values)
                    local_today = now.astimezone(zone_for_province(candidate.province_code)).date()
                    if self._due(kind, candidate.scheduled_date, local_today):
                        yield kind, candidate
                if len(page) < INSERT_CHUNK:
                    break
                after = page[-1][0]

    def _due(self, kind: str, scheduled: date, local_today: date) -> bool:
        if kind == NoticeKind.REMINDER:
            return local_today <= scheduled <= local_today + timedelta(days=self.days_before)
        return scheduled >= local_today - timedelta(days=self.lookback)

    @staticmethod
    def _skip_reason(candidate: _Candidate, mobile: dict[str, bool]) -> str | None:
        phone = candidate.phone
        if not phone:
            return SkipReason.NO_PHONE
        if candidate.flagged_phone == phone:
            return SkipReason.FLAGGED
        if candidate.opted_out:
            return SkipReason.OPTED_OUT
        if phone not in mobile:
            mobile[phone] = is_mobile(phone)
        return None if mobile[phone] else SkipReason.NOT_MOBILE

    def _row(self, kind: str, candidate: _Candidate, now: datetime) -> dict[str, Any]:
        zone = zone_for_province(candidate.province_code)
        if kind == NoticeKind.DISBURSED and candidate.disbursed_at is not None:
            day = format_local(candidate.disbursed_at, candidate.province_code)
        else:
            day = format_date(candidate.scheduled_date)
        facts = NoticeFacts(
            kind=kind,
            name=candidate.name,
            program=candidate.program,
            period=candidate.period,
            amount=candidate.amount,
            payment_channel=candidate.payment_channel,
            day=day,
        )
        earliest = now
        if kind == NoticeKind.REMINDER:
            send_day = candidate.scheduled_date - timedelta(days=self.days_before)
            earliest = max(now, self.window.opening(send_day, zone.key))
        preferred = Channel.WHATSAPP if candidate.has_smartphone else Channel.SMS
        body = sms_text(facts)
        return {
            "disbursement_id": candidate.disbursement_id,
            "recipient_id": candidate.recipient_id,
            "kind": kind,
            "scheduled_date": candidate.scheduled_date,
            "to_address": candidate.phone,
            "province_code": candidate.province_code,
            "zone": zone.key,
            "preferred_channel": preferred,
            "channel": preferred if self.use_whatsapp else Channel.SMS,
            "body": body,
            "segments": segment_count(body),
            "content_variables": template_variables(facts),
            "status": NoticeStatus.PENDING,
            "not_before": self.window.next_open(earliest, zone.key),
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }


def _candidate_query(kind: str) -> Any:
    return (
        select(
            Disbursement.id,
            Disbursement.program_code,
            Disbursement.period,
            Disbursement.amount,
            Disbursement.channel,
            Disbursement.scheduled_date,
            Disbursement.disbursed_at,
            Recipient.id,
            Recipient.name,
            Recipient.phone,
            Recipient.province_code,
            Recipient.has_smartphone,
            Recipient.flagged_phone,
            Contact.opted_out,
        )
        .join(Recipient, Disbursement.recipient_id == Recipient.id)
        .join(Program, Disbursement.program_code == Program.code)
        .outerjoin(Contact, Contact.address == Recipient.phone)
        .where(
            Program.gives_cash.is_(True),
            Disbursement.status == STATUS_FOR_KIND[kind],
            ~exists().where(
                Notice.disbursement_id == Disbursement.id,
                Notice.kind == kind,
                Notice.scheduled_date == Disbursement.scheduled_date,
            ),
        )
        .order_by(Disbursement.id)
    )


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert notices, leaving out any whose key another planner wrote meanwhile."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Notice).on_conflict_do_nothing(
        index_elements=["disbursement_id", "kind", "scheduled_date"]
    )
    session.execute(stmt, rows)
