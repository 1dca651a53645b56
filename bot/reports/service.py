"""Reports citizens file by chat (usul, sanggah, pengaduan) and follow by reference.

`ReportService` is what the Rasa actions, the CLI and later the staff dashboard call:
`create` validates a draft, merges a same-day duplicate or files a new report, and
returns the reply quoting its reference; `lookup` answers `TIKET <ref>` to the
reporter only; `change_status` walks the lifecycle (see bot.reports.models) and tells
the reporter; `iter_reports` reads any number of reports in batches, and
`export_lines` turns them into the one CSV export the CLI and the dashboard share.

Safety rules live here as functions so that later routing and views call the same
code: `is_sensitive` (levies, cuts, a card held by someone else) and `may_handle`
(a sensitive report is never routed or shown to a person named in it).
"""
from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TextIO

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from bot.db import Database
from bot.channels.later import LaterMessage, LaterSender
from bot.channels.outbox import Outbox
from bot.channels.window import REPORT_STATUS
from bot.conversation.models import Channel, Contact, Direction, Message, utcnow
from bot.rules.nik import InvalidNik, Nik, mask_nik, mask_niks, parse_nik
from bot.rules.regions import PROVINCES, format_local
from bot.reports.parsing import normalise_words
from bot.reports.refs import RandomBelow, new_reference, normalise_reference
from bot.reports.models import (
    ACTOR_MAX_CHARS,
    ADDRESS_MAX_CHARS,
    CONTENT_TYPE_MAX_CHARS,
    DESCRIPTION_MAX_CHARS,
    DESCRIPTION_MIN_CHARS,
    NAME_MAX_CHARS,
    NOTE_MAX_CHARS,
    PROPOSED_FOR_CHOICES,
    REGION_NAME_MAX_CHARS,
    SYSTEM_ACTOR,
    URL_MAX_CHARS,
    ComplaintCategory,
    Report,
    ReportAttachment,
    ReportEvent,
    ReportEventType,
    ReportKind,
    ReportStatus,
    can_transition,
    category_codes,
    category_label,
    choice_label,
)
from bot.rules.csvexport import csv_lines

log = logging.getLogger(__name__)

MERGE_WINDOW = timedelta(hours=24)
MAX_REFERENCE_ATTEMPTS = 8
# Twilio delivers at most ten media items with one WhatsApp message.
MAX_ATTACHMENTS = 10
# A staff note quoted to a citizen is cut here so the message stays within three SMS.
QUOTED_NOTE_MAX_CHARS = 250
# Reports read per session by iter_reports: enough to keep queries few, small enough
# that memory stays flat and each transaction stays short.
BATCH_SIZE = 500

NOT_FOUND_TEXT = (
    "Maaf, laporan dengan nomor itu tidak ditemukan. Periksa kembali nomornya, "
    "contoh: TIKET ADU-20260101-ABCD. Laporan hanya dapat dicek dari nomor yang "
    "dipakai saat melapor."
)
IDENTITY_PROTECTED_TEXT = "Identitas Bapak/Ibu kami rahasiakan dari pihak yang dilaporkan."

SENSITIVE_CATEGORIES = frozenset({
    (ReportKind.PENGADUAN, ComplaintCategory.POTONGAN_PUNGLI),
    (ReportKind.PENGADUAN, ComplaintCategory.KARTU_DIPEGANG_ORANG_LAIN),
})
# Words around a name that do not identify anyone ("Pak", "Bu Haji").
_HONORIFICS = frozenset({
    "bapak", "pak", "bpk", "ibu", "bu", "mas", "mbak", "mba", "kak", "bang", "haji", "hj",
    "h", "ust", "ustadz", "bu haji", "pak haji", "sdr", "sdri", "saudara", "saudari",
})
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class InvalidReport(ValueError):
    """A draft the service refuses; `field` names the form slot, `reason` is for the citizen."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


class ReportNotFound(LookupError):
    """No report has this reference (staff-facing; citizens get NOT_FOUND_TEXT)."""


class StatusChangeNotAllowed(ValueError):
    """The lifecycle does not allow this move, or its details are missing."""


@dataclass(frozen=True)
class AttachmentDraft:
    url: str
    content_type: str = ""


@dataclass(frozen=True)
class ReportDraft:
    """What a form collected; only kind, reporter, category and description are always needed.

    `channel` defaults to the reporter's last channel; `province_code` is asked only
    when no NIK gives it. An usul also needs `proposed_for`, and an usul or sanggah
    needs a subject (NIK or name).
    """

    kind: str
    reporter_contact_id: int
    category: str
    description: str
    channel: str | None = None
    proposed_for: str | None = None
    subject_nik: str | None = None
    subject_name: str | None = None
    subject_address: str | None = None
    province_code: str | None = None
    regency: str | None = None
    district: str | None = None
    village: str | None = None
    attachments: tuple[AttachmentDraft, ...] = ()


@dataclass(frozen=True)
class CreatedReport:
    reference: str
    merged: bool
    reply_text: str


@dataclass(frozen=True)
class ReportView:
    """A report as listings and exports show it, detached from any session."""

    reference: str
    kind: str
    category: str
    proposed_for: str | None
    status: str
    is_sensitive: bool
    province_code: str | None
    regency: str | None
    district: str | None
    village: str | None
    routed_to: str | None
    subject_nik: str | None
    subject_name: str | None
    subject_address: str | None
    description: str
    reporter_channel: str
    attachment_urls: tuple[str, ...]
    latest_note: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def masked_nik(self) -> str:
        return mask_nik(self.subject_nik) if self.subject_nik else ""


@dataclass(frozen=True)
class _CleanDraft:
    kind: str
    reporter_contact_id: int
    category: str
    description: str
    channel: str | None
    proposed_for: str | None
    nik: Nik | None
    subject_name: str | None
    subject_address: str | None
    province_code: str | None
    regency: str | None
    district: str | None
    village: str | None
    attachments: tuple[AttachmentDraft, ...]

    @property
    def is_sensitive(self) -> bool:
        return is_sensitive(self.kind, self.category)


# ---- rules other parts call -------------------------------------------------------


def is_sensitive(kind: str, category: str) -> bool:
    """Whether a report puts its reporter at risk if the person it names learns of it."""
    return (kind, category) in SENSITIVE_CATEGORIES


def route_report(province_code: str | None, nik: Nik | None) -> str | None:
    """The region a new report goes to: the NIK's regency when it agrees, else the province.

    The dinsos of a regency works most reports; without a NIK only the province is
    known, and without either the report waits in the national queue (None).
    """
    if nik is not None and nik.province_code == province_code:
        return nik.province_code + nik.regency_code
    return province_code


def _name_tokens(name: str) -> set[str]:
    return {
        token
        for token in normalise_words(name).split()
        if len(token) >= 3 and token not in _HONORIFICS
    }


def may_handle(report: Report, person_name: str) -> bool:
    """Whether a person (an officer, an agent) may be routed to or shown this report.

    A sensitive report names who takes the cut or holds the card; nobody whose name
    appears in it may see it. Any shared name word of three letters or more counts:
    wrongly keeping a report from an officer costs a reassignment, wrongly showing it
    can cost the reporter their assistance. Call it inside a session (it reads the
    report's events, where merged duplicates keep their text).
    """
    return not report.is_sensitive or not names_person(report_words(report), person_name)


def report_words(report: Report) -> frozenset[str]:
    """The words a report names people in: its description, subject and events' notes.

    Call it inside a session (it reads the report's events).
    """
    texts = [report.description, report.subject_name or ""]
    texts += [event.note or "" for event in report.events]
    return frozenset(normalise_words(" ".join(texts)).split())


def names_person(words: frozenset[str], person_name: str) -> bool:
    """Whether a report's words (`report_words`) name this person, whatever its category.

    `may_handle` asks it of sensitive reports; a complaint cluster asks it of every
    report behind it, since the cluster itself points at whoever they name.
    """
    return bool(_name_tokens(person_name) & words)


def check_description(text: str | None) -> str:
    """The description as stored, or InvalidReport saying how to fix it."""
    cleaned = _clean_multiline(text)
    if len(cleaned) < DESCRIPTION_MIN_CHARS:
        raise InvalidReport(
            "description",
            f"Keterangan terlalu singkat. Mohon ceritakan lebih jelas, minimal "
            f"{DESCRIPTION_MIN_CHARS} huruf.",
        )
    if len(cleaned) > DESCRIPTION_MAX_CHARS:
        raise InvalidReport(
            "description",
            f"Keterangan terlalu panjang, maksimal {DESCRIPTION_MAX_CHARS} huruf. "
            "Mohon dipersingkat.",
        )
    return cleaned


def draft_summary(draft: ReportDraft) -> str:
    """The summary a form shows before asking for confirmation (NIK masked)."""
    lines = [f"Ringkasan {ReportKind.WORDS.get(draft.kind, draft.kind)}:"]
    if draft.kind == ReportKind.USUL and draft.proposed_for:
        lines.append(f"Untuk: {choice_label(PROPOSED_FOR_CHOICES, draft.proposed_for)}")
    if draft.subject_name:
        lines.append(f"Nama: {_clean_line(draft.subject_name)}")
    if draft.subject_nik:
        lines.append(f"NIK: {mask_nik(draft.subject_nik)}")
    if draft.subject_address:
        lines.append(f"Alamat: {_clean_line(draft.subject_address)}")
    label = category_label(draft.kind, draft.category)
    if label:
        lines.append(f"Alasan: {label}")
    lines.append(f"Keterangan: {_clean_multiline(draft.description)}")
    if draft.attachments:
        lines.append(f"Lampiran: {len(draft.attachments)} foto/berkas")
    return "\n".join(lines)


# ---- the service ------------------------------------------------------------------


class ReportService:
    """Files, merges, answers and moves reports; the only writer of the reports tables."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        clock: Callable[[], datetime] = utcnow,
        random_below: RandomBelow = secrets.randbelow,
    ) -> None:
        self.db = db
        self.later = LaterSender(outbox, clock)
        self.clock = clock
        self.random_below = random_below

    def reporter_id(self, conversation_key: str) -> int | None:
        """The contact id behind a Rasa sender id (the action server knows only that)."""
        with self.db.session() as session:
            return session.scalar(
                select(Contact.id).where(Contact.conversation_key == conversation_key)
            )

    def media_of_message(
        self, conversation_key: str, message_id: int, since_message_id: int | None = None
    ) -> tuple[AttachmentDraft, ...]:
        """The media a reporter sent with one inbound message, for a report's evidence.

        The assistant knows messages only by id (Rasa metadata), so it asks here. A
        WhatsApp photo sent without a caption never reaches the assistant (the webhook
        answers it alone), so captionless messages after `since_message_id` count as
        sent with this one.
        """
        which = Message.id == message_id
        if since_message_id is not None:
            which = or_(
                which,
                and_(Message.id > since_message_id, Message.id < message_id, Message.body == ""),
            )
        with self.db.session() as session:
            media = session.scalars(
                select(Message.media)
                .join(Contact, Message.contact_id == Contact.id)
                .where(
                    Contact.conversation_key == conversation_key,
                    Message.direction == Direction.INBOUND,
                    which,
                )
                .order_by(Message.id)
            ).all()
        return tuple(
            AttachmentDraft(str(item.get("url") or ""), str(item.get("content_type") or ""))
            for items in media
            for item in items or ()
            if isinstance(item, dict)
        )

    def create(self, draft: ReportDraft) -> CreatedReport:
        """File a report, or add it to the same reporter's same-day report on the same subject."""
        clean = _validate(draft)
        now = self.clock()
        with self.db.session() as session:
            # Locking the reporter serialises their own concurrent filings on
            # PostgreSQL, so two quick copies of one SMS cannot both miss the merge.
            contact = session.get(Contact, clean.reporter_contact_id, with_for_update=True)
            if contact is None:
                raise LookupError(f"no contact {clean.reporter_contact_id}")
            duplicate = _find_duplicate(session, clean, now)
            if duplicate is not None:
                _merge(duplicate, clean, now)
                report = duplicate
            else:
                report = self._insert(session, clean, clean.channel or contact.last_channel, now)
            reference, sensitive = report.reference, report.is_sensitive
        merged = duplicate is not None
        log.info(
            "report %s %s: kind=%s category=%s sensitive=%s",
            reference, "merged" if merged else "filed", clean.kind, clean.category, sensitive,
        )
        return CreatedReport(reference, merged, _created_text(clean.kind, reference, merged, sensitive))

    def lookup(self, reference: str, requester_contact_id: int | None) -> str:
        """The status text for `TIKET <ref>`; anyone but the reporter gets NOT_FOUND_TEXT."""
        ref = normalise_reference(reference)
        if ref is None or requester_contact_id is None:
            return NOT_FOUND_TEXT
        with self.db.session() as session:
            report = session.scalar(
                select(Report)
                .where(Report.reference == ref, Report.reporter_contact_id == requester_contact_id)
                .options(selectinload(Report.events))
            )
            if report is None:
                return NOT_FOUND_TEXT
            return _status_text(report)

    def change_status(
        self, reference: str, to_status: str, actor: str, note: str | None = None
    ) -> Report:
        """Move a report along its lifecycle, record who did it, and tell the reporter.

        A rejection must say why: the reporter deserves a reason they can act on.
        """
        ref = normalise_reference(reference)
        if ref is None:
            raise ReportNotFound(f"no report {reference!r}")
        if to_status not in ReportStatus.ALL:
            raise StatusChangeNotAllowed(f"unknown status {to_status!r}")
        actor = _clean_line(actor)
        if not actor or len(actor) > ACTOR_MAX_CHARS:
            raise StatusChangeNotAllowed(f"actor must be 1 to {ACTOR_MAX_CHARS} characters")
        note = _clean_multiline(note)[:NOTE_MAX_CHARS] or None
        if to_status == ReportStatus.DITOLAK and not note:
            raise StatusChangeNotAllowed("a rejection needs a note giving the reason")
        now = self.clock()
        with self.db.session() as session:
            report = session.scalar(select(Report).where(Report.reference == ref).with_for_update())
            if report is None:
                raise ReportNotFound(f"no report {reference!r}")
            if not can_transition(report.status, to_status):
                raise StatusChangeNotAllowed(
                    f"{report.reference} cannot move from {report.status} to {to_status}"
                )
            report.events.append(
                ReportEvent(
                    event=ReportEventType.STATUS_CHANGED,
                    from_status=report.status,
                    to_status=to_status,
                    actor=actor,
                    note=note,
                    at=now,
                )
            )
            report.status = to_status
            report.updated_at = now
            contact_id = report.reporter_contact_id
        log.info("report %s moved to %s by %s", report.reference, to_status, actor)
        # Days may have passed since the reporter last wrote: the later path knows
        # WhatsApp's window. To a reporter who sent STOP the notice is kept unsent.
        text = _status_notice(report.reference, report.kind, to_status, note)
        variables = {
            "reference": report.reference,
            "kind": ReportKind.WORDS[report.kind],
            "status": ReportStatus.WORDS[to_status],
        }
        self.later.send(contact_id, LaterMessage(REPORT_STATUS, text, variables))
        return report

    def iter_reports(
        self,
        kind: str | None = None,
        status: str | None = None,
        province: str | None = None,
        sensitive: bool | None = None,
        keep: Callable[[Report], bool] | None = None,
    ) -> Iterator[ReportView]:
        """Reports matching every filter given, in the order they were filed, of any number.

        Read BATCH_SIZE at a time, each batch in its own short session, resuming after
        the last id read (keyset): memory stays flat, and a consumer as slow as a
        download holds no transaction (on SQLite, no write lock) between batches. A
        report comes out at most once even while others are filed or moved meanwhile.
        `keep` sees each report inside its session, events loaded, so callers can
        leave out what a viewer may not see (may_handle). Filters are checked now,
        not at the first row.
        """
        query = select(Report).options(selectinload(Report.attachments), selectinload(Report.events))
        if kind is not None:
            query = query.where(Report.kind == _known(kind, ReportKind.ALL, "kind"))
        if status is not None:
            query = query.where(Report.status == _known(status, ReportStatus.ALL, "status"))
        if province is not None:
            query = query.where(Report.province_code == _known(province, tuple(PROVINCES), "province"))
        if sensitive is not None:
            query = query.where(Report.is_sensitive.is_(sensitive))
        return self._in_batches(query, keep)

    def _in_batches(
        self, query: Select[tuple[Report]], keep: Callable[[Report], bool] | None
    ) -> Iterator[ReportView]:
        last_id = 0
        while True:
            with self.db.session() as session:
                batch = session.scalars(
                    query.where(Report.id > last_id).order_by(Report.id).limit(BATCH_SIZE)
                ).all()
                views = [_view(report) for report in batch if keep is None or keep(report)]
            yield from views
            if len(batch) < BATCH_SIZE:
                return
            last_id = batch[-1].id

    def list_reports(
        self,
        kind: str | None = None,
        status: str | None = None,
        province: str | None = None,
        sensitive: bool | None = None,
    ) -> list[ReportView]:
        """Reports matching every filter given, in the order they were filed (the order they are worked)."""
        return list(self.iter_reports(kind=kind, status=status, province=province, sensitive=sensitive))

    def export_csv(
        self,
        file: TextIO,
        kind: str | None = None,
        status: str | None = None,
        province: str | None = None,
        sensitive: bool | None = None,
        include_nik: bool = False,
    ) -> int:
        """Write every matching report to `file` as export_lines does; returns how many."""
        lines = export_lines(
            self.iter_reports(kind=kind, status=status, province=province, sensitive=sensitive),
            include_nik,
        )
        file.write(next(lines))
        count = 0
        for line in lines:
            file.write(line)
            count += 1
        return count

    def _insert(self, session: Session, clean: _CleanDraft, channel: str, now: datetime) -> Report:
        report = Report(
            kind=clean.kind,
            reporter_contact_id=clean.reporter_contact_id,
            reporter_channel=channel,
            subject_nik=clean.nik.value if clean.nik else None,
            subject_name=clean.subject_name,
            subject_address=clean.subject_address,
            province_code=clean.province_code,
            regency=clean.regency,
            district=clean.district,
            village=clean.village,
            category=clean.category,
            proposed_for=clean.proposed_for,
            description=clean.description,
            is_sensitive=clean.is_sensitive,
            routed_to=route_report(clean.province_code, clean.nik),
            status=ReportStatus.DITERIMA,
            created_at=now,
            updated_at=now,
        )
        self._add_with_fresh_reference(session, report, now)
        report.events.append(
            ReportEvent(
                event=ReportEventType.CREATED,
                to_status=ReportStatus.DITERIMA,
                actor=SYSTEM_ACTOR,
                at=now,
            )
        )
        _attach(report, clean.attachments, now)
        return report

    def _add_with_fresh_reference(self, session: Session, report: Report, now: datetime) -> None:
        """Insert under a new random reference, drawing again while one is taken."""
        for _ in range(MAX_REFERENCE_ATTEMPTS):
            report.reference = new_reference(report.kind, now, self.random_below)
            try:
                with session.begin_nested():
                    session.add(report)
            except IntegrityError:
                taken = session.scalar(select(Report.id).where(Report.reference == report.reference))
                if taken is None:
                    raise
                log.info("reference collision on %s, drawing again", report.reference)
                continue
            return
        raise RuntimeError(f"no free reference after {MAX_REFERENCE_ATTEMPTS} attempts")


# ---- validation -------------------------------------------------------------------


def _clean_line(value: str | None) -> str:
    text = _CONTROL_CHARS.sub(" ", unicodedata.normalize("NFC", value or ""))
    return " ".join(text.split())


def _clean_multiline(value: str | None) -> str:
    text = unicodedata.normalize("NFC", value or "").replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL_CHARS.sub(" ", text)
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _bounded(value: str | None, limit: int, field_name: str, reason: str) -> str | None:
    text = _clean_line(value)
    if len(text) > limit:
        raise InvalidReport(field_name, reason)
    return text or None


def _validate(draft: ReportDraft) -> _CleanDraft:
    if draft.kind not in ReportKind.ALL:
        raise ValueError(f"unknown report kind {draft.kind!r}")
    if draft.channel is not None and draft.channel not in (Channel.SMS, Channel.WHATSAPP):
        raise ValueError(f"unknown channel {draft.channel!r}")
    if draft.category not in category_codes(draft.kind):
        raise InvalidReport(
            "category", "Pilihan alasan tidak dikenal. Mohon balas dengan salah satu nomor pilihan."
        )
    proposed_for = None
    if draft.kind == ReportKind.USUL:
        proposed_for = draft.proposed_for
        if choice_label(PROPOSED_FOR_CHOICES, proposed_for) is None:
            raise InvalidReport(
                "proposed_for",
                "Usulan ini untuk siapa? Balas 1 untuk keluarga sendiri, 2 untuk keluarga lain.",
            )
    nik = None
    if draft.subject_nik and draft.subject_nik.strip():
        try:
            nik = parse_nik(draft.subject_nik)
        except InvalidNik as exc:
            raise InvalidReport("subject_nik", exc.reason) from None
    name = _bounded(
        draft.subject_name, NAME_MAX_CHARS, "subject_name",
        f"Nama terlalu panjang, maksimal {NAME_MAX_CHARS} huruf.",
    )
    if draft.kind in (ReportKind.USUL, ReportKind.SANGGAH) and nik is None and name is None:
        raise InvalidReport(
            "subject_name", "Mohon kirim NIK atau nama lengkap keluarga yang dimaksud."
        )
    address = _bounded(
        draft.subject_address, ADDRESS_MAX_CHARS, "subject_address",
        f"Alamat terlalu panjang, maksimal {ADDRESS_MAX_CHARS} huruf.",
    )
    province_code = _clean_line(draft.province_code) or None
    if province_code is not None and province_code not in PROVINCES:
        raise InvalidReport("province_code", "Provinsi tidak dikenal. Mohon tulis nama provinsi.")
    region_reason = f"Nama wilayah terlalu panjang, maksimal {REGION_NAME_MAX_CHARS} huruf."
    return _CleanDraft(
        kind=draft.kind,
        reporter_contact_id=draft.reporter_contact_id,
        category=draft.category,
        description=check_description(draft.description),
        channel=draft.channel,
        proposed_for=proposed_for,
        nik=nik,
        subject_name=name,
        subject_address=address,
        # Where the household says it lives now wins over the NIK's issuing province.
        province_code=province_code or (nik.province_code if nik else None),
        regency=_bounded(draft.regency, REGION_NAME_MAX_CHARS, "regency", region_reason),
        district=_bounded(draft.district, REGION_NAME_MAX_CHARS, "district", region_reason),
        village=_bounded(draft.village, REGION_NAME_MAX_CHARS, "village", region_reason),
        attachments=_check_attachments(draft.attachments),
    )


def _check_attachments(attachments: Iterable[AttachmentDraft]) -> tuple[AttachmentDraft, ...]:
    checked = tuple(attachments)
    if len(checked) > MAX_ATTACHMENTS:
        raise InvalidReport("attachments", f"Maksimal {MAX_ATTACHMENTS} lampiran untuk satu laporan.")
    for attachment in checked:
        url = attachment.url or ""
        if not url.startswith(("https://", "http://")) or len(url) > URL_MAX_CHARS:
            raise ValueError("attachment url must be an http(s) URL of bounded length")
        if len(attachment.content_type or "") > CONTENT_TYPE_MAX_CHARS:
            raise ValueError("attachment content type too long")
    return checked


def _known(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}")
    return value


# ---- duplicates -------------------------------------------------------------------


def _subject_key(name: str | None, address: str | None) -> str | None:
    if not name:
        return None
    return normalise_words(name) + "|" + normalise_words(address or "")


def _same_subject(report: Report, clean: _CleanDraft) -> bool:
    if report.subject_nik and clean.nik:
        return report.subject_nik == clean.nik.value
    key = _subject_key(clean.subject_name, clean.subject_address)
    return key is not None and key == _subject_key(report.subject_name, report.subject_address)


def _find_duplicate(session: Session, clean: _CleanDraft, now: datetime) -> Report | None:
    """An open report of the same kind, by the same reporter, on the same subject, in 24 h."""
    candidates = session.scalars(
        select(Report)
        .where(
            Report.reporter_contact_id == clean.reporter_contact_id,
            Report.kind == clean.kind,
            Report.created_at > now - MERGE_WINDOW,
            Report.status.not_in(ReportStatus.FINAL),
        )
        .order_by(Report.created_at.desc(), Report.id.desc())
    ).all()
    return next((report for report in candidates if _same_subject(report, clean)), None)


def _merge(report: Report, clean: _CleanDraft, now: datetime) -> None:
    """Keep the newcomer's text, evidence and any sensitivity on the existing report."""
    note = clean.description
    if clean.category != report.category:
        note = f"Alasan: {category_label(clean.kind, clean.category)}. {note}"
    report.events.append(
        ReportEvent(
            event=ReportEventType.MERGED,
            from_status=report.status,
            to_status=report.status,
            actor=SYSTEM_ACTOR,
            note=note[:NOTE_MAX_CHARS],
            at=now,
        )
    )
    report.is_sensitive = report.is_sensitive or clean.is_sensitive
    _attach(report, clean.attachments, now)
    report.updated_at = now


def _attach(report: Report, attachments: tuple[AttachmentDraft, ...], now: datetime) -> None:
    for attachment in attachments:
        report.attachments.append(
            ReportAttachment(url=attachment.url, content_type=attachment.content_type or "", created_at=now)
        )


# ---- citizen-facing texts ---------------------------------------------------------


def _created_text(kind: str, reference: str, merged: bool, sensitive: bool) -> str:
    label = ReportKind.WORDS[kind]
    if merged:
        text = (
            f"Bapak/Ibu sudah mengirim {label} yang sama hari ini dengan nomor {reference}. "
            "Keterangan baru sudah kami tambahkan ke laporan itu, jadi tidak dibuat nomor baru."
        )
    else:
        text = (
            f"Terima kasih, {label} Bapak/Ibu sudah kami terima dengan nomor {reference}. "
            "Petugas dinas sosial akan memeriksanya dan mengabari Bapak/Ibu."
        )
    if sensitive:
        text += " " + IDENTITY_PROTECTED_TEXT
    # People copy the TIKET line, so words follow its reference rather than a full stop.
    return text + f" Ketik TIKET {reference} untuk melihat perkembangannya."


def _quoted_note(note: str | None) -> str:
    text = " ".join((note or "").split())
    if len(text) <= QUOTED_NOTE_MAX_CHARS:
        return text
    return text[: QUOTED_NOTE_MAX_CHARS - 3].rsplit(" ", 1)[0] + "..."


def _status_since(report: Report) -> tuple[datetime, str | None]:
    changes = [event for event in report.events if event.event == ReportEventType.STATUS_CHANGED]
    if not changes:
        return report.created_at, None
    latest = changes[-1]
    return latest.at, latest.note


def _status_text(report: Report) -> str:
    since, note = _status_since(report)
    text = (
        f"Laporan {report.reference} ({ReportKind.WORDS[report.kind]}) "
        f"{ReportStatus.WORDS[report.status]}, sejak {format_local(since, report.province_code)}."
    )
    if report.status not in ReportStatus.FINAL:
        text += " Kami akan mengabari Bapak/Ibu bila ada perubahan."
    if note:
        text += f" Catatan petugas: {_quoted_note(note)}"
    return text


def _status_notice(reference: str, kind: str, status: str, note: str | None) -> str:
    # The note goes last: if a long note must be cut, the reference and the way to
    # follow the report survive.
    text = (
        f"Kabar laporan {reference}: {ReportKind.WORDS[kind]} Bapak/Ibu {ReportStatus.WORDS[status]}. "
        f"Ketik TIKET {reference} untuk info lengkap."
    )
    if note:
        text += f" Catatan petugas: {_quoted_note(note)}"
    return text


# ---- listings and export ----------------------------------------------------------

EXPORT_COLUMNS = (
    "reference", "kind", "category", "category_label", "proposed_for", "status",
    "is_sensitive", "province_code", "province", "regency", "district", "village",
    "routed_to", "subject_nik", "subject_name", "subject_address", "description",
    "attachments", "reporter_channel", "latest_note", "created_at", "updated_at",
)


def _view(report: Report) -> ReportView:
    _, note = _status_since(report)
    return ReportView(
        reference=report.reference,
        kind=report.kind,
        category=report.category,
        proposed_for=report.proposed_for,
        status=report.status,
        is_sensitive=report.is_sensitive,
        province_code=report.province_code,
        regency=report.regency,
        district=report.district,
        village=report.village,
        routed_to=report.routed_to,
        subject_nik=report.subject_nik,
        subject_name=report.subject_name,
        subject_address=report.subject_address,
        description=report.description,
        reporter_channel=report.reporter_channel,
        attachment_urls=tuple(attachment.url for attachment in report.attachments),
        latest_note=note,
        created_at=report.created_at,
        updated_at=report.updated_at,
    )


def export_lines(views: Iterable[ReportView], include_nik: bool) -> Iterator[str]:
    """The reports export as CSV text, a line at a time: the header, then one per report.

    The one export the CLI and the dashboard share; lazy, so an export of any size
    streams in constant memory. NIKs are masked unless `include_nik`, also inside
    free text. The writer (bot/rules/csvexport.py) keeps a spreadsheet from running
    citizens' text as a formula.
    """
    return csv_lines(EXPORT_COLUMNS, (_export_row(view, include_nik) for view in views))


def _export_row(view: ReportView, include_nik: bool) -> list[object]:
    """One report's cells. Citizens type NIKs anywhere (their own in a complaint, a
    neighbour's in a sanggah, in a name or an address), so unless NIKs were asked for
    every free-text cell goes through mask_niks, the rule logs and the dashboard use."""

    def text(value: str | None) -> str:
        return (value or "") if include_nik else mask_niks(value or "")

    province = PROVINCES.get(view.province_code or "")
    return [
        view.reference,
        view.kind,
        view.category,
        category_label(view.kind, view.category) or "",
        view.proposed_for or "",
        view.status,
        "true" if view.is_sensitive else "false",
        view.province_code or "",
        province.name if province else "",
        text(view.regency),
        text(view.district),
        text(view.village),
        view.routed_to or "",
        (view.subject_nik or "") if include_nik else view.masked_nik,
        text(view.subject_name),
        text(view.subject_address),
        text(view.description),
        # How many: the files are ours, opened (and audited) on the report page; the
        # provider's URLs name our account and are deleted once we hold the copy.
        str(len(view.attachment_urls)),
        view.reporter_channel,
        text(view.latest_note),
        view.created_at.isoformat(),
        view.updated_at.isoformat(),
    ]
