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

from bot.channels import kannel, sandbox, twilio
from bot.channels.outbox import SendResult, SentMessage, Template, Transport
from bot.config import Settings
from bot.conversation.models import Channel

ROUTING = "routing"

# The registry of providers that can carry SMS (SMS_TRANSPORT): a new provider is one
# module in bot/channels/ with its `make_transport`, one blueprint in webhooks/, and
# one line here.
PROVIDERS: dict[str, Callable[[Settings], Transport]] = {
    kannel.PROVIDER: kannel.make_transport,
    twilio.PROVIDER: twilio.make_transport,
    sandbox.PROVIDER: sandbox.make_transport,
}


class RoutingTransport:
    """A Transport that hands each message to the transport configured for its channel.

    Messages are stored before they are sent, under the provider that will report on
    them: `provider_for(channel)` names it (bot.channels.outbox.provider_for asks), while
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
    whatsapp = twilio.TwilioTransport(settings) if settings.twilio_enabled else sandbox.SandboxTransport()
    choice = settings.sms_transport or ""
    if not choice:
        return whatsapp
    if choice not in PROVIDERS:
        raise ValueError(f"SMS_TRANSPORT must be one of {', '.join(PROVIDERS)}, not {choice!r}")
    if choice == whatsapp.name:
        return whatsapp
    return RoutingTransport({Channel.SMS: PROVIDERS[choice](settings), Channel.WHATSAPP: whatsapp})
