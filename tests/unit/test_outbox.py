"""The outbound port honours STOP for every message it sends, whoever asks."""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.db import Database
from bot.channels.outbox import Outbox, SendResult
from bot.conversation.models import Channel, Contact, Message, MessageStatus
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
