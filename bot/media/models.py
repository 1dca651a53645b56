"""The media items citizens send: one row per attachment, from arrival to our own copy.

Lifecycle, drawn once:

    pending ──▶ stored ──▶ (deleted at the provider)     our copy is the only one
       ├──────▶ refused ──▶ (deleted at the provider)   wrong type or too big: the citizen is told
       └──────▶ gone                                     the provider no longer has it (404)

`next_attempt_at` is set while work remains (fetching, or deleting at the provider)
and NULL once the item is settled; a worker claims an item by moving it forward by
a lease and counting an attempt, and only the holder of that attempt writes the outcome.
The provider's URL is kept: it names the attachment in `messages.media` and in a
report's evidence (`report_attachments.url`), and it is how the dashboard finds our copy.
"""
from __future__ import annotations

import secrets
from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.conversation.models import utcnow
from bot.db import Base

URL_MAX_CHARS = 500
CONTENT_TYPE_MAX_CHARS = 100


def new_media_key() -> str:
    """The name of our copy: random, so it says nothing and cannot be guessed."""
    return secrets.token_hex(16)


class MediaStatus:
    PENDING = "pending"
    STORED = "stored"
    REFUSED = "refused"
    GONE = "gone"


class MediaRefusal:
    """Why an attachment was refused (and which text the citizen got)."""

    WRONG_TYPE = "wrong_type"
    TOO_BIG = "too_big"


class MediaItem(Base):
    __tablename__ = "media_items"
    __table_args__ = (
        Index("ix_media_items_message", "message_id"),
        Index("ix_media_items_source_url", "source_url"),
        Index("ix_media_items_next_attempt", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True, default=new_media_key)
    # NULL once the chat message is purged while a report keeps the attachment as evidence.
    message_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    position: Mapped[int] = mapped_column(default=0)
    source_url: Mapped[str] = mapped_column(String(URL_MAX_CHARS))
    declared_type: Mapped[str] = mapped_column(String(CONTENT_TYPE_MAX_CHARS), default="")
    status: Mapped[str] = mapped_column(String(16), default=MediaStatus.PENDING)
    refusal: Mapped[Optional[str]] = mapped_column(String(16), default=None)
    # What our copy is, from its own bytes (bot/media/checks.py), never from the sender.
    content_type: Mapped[Optional[str]] = mapped_column(String(CONTENT_TYPE_MAX_CHARS), default=None)
    size: Mapped[Optional[int]] = mapped_column(default=None)
    sha256: Mapped[Optional[str]] = mapped_column(String(64), default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    last_error: Mapped[Optional[str]] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    provider_deleted_at: Mapped[Optional[datetime]] = mapped_column(default=None)


class MediaContent(Base):
    """Our copy's bytes when MEDIA_STORE is `database` (bot/media/store.py): every host
    reads them, and they go when `bansos purge` deletes them, whichever host runs it."""

    __tablename__ = "media_contents"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(CONTENT_TYPE_MAX_CHARS))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)


class MediaRefusalReply(Base):
    """A message whose attachments were refused and whose sender was told so.

    The citizen gets one reply per message however many of its items are refused,
    even by workers on several hosts at once: whoever inserts this row replies.
    """

    __tablename__ = "media_refusal_replies"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
