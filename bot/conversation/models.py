"""Typed SQLAlchemy models of the conversation core.

Message lifecycle, drawn once:

    inbound:   received ──▶ answered
                   ├──────▶ waiting ──▶ at_rasa ──▶ answered  (queued; answered through the API)
                   ├──────▶ needs_followup   (Rasa down or too slow; retried later)
                   ├──────▶ with_staff       (a person has the chat: shown to staff, not Rasa)
                   └──────▶ rate_limited     (a flood from one sender: kept, never sent to Rasa)
    outbound:  queued ──▶ sent ──▶ delivered ──▶ read (WhatsApp)
                  │         └────▶ undelivered | failed (with the provider's error code)
                  └──────▶ failed
               opted_out          (the contact had sent STOP: kept, never handed to a provider)
    A TwiML reply is answered inside the webhook response: it is stored as `replied`.
    `needs_followup`, and a `received` left behind by a request that died, are answered
    later through the outbox by bot/conversation/followup.py.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.db import Base


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_conversation_key() -> str:
    """An opaque id for Rasa, so trackers never carry a phone number."""
    return "k" + secrets.token_hex(12)


class Channel:
    SMS = "sms"
    WHATSAPP = "whatsapp"


class Direction:
    INBOUND = "in"
    OUTBOUND = "out"


class MessageStatus:
    RECEIVED = "received"
    ANSWERED = "answered"
    NEEDS_FOLLOWUP = "needs_followup"
    # Handed to Rasa and not yet settled: Rasa may have run this turn, so it is never
    # sent to Rasa again blindly (bot/conversation/followup.py asks Rasa's tracker first).
    AT_RASA = "at_rasa"
    # Left by the webhook for the answer workers: behind an earlier message of its
    # sender, or no free Rasa slot in the process (bot/conversation/turns.py).
    WAITING = "waiting"
    WITH_STAFF = "with_staff"
    RATE_LIMITED = "rate_limited"
    REPLIED = "replied"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    # Stored instead of sent: the contact had sent STOP and not MULAI since.
    OPTED_OUT = "opted_out"
    # Outside WhatsApp's window, announced by a template: sent when the citizen writes
    # back (bot/channels/later.py).
    HELD = "held"
    # An inbound message whose request is (or was, if it died) still at work on it.
    IN_PROGRESS = (RECEIVED, AT_RASA)


class Contact(Base):
    """One person's address: an E.164 number shared by SMS and WhatsApp, or an opaque id."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)
    is_phone: Mapped[bool] = mapped_column(default=True)
    conversation_key: Mapped[str] = mapped_column(
        String(32), unique=True, default=new_conversation_key
    )
    last_channel: Mapped[str] = mapped_column(String(16), default=Channel.SMS)
    opted_out: Mapped[bool] = mapped_column(default=False)
    opted_out_at: Mapped[Optional[datetime]] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    messages: Mapped[list["Message"]] = relationship(back_populates="contact")


class Message(Base):
    """Every message in or out, stored before anything else happens to it."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("provider", "provider_sid", name="uq_messages_provider_sid"),
        Index("ix_messages_contact_created", "contact_id", "created_at"),
        Index("ix_messages_status", "status"),
        Index("ix_messages_fallback_of", "fallback_of_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    direction: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16))
    provider_sid: Mapped[Optional[str]] = mapped_column(String(64), default=None)
    in_reply_to_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("messages.id"), default=None, index=True
    )
    body: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(24))
    error_code: Mapped[Optional[str]] = mapped_column(String(16), default=None)
    # A message the app sent on its own (bot/channels/later.py): its kind and template
    # variables (kept to fall back with), the template it went as, if any, and the
    # message it replaced after a failure; a message is replaced at most once.
    later_kind: Mapped[Optional[str]] = mapped_column(String(24), default=None)
    template_sid: Mapped[Optional[str]] = mapped_column(String(64), default=None)
    template_variables: Mapped[Optional[dict[str, str]]] = mapped_column(JSON, default=None)
    fallback_of_id: Mapped[Optional[int]] = mapped_column(default=None)
    # A tapped WhatsApp button or list item: the title the citizen saw; `body` holds its
    # payload, the typed answer the bot reads.
    tapped_title: Mapped[Optional[str]] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="messages")

    @property
    def as_seen(self) -> str:
        """The text as the citizen saw it, for staff: a tapped title, else the body."""
        return self.tapped_title or self.body
