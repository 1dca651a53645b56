"""A citizen's first minutes with the assistant, through the real Rasa and action server."""
from __future__ import annotations

from sqlalchemy import select

from bot.db import Database
from bot.conversation.models import Contact, Direction, Message, MessageStatus
from bot.rules.smstext import is_gsm7, segment_count
from tests.support.phones import Phone

KEYWORDS = ["CEK", "JADWAL", "RIWAYAT", "USUL", "SANGGAH", "ADU", "TIKET", "PETUGAS", "STOP"]


def test_greeting_by_sms_is_indonesian_and_points_to_the_menu(sms_phone: Phone) -> None:
    reply = sms_phone.say("halo")
    assert "MENU" in reply
    assert any(word in reply for word in ("Selamat", "Halo", "Bapak/Ibu"))


def test_menu_keyword_lists_every_service_within_an_sms(sms_phone: Phone) -> None:
    replies = sms_phone.send("MENU")
    assert len(replies) == 1
    for keyword in KEYWORDS:
        assert keyword in replies[0]
    assert is_gsm7(replies[0]) and segment_count(replies[0]) <= 2


def test_help_in_free_text_shows_the_menu_too(sms_phone: Phone) -> None:
    assert "JADWAL" in sms_phone.say("tolong bantu sy, bisa apa aja?")


def test_whatsapp_menu_is_the_richer_version(wa_phone: Phone, sms_phone: Phone) -> None:
    whatsapp = wa_phone.say("menu")
    assert all(keyword in whatsapp for keyword in KEYWORDS)
    assert len(whatsapp) > len(sms_phone.say("menu"))


def test_out_of_scope_gets_a_polite_answer_and_the_way_back(sms_phone: Phone) -> None:
    reply = sms_phone.say("siapa juara piala dunia tahun ini?")
    assert "MENU" in reply


def test_thanks_and_goodbye(sms_phone: Phone) -> None:
    assert sms_phone.say("makasih banyak ya")
    assert sms_phone.say("dadah, sampai jumpa")


def test_emoji_only_message_gets_an_indonesian_answer(wa_phone: Phone) -> None:
    assert "MENU" in wa_phone.say("🙏🙏😊")


def test_conversation_is_stored_in_and_out(sms_phone: Phone, e2e_db: Database) -> None:
    sms_phone.send("halo")
    sms_phone.send("menu")
    with e2e_db.session() as session:
        contact = session.scalars(select(Contact).where(Contact.address == sms_phone.number)).one()
        messages = session.scalars(select(Message).where(Message.contact_id == contact.id).order_by(Message.id)).all()
    inbound = [m for m in messages if m.direction == Direction.INBOUND]
    outbound = [m for m in messages if m.direction == Direction.OUTBOUND]
    assert [m.body for m in inbound] == ["halo", "menu"]
    assert all(m.status == MessageStatus.ANSWERED for m in inbound)
    assert {m.in_reply_to_id for m in outbound} == {m.id for m in inbound}
