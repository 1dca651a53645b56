"""Status, schedule and history answers, with the privacy rules of the design.

The rules, in the order they apply:

- A sender whose phone is registered to exactly one household is recognised
  without typing a NIK; a phone shared by several households is asked which one
  (by number, or by NIK).
- Full details (programmes, amounts, dates, payment channel) go only to the phone
  registered for the household. Anyone else learns whether the NIK is registered,
  the name masked, and how the registered person can ask.
- A sender may look up at most `max_niks_per_day` distinct NIKs that are not their
  own in 24 hours; only a keyed hash of each NIK is stored to count them.
- Without a NIK, a sender may look up a full name in a village (bot.registry.by_name).
  The answer is what the public Cek Bansos site shows (masked name, programmes,
  status, period), never amounts, dates, the payment channel or the NIK, and each
  name look-up counts against the same daily limit as a NIK.
- Dates are calendar dates where the recipient lives, so "today" is taken in the
  recipient's time zone (WIB, WITA or WIT).

Answers are plain Indonesian for SMS and WhatsApp alike: no emoji, no markdown, no
blank lines (Rasa splits a text there), short lines, at most three SMS segments.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.db import Database
from bot.conversation.choices import Choice, numbered
from bot.registry.by_name import InvalidName, Village, normalise_name, normalise_village, split_area
from bot.conversation.models import Contact, utcnow
from bot.rules.nik import InvalidNik, mask_name, mask_nik, parse_nik
from bot.rules.regions import format_date, zone_for_province
from bot.rules.smstext import segment_count
from bot.registry.models import (
    Disbursement,
    DisbursementStatus,
    Enrolment,
    EnrolmentStatus,
    NikLookup,
    PaymentChannel,
    Program,
    ProgramCode,
    Recipient,
)

log = logging.getLogger(__name__)

MAX_NIKS_PER_DAY = 5
LOOKUP_WINDOW = timedelta(hours=24)
HISTORY_LINES = {"sms": 5, "whatsapp": 8}
PROGRAM_ORDER = (ProgramCode.PKH, ProgramCode.BPNT, ProgramCode.BLT, ProgramCode.PBI_JK)

ASK_NIK = (
    "Silakan kirim NIK (16 angka) sesuai KTP/KK. Tidak tahu NIK? Balas NAMA.\n"
    "Ketik BATAL untuk membatalkan."
)
ASK_NAME = "Silakan kirim nama lengkap penerima sesuai KTP. Ketik BATAL untuk membatalkan."
ASK_VILLAGE = "Silakan kirim nama desa/kelurahan tempat tinggal penerima, misal: Sukamaju."
RETRY_NAME = "Silakan kirim ulang nama lengkap sesuai KTP, atau ketik BATAL."
RETRY_VILLAGE = "Silakan kirim ulang nama desa/kelurahan, atau ketik BATAL."
VILLAGE_UNKNOWN = (
    "Desa/kelurahan {village} tidak ada dalam data penerima bansos. "
    "Periksa ejaannya, atau kirim CEK spasi NIK."
)
RETRY_VILLAGE_CHOICE = "Balas angka 1 sampai {count}, atau ketik BATAL."
ASK_AREA = (
    "Ada {count} desa/kelurahan bernama {village}.\n"
    "Kirim nama kecamatan atau kabupaten/kota tempat tinggal penerima, misal: Cibinong. "
    "Ketik BATAL untuk membatalkan."
)
RETRY_AREA = "Silakan kirim ulang nama kecamatan atau kabupaten/kota, atau ketik BATAL."
AREA_UNKNOWN = (
    "Desa/kelurahan {village} tidak ada di {area}.\n"
    "Periksa ejaannya, atau kirim nama kecamatan atau kabupaten/kota lain. Ketik BATAL untuk membatalkan."
)
NAME_NOT_FOUND = (
    "Nama itu tidak ditemukan di Desa/Kel. {village}.\n"
    "Periksa ejaan nama sesuai KTP, atau kirim CEK spasi NIK.\n"
    "Bila belum terdaftar, ketik USUL atau tanya di kantor kelurahan/desa."
)
BY_NAME_DETAILS = (
    "Jumlah dan tanggal bantuan hanya dikirim ke HP terdaftar.\n"
    "Atau tanya kantor kelurahan/desa, telepon 171."
)
# A common name may match several people in one village: as many are shown as fit
# in MAX_SEGMENTS SMS segments, the rest only counted.
MAX_NAME_MATCHES = 5
# Villages sharing a name are listed to pick one by number only up to this many (and
# only while the list fits MAX_SEGMENTS SMS segments); beyond, the kecamatan or
# kabupaten/kota is asked first, so that every number offered is seen.
MAX_VILLAGE_CHOICES = 5
MAX_SEGMENTS = 3
RETRY_NIK = "Silakan kirim ulang NIK, atau ketik BATAL."
HOW_TO_ASK_WITH_PHONE = (
    "Rincian hanya dikirim ke nomor HP yang terdaftar.\n"
    "Pemilik data dapat bertanya dari nomor itu, di kantor kelurahan/desa, atau telepon 171."
)
HOW_TO_ASK_WITHOUT_PHONE = (
    "Belum ada nomor HP terdaftar untuk data ini.\n"
    "Pemilik data dapat bertanya di kantor kelurahan/desa atau telepon 171."
)
NOT_REGISTERED_ADVICE = (
    "Bila keluarga Bapak/Ibu layak dibantu, ketik USUL untuk mengusulkan,\n"
    "atau hubungi kantor kelurahan/desa."
)
NO_PROGRAMME = (
    "Belum ada program bansos yang aktif untuk data ini.\n"
    "Info: kantor kelurahan/desa atau telepon 171. Untuk usulan, ketik USUL."
)
FAILED_ADVICE = (
    "Bila gagal: hubungi pendamping sosial atau bank/kantor pos penyalur.\n"
    "Untuk mengadu, ketik ADU."
)
POSTPONED_ADVICE = "Bila ditunda: jadwal baru akan dikabarkan lewat pesan."
NON_CASH = "iuran BPJS Kesehatan dibayar pemerintah, tanpa uang tunai"
RATE_LIMITED = (
    "Maaf, batas cek data dari nomor ini sudah tercapai ({limit} kali dalam 24 jam).\n"
    "Silakan coba lagi besok, atau tanya di kantor kelurahan/desa atau telepon 171."
)
MORE_TOPICS = "Ketik JADWAL atau RIWAYAT untuk rincian."


class Topic:
    STATUS = "status"
    SCHEDULE = "schedule"
    HISTORY = "history"


@dataclass(frozen=True)
class Household:
    """One recipient registered to the sender's phone, as the sender may see it."""

    recipient_id: int
    masked_name: str


@dataclass(frozen=True)
class StatusAnswer:
    """Ready-to-send text; `needs_nik` says the conversation should ask for a NIK again."""

    text: str
    needs_nik: bool = False
    # The numbered list's lines as answers to tap on WhatsApp (bot/conversation/choices.py).
    choices: tuple[Choice, ...] = ()


@dataclass(frozen=True)
class _ProgrammeView:
    code: str
    gives_cash: bool
    active: bool
    rows: list[Disbursement]


def format_rupiah(amount: int) -> str:
    """Rupiah the Indonesian way: Rp600.000."""
    return "Rp" + f"{amount:,}".replace(",", ".")


def channel_label(channel: str | None) -> str:
    """Where the money is collected: "Kantor Pos", or the bank behind the KKS card."""
    if channel == PaymentChannel.PT_POS:
        return "Kantor Pos"
    return f"KKS Bank {channel}" if channel else "-"


def parse_choice(text: str | None, count: int) -> int | None:
    """The household number a sender typed (1-based), when the phone has several."""
    value = (text or "").strip().rstrip(".")
    if count < 2 or not value.isascii() or not value.isdigit() or len(value) > 2:
        return None
    number = int(value)
    return number if 1 <= number <= count else None


def _village_list(villages: Sequence[Village]) -> str | None:
    """The numbered list of villages sharing a name; None when it would be too long
    (more than MAX_VILLAGE_CHOICES, or more than MAX_SEGMENTS SMS segments)."""
    if not 1 < len(villages) <= MAX_VILLAGE_CHOICES:
        return None
    lines = [f"Ada {len(villages)} desa/kelurahan dengan nama itu:"]
    lines += [f"{number}. {village.label}" for number, village in enumerate(villages, 1)]
    lines.append("Balas angka pilihan (misal 1). Ketik BATAL untuk membatalkan.")
    text = "\n".join(lines)
    return text if segment_count(text) <= MAX_SEGMENTS else None


def _fitting_answer(village: Village, blocks: list[list[str]], found: int) -> str:
    """The name answer with as many people's blocks as fit in MAX_SEGMENTS SMS."""
    for shown in range(len(blocks), 0, -1):
        lines = [f"Hasil cek Desa/Kel. {village.label}:"]
        lines += [line for block in blocks[:shown] for line in block]
        if found > shown:
            lines.append(f"Dan {found - shown} orang lain dengan nama sama.")
        text = "\n".join(lines + [BY_NAME_DETAILS])
        if segment_count(text) <= MAX_SEGMENTS:
            break
    return text


def _short_date(day: date) -> str:
    return f"{day:%d/%m/%y}"


def _short_period(period: str) -> str:
    """Drop the year from "Tahap 3 2026": the date beside it already says it."""
    return re.sub(r"\s+\d{4}$", "", period)


class StatusService:
    """Answers "am I registered, when does it come, what did I get?" for one sender."""

    def __init__(
        self,
        db: Database,
        secret_key: str,
        clock: Callable[[], datetime] = utcnow,
        max_niks_per_day: int = MAX_NIKS_PER_DAY,
    ) -> None:
        self.db = db
        self.clock = clock
        self.max_niks_per_day = max_niks_per_day
        # A key of its own, so SECRET_KEY itself never hashes personal data.
        self._hash_key = hmac.new(
            secret_key.encode(), b"nik-lookup-rate-limit", hashlib.sha256
        ).digest()

    # --- who is asking --------------------------------------------------------------

    def households_for_contact(self, conversation_key: str) -> list[Household]:
        """The households registered to the sender's phone, in a stable order."""
        with self.db.session() as session:
            return [
                Household(recipient.id, mask_name(recipient.name))
                for recipient in self._households(
                    session, self._sender_phone(session, conversation_key)
                )
            ]

    def ask_for_nik(self, conversation_key: str) -> StatusAnswer:
        """The question to ask when the form needs a NIK: a choice list for shared phones."""
        households = self.households_for_contact(conversation_key)
        if len(households) < 2:
            return StatusAnswer(ASK_NIK, needs_nik=True)
        return self._choice_answer(households)

    @staticmethod
    def _sender_phone(session: Session, conversation_key: str) -> str | None:
        contact = session.scalar(
            select(Contact).where(Contact.conversation_key == conversation_key)
        )
        return contact.address if contact is not None and contact.is_phone else None

    @staticmethod
    def _households(session: Session, phone: str | None) -> Sequence[Recipient]:
        if phone is None:
            return []
        return session.scalars(
            select(Recipient).where(Recipient.phone == phone).order_by(Recipient.id)
        ).all()

    @staticmethod
    def _choice_answer(households: Sequence[Household]) -> StatusAnswer:
        lines = [f"Nomor ini terdaftar untuk {len(households)} keluarga:"]
        lines += [
            f"{number}. {household.masked_name}" for number, household in enumerate(households, 1)
        ]
        lines.append("Balas angka pilihan (misal 1) atau kirim NIK. Ketik BATAL untuk membatalkan.")
        return StatusAnswer(
            "\n".join(lines), needs_nik=True, choices=tuple(numbered([h.masked_name for h in households]))
        )

    # --- the answer -------------------------------------------------------------------

    def answer(
        self,
        conversation_key: str,
        nik: str | None,
        topic: str | None,
        program: str | None = None,
        channel: str = "sms",
    ) -> StatusAnswer:
        """Answer `topic` ("status", "schedule" or "history") about a NIK or a choice.

        `nik` may be None (the sender's phone decides), a household number from the
        choice list, or a NIK as typed.
        """
        topic = topic if topic in (Topic.SCHEDULE, Topic.HISTORY) else Topic.STATUS
        with self.db.session() as session:
            phone = self._sender_phone(session, conversation_key)
            households = self._households(session, phone)
            choice = parse_choice(nik, len(households))
            if choice is not None:
                recipient = households[choice - 1]
            elif not (nik or "").strip():
                if len(households) != 1:
                    return self._no_nik_answer(households)
                recipient = households[0]
            else:
                try:
                    parsed = parse_nik(nik or "")
                except InvalidNik as exc:
                    return StatusAnswer(f"{exc.reason} {RETRY_NIK}", needs_nik=True)
                found = session.scalar(select(Recipient).where(Recipient.nik == parsed.value))
                if found is None or phone is None or found.phone != phone:
                    return self._answer_other(session, conversation_key, parsed.value, found, topic)
                recipient = found
            log.info(
                "status answer topic=%s nik=%s for the registered phone",
                topic,
                mask_nik(recipient.nik),
            )
            return StatusAnswer(self._owner_text(session, recipient, topic, program, channel))

    def _no_nik_answer(self, households: Sequence[Recipient]) -> StatusAnswer:
        if not households:
            return StatusAnswer(ASK_NIK, needs_nik=True)
        return self._choice_answer([Household(r.id, mask_name(r.name)) for r in households])

    def _answer_other(
        self,
        session: Session,
        conversation_key: str,
        nik: str,
        recipient: Recipient | None,
        topic: str,
    ) -> StatusAnswer:
        """A NIK that is not the sender's own: rate-limited, and masked at most."""
        if not self._allow_lookup(session, conversation_key, nik):
            log.warning(
                "status look-up refused: sender %s reached %d NIKs in 24 h",
                conversation_key,
                self.max_niks_per_day,
            )
            return StatusAnswer(RATE_LIMITED.format(limit=self.max_niks_per_day))
        registered = recipient is not None
        log.info(
            "status look-up topic=%s nik=%s registered=%s by another sender",
            topic,
            mask_nik(nik),
            registered,
        )
        if recipient is None:
            return StatusAnswer(
                f"NIK {mask_nik(nik)} tidak terdaftar sebagai penerima bansos.\n"
                + NOT_REGISTERED_ADVICE
            )
        how = HOW_TO_ASK_WITH_PHONE if recipient.phone else HOW_TO_ASK_WITHOUT_PHONE
        return StatusAnswer(
            f"NIK {mask_nik(nik)} terdaftar sebagai penerima bansos "
            f"a.n. {mask_name(recipient.name)}.\n{how}"
        )

    def _allow_lookup(self, session: Session, conversation_key: str, subject: str) -> bool:
        """Count distinct look-ups per sender per 24 h; the same one again is free.

        `subject` is a NIK, or a name and village (see answer_by_name): one limit
        for both ways of looking someone up.
        """
        now = self.clock()
        since = now - LOOKUP_WINDOW
        session.execute(delete(NikLookup).where(NikLookup.created_at < since))
        digest = hmac.new(self._hash_key, subject.encode(), hashlib.sha256).hexdigest()
        seen = set(
            session.scalars(
                select(NikLookup.nik_hash).where(
                    NikLookup.sender_key == conversation_key, NikLookup.created_at >= since
                )
            )
        )
        if digest in seen:
            return True
        if len(seen) >= self.max_niks_per_day:
            return False
        session.add(NikLookup(sender_key=conversation_key, nik_hash=digest, created_at=now))
        return True

    # --- by name and village, as Cek Bansos shows it ------------------------------------

    def villages(self, text: str | None) -> list[Village]:
        """The villages of the register that go by the name typed, in a stable order;
        only those of the kecamatan or kabupaten/kota written after a comma, if any.

        Raises bot.registry.by_name.InvalidName when `text` names no village at all.
        """
        village_text, area = split_area(text)
        wanted = normalise_village(village_text)
        with self.db.session() as session:
            rows = session.execute(
                select(
                    Recipient.province_code,
                    Recipient.regency,
                    Recipient.district,
                    Recipient.village,
                )
                .where(func.lower(Recipient.village) == wanted)
                .distinct()
                .order_by(Recipient.province_code, Recipient.regency, Recipient.district)
            ).all()
        found = [Village(*row) for row in rows]
        return [village for village in found if village.is_in(area)] if area else found

    @staticmethod
    def village_choice(villages: Sequence[Village]) -> StatusAnswer:
        """The numbered list shown when a village name belongs to several villages, or,
        for more than fit in one list, the question for the kecamatan or kabupaten/kota."""
        if len(villages) < 2:
            return StatusAnswer(RETRY_VILLAGE)
        listed = _village_list(villages)
        if listed is None:
            return StatusAnswer(ASK_AREA.format(count=len(villages), village=villages[0].name))
        return StatusAnswer(listed, choices=tuple(numbered([v.label for v in villages])))

    @staticmethod
    def village_number(choice: str | None, villages: Sequence[Village]) -> int | None:
        """The number picked from the list village_choice showed; None for any other text,
        and for any number while the list was too long to be shown."""
        return parse_choice(choice, len(villages)) if _village_list(villages) is not None else None

    def answer_by_name(
        self,
        conversation_key: str,
        name: str | None,
        village_text: str | None,
        choice: str | None = None,
    ) -> StatusAnswer:
        """What Cek Bansos shows for a full name in a village: masked, without amounts.

        `choice` is the number picked from village_choice when the village name is
        shared. The look-up counts against the daily limit before anything is read.
        """
        try:
            wanted = normalise_name(name)
            villages = self.villages(village_text)
        except InvalidName as exc:
            return StatusAnswer(f"{exc.reason} {RETRY_NAME}", needs_nik=True)
        number = self.village_number(choice, villages) if len(villages) > 1 else 1
        if not villages or number is None:
            return StatusAnswer(RETRY_VILLAGE, needs_nik=True)
        village = villages[number - 1]
        with self.db.session() as session:
            if not self._allow_lookup(session, conversation_key, f"name:{wanted}|{village.key}"):
                log.warning(
                    "name look-up refused: sender %s reached %d look-ups in 24 h",
                    conversation_key,
                    self.max_niks_per_day,
                )
                return StatusAnswer(RATE_LIMITED.format(limit=self.max_niks_per_day))
            found = session.scalars(
                select(Recipient)
                .where(
                    func.lower(Recipient.name) == wanted,
                    Recipient.province_code == village.province_code,
                    Recipient.regency == village.regency,
                    Recipient.district == village.district,
                    Recipient.village == village.name,
                )
                .order_by(Recipient.id)
            ).all()
            log.info("name look-up in %s: %d found", village.label, len(found))
            if not found:
                return StatusAnswer(NAME_NOT_FOUND.format(village=village.name))
            blocks = [self._public_lines(session, r) for r in found[:MAX_NAME_MATCHES]]
            return StatusAnswer(_fitting_answer(village, blocks, len(found)))

    def _public_lines(self, session: Session, recipient: Recipient) -> list[str]:
        """One recipient as Cek Bansos shows it: masked name, programme, status, period."""
        views = self._programmes(session, recipient, None)
        today = self.clock().astimezone(zone_for_province(recipient.province_code)).date()
        lines = [f"{mask_name(recipient.name)}:"]
        if not views:
            return lines + ["belum ada program bansos yang aktif"]
        for view in views:
            if not view.active:
                lines.append(f"{view.code}: tidak aktif")
                continue
            row = self._next(view, today) or (view.rows[0] if view.rows else None)
            if not view.gives_cash or row is None:
                lines.append(f"{view.code}: aktif")
                continue
            state = {
                DisbursementStatus.DIJADWALKAN: "dalam proses penyaluran",
                DisbursementStatus.TERSALUR: "sudah tersalur",
                DisbursementStatus.GAGAL: "gagal disalurkan",
                DisbursementStatus.DITUNDA: "ditunda",
            }.get(row.status, row.status)
            lines.append(f"{view.code}: aktif, {row.period} {state}")
        return lines

    # --- full details, for the registered phone only -----------------------------------

    def _programmes(
        self, session: Session, recipient: Recipient, program: str | None
    ) -> list[_ProgrammeView]:
        enrolments = (
            session.execute(
                select(Enrolment, Program)
                .join(Program)
                .where(Enrolment.recipient_id == recipient.id)
            )
            .tuples()
            .all()
        )
        rows = session.scalars(
            select(Disbursement)
            .where(Disbursement.recipient_id == recipient.id)
            .order_by(Disbursement.scheduled_date.desc(), Disbursement.id.desc())
        ).all()
        views = [
            _ProgrammeView(
                code=prog.code,
                gives_cash=prog.gives_cash,
                active=enrolment.status == EnrolmentStatus.AKTIF,
                rows=[row for row in rows if row.program_code == prog.code],
            )
            for enrolment, prog in enrolments
        ]
        order = {code: index for index, code in enumerate(PROGRAM_ORDER)}
        views.sort(key=lambda view: (order.get(view.code, len(order)), view.code))
        wanted = (program or "").upper()
        narrowed = [view for view in views if view.code.upper() == wanted]
        return narrowed or views

    def _owner_text(
        self, session: Session, recipient: Recipient, topic: str, program: str | None, channel: str
    ) -> str:
        views = self._programmes(session, recipient, program)
        today = self.clock().astimezone(zone_for_province(recipient.province_code)).date()
        if not views:
            return f"Data a.n. {recipient.name} terdaftar.\n{NO_PROGRAMME}"
        if topic == Topic.SCHEDULE:
            lines = [f"Jadwal bansos {recipient.name}:"] + self._schedule_lines(views, today)
        elif topic == Topic.HISTORY:
            lines = [f"Riwayat bansos {recipient.name}:"] + self._history_lines(
                views, today, HISTORY_LINES.get(channel, HISTORY_LINES["sms"])
            )
        else:
            lines = (
                [f"Bansos a.n. {recipient.name}:"]
                + self._status_lines(views, today)
                + [MORE_TOPICS]
            )
        return "\n".join(lines)

    @staticmethod
    def _next(view: _ProgrammeView, today: date) -> Disbursement | None:
        """The next payment: the earliest scheduled from today, else one still overdue."""
        scheduled = [row for row in view.rows if row.status == DisbursementStatus.DIJADWALKAN]
        upcoming = [row for row in scheduled if row.scheduled_date >= today]
        if upcoming:
            return min(upcoming, key=lambda row: row.scheduled_date)
        return scheduled[0] if scheduled else None

    def _status_lines(self, views: list[_ProgrammeView], today: date) -> list[str]:
        lines, advice = [], set()
        for view in views:
            if not view.active:
                lines.append(f"{view.code}: tidak aktif")
                continue
            if not view.gives_cash:
                lines.append(f"{view.code}: aktif, {NON_CASH}")
                continue
            row = self._next(view, today) or (view.rows[0] if view.rows else None)
            if row is None:
                lines.append(f"{view.code}: aktif, belum ada jadwal penyaluran")
                continue
            state = {
                DisbursementStatus.DIJADWALKAN: f"dijadwalkan {_short_date(row.scheduled_date)}",
                DisbursementStatus.TERSALUR: "sudah tersalur",
                DisbursementStatus.GAGAL: "gagal disalurkan",
                DisbursementStatus.DITUNDA: "ditunda",
            }.get(row.status, row.status)
            lines.append(f"{view.code}: aktif, {row.period} {state}")
            advice.add(row.status)
        return lines + self._advice(advice)

    def _schedule_lines(self, views: list[_ProgrammeView], today: date) -> list[str]:
        lines, advice = [], set()
        for view in views:
            if not view.active:
                lines.append(f"{view.code}: tidak aktif")
                continue
            if not view.gives_cash:
                lines.append(f"{view.code}: {NON_CASH}")
                continue
            row = self._next(view, today)
            if row is not None:
                overdue = " (sedang diproses)" if row.scheduled_date < today else ""
                lines.append(f"{view.code} {row.period} {format_rupiah(row.amount)}")
                lines.append(
                    f"{format_date(row.scheduled_date)}, {channel_label(row.channel)}{overdue}"
                )
                continue
            latest = view.rows[0] if view.rows else None
            if latest is not None and latest.status == DisbursementStatus.GAGAL:
                lines.append(f"{view.code} {latest.period}: gagal disalurkan")
            elif latest is not None and latest.status == DisbursementStatus.DITUNDA:
                lines.append(f"{view.code} {latest.period}: ditunda")
            else:
                lines.append(f"{view.code}: belum ada jadwal penyaluran berikutnya")
                continue
            advice.add(latest.status)
        return lines + self._advice(advice)

    def _history_lines(self, views: list[_ProgrammeView], today: date, limit: int) -> list[str]:
        past = [
            row
            for view in views
            if view.gives_cash
            for row in view.rows
            if row.status in (DisbursementStatus.TERSALUR, DisbursementStatus.GAGAL)
            or row.scheduled_date < today
        ]
        past.sort(key=lambda row: (row.scheduled_date, row.id), reverse=True)
        shown = past[:limit]
        if not shown:
            return ["Belum ada riwayat penyaluran bansos tunai."]
        lines = [
            f"{_short_date(row.scheduled_date)} {row.program_code} {_short_period(row.period)} "
            f"{format_rupiah(row.amount)} {row.status}"
            for row in shown
        ]
        return lines + self._advice({row.status for row in shown[:1]})

    @staticmethod
    def _advice(statuses: set[str]) -> list[str]:
        advice = []
        if DisbursementStatus.GAGAL in statuses:
            advice.append(FAILED_ADVICE)
        if DisbursementStatus.DITUNDA in statuses:
            advice.append(POSTPONED_ADVICE)
        return advice
