"""Retention: chat logs are destroyed when their retention period ends (UU PDP Pasal 44).

What goes, once older than the retention period (365 days unless the operator says
otherwise): every chat message in or out, the links that marked some of them as
staff replies, and contacts (phone numbers) left with nothing: no message, no report,
no handoff. Photos and PDFs sent with those messages go with them, our stored copies
included (bot/media/), unless a report keeps one as evidence. What stays: reports and
their history and evidence (the programme must answer for each
usul, sanggah and pengaduan), handoff records (who handled which escalation and how
it ended), the audit log, and contacts who opted out, because forgetting a STOP would
mean messaging them again. NIK look-up counters delete themselves after 24 hours.
Staff sign-ins that ended or expired go at every purge (bot/handoff/staff_users.py also clears
a user's own at their next sign-in): they say when an officer worked, and nothing
needs them once they are over.

Deletion runs in batches, one transaction each, so the webhook never waits long for
SQLite's write lock; a batch interrupted midway leaves no half-deleted rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from bot.db import Database
from bot.handoff.models import Handoff, HandoffMessage
from bot.conversation.models import Contact, Message, utcnow
from bot.media.models import MediaItem
from bot.media.store import MediaStore
from bot.reports.models import Report, ReportAttachment
from bot.handoff.staff_models import StaffLoginSession

DEFAULT_RETENTION_DAYS = 365
BATCH_SIZE = 2000


@dataclass(frozen=True)
class PurgeReport:
    """What a purge deleted (or, on a dry run, would delete)."""

    cutoff: datetime
    messages: int
    staff_reply_links: int
    contacts: int
    staff_sessions: int
    dry_run: bool
    media_files: int = 0


def _dead_staff_sessions(now: datetime) -> Select[tuple[int]]:
    return select(StaffLoginSession.id).where(
        or_(StaffLoginSession.ended_at.is_not(None), StaffLoginSession.expires_at <= now)
    )


def _old_messages(cutoff: datetime) -> Select[tuple[int]]:
    return select(Message.id).where(Message.created_at < cutoff)


def _forgettable_contacts(cutoff: datetime) -> Select[tuple[int]]:
    """Contacts with nothing left to keep once messages before `cutoff` are gone."""
    return select(Contact.id).where(
        Contact.last_seen_at < cutoff,
        Contact.opted_out.is_(False),
        ~exists().where(Message.contact_id == Contact.id, Message.created_at >= cutoff),
        ~exists().where(Report.reporter_contact_id == Contact.id),
        ~exists().where(Handoff.contact_id == Contact.id),
    )


def _media_without_evidence(message_ids: Select[tuple[int]] | list[int]) -> Select[tuple[int, str]]:
    """Media items of these messages that no report keeps as evidence."""
    return select(MediaItem.id, MediaItem.key).where(
        MediaItem.message_id.in_(message_ids),
        MediaItem.source_url.not_in(select(ReportAttachment.url)),
    )


def _count(session: Session, query: Select[tuple[int]]) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _delete_batch(db: Database, media_store: MediaStore, cutoff: datetime, batch: int) -> tuple[int, int, int]:
    """Delete one batch of old messages; (messages, staff-reply links, media files) deleted.

    Media files are deleted before their rows, between two units of work (the store
    may be the database itself, MEDIA_STORE=database): should the batch fail after,
    the rows stay and the next purge deletes them, the data itself already gone.
    """
    with db.session() as session:
        ids = list(session.scalars(_old_messages(cutoff).order_by(Message.id).limit(batch)))
        if not ids:
            return 0, 0, 0
        media = session.execute(_media_without_evidence(ids)).all()
    for item in media:
        media_store.delete(item.key)
    with db.session() as session:
        session.execute(
            delete(MediaItem)
            .where(MediaItem.id.in_([item.id for item in media]))
            .execution_options(synchronize_session=False)
        )
        # Evidence of a report stays with the report; it only forgets the message.
        session.execute(
            update(MediaItem)
            .where(MediaItem.message_id.in_(ids))
            .values(message_id=None)
            .execution_options(synchronize_session=False)
        )
        links = session.execute(delete(HandoffMessage).where(HandoffMessage.message_id.in_(ids)))
        # A newer reply keeps its text; it only forgets which deleted message it answered.
        session.execute(
            update(Message)
            .where(Message.in_reply_to_id.in_(ids))
            .values(in_reply_to_id=None)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(Message).where(Message.id.in_(ids)).execution_options(synchronize_session=False)
        )
        return len(ids), links.rowcount, len(media)


def purge_chats(
    db: Database,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    dry_run: bool = False,
    now: datetime | None = None,
    batch: int = BATCH_SIZE,
    *,
    media_store: MediaStore,
) -> PurgeReport:
    """Delete chat messages older than `retention_days`, their media, and contacts left with nothing."""
    if retention_days < 1:
        raise ValueError("the retention period must be at least one day")
    now = now or utcnow()
    cutoff = now - timedelta(days=retention_days)
    if dry_run:
        with db.session() as session:
            old = _old_messages(cutoff)
            links = select(HandoffMessage.id).where(HandoffMessage.message_id.in_(old))
            return PurgeReport(
                cutoff,
                _count(session, old),
                _count(session, links),
                _count(session, _forgettable_contacts(cutoff)),
                _count(session, _dead_staff_sessions(now)),
                dry_run=True,
                media_files=_count(session, _media_without_evidence(old)),
            )
    messages = links = media_files = 0
    while True:
        deleted, deleted_links, deleted_media = _delete_batch(db, media_store, cutoff, batch)
        if not deleted:
            break
        messages += deleted
        links += deleted_links
        media_files += deleted_media
    with db.session() as session:
        contacts = session.execute(
            delete(Contact)
            .where(Contact.id.in_(_forgettable_contacts(cutoff)))
            .execution_options(synchronize_session=False)
        ).rowcount
        sessions = session.execute(
            delete(StaffLoginSession)
            .where(StaffLoginSession.id.in_(_dead_staff_sessions(now)))
            .execution_options(synchronize_session=False)
        ).rowcount
    return PurgeReport(cutoff, messages, links, contacts, sessions, dry_run=False, media_files=media_files)
