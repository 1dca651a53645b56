"""The outbound messaging port: Twilio when credentials are set, else the sandbox.

Callers never send directly: `Outbox.send` stores the message as `queued` first, then
hands it to the transport and records what the provider said, so a crash between the
two leaves a visible queued row instead of a silent loss.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Protocol

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bot.config import Settings
from bot.db import Database
from bot.models import Channel, Contact, Direction, Message, MessageStatus
from bot.phone import mask_phone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendResult:
    provider: str
    sid: str | None
    status: str
    error_code: str | None = None


class Transport(Protocol):
    name: str

    def send(self, to: str, body: str, channel: str) -> SendResult:
        """Hand one message to the provider; never raises for provider errors."""


class SandboxTransport:
    """Keeps outbound messages local (stored and logged) when no Twilio account is set."""

    name = "sandbox"

    def send(self, to: str, body: str, channel: str) -> SendResult:
        log.info("sandbox %s message to %s: %d chars", channel, mask_phone(to), len(body))
        return SendResult(self.name, "SB" + secrets.token_hex(16), MessageStatus.SENT)


class TwilioTransport:
    """Sends through Twilio's REST API with the real twilio client."""

    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The twilio client waits forever unless given a timeout.
        http = TwilioHttpClient(timeout=settings.twilio_http_timeout)
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

    def send(self, to: str, body: str, channel: str) -> SendResult:
        kwargs: dict[str, str] = {"body": body}
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
            return SendResult(self.name, None, MessageStatus.FAILED, str(exc.code or exc.status))
        except (TwilioException, OSError) as exc:
            log.warning("twilio unreachable for %s: %s", mask_phone(to), exc.__class__.__name__)
            return SendResult(self.name, None, MessageStatus.FAILED, "network")
        return SendResult(self.name, message.sid, message.status or MessageStatus.QUEUED)


def make_transport(settings: Settings) -> Transport:
    return TwilioTransport(settings) if settings.twilio_enabled else SandboxTransport()


class Outbox:
    """Stores, then sends, messages that are not answers inside a webhook response."""

    def __init__(self, db: Database, transport: Transport) -> None:
        self.db = db
        self.transport = transport

    def send(self, contact_id: int, body: str, channel: str) -> Message:
        with self.db.session() as session:
            contact = session.get_one(Contact, contact_id)
            message = Message(
                contact_id=contact.id,
                direction=Direction.OUTBOUND,
                channel=channel,
                provider=self.transport.name,
                body=body,
                status=MessageStatus.QUEUED,
            )
            session.add(message)
            to = contact.address
        result = self.transport.send(to, body, channel)
        with self.db.session() as session:
            stored = session.get_one(Message, message.id)
            stored.provider_sid = result.sid
            stored.status = result.status
            stored.error_code = result.error_code
        return stored
