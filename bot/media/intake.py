"""Inbound media kept by us (UU PDP: one copy, ours, under our retention).

A message's attachments are recorded as `pending` in the unit of work that stores
the message (`record_media`, from bot/conversation/inbound.py), so nothing is lost
whatever happens next. Then `MediaIntake` fetches each one, off the webhook's thread
(`fetch_soon`, called by the webhook once it has answered) and again from the
scheduler's `fetch_media` job for whatever is still due:

- download it with the provider's credentials (bot/channels/twilio_media.py),
- check its type and size (bot/media/checks.py); a refused one gets a clear reply,
  while the message's text is answered as always,
- store it in the media store (bot/media/store.py) under its random key,
- delete it at the provider, so that our copy is the only one.

A failed download or deletion is tried again later, waiting twice as long each time
up to an hour; the provider's URL stays on the row until the work is done.
Workers on any number of hosts share the rows: each claims an item with a lease
(bot/media/models.py), and only the holder of the latest attempt writes its outcome.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.channels.outbox import Outbox
from bot.config import Settings
from bot.conversation import replies
from bot.conversation.models import Message, utcnow
from bot.db import Database
from bot.media.checks import MediaRefused, check_declared, checked_type
from bot.media.models import (
    CONTENT_TYPE_MAX_CHARS,
    URL_MAX_CHARS,
    MediaItem,
    MediaRefusal,
    MediaRefusalReply,
    MediaStatus,
    new_media_key,
)
from bot.media.store import MediaStore
from bot.rules.smstext import format_for_channel

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 60.0
RETRY_MAX_SECONDS = 3600.0
# The scheduler's `fetch_media` job runs this often (bot/notices/scheduler.py).
FETCH_INTERVAL_SECONDS = 60.0
# Items one pass takes on; the next pass (or the job) takes the rest.
BATCH_SIZE = 50
# Fetches run beside the web process's request threads, never in them.
FETCH_THREADS = 2
# A URL Twilio could have sent: printable ASCII only (PostgreSQL refuses NUL bytes).
_URL_RE = re.compile(r"https?://[\x21-\x7e]+")
_UNPRINTABLE_RE = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True)
class Download:
    content: bytes
    content_type: str


class MediaUnavailable(Exception):
    """The provider could not be asked or failed to answer: try again later."""


class MediaGone(Exception):
    """The provider has no such item (deleted, expired, or never one of ours)."""


class MediaSource(Protocol):
    """A provider's media: Twilio's is bot/channels/twilio_media.py."""

    def download(self, url: str, max_bytes: int) -> Download:
        """The item's bytes and served type; raises MediaRefused (too big),
        MediaGone or MediaUnavailable."""

    def discard(self, url: str) -> None:
        """Delete the item at the provider; raises MediaGone or MediaUnavailable."""


def record_media(session: Session, message_id: int, media: Sequence[dict[str, Any]], now: datetime) -> None:
    """Record a message's attachments as pending, in the unit of work storing the message.

    An item whose URL no provider would send is kept in the message only: it is
    never fetched, since the provider's credentials go nowhere but to the provider.
    """
    rows = []
    for position, item in enumerate(media):
        url = str(item.get("url") or "") if isinstance(item, dict) else ""
        if len(url) > URL_MAX_CHARS or not _URL_RE.fullmatch(url):
            continue
        rows.append({
            "key": new_media_key(),
            "message_id": message_id,
            "position": position,
            "source_url": url,
            "declared_type": _UNPRINTABLE_RE.sub("", str(item.get("content_type") or ""))[:CONTENT_TYPE_MAX_CHARS],
            "status": MediaStatus.PENDING,
            "next_attempt_at": now,
            "created_at": now,
        })
    if rows:
        session.execute(insert(MediaItem), rows)


def _first_refusal(session: Session, message_id: int, now: datetime) -> bool:
    """Whether this is the message's first refused item: the unique row says so, even
    when two workers refuse two of its items at the same moment (the later insert waits
    for the earlier one's commit, then finds its row)."""
    insert_for = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    inserted = session.scalar(
        insert_for(MediaRefusalReply)
        .values(message_id=message_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(MediaRefusalReply.message_id)
    )
    return inserted is not None


def size_label(max_bytes: int) -> str:
    """MEDIA_MAX_BYTES as a citizen reads it: "5 MB", or "500 KB"."""
    megabyte = 1024 * 1024
    return f"{max_bytes // megabyte} MB" if max_bytes >= megabyte else f"{max(1, max_bytes // 1024)} KB"


@dataclass(frozen=True)
class _Claim:
    id: int
    attempts: int
    status: str
    url: str
    declared_type: str
    key: str
    message_id: int | None


class MediaIntake:
    """Fetches, checks, stores and deletes at the provider every pending media item."""

    def __init__(
        self, db: Database, store: MediaStore, source: MediaSource | None, outbox: Outbox, settings: Settings
    ) -> None:
        self.db = db
        self.store = store
        # None without provider credentials: items wait, recorded, until there are some.
        self.source = source
        self.outbox = outbox
        self.max_bytes = settings.media_max_bytes
        # Longer than one item's whole work: the download, then the deletion at the provider.
        self.lease = timedelta(seconds=settings.media_fetch_timeout + 3 * settings.twilio_http_timeout)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pass_waiting = False

    def fetch_soon(self) -> None:
        """Run a pass in the background now: for the message the webhook just stored.

        At most one pass waits to start at any time; it lists what is due when it
        starts, so it covers every item recorded before then.
        """
        if self.source is None:
            return
        with self._lock:
            if self._pass_waiting:
                return
            self._pass_waiting = True
            if self._pool is None:
                # Made on first use, after gunicorn has forked.
                self._pool = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="media-fetch")
            pool = self._pool
        pool.submit(self._background_pass)

    def _background_pass(self) -> None:
        with self._lock:
            self._pass_waiting = False
        try:
            self.run_due()
        except Exception:  # noqa: BLE001 - a background pass must log, never die silently
            log.exception("media pass failed; the scheduler's job tries again")

    def run_due(self, now: datetime | None = None) -> int:
        """Work every item due now, one after another; how many were worked."""
        source = self.source
        if source is None:
            return 0
        now = now or utcnow()
        with self.db.session() as session:
            due = list(
                session.scalars(
                    select(MediaItem.id)
                    .where(MediaItem.next_attempt_at <= now)
                    .order_by(MediaItem.next_attempt_at, MediaItem.id)
                    .limit(BATCH_SIZE)
                )
            )
        return sum(self._work(source, item_id, now) for item_id in due)

    def _work(self, source: MediaSource, item_id: int, now: datetime) -> bool:
        claim = self._claim(item_id, now)
        if claim is None:
            return False
        status: str | None = claim.status
        if status == MediaStatus.PENDING:
            status = self._fetch(source, claim, now)
        if status in (MediaStatus.STORED, MediaStatus.REFUSED):
            self._discard(source, claim, now)
        return True

    def _claim(self, item_id: int, now: datetime) -> _Claim | None:
        with self.db.session() as session:
            row = session.execute(
                update(MediaItem)
                .where(MediaItem.id == item_id, MediaItem.next_attempt_at <= now)
                .values(next_attempt_at=now + self.lease, attempts=MediaItem.attempts + 1)
                .returning(
                    MediaItem.id, MediaItem.attempts, MediaItem.status, MediaItem.source_url,
                    MediaItem.declared_type, MediaItem.key, MediaItem.message_id,
                )
                .execution_options(synchronize_session=False)
            ).one_or_none()
        return _Claim(*row) if row is not None else None

    def _settle(self, session: Session, claim: _Claim, **values: Any) -> bool:
        """Write an outcome, only while this attempt is the latest."""
        return bool(
            session.execute(
                update(MediaItem)
                .where(MediaItem.id == claim.id, MediaItem.attempts == claim.attempts)
                .values(**values)
                .execution_options(synchronize_session=False)
            ).rowcount
        )

    def _retry(self, claim: _Claim, now: datetime, error: str) -> None:
        wait = min(RETRY_BASE_SECONDS * 2 ** (claim.attempts - 1), RETRY_MAX_SECONDS)
        log.warning("media item %d: %s; trying again in %d s", claim.id, error, wait)
        with self.db.session() as session:
            self._settle(session, claim, next_attempt_at=now + timedelta(seconds=wait), last_error=error[:64])

    def _fetch(self, source: MediaSource, claim: _Claim, now: datetime) -> str | None:
        """Download, check and store one item: its new status, None when it waits for a retry."""
        try:
            check_declared(claim.declared_type)
            download = source.download(claim.url, self.max_bytes)
            content_type = checked_type(download.content_type, download.content, self.max_bytes)
        except MediaRefused as refused:
            self._refuse(claim, refused.reason, now)
            return MediaStatus.REFUSED
        except MediaGone as exc:
            log.warning("media item %d is gone at the provider: %s", claim.id, exc)
            with self.db.session() as session:
                self._settle(session, claim, status=MediaStatus.GONE, next_attempt_at=None, last_error=str(exc)[:64])
            return MediaStatus.GONE
        except MediaUnavailable as exc:
            self._retry(claim, now, f"download: {exc}")
            return None
        self.store.put(claim.key, download.content, content_type)
        with self.db.session() as session:
            stored = self._settle(
                session,
                claim,
                status=MediaStatus.STORED,
                content_type=content_type,
                size=len(download.content),
                sha256=hashlib.sha256(download.content).hexdigest(),
                stored_at=now,
                last_error=None,
            )
        if not stored:
            # Another worker took the item over; it writes the same key.
            return None
        log.info("media item %d stored (%s, %d bytes)", claim.id, content_type, len(download.content))
        return MediaStatus.STORED

    def _refuse(self, claim: _Claim, reason: str, now: datetime) -> None:
        """Mark the item refused and tell the citizen, once per message."""
        with self.db.session() as session:
            if not self._settle(session, claim, status=MediaStatus.REFUSED, refusal=reason, last_error=None):
                return
            sender = (
                session.execute(
                    select(Message.contact_id, Message.channel).where(Message.id == claim.message_id)
                ).one_or_none()
                if claim.message_id is not None and _first_refusal(session, claim.message_id, now)
                else None
            )
        log.info("media item %d refused: %s", claim.id, reason)
        if sender is None:
            return
        template = replies.MEDIA_TOO_BIG if reason == MediaRefusal.TOO_BIG else replies.MEDIA_WRONG_TYPE
        text = format_for_channel(template.format(limit=size_label(self.max_bytes)), sender.channel)
        self.outbox.send(sender.contact_id, text, sender.channel, in_reply_to_id=claim.message_id)

    def _discard(self, source: MediaSource, claim: _Claim, now: datetime) -> None:
        """Delete the item at the provider; the item is settled once that is done."""
        try:
            source.discard(claim.url)
        except MediaUnavailable as exc:
            self._retry(claim, now, f"delete at provider: {exc}")
            return
        except MediaGone:
            pass
        with self.db.session() as session:
            self._settle(session, claim, provider_deleted_at=now, next_attempt_at=None, last_error=None)
