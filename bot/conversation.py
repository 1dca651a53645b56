"""Inbound messages: store first, answer once, and replay the same answer on retries.

Every provider adapter (Twilio webhook, Kannel) turns its request into an
`InboundMessage` and calls `Conversations.handle`; none of them sees the database.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from bot import replies
from bot.config import Settings
from bot.db import Database
from bot.handoff import (
    REQUEST_HUMAN_PAYLOAD,
    Escalations,
    attach_inbound,
    escalation_reason,
    open_handoff_id,
)
from bot.handoff_models import HandoffReason
from bot.inbound_limits import Verdict, check_inbound
from bot.keywords import rasa_input
from bot.models import Channel, Contact, Direction, Message, MessageStatus, utcnow
from bot.phone import Address, parse_address
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.smstext import format_for_channel
from bot.subscriptions import set_opted_out

log = logging.getLogger(__name__)

_CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_REPLAY_POLL_SECONDS = 0.1
# STOP/BERHENTI and MULAI must work even when Rasa is down.
_SUBSCRIPTION_PAYLOADS = ("/opt_out", "/opt_in")


@dataclass(frozen=True)
class InboundMessage:
    """A message as any provider delivers it, in the core's own terms."""

    provider: str
    provider_sid: str
    sender: str
    body: str
    media: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class InboundResult:
    replies: list[str]
    duplicate: bool = False


@dataclass(frozen=True)
class _Stored:
    message_id: int
    contact_id: int
    conversation_key: str
    channel: str
    # Set while a person has the chat: the message is theirs, not Rasa's.
    handoff_id: int | None
    # Whether the sender is within the inbound rate limit (bot/inbound_limits.py).
    verdict: Verdict


class Conversations:
    """Runs one inbound message through storage, the assistant, and reply storage.

    Escalation happens here, before Rasa: PETUGAS, distress and abusive words open
    a handoff, and while one is open the message goes to staff only. STOP and MULAI
    still work then, because a citizen must always be able to stop messages.
    """

    def __init__(self, db: Database, rasa: RasaClient, settings: Settings) -> None:
        self.db = db
        self.rasa = rasa
        self.settings = settings
        self.escalations = Escalations(db)

    def handle(self, inbound: InboundMessage) -> InboundResult:
        address = parse_address(inbound.sender, self.settings.default_region)
        body = _CONTROL_CHARS_RE.sub("", inbound.body)[: self.settings.max_inbound_chars]
        try:
            stored = self._store_inbound(inbound, address, body)
            if stored is None:
                return InboundResult(self._replay(inbound), duplicate=True)
        except OperationalError as exc:
            # Nothing could be stored, so nothing may be processed: ask for a resend.
            log.error("database unavailable, inbound message not stored: %s", exc.__class__.__name__)
            return InboundResult([format_for_channel(replies.STORAGE_DOWN, address.channel)])
        answer, status = self._answer(stored, body.strip(), bool(inbound.media))
        texts = [format_for_channel(text, stored.channel) for text in answer]
        try:
            self._store_replies(stored, texts, status)
        except OperationalError as exc:
            log.error("replies to message %d not stored: %s", stored.message_id, exc.__class__.__name__)
        return InboundResult(texts)

    def answer_stored(self, message_id: int) -> tuple[list[str], str]:
        """Answer an inbound message stored earlier, by the same rules as `handle`.

        The follow-up job (bot/followup.py) calls it for messages Rasa could not answer
        in time and for messages whose request died; it sends the texts itself.
        """
        with self.db.session() as session:
            message = session.get_one(Message, message_id)
            contact = message.contact
            stored = _Stored(
                message.id,
                contact.id,
                contact.conversation_key,
                message.channel,
                open_handoff_id(session, contact.id),
                check_inbound(session, contact.id, message.id, message.created_at),
            )
            text, has_media = message.body.strip(), bool(message.media)
        answer, status = self._answer(stored, text, has_media)
        return [format_for_channel(reply, stored.channel) for reply in answer], status

    def _answer(self, stored: _Stored, text: str, has_media: bool) -> tuple[list[str], str]:
        payload = rasa_input(text) if text else ""
        if payload in _SUBSCRIPTION_PAYLOADS:
            opted_out = payload == _SUBSCRIPTION_PAYLOADS[0]
            return [set_opted_out(self.db, stored.conversation_key, opted_out)], MessageStatus.ANSWERED
        if stored.handoff_id is not None:
            # Staff read it in the dashboard; asking again only repeats when they answer.
            if payload == REQUEST_HUMAN_PAYLOAD:
                return [self.escalations.notice_for_open(stored.handoff_id)], MessageStatus.WITH_STAFF
            return [], MessageStatus.WITH_STAFF
        if not text:
            reply = replies.MEDIA_WITHOUT_TEXT if has_media else replies.EMPTY_MESSAGE
            return [reply], MessageStatus.ANSWERED
        reason = HandoffReason.REQUESTED if payload == REQUEST_HUMAN_PAYLOAD else escalation_reason(text)
        if reason is not None:
            return [self.escalations.escalate(stored.contact_id, reason).notice], MessageStatus.ANSWERED
        if not stored.verdict.allowed:
            return list(stored.verdict.replies), MessageStatus.RATE_LIMITED
        try:
            bot_replies = self.rasa.send(
                stored.conversation_key,
                payload,
                # The actions read a message's media (report evidence) by its id.
                {"channel": stored.channel, "message_id": stored.message_id},
            )
        except RasaUnavailable as exc:
            log.warning("message %d kept for follow-up: %s", stored.message_id, exc)
            return [replies.SERVICE_BUSY], MessageStatus.NEEDS_FOLLOWUP
        texts = [r.text for r in bot_replies if r.text]
        if stored.channel != Channel.WHATSAPP:
            # One SMS instead of several: each costs the user a segment or more.
            texts = ["\n".join(texts)]
        return texts, MessageStatus.ANSWERED

    def _store_inbound(self, inbound: InboundMessage, address: Address, body: str) -> _Stored | None:
        """Store the message; None when this provider id was stored before (a replay)."""
        for _ in range(3):
            try:
                with self.db.session() as session:
                    contact = session.scalar(select(Contact).where(Contact.address == address.value))
                    if contact is None:
                        contact = Contact(address=address.value, is_phone=address.is_phone)
                        session.add(contact)
                    now = utcnow()
                    contact.last_channel = address.channel
                    contact.last_seen_at = now
                    message = Message(
                        contact=contact,
                        direction=Direction.INBOUND,
                        channel=address.channel,
                        provider=inbound.provider,
                        provider_sid=inbound.provider_sid,
                        body=body,
                        media=inbound.media,
                        status=MessageStatus.RECEIVED,
                        created_at=now,
                    )
                    session.add(message)
                    session.flush()
                    handoff_id = attach_inbound(session, contact.id, now)
                    return _Stored(
                        message.id,
                        contact.id,
                        contact.conversation_key,
                        address.channel,
                        handoff_id,
                        check_inbound(session, contact.id, message.id, now),
                    )
            except IntegrityError:
                if self._find_inbound_id(inbound) is not None:
                    return None
                # Another request created the same contact at the same moment: retry.
        raise RuntimeError("could not store inbound message")

    def _find_inbound_id(self, inbound: InboundMessage) -> int | None:
        with self.db.session() as session:
            return session.scalar(
                select(Message.id).where(
                    Message.provider == inbound.provider,
                    Message.provider_sid == inbound.provider_sid,
                )
            )

    def _store_replies(self, stored: _Stored, texts: list[str], status: str) -> None:
        with self.db.session() as session:
            inbound = session.get_one(Message, stored.message_id)
            for text in texts:
                session.add(
                    Message(
                        contact_id=inbound.contact_id,
                        direction=Direction.OUTBOUND,
                        channel=stored.channel,
                        provider=inbound.provider,
                        in_reply_to_id=inbound.id,
                        body=text,
                        status=MessageStatus.REPLIED,
                    )
                )
            inbound.status = status

    def _replay(self, inbound: InboundMessage) -> list[str]:
        """The replies already given to this message, waiting briefly if still in progress."""
        deadline = time.monotonic() + self.settings.replay_wait_seconds
        while True:
            with self.db.session() as session:
                original = session.scalar(
                    select(Message).where(
                        Message.provider == inbound.provider,
                        Message.provider_sid == inbound.provider_sid,
                    )
                )
                if original is None:
                    return []
                if original.status != MessageStatus.RECEIVED or time.monotonic() >= deadline:
                    return list(
                        session.scalars(
                            select(Message.body)
                            .where(Message.in_reply_to_id == original.id)
                            .order_by(Message.id)
                        )
                    )
            time.sleep(_REPLAY_POLL_SECONDS)
