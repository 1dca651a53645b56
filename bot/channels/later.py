"""The one path for every message the app sends on its own, not as an answer.

Report status notices, staff replies, the hand-back notice and any other message sent
later than the citizen's own (a supervisor's summary, a reminder) go through
`LaterSender.send(contact_id, LaterMessage(kind, text, variables))`: it knows
WhatsApp's 24-hour window and sends free text inside it, outside it an approved
Content template or SMS (the rule: bot/channels/window.py). When WhatsApp refuses
anyway (63016 for free text, or a template it will not deliver), at once or later in
a status callback (`fall_back`, called by bot/channels/delivery.py), the message is
replaced the same way, once: never to a contact who sent STOP, never by SMS to an
address that takes none.

An announcing template ("an officer replied, answer to read it") leaves the text held;
`Outbox.release_held` sends it when the citizen writes back (bot/conversation/inbound.py).
Disbursement notices keep their own outbox and dispatcher (bot/notices/).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.channels.outbox import LaterFacts, Outbox, Template
from bot.channels.window import (
    KINDS,
    Addressee,
    LaterKind,
    Route,
    Way,
    after_failed_template,
    choose_route,
    outside_window,
)
from bot.config import Settings
from bot.conversation.models import Channel, Contact, Direction, Message, MessageStatus, utcnow
from bot.rules.smstext import format_for_channel

log = logging.getLogger(__name__)
_FAILED = (MessageStatus.FAILED, MessageStatus.UNDELIVERED)


def templates_from_settings(settings: Settings) -> dict[str, str]:
    """Each kind's approved Content SID; a kind without one goes by SMS outside the window."""
    configured = {
        "report_status": settings.twilio_report_status_content_sid,
        "staff_reply": settings.twilio_staff_reply_content_sid,
        "hand_back": settings.twilio_hand_back_content_sid,
        "notice": settings.twilio_later_notice_content_sid,
    }
    return {name: sid for name, sid in configured.items() if sid and name in KINDS}


@dataclass(frozen=True)
class LaterMessage:
    """What to say: the full text, and the template's variables for the same facts.

    Keep variables to what the registered citizen may read (no NIK, no amounts).
    """

    kind: LaterKind
    text: str
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LaterResult:
    """What happened: the route taken and the message that counts (the last one tried).

    `messages` are every row stored on the way (a refused send, its replacement, a
    held text and the template announcing it), for callers that link them to a chat.
    """

    route: Route
    message: Message | None
    messages: tuple[Message, ...] = ()

    @property
    def held(self) -> bool:
        """An announcing template went; the text waits for the citizen's answer."""
        return self.route.holds_text and self.accepted

    @property
    def accepted(self) -> bool:
        """Handed to a provider (or held for the citizen's answer), not failed or refused."""
        return self.message is not None and self.message.status not in (
            MessageStatus.FAILED,
            MessageStatus.OPTED_OUT,
        )


class LaterSender:
    """Stateless over its outbox (whose templates it uses): build one wherever needed."""

    def __init__(self, outbox: Outbox, clock: Callable[[], datetime] = utcnow) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.templates = outbox.templates
        self.clock = clock

    def route(self, contact_id: int, kind: LaterKind) -> Route:
        """The way a message of `kind` would go now."""
        return choose_route(self._addressee(contact_id), kind, self.templates.get(kind.name), self.clock())

    def route_in(self, session: Session, contact: Contact, kind: LaterKind) -> Route:
        """`route` inside the caller's session (the dashboard's chat view)."""
        return self.route_for(addressee_of(session, contact), kind)

    def route_for(self, addressee: Addressee, kind: LaterKind) -> Route:
        """`route` for an addressee the caller has read (`addressee_of`)."""
        return choose_route(addressee, kind, self.templates.get(kind.name), self.clock())

    def send(self, contact_id: int, message: LaterMessage) -> LaterResult:
        """Send by the route the window allows, falling back once on an immediate refusal.

        To a contact who sent STOP the text is stored unsent on their channel (the
        outbox keeps it as `opted_out`); with no way at all nothing is stored.
        """
        addressee = self._addressee(contact_id)
        route = choose_route(addressee, message.kind, self.templates.get(message.kind.name), self.clock())
        if addressee.opted_out:
            stopped = Route(Way.NONE, addressee.last_channel, reason=route.reason)
            kept = self._send_by(contact_id, message, stopped, None)
            return LaterResult(route, kept[-1], messages=tuple(kept))
        if not route.possible:
            log.info("%s message to contact %d not sent: no way", message.kind.name, contact_id)
            return LaterResult(route, None)
        sent = self._send_by(contact_id, message, route, None)
        stored = list(sent)
        # A template that fails at once may still have SMS behind it: at most two steps.
        for _ in range(2):
            if sent[-1].status not in _FAILED:
                break
            replaced = self._fall_back(sent[-1].id)
            if replaced is None:
                break
            route, sent = replaced
            stored += sent
        return LaterResult(route, stored[-1], tuple(stored))

    def fall_back(self, message_id: int) -> Message | None:
        """Replace a failed later message the same way, once; None when nothing is sent.

        Status callbacks call this for every failure report: it does nothing for a
        message that is not the app's own, that failed for a reason no other way
        avoids, or that was replaced already.
        """
        replaced = self._fall_back(message_id)
        return replaced[1][-1] if replaced else None

    def fall_back_soon(self, message_id: int) -> None:
        """`fall_back` on the outbox's background threads: a status callback's request
        answers at once instead of waiting for the replacement's send."""
        self.outbox.soon(self.fall_back, message_id)

    def _fall_back(self, message_id: int) -> tuple[Route, list[Message]] | None:
        with self.db.session() as session:
            failed = session.get(Message, message_id)
            if failed is None or failed.later_kind not in KINDS or failed.status not in _FAILED:
                return None
            kind = KINDS[failed.later_kind]
            if failed.template_sid and not kind.carries_text:
                _announcement_failed(session, failed)
                return None
            route = self._route_after(session, failed, kind)
            if route is None:
                return None
            message = LaterMessage(kind, failed.body, failed.template_variables or {})
            contact_id = failed.contact_id
        if not route.possible:
            log.info("message %d failed, no other way to send it: %s", message_id, route.reason)
            return None
        try:
            return route, self._send_by(contact_id, message, route, message_id)
        except IntegrityError:
            log.info("message %d was already replaced", message_id)
            return None

    def _addressee(self, contact_id: int) -> Addressee:
        with self.db.session() as session:
            return addressee_of(session, session.get_one(Contact, contact_id))

    def _route_after(self, session: Session, failed: Message, kind: LaterKind) -> Route | None:
        # Imported here: twilio.py imports the conversation core, which imports this module.
        from bot.channels import delivery, twilio

        if failed.channel != Channel.WHATSAPP:
            return None
        addressee = addressee_of(session, session.get_one(Contact, failed.contact_id))
        if failed.template_sid:
            if delivery.classify_failure(failed.error_code).ends_all_channels:
                return None
            return after_failed_template(addressee)
        if failed.error_code != twilio.ERROR_WHATSAPP_OUTSIDE_WINDOW:
            return None
        return outside_window(addressee, kind, self.templates.get(kind.name))

    def _send_by(
        self, contact_id: int, message: LaterMessage, route: Route, fallback_of_id: int | None
    ) -> list[Message]:
        channel = route.channel or Channel.SMS
        facts = LaterFacts(message.kind.name, message.variables, fallback_of_id=fallback_of_id)
        text = format_for_channel(message.text, channel)
        if route.way != Way.TEMPLATE:
            return [self.outbox.send(contact_id, text, channel, later=facts)]
        variables = {name: message.variables.get(name, "") for name in message.kind.variables}
        template = Template(route.template_sid or "", variables)
        if not route.holds_text:
            # Our copy is the full text: should the template fail, SMS sends it.
            return [self.outbox.send(contact_id, text, channel, later=replace(facts, template=template))]
        # The text waits, stored first (as the replacement, if it is one); then the
        # template announcing it goes out.
        held = self.outbox.send(contact_id, text, channel, later=replace(facts, hold=True))
        announced = message.kind.render(variables)
        notice = replace(facts, template=template, fallback_of_id=None)
        return [held, self.outbox.send(contact_id, announced, channel, later=notice)]


def _announcement_failed(session: Session, template: Message) -> None:
    """The template announcing a held text failed: the citizen was never told to write
    back, so the text is failed too (with the template's error, which the chat page
    shows) rather than sent weeks later, should they ever write.

    The held text is the one stored just before its template (bot/channels/later.py
    stores the pair in that order), the contact's latest held text of the kind before it.
    """
    held = session.scalars(
        select(Message)
        .where(
            Message.contact_id == template.contact_id,
            Message.later_kind == template.later_kind,
            Message.status == MessageStatus.HELD,
            Message.id < template.id,
        )
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    if held is not None:
        held.status = MessageStatus.FAILED
        held.error_code = template.error_code or template.status
        log.info("held message %d failed: the template announcing it failed", held.id)


def addressee_of(session: Session, contact: Contact) -> Addressee:
    """The contact as the window rule sees it; the window opens with their last WhatsApp message."""
    last_whatsapp = session.scalar(
        select(func.max(Message.created_at)).where(
            Message.contact_id == contact.id,
            Message.direction == Direction.INBOUND,
            Message.channel == Channel.WHATSAPP,
        )
    )
    last_in = session.scalar(
        select(Message.channel)
        .where(Message.contact_id == contact.id, Message.direction == Direction.INBOUND)
        .order_by(Message.id.desc())
        .limit(1)
    )
    return Addressee(
        address=contact.address,
        is_phone=contact.is_phone,
        opted_out=contact.opted_out,
        last_channel=last_in or contact.last_channel,
        last_whatsapp_at=last_whatsapp,
    )
