"""The outbound messaging port: Twilio when credentials are set, else the sandbox.

Callers never send directly: `Outbox.send` stores the message as `queued` first, then
hands it to the transport and records what the provider said, so a crash between the
two leaves a visible queued row instead of a silent loss. It is also where STOP is
honoured for everything it sends (staff replies, the hand-back notice, follow-up
answers, report status notices): a contact who opted out gets nothing, whoever the
caller. Answers inside a webhook response (TwiML, e.g. the reply to STOP or MULAI
itself) do not pass through here.

Disbursement notices have an outbox of their own (bot/dispatcher.py) and use two more
things from a transport: WhatsApp templates (a `Template`, sent by content SID, since
WhatsApp refuses free text outside the 24-hour window: error 63016), and `sent_to`,
which asks the provider what it accepted for a number, so a send whose answer was
lost in a crash can be recognised instead of repeated.
"""
from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bot.config import Settings
from bot.db import Database
from bot.models import Channel, Contact, Direction, Message, MessageStatus
from bot.phone import mask_phone

log = logging.getLogger(__name__)
# The twilio client logs every request with its headers at INFO; a campaign of
# 100,000 notices would bury everything else, so its own logger speaks up on warnings only.
_twilio_http_log = logging.getLogger(f"{__name__}.twilio_http")
_twilio_http_log.setLevel(logging.WARNING)


# SendResult.error_code when the provider could not be reached, or did not answer.
NETWORK_ERROR = "network"


@dataclass(frozen=True)
class SendResult:
    provider: str
    sid: str | None
    status: str
    error_code: str | None = None
    http_status: int | None = None


@dataclass(frozen=True)
class Template:
    """An approved WhatsApp template: its content SID and the values of its variables."""

    content_sid: str
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SentMessage:
    """A message the provider holds for a number, as its message list shows it."""

    sid: str
    body: str
    status: str
    created_at: datetime | None


class ProviderUnreachable(Exception):
    """The provider could not be asked; the question stays open."""


class Transport(Protocol):
    name: str

    def send(
        self, to: str, body: str, channel: str, template: Template | None = None
    ) -> SendResult:
        """Hand one message to the provider; never raises for provider errors.

        With a template (WhatsApp), the provider renders it and `body` is only our copy.
        """

    def sent_to(self, to: str, channel: str, since: datetime) -> list[SentMessage]:
        """Messages the provider accepted for `to` on `channel` since `since`.

        Raises ProviderUnreachable when the provider cannot be asked.
        """


class SandboxTransport:
    """Keeps outbound messages local (stored and logged) when no Twilio account is set."""

    name = "sandbox"

    def send(
        self, to: str, body: str, channel: str, template: Template | None = None
    ) -> SendResult:
        log.info("sandbox %s message to %s: %d chars", channel, mask_phone(to), len(body))
        return SendResult(self.name, "SB" + secrets.token_hex(16), MessageStatus.SENT)

    def sent_to(self, to: str, channel: str, since: datetime) -> list[SentMessage]:
        """Nothing leaves the sandbox, so repeating a send whose answer was lost is harmless."""
        return []


class TwilioTransport:
    """Sends through Twilio's REST API with the real twilio client."""

    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The twilio client waits forever unless given a timeout.
        http = TwilioHttpClient(timeout=settings.twilio_http_timeout, logger=_twilio_http_log)
        self.client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token, http_client=http
        )
        if settings.twilio_api_base:
            self.client.api.base_url = settings.twilio_api_base
        self.status_callback = (
            f"{settings.public_base_url}/webhooks/twilio/status"
            if settings.public_base_url
            else None
        )

    def send(
        self, to: str, body: str, channel: str, template: Template | None = None
    ) -> SendResult:
        kwargs: dict[str, str] = {}
        if template is not None:
            kwargs["content_sid"] = template.content_sid
            kwargs["content_variables"] = json.dumps(template.variables, ensure_ascii=False)
        else:
            kwargs["body"] = body
        if channel == Channel.WHATSAPP:
            kwargs["to"] = f"whatsapp:{to}"
            kwargs["from_"] = f"whatsapp:{self.settings.twilio_whatsapp_from}"
        else:
            kwargs["to"] = to
            if self.settings.twilio_messaging_service_sid:
                kwargs["messaging_service_sid"] = self.settings.twilio_messaging_service_sid
            else:
                kwargs["from_"] = self.settings.twilio_sms_from
        if self.status_callback:
            kwargs["status_callback"] = self.status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            log.warning("twilio refused message to %s: %s %s", mask_phone(to), exc.status, exc.code)
            return SendResult(
                self.name, None, MessageStatus.FAILED, str(exc.code or exc.status), exc.status
            )
        except (TwilioException, OSError) as exc:
            log.warning("twilio unreachable for %s: %s", mask_phone(to), exc.__class__.__name__)
            return SendResult(self.name, None, MessageStatus.FAILED, NETWORK_ERROR)
        return SendResult(self.name, message.sid, message.status or MessageStatus.QUEUED)

    def sent_to(self, to: str, channel: str, since: datetime) -> list[SentMessage]:
        """Twilio's message list for the number (newest first), trimmed to `since`.

        The list is filtered by creation time here rather than by Twilio's DateSent,
        because a message still queued at Twilio has no send date yet.
        """
        address = f"whatsapp:{to}" if channel == Channel.WHATSAPP else to
        try:
            messages = self.client.messages.list(to=address, limit=50)
        except (TwilioException, OSError) as exc:
            raise ProviderUnreachable(exc.__class__.__name__) from exc
        return [
            SentMessage(m.sid, m.body or "", m.status or "", m.date_created)
            for m in messages
            if m.sid and (m.date_created is None or m.date_created >= since)
        ]


def provider_for(transport: Transport, channel: str) -> str:
    """The provider that will report on a message sent on `channel` (status callbacks
    carry its name): a transport that routes channels to several providers
    (bot/channel_routing.py) names the one behind it."""
    route = getattr(transport, "provider_for", None)
    return route(channel) if route is not None else transport.name


class Outbox:
    """Stores, then sends, messages that are not answers inside a webhook response."""

    def __init__(self, db: Database, transport: Transport) -> None:
        self.db = db
        self.transport = transport

    def send(self, contact_id: int, body: str, channel: str) -> Message:
        """Store the message, then send it, unless the contact has sent STOP.

        To an opted-out contact the message is stored as `opted_out` and never reaches
        the transport: the record shows what would have been said, the citizen's phone
        shows nothing. Callers read the outcome from the returned message's status.
        """
        with self.db.session() as session:
            contact = session.get_one(Contact, contact_id)
            message = Message(
                contact_id=contact.id,
                direction=Direction.OUTBOUND,
                channel=channel,
                provider=provider_for(self.transport, channel),
                body=body,
                status=MessageStatus.OPTED_OUT if contact.opted_out else MessageStatus.QUEUED,
            )
            session.add(message)
            to = contact.address
        if message.status == MessageStatus.OPTED_OUT:
            log.info("message %d to %s not sent: the contact sent STOP", message.id, mask_phone(to))
            return message
        result = self.transport.send(to, body, channel)
        with self.db.session() as session:
            stored = session.get_one(Message, message.id)
            stored.provider_sid = result.sid
            stored.status = result.status
            stored.error_code = result.error_code
        return stored
