"""Escalation through the signed Twilio webhook, with a scripted Rasa: what reaches Rasa
and what reaches staff. tests/e2e/test_handoff.py runs the same story with the real Rasa."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from bot.db import Database
from bot.handoff.service import BOT_BACK_TEXT, WAITING_LEAD
from bot.handoff.models import Handoff, HandoffReason, HandoffStatus
from bot.conversation.models import Contact, Message, MessageStatus
from bot.channels.sandbox import latest_id, sent_to
from tools.fake_rasa import FakeRasa
from tests.support.staff import make_staff, staff_services
from tests.support.twilio import TwilioSigner, sms_form, whatsapp_form
from tests.support.rasa import listening

MESSAGES = "/webhooks/twilio/messages"
PHONE = "+6281234567890"
_RESET_PATH = re.compile(r"^/conversations/(?P<key>[^/]+)/tracker/events$")


class ResettableRasa(FakeRasa):
    """The scripted Rasa, also accepting the restart event a hand back sends."""

    def __init__(self) -> None:
        super().__init__()
        self.resets: list[str] = []

    def respond(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        match = _RESET_PATH.match(path)
        if method == "POST" and match and body == {"event": "restart"}:
            self.resets.append(match.group("key"))
            return 200, {"sender_id": match.group("key"), "events": []}
        return super().respond(method, path, body)


@pytest.fixture
def rasa() -> Iterator[ResettableRasa]:
    with listening(ResettableRasa()) as fake:
        yield fake


@pytest.fixture
def app(app_config: dict[str, Any], rasa: ResettableRasa) -> Flask:
    return create_app({**app_config, "rasa_url": rasa.url})  # type: ignore[attr-defined]


def say(client: FlaskClient, signer: TwilioSigner, text: str, whatsapp: bool = False, **extra: Any) -> list[str]:
    form = whatsapp_form(PHONE, text, **extra) if whatsapp else sms_form(PHONE, text)
    response = signer.post(client, MESSAGES, form)
    assert response.status_code == 200
    return [(m.text or "") for m in ET.fromstring(response.data).iter("Message")]


def the_handoff(db: Database) -> Handoff:
    with db.session() as session:
        return session.scalars(select(Handoff)).one()


@pytest.mark.parametrize("text", ["PETUGAS", "petugas", " Petugas. "])
def test_petugas_escalates_in_the_core_without_rasa(client: FlaskClient, signer: TwilioSigner, rasa: ResettableRasa, sqlite_db: Database, text: str) -> None:
    replies = say(client, signer, text)
    assert len(replies) == 1 and "petugas" in replies[0].lower()
    assert rasa.received == []
    handoff = the_handoff(sqlite_db)
    assert (handoff.reason, handoff.status, handoff.channel) == (HandoffReason.REQUESTED, HandoffStatus.WAITING, "sms")


def test_while_waiting_for_an_officer_keywords_are_answered_and_free_text_is_told_once_when(client: FlaskClient, signer: TwilioSigner, rasa: ResettableRasa, sqlite_db: Database) -> None:
    say(client, signer, "PETUGAS", whatsapp=True)
    told = say(client, signer, "halo? masih ada orang?", whatsapp=True)
    assert len(told) == 1 and told[0].startswith(WAITING_LEAD) and "Petugas" in told[0] and "MENU" in told[0]
    assert say(client, signer, "", whatsapp=True, media=[("https://api.twilio.com/m/1", "image/jpeg")]) == []
    assert say(client, signer, "JADWAL", whatsapp=True) == ["Halo, ada yang bisa dibantu?"]
    assert say(client, signer, "MENU", whatsapp=True) == ["Halo, ada yang bisa dibantu?"]
    assert say(client, signer, "TIKET ADU-20261123-K7QX", whatsapp=True) == ["Halo, ada yang bisa dibantu?"]
    assert "petugas" in say(client, signer, "PETUGAS", whatsapp=True)[0]
    assert say(client, signer, "masih lama?", whatsapp=True) == [], "told once, not at every message"
    assert [r["message"] for r in rasa.received] == [
        "/ask_disbursement_schedule", "/help", '/check_ticket{"ticket_ref": "ADU-20261123-K7QX"}',
    ]
    assert the_handoff(sqlite_db).status == HandoffStatus.WAITING
    with sqlite_db.session() as session:
        statuses = session.scalars(select(Message.status).where(Message.direction == "in").order_by(Message.id)).all()
    assert statuses == [
        MessageStatus.ANSWERED, MessageStatus.WITH_STAFF, MessageStatus.WITH_STAFF, MessageStatus.ANSWERED,
        MessageStatus.ANSWERED, MessageStatus.ANSWERED, MessageStatus.WITH_STAFF, MessageStatus.WITH_STAFF,
    ]


def test_while_waiting_a_form_started_by_a_keyword_gets_its_answers(client: FlaskClient, signer: TwilioSigner, rasa: ResettableRasa) -> None:
    say(client, signer, "PETUGAS")
    assert say(client, signer, "ADU") == ["Halo, ada yang bisa dibantu?"]
    rasa.active_loop = "report_form"
    assert say(client, signer, "2") == ["Halo, ada yang bisa dibantu?"], "the form's answer reaches the bot"
    assert say(client, signer, "uang belum cair") == ["Halo, ada yang bisa dibantu?"]
    rasa.active_loop = ""
    told = say(client, signer, "pak tolong dibantu")
    assert len(told) == 1 and told[0].startswith(WAITING_LEAD), "after the form, free text is the officer's again"
    assert [r["message"] for r in rasa.received] == ["/file_complaint", "2", "uang belum cair"]


def test_once_an_officer_holds_the_chat_nothing_reaches_rasa_and_staff_see_everything(app: Flask, client: FlaskClient, signer: TwilioSigner, rasa: ResettableRasa, sqlite_db: Database) -> None:
    say(client, signer, "PETUGAS", whatsapp=True)
    staff_services(app).desk.claim(make_staff(app, "agen"), the_handoff(sqlite_db).id)
    assert say(client, signer, "halo? masih ada orang?", whatsapp=True) == []
    assert say(client, signer, "", whatsapp=True, media=[("https://api.twilio.com/m/1", "image/jpeg")]) == []
    assert say(client, signer, "JADWAL", whatsapp=True) == []
    assert "petugas" in say(client, signer, "PETUGAS", whatsapp=True)[0]
    assert rasa.received == []
    with sqlite_db.session() as session:
        statuses = session.scalars(select(Message.status).where(Message.direction == "in").order_by(Message.id)).all()
    assert statuses == [MessageStatus.ANSWERED] + [MessageStatus.WITH_STAFF] * 4


def test_stop_still_works_while_a_person_has_the_chat(client: FlaskClient, signer: TwilioSigner, rasa: ResettableRasa, sqlite_db: Database) -> None:
    say(client, signer, "PETUGAS")
    assert "MULAI" in say(client, signer, "STOP")[0]
    with sqlite_db.session() as session:
        assert session.scalars(select(Contact.opted_out)).one() is True
    assert rasa.received == []


@pytest.mark.parametrize(
    "text, reason",
    [("saya sudah putus asa, mau bunuh diri", HandoffReason.DISTRESS), ("dasar goblok, uang saya mana", HandoffReason.ABUSIVE)],
)
def test_distress_and_abuse_go_to_a_person_not_the_bot(client: FlaskClient, signer: TwilioSigner, rasa: ResettableRasa, sqlite_db: Database, text: str, reason: str) -> None:
    reply = say(client, signer, text)[0]
    assert "petugas" in reply
    assert rasa.received == []
    assert the_handoff(sqlite_db).reason == reason


def test_a_replayed_message_is_not_routed_twice(client: FlaskClient, signer: TwilioSigner, sqlite_db: Database) -> None:
    say(client, signer, "PETUGAS")
    form = sms_form(PHONE, "ini pesan saya")
    for _ in range(2):
        assert signer.post(client, MESSAGES, form).status_code == 200
    with sqlite_db.session() as session:
        assert len(session.scalars(select(Message).where(Message.body == "ini pesan saya")).all()) == 1


def test_hand_back_restarts_rasa_and_the_bot_answers_again(app: Flask, client: FlaskClient, signer: TwilioSigner, rasa: ResettableRasa, sqlite_db: Database) -> None:
    say(client, signer, "PETUGAS")
    say(client, signer, "tolong cek data saya")
    agent = make_staff(app, "agen")
    handoff_id = the_handoff(sqlite_db).id
    staff_services(app).desk.hand_back(agent, handoff_id)
    with sqlite_db.session() as session:
        key = session.scalars(select(Contact.conversation_key)).one()
    assert rasa.resets == [key]
    assert say(client, signer, "halo") == ["Halo, ada yang bisa dibantu?"]
    assert [r["message"] for r in rasa.received] == ["halo"]


def test_the_chat_terminal_feed_shows_staff_replies_sent_later(app: Flask, client: FlaskClient, signer: TwilioSigner, sqlite_db: Database) -> None:
    start = latest_id(sqlite_db)
    say(client, signer, "PETUGAS")
    agent = make_staff(app, "agen")
    staff_services(app).desk.reply(agent, the_handoff(sqlite_db).id, "Halo, saya petugas.")
    feed = sent_to(sqlite_db, "0812-3456-7890", start)
    assert [(item.body, item.from_staff) for item in feed] == [("Halo, saya petugas.", True)]
    assert sent_to(sqlite_db, PHONE, feed[-1].id) == []


def test_after_stop_neither_a_staff_reply_nor_the_hand_back_notice_is_sent(app: Flask, client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = staff_services(app).desk
    handed: list[str] = []
    real_send = desk.later.outbox.transport.send

    def recording_send(to: str, body: str, channel: str, template: Any = None) -> Any:
        handed.append(body)
        return real_send(to, body, channel, template)

    monkeypatch.setattr(desk.later.outbox.transport, "send", recording_send)
    say(client, signer, "PETUGAS")
    assert "MULAI" in say(client, signer, "STOP")[0], "the answer to STOP itself still goes out"
    agent = make_staff(app, "agen")
    handoff_id = the_handoff(sqlite_db).id
    result = desk.reply(agent, handoff_id, "Halo, saya petugas.")
    assert handed == [] and not result.delivered_to_provider and result.opted_out
    assert desk.hand_back(agent, handoff_id) is False
    assert handed == []
    with sqlite_db.session() as session:
        sent_later = session.scalars(
            select(Message.body).where(Message.direction == "out", Message.status == MessageStatus.OPTED_OUT)
        ).all()
    assert sent_later == ["Halo, saya petugas.", BOT_BACK_TEXT], "kept for the record, marked as not sent"
    assert "STOP" in say(client, signer, "MULAI")[0], "the answer to MULAI still goes out"
