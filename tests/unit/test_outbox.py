"""The outbound port honours STOP for every message it sends, whoever asks."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from bot.db import Database
from bot.channels.later import LaterMessage, LaterSender
from bot.channels.outbox import NETWORK_ERROR, Outbox, ProviderUnreachable, SendResult, SentMessage, Template
from bot.channels.window import REPORT_STATUS
from bot.conversation.models import Channel, Contact, Direction, Message, MessageStatus, utcnow
from bot.conversation.subscriptions import set_opted_out


@dataclass
class RecordingTransport:
    name: str = "twilio"
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    def send(self, to: str, body: str, channel: str) -> SendResult:
        self.sent.append((to, body, channel))
        return SendResult(self.name, f"SM{len(self.sent):032d}", MessageStatus.QUEUED)


def test_the_outbox_keeps_but_never_sends_a_message_to_a_contact_who_sent_stop(sqlite_db: Database) -> None:
    with sqlite_db.session() as session:
        contact = Contact(address="+6281200000090", last_channel=Channel.SMS)
        session.add(contact)
    transport = RecordingTransport()
    outbox = Outbox(sqlite_db, transport)  # type: ignore[arg-type]
    set_opted_out(sqlite_db, contact.conversation_key, True)
    kept = outbox.send(contact.id, "Laporan Anda sudah diproses.", Channel.SMS)
    assert transport.sent == []
    with sqlite_db.session() as session:
        stored = session.get_one(Message, kept.id)
        assert (stored.status, stored.provider_sid, stored.body) == (MessageStatus.OPTED_OUT, None, "Laporan Anda sudah diproses.")
    set_opted_out(sqlite_db, contact.conversation_key, False)
    assert outbox.send(contact.id, "Halo lagi", Channel.SMS).status == MessageStatus.QUEUED
    assert transport.sent == [("+6281200000090", "Halo lagi", Channel.SMS)]


@dataclass
class UnansweredTransport:
    """Every send times out; the provider's list holds `listed`, or cannot be asked."""

    listed: list[SentMessage] | None = None
    name: str = "twilio"
    sent: list[tuple[str, str]] = field(default_factory=list)

    def send(self, to: str, body: str, channel: str, template: Template | None = None) -> SendResult:
        self.sent.append((channel, template.content_sid if template else body))
        return SendResult(self.name, None, MessageStatus.FAILED, NETWORK_ERROR)

    def sent_to(self, to: str, channel: str, since: datetime) -> list[SentMessage]:
        if self.listed is None:
            raise ProviderUnreachable("timed out")
        return self.listed


def whatsapp_user_two_days_ago(db: Database) -> int:
    with db.session() as session:
        contact = Contact(address="+6281200000091", last_channel=Channel.WHATSAPP)
        session.add(contact)
        session.flush()
        session.add(Message(
            contact_id=contact.id, direction=Direction.INBOUND, channel=Channel.WHATSAPP, provider="twilio",
            body="halo", status=MessageStatus.ANSWERED, created_at=utcnow() - timedelta(days=2),
        ))
        return contact.id


STATUS_NOTICE = LaterMessage(REPORT_STATUS, "Laporan ADU-1 sudah diverifikasi.", {"reference": "ADU-1"})


@pytest.mark.parametrize(
    "listed, sends, status",
    [
        (None, [(Channel.WHATSAPP, "HX1")], MessageStatus.QUEUED),
        ([SentMessage("SM" + "1" * 32, "ADU-1", "queued", None)], [(Channel.WHATSAPP, "HX1")], MessageStatus.QUEUED),
        ([], [(Channel.WHATSAPP, "HX1"), (Channel.SMS, "Laporan ADU-1 sudah diverifikasi.")], MessageStatus.FAILED),
    ],
    ids=["provider-cannot-be-asked", "provider-took-it", "provider-has-nothing"],
)
def test_a_template_that_timed_out_falls_back_to_sms_only_when_the_provider_has_nothing(
    sqlite_db: Database, listed: list[SentMessage] | None, sends: list[tuple[str, str]], status: str
) -> None:
    contact_id = whatsapp_user_two_days_ago(sqlite_db)
    transport = UnansweredTransport(listed)
    sender = LaterSender(Outbox(sqlite_db, transport, {"report_status": "HX1"}))  # type: ignore[arg-type]
    result = sender.send(contact_id, STATUS_NOTICE)
    assert transport.sent == sends, "a send with an unknown outcome is never sent a second time"
    template = result.messages[0]
    assert (template.template_sid, template.status) == ("HX1", status)
    if listed:
        assert template.provider_sid == listed[0].sid and template.error_code is None
    if listed is None:
        assert template.error_code == NETWORK_ERROR and result.accepted, "left as unknown, not failed"
