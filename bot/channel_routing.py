"""Which provider carries which channel: configuration, not code.

An Indonesian deployment sends SMS through Kannel (an aggregator's SMPP account: Twilio
does not offer two-way SMS there) and WhatsApp through Twilio; a pilot may keep SMS on
Twilio, and a laptop keeps everything in the sandbox. `SMS_TRANSPORT` names the SMS
provider; WhatsApp always goes to Twilio when its credentials are set, else the sandbox.

When both channels end up with the same provider, that transport is used as it is, so
nothing changes for a deployment that never set SMS_TRANSPORT.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from bot.config import Settings
from bot.kannel import KannelTransport
from bot.messaging import SandboxTransport, SendResult, SentMessage, Template, Transport, TwilioTransport
from bot.models import Channel

ROUTING = "routing"


def _twilio(settings: Settings) -> Transport:
    if not settings.twilio_enabled:
        raise ValueError("SMS_TRANSPORT=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    return TwilioTransport(settings)


_SMS_TRANSPORTS: dict[str, Callable[[Settings], Transport]] = {
    "kannel": KannelTransport,
    "twilio": _twilio,
    "sandbox": lambda settings: SandboxTransport(),
}


class RoutingTransport:
    """A Transport that hands each message to the transport configured for its channel.

    Messages are stored before they are sent, under the provider that will report on
    them: `provider_for(channel)` names it (bot.messaging.provider_for asks), while
    `name` only names the router.
    """

    name = ROUTING

    def __init__(self, routes: Mapping[str, Transport]) -> None:
        self.routes = dict(routes)

    def provider_for(self, channel: str) -> str:
        return self.routes[channel].name

    def send(
        self, to: str, body: str, channel: str, template: Template | None = None
    ) -> SendResult:
        return self.routes[channel].send(to, body, channel, template)

    def sent_to(self, to: str, channel: str, since: datetime) -> list[SentMessage]:
        return self.routes[channel].sent_to(to, channel, since)


def make_transport(settings: Settings) -> Transport:
    """The outbound transport the settings ask for; fails at start-up on a bad choice."""
    whatsapp: Transport = TwilioTransport(settings) if settings.twilio_enabled else SandboxTransport()
    choice = settings.sms_transport or ""
    if not choice:
        return whatsapp
    if choice not in _SMS_TRANSPORTS:
        raise ValueError(f"SMS_TRANSPORT must be one of {', '.join(_SMS_TRANSPORTS)}, not {choice!r}")
    if choice == whatsapp.name:
        return whatsapp
    return RoutingTransport({Channel.SMS: _SMS_TRANSPORTS[choice](settings), Channel.WHATSAPP: whatsapp})
