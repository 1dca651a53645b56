"""Which provider carries which channel, from configuration alone."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.channels.routing import RoutingTransport, make_transport
from bot.config import Settings, load_settings
from bot.db import Database
from bot.channels.kannel import KannelTransport
from bot.channels.outbox import Outbox, SendResult, SentMessage, Template
from bot.channels.sandbox import SandboxTransport
from bot.channels.twilio import TwilioTransport
from bot.conversation.models import Contact, MessageStatus

TWILIO = {"twilio_account_sid": "AC" + "0" * 32, "twilio_auth_token": "token"}
KANNEL = {"kannel_username": "bansos", "kannel_password": "pw", "kannel_webhook_secret": "secret"}


def routes(transport: object) -> dict[str, str]:
    if isinstance(transport, RoutingTransport):
        return {channel: t.name for channel, t in transport.routes.items()}
    name = transport.name  # type: ignore[attr-defined]
    return {"sms": name, "whatsapp": name}


@pytest.mark.parametrize(
    "sms_transport, extra, expected, kind",
    [
        ("", {}, {"sms": "sandbox", "whatsapp": "sandbox"}, SandboxTransport),
        ("", TWILIO, {"sms": "twilio", "whatsapp": "twilio"}, TwilioTransport),
        ("twilio", TWILIO, {"sms": "twilio", "whatsapp": "twilio"}, TwilioTransport),
        ("sandbox", {}, {"sms": "sandbox", "whatsapp": "sandbox"}, SandboxTransport),
        ("kannel", {**TWILIO, **KANNEL}, {"sms": "kannel", "whatsapp": "twilio"}, RoutingTransport),
        ("kannel", KANNEL, {"sms": "kannel", "whatsapp": "sandbox"}, RoutingTransport),
        ("sandbox", TWILIO, {"sms": "sandbox", "whatsapp": "twilio"}, RoutingTransport),
    ],
)
def test_configuration_chooses_the_provider_of_each_channel(
    sms_transport: str, extra: dict[str, str], expected: dict[str, str], kind: type
) -> None:
    transport = make_transport(Settings(sms_transport=sms_transport, **extra))
    assert isinstance(transport, kind)
    assert routes(transport) == expected


@pytest.mark.parametrize(
    "sms_transport, extra, message",
    [
        ("twilio", {}, "TWILIO_ACCOUNT_SID"),
        ("kannel", {}, "KANNEL_USERNAME"),
        ("kannel", {"kannel_username": "u", "kannel_password": "p"}, "KANNEL_WEBHOOK_SECRET"),
        ("smpp", {}, "SMS_TRANSPORT must be one of kannel, twilio, sandbox"),
    ],
)
def test_a_choice_that_cannot_work_fails_at_start_up(sms_transport: str, extra: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_transport(Settings(sms_transport=sms_transport, **extra))


class Recording:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[str, str, str, Template | None]] = []

    def send(self, to: str, body: str, channel: str, template: Template | None = None) -> SendResult:
        self.sent.append((to, body, channel, template))
        return SendResult(self.name, f"{self.name}-1", MessageStatus.QUEUED)

    def sent_to(self, to: str, channel: str, since: datetime) -> list[SentMessage]:
        return [SentMessage(f"{self.name}-1", "", "queued", since)]


def test_routing_hands_each_channel_to_its_transport() -> None:
    sms, whatsapp = Recording("kannel"), Recording("twilio")
    router = RoutingTransport({"sms": sms, "whatsapp": whatsapp})
    template = Template("HX1", {"1": "Siti"})
    assert router.send("+6281234567890", "halo", "sms").provider == "kannel"
    assert router.send("+6281234567890", "halo", "whatsapp", template).provider == "twilio"
    assert sms.sent == [("+6281234567890", "halo", "sms", None)]
    assert whatsapp.sent == [("+6281234567890", "halo", "whatsapp", template)]
    since = datetime.now(timezone.utc)
    assert router.sent_to("+6281234567890", "whatsapp", since)[0].sid == "twilio-1"
    assert (router.provider_for("sms"), router.provider_for("whatsapp")) == ("kannel", "twilio")


def test_outbox_stores_the_provider_that_will_report_on_the_message(sqlite_db: Database) -> None:
    """Delivery reports are matched by (provider, id): a routed SMS must be stored as Kannel's."""
    router = RoutingTransport({"sms": Recording("kannel"), "whatsapp": Recording("twilio")})
    with sqlite_db.session() as session:
        contact = Contact(address="+6281234567890")
        session.add(contact)
        session.flush()
        contact_id = contact.id
    outbox = Outbox(sqlite_db, router)
    assert outbox.send(contact_id, "halo", "sms").provider == "kannel"
    assert outbox.send(contact_id, "halo", "whatsapp").provider == "twilio"


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("SMS_TRANSPORT", " Kannel ")
    monkeypatch.setenv("KANNEL_ALLOWED_IPS", "10.0.0.5, 10.1.0.0/16,")
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.delenv("KANNEL_CALLBACK_URL", raising=False)
    monkeypatch.setenv("KANNEL_HTTP_TIMEOUT", "4.5")
    settings = load_settings(env_file=f"{tmp_path}/missing.env")
    assert settings.sms_transport == "kannel"
    assert settings.kannel_allowed_ips == ("10.0.0.5", "10.1.0.0/16")
    assert settings.kannel_callback_url == "http://127.0.0.1:8123"
    assert settings.kannel_http_timeout == 4.5


def test_allow_list_defaults_to_this_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.delenv("KANNEL_ALLOWED_IPS", raising=False)
    assert load_settings(env_file=f"{tmp_path}/missing.env").kannel_allowed_ips == ("127.0.0.1", "::1")


def test_kannel_transport_needs_no_twilio_account() -> None:
    transport = make_transport(Settings(sms_transport="kannel", **KANNEL))
    assert isinstance(transport, RoutingTransport)
    assert isinstance(transport.routes["sms"], KannelTransport)
