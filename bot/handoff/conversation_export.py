"""Conversation export: one citizen's messages, or every conversation of a region and period, as CSV.

A conversation is every message in and out of one contact. Its region is the one the
inbox and the chat page use: that of the contact's latest handoff, and for a contact
never handed to staff the region a handoff would get now, their registered household's
(bot.handoff.service.household_region). A conversation's time zone follows the same
source's province (WIB when unknown); a period is given in the citizen's local dates.

Exports are for supervisors, as the report export is: a region's personal data
leaves the system. Refusal and audit come before the first line is read; the lines
come lazily, contacts and then their messages read BATCH_SIZE at a time in short
sessions resuming after the last key read (keyset), so an export of any size streams
in constant memory and holds no transaction while the download is slow. When the
stream ends, a second audit entry says how many rows left and whether it was cut off.
NIKs are masked in the text unless whole NIKs were asked for by someone allowed to
see them; the CSV writer is the one the report export uses (bot/rules/csvexport.py).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from bot.conversation.models import Contact, Message
from bot.db import Database
from bot.handoff.audit import AuditAction, AuditLog
from bot.handoff.models import Handoff
from bot.handoff.service import HandoffDesk, household_region
from bot.handoff.staff_users import AccessDenied, InvalidStaffUser, StaffIdentity, check_region
from bot.rules.csvexport import csv_lines
from bot.rules.nik import mask_niks
from bot.rules.phone import mask_phone, parse_address
from bot.rules.regions import zone_for_province

BATCH_SIZE = 500
EXPORT_COLUMNS = (
    "contact", "region", "message_id", "time_local", "time_utc", "direction", "channel",
    "status", "error_code", "text", "media_count",
)
# Stored times are UTC and a citizen's day starts up to nine hours earlier (WIT): the
# database is asked for a day more on each side, and each message is then held to
# the period in its own citizen's zone.
_PERIOD_MARGIN = timedelta(days=1)


class InvalidExport(ValueError):
    """An export that cannot be run as asked; the message is Indonesian, for the officer."""


class ContactNotFound(LookupError):
    """No conversation with this address."""


@dataclass(frozen=True)
class Period:
    """Local calendar dates, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise InvalidExport("Tanggal akhir tidak boleh sebelum tanggal awal.")

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """A UTC range holding every instant of the period in any zone."""
        start = datetime.combine(self.first, time(), timezone.utc) - _PERIOD_MARGIN
        end = datetime.combine(self.last + timedelta(days=1), time(), timezone.utc) + _PERIOD_MARGIN
        return start, end

    def __str__(self) -> str:
        return f"from={self.first.isoformat()} to={self.last.isoformat()}"


@dataclass(frozen=True)
class _Conversation:
    contact_id: int
    contact: str
    region: str | None
    zone: ZoneInfo


def _conversations(session: Session, contacts: Iterable[Contact]) -> list[_Conversation]:
    """Each contact with its region and zone, by the inbox's rule (see the module docstring)."""
    contacts = list(contacts)
    latest = (
        select(func.max(Handoff.id))
        .where(Handoff.contact_id.in_([c.id for c in contacts]))
        .group_by(Handoff.contact_id)
    )
    handoffs = {h.contact_id: h for h in session.scalars(select(Handoff).where(Handoff.id.in_(latest)))}
    found = []
    for contact in contacts:
        handoff = handoffs.get(contact.id)
        if handoff is not None:
            region, province_code = handoff.region, handoff.province_code
        else:
            region, province_code = household_region(session, contact.address)
        found.append(
            _Conversation(contact.id, mask_phone(contact.address), region, zone_for_province(province_code))
        )
    return found


def _checked_region(raw: str | None) -> str | None:
    try:
        return check_region(raw)
    except InvalidStaffUser as exc:
        raise InvalidExport(str(exc)) from None


class ConversationExport:
    """CSV exports of conversations for the dashboard and `bansos conversations export`."""

    def __init__(self, db: Database, desk: HandoffDesk, audit: AuditLog) -> None:
        self.db = db
        self.desk = desk
        self.audit = audit

    # ---- the dashboard -------------------------------------------------------------

    def for_chat(self, viewer: StaffIdentity, handoff_id: int, include_nik: bool, ip: str = "") -> Iterator[str]:
        """The whole conversation of a chat the viewer may see.

        HandoffNotFound, or AccessDenied for an agent or a chat kept from the viewer.
        """
        self._check(viewer, include_nik)
        contact_id = self.desk.contact_of_chat(viewer, handoff_id)
        lines = self._lines(self._one(contact_id), None, include_nik)
        return self._audited(viewer, f"handoff:{handoff_id}", "whole conversation", include_nik, lines, ip)

    def for_region(
        self, viewer: StaffIdentity, region: str | None, period: Period, include_nik: bool, ip: str = ""
    ) -> Iterator[str]:
        """Every conversation of `region` (a province or regency code; None: all) in `period`.

        Conversations a sensitive report keeps from the viewer are left out, as in the inbox.
        """
        self._check(viewer, include_nik)
        region = _checked_region(region)

        def keep(session: Session, found: list[_Conversation]) -> list[_Conversation]:
            hidden = self.desk.kept_from(session, [c.contact_id for c in found], viewer.display_name)
            return [c for c in found if c.contact_id not in hidden and viewer.may_see_region(c.region)]

        lines = self._lines(self._in_region(region, period, keep), period, include_nik)
        return self._audited(viewer, "conversations", f"region={region or 'all'} {period}", include_nik, lines, ip)

    @staticmethod
    def _check(viewer: StaffIdentity, include_nik: bool) -> None:
        if not viewer.can_assign:
            raise AccessDenied("Ekspor hanya untuk supervisor dan admin.")
        if include_nik and not viewer.can_reveal_nik:
            raise AccessDenied("Peran Anda tidak boleh membuka NIK utuh.")

    # ---- the command line ----------------------------------------------------------

    def for_cli(
        self,
        include_nik: bool,
        address: str | None = None,
        region: str | None = None,
        period: Period | None = None,
    ) -> Iterator[str]:
        """One contact's conversation (`address`, within `period` if given) or a region's
        (`period` required), checked and audited now, with no staff actor, as `via=cli`."""
        if address is not None and region is not None:
            raise InvalidExport("Pilih satu: nomor warga atau wilayah.")
        if address is not None:
            wanted = parse_address(address).value
            with self.db.session() as session:
                contact_id = session.scalar(select(Contact.id).where(Contact.address == wanted))
            if contact_id is None:
                raise ContactNotFound(address)
            conversations = self._one(contact_id)
            target, scope = f"contact:{contact_id}", str(period) if period else "whole conversation"
        elif period is not None:
            region = _checked_region(region)
            conversations = self._in_region(region, period, None)
            target, scope = "conversations", f"region={region or 'all'} {period}"
        else:
            raise InvalidExport("Sebutkan nomor warga, atau periode (dan wilayah) percakapan.")
        lines = self._lines(conversations, period, include_nik)
        return self._audited(None, target, f"{scope} via=cli", include_nik, lines)

    # ---- reading -------------------------------------------------------------------

    def _audited(
        self, actor: StaffIdentity | None, target: str, scope: str, include_nik: bool, lines: Iterator[str], ip: str = ""
    ) -> Iterator[str]:
        """Audit the export now, then hand out its lines and audit how many rows left."""
        nik = " include_nik" if include_nik else ""
        self.audit.record(actor, AuditAction.EXPORT_CONVERSATIONS, target, scope + nik, ip)

        def streamed() -> Iterator[str]:
            rows, finished = -1, False
            try:
                for line in lines:
                    rows += 1
                    yield line
                finished = True
            finally:
                ending = "" if finished else " interrupted"
                self.audit.record(actor, AuditAction.EXPORT_FINISHED, target, f"rows={max(rows, 0)}{ending}", ip)

        return streamed()

    def _one(self, contact_id: int) -> Iterator[list[_Conversation]]:
        with self.db.session() as session:
            found = _conversations(session, [session.get_one(Contact, contact_id)])
        yield found

    def _in_region(
        self,
        region: str | None,
        period: Period,
        keep: Callable[[Session, list[_Conversation]], list[_Conversation]] | None,
    ) -> Iterator[list[_Conversation]]:
        """The conversations with a message in the period, a batch of contacts at a time."""
        start, end = period.utc_bounds()
        active = exists().where(
            Message.contact_id == Contact.id, Message.created_at >= start, Message.created_at < end
        )
        last_id = 0
        while True:
            with self.db.session() as session:
                contacts = session.scalars(
                    select(Contact).where(Contact.id > last_id, active).order_by(Contact.id).limit(BATCH_SIZE)
                ).all()
                found = [
                    c for c in _conversations(session, contacts)
                    if region is None or (c.region or "").startswith(region)
                ]
                if keep is not None and found:
                    found = keep(session, found)
            yield found
            if len(contacts) < BATCH_SIZE:
                return
            last_id = contacts[-1].id

    def _lines(
        self, batches: Iterator[list[_Conversation]], period: Period | None, include_nik: bool
    ) -> Iterator[str]:
        return csv_lines(EXPORT_COLUMNS, self._rows(batches, period, include_nik))

    def _rows(
        self, batches: Iterator[list[_Conversation]], period: Period | None, include_nik: bool
    ) -> Iterator[list[object]]:
        for conversations in batches:
            for conversation, message in self._messages(conversations, period):
                local = message.created_at.astimezone(conversation.zone)
                if period is not None and not period.first <= local.date() <= period.last:
                    continue
                yield [
                    conversation.contact,
                    conversation.region or "",
                    message.id,
                    local.isoformat(),
                    message.created_at.astimezone(timezone.utc).isoformat(),
                    message.direction,
                    message.channel,
                    message.status,
                    message.error_code or "",
                    message.as_seen if include_nik else mask_niks(message.as_seen),
                    len(message.media or []),
                ]

    def _messages(
        self, conversations: list[_Conversation], period: Period | None
    ) -> Iterator[tuple[_Conversation, Message]]:
        """The conversations' messages, one conversation after another, each in the order stored."""
        if not conversations:
            return
        by_contact = {c.contact_id: c for c in conversations}
        query = select(Message).where(Message.contact_id.in_(list(by_contact)))
        if period is not None:
            start, end = period.utc_bounds()
            query = query.where(Message.created_at >= start, Message.created_at < end)
        last_contact, last_id = 0, 0
        while True:
            with self.db.session() as session:
                batch = session.scalars(
                    query.where(
                        or_(
                            Message.contact_id > last_contact,
                            and_(Message.contact_id == last_contact, Message.id > last_id),
                        )
                    )
                    .order_by(Message.contact_id, Message.id)
                    .limit(BATCH_SIZE)
                ).all()
            for message in batch:
                yield by_contact[message.contact_id], message
            if len(batch) < BATCH_SIZE:
                return
            last_contact, last_id = batch[-1].contact_id, batch[-1].id
