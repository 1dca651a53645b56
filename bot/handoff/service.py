"""Human handoff: when the bot steps aside, what the citizen is told, and how staff answer.

Two services share the rules here:

- `Escalations` is what the conversation core and the action server call: it opens a
  handoff (asked for with PETUGAS or the `request_human` intent, two misunderstood
  messages in a row, distress or abusive words, a sensitive report), says when a
  person will answer, and tells the core which messages belong to staff.
- `HandoffDesk` is what the staff dashboard calls: the inbox, the transcript, claim
  and assign, replies, hand back and close. Replies and the hand-back notice go
  through bot/channels/later.py, which knows WhatsApp's 24-hour window.

While a handoff is open the core stores the citizen's messages for staff and never
sends them to Rasa (a paused Rasa conversation would still run its NLU on them).
Handing back restarts Rasa's tracker first, so the bot does not continue a form or
a question from before the handoff as if nothing had happened.

Office hours are Monday to Friday, 08.00 to 16.00 in the citizen's own zone (WIB,
WITA or WIT from their registered household's province; WIB when unknown). National
holidays are not known here: on one the estimate is optimistic.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, selectinload

from bot.handoff.audit import AuditAction, AuditLog
from bot.db import Database
from bot.handoff.models import (
    OUTCOME_NOTE_MAX_CHARS,
    Handoff,
    HandoffMessage,
    HandoffOutcome,
    HandoffReason,
    HandoffStatus,
)
from bot.channels.later import LaterMessage, LaterSender, addressee_of
from bot.channels.outbox import Outbox
from bot.channels.window import HAND_BACK, STAFF_REPLY, Route, Way, may_end_as_sms
from bot.conversation.keywords import keyword_for
from bot.conversation.models import Channel, Contact, Direction, Message, MessageStatus, utcnow
from bot.rules.nik import InvalidNik, mask_niks, parse_nik
from bot.rules.phone import mask_phone
from bot.conversation.rasa_client import RasaClient, RasaUnavailable
from bot.rules.regions import PROVINCES, format_date, zone_for_province
from bot.registry.models import Recipient
from bot.reports.service import may_handle, route_report
from bot.reports.models import Report
from bot.rules.smstext import segment_count, to_gsm7
from bot.handoff.staff_models import StaffUser
from bot.handoff.staff_users import AccessDenied, StaffIdentity

log = logging.getLogger(__name__)

OFFICE_OPENS = time(8, 0)
OFFICE_CLOSES = time(16, 0)
OFFICE_DAYS = frozenset(range(5))  # Monday to Friday
# What "soon" means in the notice; less office time left than this, and the
# citizen is told the next opening instead of a promise the office cannot keep.
EXPECTED_ANSWER = timedelta(minutes=30)
REPLY_MAX_CHARS = 1600
SMS_REPLY_MAX_SEGMENTS = 3
# The transcript shows this much of what came before the escalation.
TRANSCRIPT_CONTEXT = timedelta(days=3)
TRANSCRIPT_MAX_MESSAGES = 300
SNIPPET_CHARS = 80
REQUEST_HUMAN_PAYLOAD = keyword_for("request_human").payload

# The hand-back notice is its template's text, so it reads the same outside WhatsApp's window.
BOT_BACK_TEXT = HAND_BACK.approval_text

# Free text while waiting for an officer: the bot still answers keywords meanwhile.
WAITING_LEAD = "Pesan Bapak/Ibu sudah kami simpan untuk petugas."
WAITING_TAIL = "Sambil menunggu, ketik MENU untuk layanan otomatis."

_LEADS = {
    HandoffReason.REQUESTED: "Baik, pesan Bapak/Ibu kami teruskan ke petugas.",
    HandoffReason.NOT_UNDERSTOOD: (
        "Maaf, kami belum dapat memahami pesan Bapak/Ibu, jadi kami teruskan ke petugas."
    ),
    HandoffReason.SENSITIVE_REPORT: "Laporan ini juga kami teruskan ke petugas.",
    HandoffReason.DISTRESS: (
        "Pesan Bapak/Ibu segera kami teruskan ke petugas. Bila dalam bahaya, hubungi 112."
    ),
    HandoffReason.ABUSIVE: (
        "Pesan Bapak/Ibu kami teruskan ke petugas. Mohon gunakan bahasa yang sopan."
    ),
}

# Words that make a person read the chat now. Multi-word entries match as a phrase.
# A false alarm costs an officer a minute; a missed one can cost far more.
DISTRESS_WORDS = (
    "bunuh diri", "bundir", "ingin mati", "pengen mati", "pingin mati", "mau mati saja",
    "mau mati aja", "lebih baik mati", "akhiri hidup", "mengakhiri hidup", "tidak kuat hidup",
    "gak kuat hidup", "ga kuat hidup", "putus asa", "kelaparan", "belum makan",
    "tidak bisa makan", "gak bisa makan", "ga bisa makan", "tidak ada makanan", "dipukuli",
    "dianiaya", "kdrt", "diancam", "diperkosa", "dilecehkan", "pelecehan", "diusir",
)
# Words that are also names or livelihoods ("tai" in names, "babi" for pig farmers
# in NTT, Bali and Papua) are left out.
ABUSIVE_WORDS = (
    "anjing", "bangsat", "bajingan", "brengsek", "goblok", "goblog", "tolol", "idiot",
    "kampret", "keparat", "taik", "asu", "jancok", "jancuk", "kontol", "memek", "ngentot",
    "pepek",
)
_REPEATS = re.compile(r"([a-z])\1{2,}")
_WORDS = re.compile(r"[a-z]+")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class HandoffNotFound(LookupError):
    """No handoff with this id."""


class HandoffRefused(ValueError):
    """The desk will not do this now; the message is Indonesian, for the officer."""


# ---- rules --------------------------------------------------------------------------


def _normalised_words(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().lower()
    return " " + " ".join(_WORDS.findall(_REPEATS.sub(r"\1", folded))) + " "


def _mentions(words: str, phrases: Iterable[str]) -> bool:
    return any(f" {phrase} " in words for phrase in phrases)


def escalation_reason(text: str) -> str | None:
    """DISTRESS or ABUSIVE when free text calls for a person at once, else None.

    Stretched letters ("anjiiing") are folded first; distress wins over abuse,
    because a person in trouble is often also angry.
    """
    words = _normalised_words(text)
    if _mentions(words, DISTRESS_WORDS):
        return HandoffReason.DISTRESS
    if _mentions(words, ABUSIVE_WORDS):
        return HandoffReason.ABUSIVE
    return None


def office_is_open(local: datetime) -> bool:
    return local.weekday() in OFFICE_DAYS and OFFICE_OPENS <= local.time() < OFFICE_CLOSES


def next_opening(local: datetime) -> datetime:
    """The next time the office opens, strictly after `local` unless it is before today's opening."""
    day = local.date()
    if local.weekday() in OFFICE_DAYS and local.time() < OFFICE_OPENS:
        return datetime.combine(day, OFFICE_OPENS, local.tzinfo)
    day += timedelta(days=1)
    while day.weekday() not in OFFICE_DAYS:
        day += timedelta(days=1)
    return datetime.combine(day, OFFICE_OPENS, local.tzinfo)


def _zone_label(province_code: str | None) -> str:
    found = PROVINCES.get(province_code or "")
    return found.tz_label if found else "WIB"


def when_text(now: datetime, province_code: str | None) -> str:
    """When a person will answer, in the citizen's own zone."""
    zone: ZoneInfo = zone_for_province(province_code)
    label = _zone_label(province_code)
    local = now.astimezone(zone)
    closes = datetime.combine(local.date(), OFFICE_CLOSES, zone)
    if office_is_open(local) and closes - local >= EXPECTED_ANSWER:
        minutes = int(EXPECTED_ANSWER.total_seconds() // 60)
        return f"Petugas akan membalas di sini dalam sekitar {minutes} menit."
    opening = next_opening(local)
    return (
        f"Petugas melayani Senin-Jumat pukul 08.00-16.00 {label}, jadi balasan datang "
        f"mulai {format_date(opening.date())} pukul 08.00 {label}."
    )


def escalation_notice(reason: str, now: datetime, province_code: str | None) -> str:
    """What the citizen is told when a person takes over: that, why, and roughly when."""
    return f"{_LEADS.get(reason, _LEADS[HandoffReason.REQUESTED])} {when_text(now, province_code)}"


def waiting_notice(now: datetime, province_code: str | None) -> str:
    """For free text while no officer has claimed the chat: kept for them, and when they answer."""
    return f"{WAITING_LEAD} {when_text(now, province_code)} {WAITING_TAIL}"


def household_region(session: Session, address: str) -> tuple[str | None, str | None]:
    """(region, province) of the household registered to this phone, or (None, None)."""
    recipient = session.scalar(
        select(Recipient).where(Recipient.phone == address).order_by(Recipient.id).limit(1)
    )
    if recipient is None:
        return None, None
    try:
        nik = parse_nik(recipient.nik)
    except InvalidNik:
        nik = None
    return route_report(recipient.province_code, nik), recipient.province_code


def _open_handoff(session: Session, contact_id: int) -> Handoff | None:
    return session.scalar(
        select(Handoff).where(
            Handoff.contact_id == contact_id, Handoff.status.in_(HandoffStatus.OPEN)
        )
    )


@dataclass(frozen=True)
class OpenHandoff:
    """What the conversation core needs to know of a contact's open handoff."""

    id: int
    # An officer holds the chat: from then on the bot stays silent.
    claimed: bool
    # Since the handoff opened, the citizen was told once more when an officer will answer.
    waiting_notice_given: bool
    # The citizen's previous message in this handoff was answered by the bot (a keyword),
    # so this one may answer a question the bot asked.
    bot_answered_last: bool


def _as_open(session: Session, handoff: Handoff | None) -> OpenHandoff | None:
    if handoff is None:
        return None
    in_handoff = (
        Message.contact_id == handoff.contact_id,
        Message.direction == Direction.INBOUND,
        Message.created_at >= handoff.created_at,
    )
    reply = aliased(Message)
    told = session.scalar(
        select(func.count(Message.id)).where(
            *in_handoff,
            Message.status == MessageStatus.WITH_STAFF,
            exists().where(reply.in_reply_to_id == Message.id),
        )
    )
    previous = session.scalar(
        select(Message.status)
        .where(*in_handoff, Message.status.in_((MessageStatus.ANSWERED, MessageStatus.WITH_STAFF)))
        .order_by(Message.id.desc())
        .limit(1)
    )
    return OpenHandoff(
        handoff.id, handoff.status == HandoffStatus.CLAIMED, bool(told), previous == MessageStatus.ANSWERED
    )


def open_handoff(session: Session, contact_id: int) -> OpenHandoff | None:
    """The contact's open handoff, if any, read without touching it."""
    return _as_open(session, _open_handoff(session, contact_id))


def attach_inbound(session: Session, contact_id: int, at: datetime) -> OpenHandoff | None:
    """Within the unit of work storing an inbound message: the open handoff it belongs to.

    The citizen is waiting again from this message on, unless already waiting.
    """
    handoff = _open_handoff(session, contact_id)
    if handoff is None:
        return None
    handoff.last_inbound_at = at
    if handoff.waiting_since is None:
        handoff.waiting_since = at
    return _as_open(session, handoff)


# ---- the core's side ----------------------------------------------------------------


@dataclass(frozen=True)
class Escalation:
    handoff_id: int
    created: bool
    notice: str


class Escalations:
    """Opens handoffs and words the notice; used by the core, the actions and reports."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def escalate(
        self,
        contact_id: int,
        reason: str,
        region: str | None = None,
        report_reference: str | None = None,
    ) -> Escalation:
        """Open a handoff for a contact, or return the one already open.

        A more urgent reason upgrades an open handoff, so distress reaches the top of
        the inbox even when the citizen had asked for a person before. A sensitive
        report filed while a handoff is open gives that handoff its reference, so the
        officer sees which report the chat is about.
        """
        if reason not in HandoffReason.ALL:
            raise ValueError(f"unknown handoff reason {reason!r}")
        now = self.clock()
        with self.db.session() as session:
            existing = _open_handoff(session, contact_id)
            if existing is None:
                contact = session.get_one(Contact, contact_id)
                home_region, province_code = household_region(session, contact.address)
                handoff = Handoff(
                    contact_id=contact_id,
                    reason=reason,
                    channel=contact.last_channel,
                    region=region or home_region,
                    province_code=province_code or (region[:2] if region else None),
                    report_reference=report_reference,
                    status=HandoffStatus.WAITING,
                    created_at=now,
                    waiting_since=now,
                    last_inbound_at=now,
                )
                try:
                    with session.begin_nested():
                        session.add(handoff)
                except IntegrityError:
                    # Another message of this contact opened one at the same moment.
                    existing = _open_handoff(session, contact_id)
                    if existing is None:
                        raise
                else:
                    log.info("handoff %d opened: reason=%s region=%s", handoff.id, reason, handoff.region)
                    return Escalation(handoff.id, True, escalation_notice(reason, now, handoff.province_code))
            if reason in HandoffReason.URGENT and existing.reason not in HandoffReason.URGENT:
                existing.reason = reason
            if report_reference is not None and existing.report_reference is None:
                existing.report_reference = report_reference
            return Escalation(existing.id, False, escalation_notice(reason, now, existing.province_code))

    def escalate_conversation(self, conversation_key: str, reason: str) -> Escalation | None:
        """Escalate by the opaque key Rasa knows (the action server has nothing else)."""
        with self.db.session() as session:
            contact_id = session.scalar(
                select(Contact.id).where(Contact.conversation_key == conversation_key)
            )
        if contact_id is None:
            return None
        return self.escalate(contact_id, reason)

    def escalate_report(self, reference: str) -> Escalation | None:
        """Hand a sensitive report's reporter to a person of the report's region.

        Call it after `ReportService.create` when the report is sensitive; append the
        notice to the reply. None when the report does not exist or is not sensitive.
        """
        with self.db.session() as session:
            report = session.scalar(select(Report).where(Report.reference == reference))
            if report is None or not report.is_sensitive:
                return None
            contact_id, region = report.reporter_contact_id, report.routed_to
        return self.escalate(
            contact_id, HandoffReason.SENSITIVE_REPORT, region=region, report_reference=reference
        )

    def notice_for_open(self, handoff_id: int) -> str:
        """The notice again, for a citizen who asks for a person while already waiting."""
        with self.db.session() as session:
            handoff = session.get_one(Handoff, handoff_id)
            return escalation_notice(HandoffReason.REQUESTED, self.clock(), handoff.province_code)

    def waiting_notice(self, handoff_id: int) -> str:
        """For free text while no officer has claimed the chat yet: kept, and when they answer."""
        with self.db.session() as session:
            handoff = session.get_one(Handoff, handoff_id)
            return waiting_notice(self.clock(), handoff.province_code)


# ---- the staff's side ---------------------------------------------------------------


@dataclass(frozen=True)
class InboxItem:
    id: int
    status: str
    reason: str
    reason_label: str
    urgent: bool
    channel: str
    contact: str
    region: str | None
    assigned_to: str | None
    assigned_to_me: bool
    created_at: datetime
    waiting_since: datetime | None
    waiting_seconds: int | None
    last_text: str


@dataclass(frozen=True)
class TranscriptLine:
    id: int
    direction: str
    author: str
    body: str
    media: tuple[str, ...]
    at: datetime
    status: str
    error_code: str | None
    channel: str
    fell_back_to_sms: bool
    # Went as an approved WhatsApp template (outside the 24-hour window).
    via_template: bool = False


@dataclass(frozen=True)
class ChatView:
    id: int
    status: str
    is_open: bool
    reason_label: str
    channel: str
    contact: str
    region: str | None
    province_name: str | None
    report_reference: str | None
    assigned_to_id: int | None
    assigned_to: str | None
    created_at: datetime
    waiting_since: datetime | None
    outcome_label: str | None
    # Which way a reply would go now (bot/channels/window.py); None once the chat ended.
    reply_route: Route | None
    # The citizen sent STOP: nothing the officer sends reaches them until MULAI.
    opted_out: bool
    lines: list[TranscriptLine]
    nik_revealed: bool


@dataclass(frozen=True)
class ReplyResult:
    channel: str
    fell_back_to_sms: bool
    delivered_to_provider: bool
    error_code: str | None
    # Kept but not sent: the citizen had sent STOP.
    opted_out: bool
    # Outside the window with no SMS: a template told the citizen, the text waits for their answer.
    held: bool = False


def _clean_reply(text: str) -> str:
    cleaned = _CONTROL_CHARS.sub("", unicodedata.normalize("NFC", text or "")).replace("\r\n", "\n").strip()
    if not cleaned:
        raise HandoffRefused("Balasan kosong.")
    if len(cleaned) > REPLY_MAX_CHARS:
        raise HandoffRefused(f"Balasan terlalu panjang, maksimal {REPLY_MAX_CHARS} karakter.")
    return cleaned


def _safe_media(media: list[dict[str, str]] | None) -> tuple[str, ...]:
    """Media links a browser may follow: only http(s), never `javascript:` or the like."""
    return tuple(
        item["url"]
        for item in media or []
        if isinstance(item, dict) and str(item.get("url", "")).startswith(("https://", "http://"))
    )


def _wait_seconds(since: datetime | None, now: datetime) -> int | None:
    return None if since is None else max(0, int((now - since).total_seconds()))


class HandoffDesk:
    """The staff dashboard's handoff work; every method checks who may do it."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        rasa: RasaClient,
        audit: AuditLog,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.later = LaterSender(outbox, clock)
        self.rasa = rasa
        self.audit = audit
        self.clock = clock

    # ---- access ------------------------------------------------------------------

    @staticmethod
    def _sensitive_reports(session: Session, contact_ids: Iterable[int]) -> dict[int, list[Report]]:
        """Every sensitive report each contact ever filed, with the events `may_handle` reads.

        One query for any number of contacts (and one for the events), so the inbox
        costs the same with five chats or five hundred.
        """
        found: dict[int, list[Report]] = {contact_id: [] for contact_id in contact_ids}
        if not found:
            return found
        reports = session.scalars(
            select(Report)
            .where(Report.reporter_contact_id.in_(list(found)), Report.is_sensitive.is_(True))
            .options(selectinload(Report.events))
        )
        for report in reports:
            found[report.reporter_contact_id].append(report)
        return found

    @staticmethod
    def _named_in_none(reports: Iterable[Report], person_name: str) -> bool:
        return all(may_handle(report, person_name) for report in reports)

    def _may_handle(self, session: Session, handoff: Handoff, person_name: str) -> bool:
        """Whether no sensitive report of this citizen names the person.

        Every report the contact filed counts, not only the one that opened this
        handoff: the citizen's earlier messages (the complaint among them) show in
        every later chat's transcript, so a chat opened with PETUGAS after the
        report's own handoff closed must be kept from the person named just the same.
        """
        reports = self._sensitive_reports(session, [handoff.contact_id])[handoff.contact_id]
        return self._named_in_none(reports, person_name)

    @staticmethod
    def _in_reach(viewer: StaffIdentity, handoff: Handoff) -> bool:
        """The region rule: the viewer's region, or a chat given to the viewer."""
        return handoff.assigned_to_id == viewer.id or viewer.may_see_region(handoff.region)

    def _may_see(self, session: Session, viewer: StaffIdentity, handoff: Handoff) -> bool:
        return self._in_reach(viewer, handoff) and self._may_handle(session, handoff, viewer.display_name)

    def _load(self, session: Session, viewer: StaffIdentity, handoff_id: int, lock: bool = False) -> Handoff:
        query = select(Handoff).where(Handoff.id == handoff_id)
        handoff = session.scalar(query.with_for_update() if lock else query)
        if handoff is None:
            raise HandoffNotFound(handoff_id)
        if not self._may_see(session, viewer, handoff):
            raise AccessDenied("Percakapan ini bukan wilayah atau wewenang Anda.")
        return handoff

    def _load_to_act(self, session: Session, viewer: StaffIdentity, handoff_id: int) -> Handoff:
        """An open handoff the viewer may work: theirs, unclaimed, or any for a supervisor."""
        handoff = self._load(session, viewer, handoff_id, lock=True)
        if not handoff.is_open:
            raise HandoffRefused("Percakapan ini sudah selesai.")
        if handoff.assigned_to_id not in (None, viewer.id) and not viewer.can_assign:
            raise AccessDenied("Percakapan ini sedang ditangani petugas lain.")
        return handoff

    def contact_of_chat(self, viewer: StaffIdentity, handoff_id: int) -> int:
        """The citizen behind a chat the viewer may see; HandoffNotFound or AccessDenied otherwise."""
        with self.db.session() as session:
            return self._load(session, viewer, handoff_id).contact_id

    @classmethod
    def kept_from(cls, session: Session, contact_ids: Iterable[int], person_name: str) -> set[int]:
        """Of these contacts, those a sensitive report of theirs keeps from this person."""
        reports = cls._sensitive_reports(session, contact_ids)
        return {cid for cid, found in reports.items() if not cls._named_in_none(found, person_name)}

    @staticmethod
    def _take(handoff: Handoff, staff_id: int, now: datetime) -> None:
        handoff.assigned_to_id = staff_id
        handoff.status = HandoffStatus.CLAIMED
        handoff.claimed_at = handoff.claimed_at or now

    # ---- reading -----------------------------------------------------------------

    def inbox(self, viewer: StaffIdentity) -> list[InboxItem]:
        """Open handoffs the viewer may see: urgent first, then whoever has waited longest."""
        now = self.clock()
        with self.db.session() as session:
            handoffs = session.scalars(
                select(Handoff)
                .where(Handoff.status.in_(HandoffStatus.OPEN))
                .options(selectinload(Handoff.contact), selectinload(Handoff.assigned_to))
            ).all()
            in_reach = [h for h in handoffs if self._in_reach(viewer, h)]
            reports = self._sensitive_reports(session, {h.contact_id for h in in_reach})
            visible = [h for h in in_reach if self._named_in_none(reports[h.contact_id], viewer.display_name)]
            last_texts = self._last_inbound_texts(session, [h.contact_id for h in visible])
            items = [
                InboxItem(
                    id=h.id,
                    status=h.status,
                    reason=h.reason,
                    reason_label=HandoffReason.LABELS.get(h.reason, h.reason),
                    urgent=h.reason in HandoffReason.URGENT,
                    channel=h.contact.last_channel,
                    contact=mask_phone(h.contact.address),
                    region=h.region,
                    assigned_to=h.assigned_to.full_name if h.assigned_to else None,
                    assigned_to_me=h.assigned_to_id == viewer.id,
                    created_at=h.created_at,
                    waiting_since=h.waiting_since,
                    waiting_seconds=_wait_seconds(h.waiting_since, now),
                    last_text=_snippet(last_texts.get(h.contact_id, "")),
                )
                for h in visible
            ]
        far_future = datetime.max.replace(tzinfo=now.tzinfo)
        return sorted(
            items,
            key=lambda item: (not item.urgent, item.waiting_since or far_future, item.created_at, item.id),
        )

    @staticmethod
    def _last_inbound_texts(session: Session, contact_ids: list[int]) -> dict[int, str]:
        if not contact_ids:
            return {}
        latest = (
            select(func.max(Message.id))
            .where(Message.contact_id.in_(contact_ids), Message.direction == Direction.INBOUND)
            .group_by(Message.contact_id)
        )
        rows = session.execute(
            select(Message.contact_id, Message.body, Message.tapped_title, Message.media).where(Message.id.in_(latest))
        ).all()
        return {row.contact_id: row.tapped_title or row.body or ("[lampiran]" if row.media else "") for row in rows}

    def chat(self, viewer: StaffIdentity, handoff_id: int, reveal_nik: bool = False, ip: str = "") -> ChatView:
        """The handoff with its transcript; the view (and any NIK reveal) is audited first."""
        if reveal_nik and not viewer.can_reveal_nik:
            raise AccessDenied("Peran Anda tidak boleh membuka NIK utuh.")
        with self.db.session() as session:
            handoff = self._load(session, viewer, handoff_id)
            self.audit.record_in(session, viewer, AuditAction.VIEW_CHAT, f"handoff:{handoff.id}", "", ip)
            if reveal_nik:
                self.audit.record_in(session, viewer, AuditAction.REVEAL_NIK, f"handoff:{handoff.id}", "transcript", ip)
            contact = session.get_one(Contact, handoff.contact_id)
            reply_route = self.later.route_in(session, contact, STAFF_REPLY) if handoff.is_open else None
            lines = self._lines(session, handoff, 0, reveal_nik)
            province = PROVINCES.get(handoff.province_code or "")
            assignee = session.get(StaffUser, handoff.assigned_to_id) if handoff.assigned_to_id else None
            return ChatView(
                id=handoff.id,
                status=handoff.status,
                is_open=handoff.is_open,
                reason_label=HandoffReason.LABELS.get(handoff.reason, handoff.reason),
                channel=contact.last_channel,
                contact=mask_phone(contact.address),
                region=handoff.region,
                province_name=province.name if province else None,
                report_reference=handoff.report_reference,
                assigned_to_id=handoff.assigned_to_id,
                assigned_to=assignee.full_name if assignee else None,
                created_at=handoff.created_at,
                waiting_since=handoff.waiting_since,
                outcome_label=HandoffOutcome.LABELS.get(handoff.outcome or ""),
                reply_route=reply_route,
                opted_out=contact.opted_out,
                lines=lines,
                nik_revealed=reveal_nik,
            )

    def lines_after(self, viewer: StaffIdentity, handoff_id: int, after_id: int) -> tuple[str, list[TranscriptLine]]:
        """(status, lines newer than `after_id`) for the page's polling, not audited.

        Only the audited `chat` view may show a transcript from its start: callers
        pass no `after_id` below the newest line that view served this viewer
        (staff/chats.py holds the page to it with a signed token).
        """
        with self.db.session() as session:
            handoff = self._load(session, viewer, handoff_id)
            return handoff.status, self._lines(session, handoff, after_id, False)

    def _lines(self, session: Session, handoff: Handoff, after_id: int, reveal_nik: bool) -> list[TranscriptLine]:
        query = select(Message).where(
            Message.contact_id == handoff.contact_id,
            Message.created_at >= handoff.created_at - TRANSCRIPT_CONTEXT,
            Message.id > after_id,
        )
        if handoff.ended_at is not None:
            query = query.where(Message.created_at <= handoff.ended_at + timedelta(minutes=1))
        messages = list(
            reversed(session.scalars(query.order_by(Message.id.desc()).limit(TRANSCRIPT_MAX_MESSAGES)).all())
        )
        # A message sent again another way (bot/channels/later.py) has the author of the first.
        ids = {m.id for m in messages} | {m.fallback_of_id for m in messages if m.fallback_of_id}
        authors = {
            row.message_id: row
            for row in session.scalars(
                select(HandoffMessage)
                .where(HandoffMessage.message_id.in_(ids))
                .options(selectinload(HandoffMessage.staff_user))
            )
        }
        lines = []
        for message in messages:
            human = authors.get(message.id) or authors.get(message.fallback_of_id or 0)
            fell_back = message.fallback_of_id is not None and message.channel == Channel.SMS
            if message.direction == Direction.INBOUND:
                author = "Warga"
            elif human is None:
                author = "Bot"
            elif human.staff_user is None:
                author = "Sistem"
            else:
                author = f"Petugas {human.staff_user.full_name}"
            lines.append(
                TranscriptLine(
                    id=message.id,
                    direction=message.direction,
                    author=author,
                    body=message.as_seen if reveal_nik else mask_niks(message.as_seen),
                    media=_safe_media(message.media),
                    at=message.created_at,
                    status=message.status,
                    error_code=message.error_code,
                    channel=message.channel,
                    fell_back_to_sms=fell_back or bool(human and human.fell_back_to_sms),
                    via_template=message.template_sid is not None,
                )
            )
        return lines

    # ---- working a handoff -------------------------------------------------------

    def claim(self, viewer: StaffIdentity, handoff_id: int, ip: str = "") -> None:
        now = self.clock()
        with self.db.session() as session:
            handoff = self._load_to_act(session, viewer, handoff_id)
            self._take(handoff, viewer.id, now)
            self.audit.record_in(session, viewer, AuditAction.CLAIM, f"handoff:{handoff.id}", "", ip)

    def assign(self, viewer: StaffIdentity, handoff_id: int, assignee_id: int, ip: str = "") -> None:
        """A supervisor gives a chat to someone; never to a person a sensitive report names."""
        if not viewer.can_assign:
            raise AccessDenied("Hanya supervisor yang dapat menugaskan percakapan.")
        now = self.clock()
        with self.db.session() as session:
            handoff = self._load_to_act(session, viewer, handoff_id)
            assignee = session.get(StaffUser, assignee_id)
            if assignee is None or not assignee.active:
                raise HandoffRefused("Petugas tujuan tidak ditemukan atau tidak aktif.")
            if not self._may_handle(session, handoff, assignee.full_name or assignee.username):
                raise HandoffRefused("Petugas ini disebut dalam laporan sensitif; pilih petugas lain.")
            self._take(handoff, assignee.id, now)
            self.audit.record_in(
                session, viewer, AuditAction.ASSIGN, f"handoff:{handoff.id}", f"to={assignee.username}", ip
            )

    def reply(self, viewer: StaffIdentity, handoff_id: int, text: str, ip: str = "") -> ReplyResult:
        """Send a staff message by the way WhatsApp's window allows (bot/channels/later.py).

        Replying to an unclaimed chat claims it, so two officers do not answer at once.
        To a citizen who sent STOP the reply is kept in the transcript but not sent
        (the outbox decides); the result says so. A reply that may reach the citizen
        as SMS, by its route or by the fallback should WhatsApp refuse it, must fit
        SMS_REPLY_MAX_SEGMENTS: it is refused up front rather than cut on the way.
        """
        body = _clean_reply(text)
        now = self.clock()
        with self.db.session() as session:
            handoff = self._load_to_act(session, viewer, handoff_id)
            contact = session.get_one(Contact, handoff.contact_id)
            addressee = addressee_of(session, contact)
            route = self.later.route_for(addressee, STAFF_REPLY)
            if not route.possible and not contact.opted_out:
                raise HandoffRefused(self._no_way(route))
            if may_end_as_sms(addressee, route):
                self._check_sms_length(body, route.way == Way.SMS, route.channel != Channel.SMS)
            if handoff.assigned_to_id is None:
                self._take(handoff, viewer.id, now)
            contact_id = contact.id
        sent = self.later.send(contact_id, LaterMessage(STAFF_REPLY, body))
        if not sent.messages:
            # The window closed, or the citizen's channel changed, since the check above.
            raise HandoffRefused(self._no_way(sent.route))
        via_sms = sent.route.way == Way.SMS
        last = sent.messages[-1]
        with self.db.session() as session:
            handoff = session.get_one(Handoff, handoff_id, with_for_update=True)
            for message in sent.messages:
                session.add(
                    HandoffMessage(
                        handoff_id=handoff.id,
                        message_id=message.id,
                        staff_user_id=viewer.id,
                        fell_back_to_sms=via_sms and message.channel == Channel.SMS,
                        created_at=now,
                    )
                )
            if sent.accepted:
                handoff.first_response_at = handoff.first_response_at or now
                handoff.waiting_since = None
            self.audit.record_in(
                session, viewer, AuditAction.REPLY, f"handoff:{handoff.id}",
                f"route={sent.route.way}" + ("" if sent.accepted else f" {last.status}"),
                ip,
            )
        return ReplyResult(
            last.channel, via_sms, sent.accepted, last.error_code, last.status == MessageStatus.OPTED_OUT, sent.held
        )

    @staticmethod
    def _no_way(route: Route) -> str:
        return f"Balasan tidak dapat dikirim: {route.reason}. Tunggu warga menghubungi lagi."

    @staticmethod
    def _check_sms_length(body: str, fell_back: bool, may_fall_back: bool) -> None:
        if segment_count(to_gsm7(body)) > SMS_REPLY_MAX_SEGMENTS:
            if fell_back:
                why = " (WhatsApp warga di luar 24 jam, jadi dikirim lewat SMS)"
            elif may_fall_back:
                why = " (bila WhatsApp menolak, balasan dikirim lewat SMS)"
            else:
                why = ""
            raise HandoffRefused(
                f"Balasan terlalu panjang untuk SMS{why}: maksimal {SMS_REPLY_MAX_SEGMENTS} SMS, "
                "sekitar 450 huruf tanpa emoji."
            )

    def hand_back(self, viewer: StaffIdentity, handoff_id: int, ip: str = "") -> bool:
        """Return the chat to the bot and tell the citizen; whether the notice went out.

        Rasa's tracker is restarted first: if Rasa cannot be reached the handoff stays
        open (the officer is told to try again) rather than letting the bot resume a
        stale form. The notice is not sent to a citizen who sent STOP, nor when no
        channel can reach them; False then, so the officer is not told otherwise.
        """
        return self._end(viewer, handoff_id, HandoffStatus.RETURNED, None, None, ip)

    def close(self, viewer: StaffIdentity, handoff_id: int, outcome: str, note: str = "", ip: str = "") -> None:
        """End the handoff with an outcome; the bot answers the citizen's next message."""
        if outcome not in HandoffOutcome.ALL:
            raise HandoffRefused("Pilih hasil penanganan.")
        cleaned = " ".join(_CONTROL_CHARS.sub(" ", note or "").split())[:OUTCOME_NOTE_MAX_CHARS] or None
        self._end(viewer, handoff_id, HandoffStatus.CLOSED, outcome, cleaned, ip)

    def _end(
        self, viewer: StaffIdentity, handoff_id: int, status: str, outcome: str | None, note: str | None, ip: str
    ) -> bool:
        """End the handoff; True when a hand-back notice was accepted by the provider."""
        with self.db.session() as session:
            handoff = self._load_to_act(session, viewer, handoff_id)
            conversation_key = handoff.contact.conversation_key
        try:
            self.rasa.reset(conversation_key)
        except RasaUnavailable as exc:
            log.warning("handoff %d not ended, Rasa reset failed: %s", handoff_id, exc)
            raise HandoffRefused("Bot tidak dapat dihubungi saat ini; percakapan tetap di petugas. Coba lagi.") from exc
        now = self.clock()
        with self.db.session() as session:
            handoff = self._load_to_act(session, viewer, handoff_id)
            handoff.status = status
            handoff.ended_at = now
            handoff.ended_by_id = viewer.id
            handoff.waiting_since = None
            handoff.outcome = outcome
            handoff.outcome_note = note
            action = AuditAction.HAND_BACK if status == HandoffStatus.RETURNED else AuditAction.CLOSE
            self.audit.record_in(session, viewer, action, f"handoff:{handoff.id}", outcome or "", ip)
            contact_id = handoff.contact_id
        log.info("handoff %d %s by staff %d", handoff_id, status, viewer.id)
        if status != HandoffStatus.RETURNED:
            return False
        sent = self.later.send(contact_id, LaterMessage(HAND_BACK, BOT_BACK_TEXT))
        with self.db.session() as session:
            for message in sent.messages:
                session.add(HandoffMessage(handoff_id=handoff_id, message_id=message.id, created_at=now))
        return sent.accepted


def _snippet(text: str) -> str:
    flat = " ".join(mask_niks(text).split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 3] + "..."
