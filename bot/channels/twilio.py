"""Twilio, which carries WhatsApp (and SMS where it offers it both ways): everything
the core needs to know of it in one place, in the style of courier's handlers.

- its transport (the REST API through the real twilio client, with a timeout),
- its statuses and error codes, as our statuses and what each error means for us,
- its inbound form, decoded into the core's `InboundMessage`,
- its settings (the TWILIO_* variables of bot/config.py).

The webhooks that face it (signature check, TwiML) are webhooks/twilio.py.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bot.channels.outbox import (
    NETWORK_ERROR,
    ProviderUnreachable,
    SendResult,
    SentMessage,
    Template,
    Transport,
)
from bot.config import Settings
from bot.conversation.inbound import InboundMessage, InvalidInbound
from bot.conversation.models import Channel, MessageStatus
from bot.rules.phone import mask_phone

log = logging.getLogger(__name__)
# The twilio client logs every request with its headers at INFO; a campaign of
# 100,000 notices would bury everything else, so its own logger speaks up on warnings only.
_twilio_http_log = logging.getLogger(f"{__name__}.http")
_twilio_http_log.setLevel(logging.WARNING)

PROVIDER = "twilio"
MAX_MEDIA = 10
# Twilio's ids are "SM"/"MM" and 32 hex digits; anything else (a NUL byte, which
# PostgreSQL refuses to store, among others) is not from Twilio.
_SID_RE = re.compile(r"[A-Za-z0-9]{1,64}")

# Twilio's MessageStatus values → ours. `accepted`/`scheduled` are Twilio-side queueing.
TWILIO_STATUSES: dict[str, str] = {
    "accepted": MessageStatus.QUEUED,
    "scheduled": MessageStatus.QUEUED,
    "queued": MessageStatus.QUEUED,
    "sending": MessageStatus.SENDING,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}

# Provider error codes we act on.
ERROR_OPTED_OUT = "21610"
ERROR_WHATSAPP_OUTSIDE_WINDOW = "63016"

# Give up: (why, in the words operators read; whether the number itself is bad).
PERMANENT_ERRORS: dict[str, tuple[str, bool]] = {
    ERROR_OPTED_OUT: ("unsubscribed: the recipient replied STOP to our sender", False),
    "21211": ("invalid phone number", True),
    "21614": ("not a mobile number", True),
    "30005": ("unknown or inactive number", True),
    "30006": ("landline or unreachable carrier", True),
    "30007": ("filtered as spam by the carrier", False),
}
# Try again later. Any HTTP 429 or 5xx is transient too, whatever its code.
TRANSIENT_ERRORS: dict[str, str] = {
    "20429": "too many requests",
    "30001": "provider queue overflow",
    "30003": "handset unreachable or switched off",
    "30008": "unknown delivery error",
}

def parse_inbound(form: Mapping[str, str]) -> InboundMessage:
    """Twilio's "a message comes in" form in the core's terms.

    Raises InvalidInbound when Twilio's required fields are missing or malformed.
    """
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    sender = (form.get("From") or "").strip()
    if not sender or not _SID_RE.fullmatch(sid):
        raise InvalidInbound("a Twilio MessageSid and From are required")
    try:
        num_media = min(int(form.get("NumMedia") or 0), MAX_MEDIA)
    except ValueError:
        num_media = 0
    media = [
        {"url": form[f"MediaUrl{i}"], "content_type": form.get(f"MediaContentType{i}", "")}
        for i in range(num_media)
        if form.get(f"MediaUrl{i}")
    ]
    tapped = tapped_answer(form)
    return InboundMessage(
        provider=PROVIDER,
        provider_sid=sid,
        sender=sender,
        body=tapped or form.get("Body") or "",
        media=media,
        tapped_title=(form.get("ButtonText") or form.get("ListTitle") or form.get("Body") or "").strip() if tapped else "",
    )


def tapped_answer(form: Mapping[str, str]) -> str:
    """What a tapped WhatsApp button or list item sends: its id (our payload, the
    typed answer it stands for), which Twilio posts as ButtonPayload for a quick
    reply and ListId for a list item, beside the shown title in Body. Empty for a
    typed message."""
    return (form.get("ButtonPayload") or form.get("ListId") or "").strip()


def valid_sid(sid: str) -> bool:
    """Whether `sid` could be one of Twilio's message ids."""
    return bool(_SID_RE.fullmatch(sid))


def make_client(settings: Settings) -> Client:
    """The real twilio client, with a timeout, at TWILIO_API_BASE when set (a local fake).

    The Messages API (`api`) and the Content API (`content`) are separate domains
    of the client; both are pointed at the same base.
    """
    # The twilio client waits forever unless given a timeout.
    http = TwilioHttpClient(timeout=settings.twilio_http_timeout, logger=_twilio_http_log)
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http)
    if settings.twilio_api_base:
        client.api.base_url = settings.twilio_api_base
        client.content.base_url = settings.twilio_api_base
    return client


class TwilioTransport:
    """Sends through Twilio's REST API with the real twilio client."""

    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = make_client(settings)
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


def make_transport(settings: Settings) -> Transport:
    """Twilio as the SMS transport (SMS_TRANSPORT=twilio): only with real credentials."""
    if not settings.twilio_enabled:
        raise ValueError("SMS_TRANSPORT=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    return TwilioTransport(settings)
