"""What the sandbox "sent" to one phone, for the chat terminal (scripts/chat.py).

Without Twilio credentials the outbox hands messages to the sandbox transport, which
only stores them. Replies inside a webhook answer reach the chat terminal as TwiML,
but a staff member's reply, a report status notice or a disbursement notice is sent
later, on its own: the terminal polls this feed to show them as a phone would.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bot.db import Database
from bot.handoff_models import HandoffMessage
from bot.messaging import SandboxTransport
from bot.models import Contact, Direction, Message, MessageStatus
from bot.phone import parse_address


@dataclass(frozen=True)
class FeedItem:
    id: int
    body: str
    channel: str
    from_staff: bool


def latest_id(db: Database) -> int:
    """Where a new terminal starts: what was sent before it opened is not shown again."""
    with db.session() as session:
        return session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1)) or 0


def sent_to(db: Database, sender: str, after_id: int) -> list[FeedItem]:
    """Messages the sandbox sent to `sender` (as the terminal spells it) after `after_id`."""
    address = parse_address(sender).value
    with db.session() as session:
        rows = session.execute(
            select(Message.id, Message.body, Message.channel, HandoffMessage.staff_user_id)
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
    return [FeedItem(row.id, row.body, row.channel, row.staff_user_id is not None) for row in rows]
