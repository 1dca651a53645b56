"""The sandbox: a provider that sends nothing, for a laptop, CI and `make chat`.

Without Twilio credentials (or with SMS_TRANSPORT=sandbox) the outbox hands messages to
this transport, which only logs them; they stay stored as sent. Replies inside a
webhook answer reach the chat terminal as TwiML, but a staff member's reply, a report
status notice or a disbursement notice is sent later, on its own: the terminal
(scripts/chat.py) polls `sent_to` to show them as a phone would.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.channels.outbox import SendResult, SentMessage, Template, Transport
from bot.config import Settings
from bot.conversation.models import Contact, Direction, Message, MessageStatus
from bot.db import Database
from bot.handoff.models import HandoffMessage
from bot.rules.phone import mask_phone, parse_address

log = logging.getLogger(__name__)

PROVIDER = "sandbox"


class SandboxTransport:
    """Keeps outbound messages local (stored and logged) when no Twilio account is set."""

    name = PROVIDER

    def send(
        self, to: str, body: str, channel: str, template: Template | None = None
    ) -> SendResult:
        log.info("sandbox %s message to %s: %d chars", channel, mask_phone(to), len(body))
        return SendResult(self.name, "SB" + secrets.token_hex(16), MessageStatus.SENT)

    def sent_to(self, to: str, channel: str, since: datetime) -> list[SentMessage]:
        """Nothing leaves the sandbox, so repeating a send whose answer was lost is harmless."""
        return []


def make_transport(settings: Settings) -> Transport:
    """The sandbox needs no settings: the registry's signature is the same for every provider."""
    return SandboxTransport()


@dataclass(frozen=True)
class FeedItem:
    id: int
    body: str
    channel: str
    from_staff: bool
    # The assistant's answer, sent after the webhook because Rasa took longer than its budget.
    is_answer: bool


def latest_id(db: Database) -> int:
    """Where a new terminal starts: what was sent before it opened is not shown again."""
    with db.session() as session:
        return session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1)) or 0


def sent_to(db: Database, sender: str, after_id: int) -> list[FeedItem]:
    """Messages the sandbox sent to `sender` (as the terminal spells it) after `after_id`."""
    address = parse_address(sender).value
    with db.session() as session:
        rows = session.execute(
            select(Message.id, Message.body, Message.channel, HandoffMessage.staff_user_id, Message.in_reply_to_id)
            .join(Contact, Message.contact_id == Contact.id)
            .outerjoin(HandoffMessage, HandoffMessage.message_id == Message.id)
            .where(
                Contact.address == address,
                Message.direction == Direction.OUTBOUND,
                Message.provider == SandboxTransport.name,
                # Kept but never sent: the contact had sent STOP.
                Message.status != MessageStatus.OPTED_OUT,
                Message.id > after_id,
            )
            .order_by(Message.id)
        ).all()
    return [
        FeedItem(row.id, row.body, row.channel, row.staff_user_id is not None, row.in_reply_to_id is not None)
        for row in rows
    ]
