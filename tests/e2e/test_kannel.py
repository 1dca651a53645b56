"""SMS through a real Kannel gateway: bearerbox and smsbox, with fakesmsc as the phones.

A phone texts the gateway; smsbox calls the app's sms-service endpoint over HTTP (the
app is served by werkzeug in a thread), the real Rasa and action server answer, and
the reply travels back through Kannel to the phone. What the app sends on its own (a
staff reply through its outbox, a disbursement notice through the dispatcher) goes
through Kannel because SMS_TRANSPORT=kannel says so, reaches the phone, and its
delivery reports come back to the app's DLR endpoint. Skipped, with the reason, where Kannel is not installed (`make test`
installs it where it can: Debian packages `kannel` and `kannel-extras`, as root).
"""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from app import create_app
from bot.channels.routing import make_transport
from bot.db import Database
from bot.notices.dispatcher import Dispatcher
from bot.conversation.models import Contact, Direction, Message, MessageStatus
from bot.notices.planning import NoticePlanner
from bot.notices.models import Notice, NoticeStatus
from bot.services import Services
from bot.rules.smstext import is_gsm7, segment_count
from tests.support.phones import new_number
from tools.databases import migrated_database
from tests.support.kannel import KannelGateway, KannelTestConfig, find_binaries, kannel_gateway
from tools.notices import T0, add_disbursement, add_recipient, day_after, notice_settings
from tools.processes import E2E_RASA_TOKEN, free_port

BINARIES = find_binaries()
pytestmark = pytest.mark.skipif(
    BINARIES is None,
    reason="Kannel is not installed (bearerbox, smsbox and fakesmsc from the Debian packages "
    "kannel and kannel-extras); `make test` installs them when run as root",
)
SHORT_CODE = "99171"


@pytest.fixture(scope="module")
def kannel_secret() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def app_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def kannel_config(app_port: int, kannel_secret: str) -> KannelTestConfig:
    return KannelTestConfig.on_free_ports(f"http://127.0.0.1:{app_port}", kannel_secret)


@pytest.fixture(scope="module")
def kannel_app(e2e_db: Database, rasa_url: str, kannel_config: KannelTestConfig, app_port: int) -> Flask:
    return create_app(
        {
            "database_url": e2e_db.url,
            "rasa_url": rasa_url,
            "secret_key": "e2e-secret",
            "rasa_token": E2E_RASA_TOKEN,
            "sms_transport": "kannel",
            "twilio_account_sid": "",
            "kannel_sendsms_url": kannel_config.sendsms_url,
            "kannel_username": kannel_config.sendsms_username,
            "kannel_password": kannel_config.sendsms_password,
            "kannel_sms_from": SHORT_CODE,
            "kannel_callback_url": f"http://127.0.0.1:{app_port}",
            "kannel_webhook_secret": kannel_config.webhook_secret,
            "kannel_allowed_ips": ("127.0.0.1",),
        }
    )


@contextmanager
def _serving(app: Flask, port: int) -> Iterator[str]:
    """The app on a real port, so Kannel can call it over HTTP."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def served_app(kannel_app: Flask, app_port: int) -> Iterator[str]:
    with _serving(kannel_app, app_port) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(served_app: str, kannel_config: KannelTestConfig, e2e_workdir: Path) -> Iterator[KannelGateway]:
    assert BINARIES is not None
    with kannel_gateway(BINARIES, kannel_config, e2e_workdir / "kannel") as running:
        yield running


@pytest.fixture
def phone() -> str:
    """A citizen's number as Indonesian aggregators send it: country code, no plus."""
    return new_number().lstrip("+")


def _messages(db: Database, number: str) -> list[Message]:
    with db.session() as session:
        contact = session.scalars(select(Contact).where(Contact.address == "+" + number)).one()
        return list(session.scalars(select(Message).where(Message.contact_id == contact.id).order_by(Message.id)))


def _wait_for_status(db: Database, message_id: int, wanted: str, gateway: KannelGateway, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as session:
            status = session.get_one(Message, message_id).status
        if status == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"message {message_id} is {status}, not {wanted}\n{gateway.log_tail()}")


def test_sms_from_a_phone_reaches_the_bot_and_the_answer_reaches_the_phone(
    gateway: KannelGateway, phone: str, e2e_db: Database
) -> None:
    gateway.phones.text(phone, "halo")
    [reply] = gateway.phones.wait_for(phone)
    assert reply.sender == SHORT_CODE
    assert "MENU" in reply.text
    inbound, outbound = _messages(e2e_db, phone)
    assert (inbound.provider, inbound.direction, inbound.channel) == ("kannel", Direction.INBOUND, "sms")
    assert inbound.body == "halo" and inbound.status == MessageStatus.ANSWERED
    assert outbound.in_reply_to_id == inbound.id and outbound.body == reply.text


def test_menu_keyword_answer_is_gsm7_and_arrives_whole(gateway: KannelGateway, phone: str) -> None:
    gateway.phones.text(phone, "MENU")
    [reply] = gateway.phones.wait_for(phone)
    for keyword in ("CEK", "JADWAL", "RIWAYAT", "USUL", "SANGGAH", "ADU", "PETUGAS"):
        assert keyword in reply.text
    assert is_gsm7(reply.text) and segment_count(reply.text) <= 3


def test_ucs2_sms_with_emoji_is_stored_intact(gateway: KannelGateway, phone: str, e2e_db: Database) -> None:
    text = "Terima kasih 🙏 Bu"
    gateway.phones.text(phone, text)
    [reply] = gateway.phones.wait_for(phone)
    assert reply.text and is_gsm7(reply.text)
    assert _messages(e2e_db, phone)[0].body == text


def test_sms_the_app_sends_goes_through_kannel_and_is_reported_delivered(
    gateway: KannelGateway, kannel_app: Flask, phone: str, e2e_db: Database
) -> None:
    gateway.phones.text(phone, "halo")
    gateway.phones.wait_for(phone)
    contact_id = _messages(e2e_db, phone)[0].contact_id
    services: Services = kannel_app.extensions["bansos"]
    notice = "Bantuan PKH tahap 2 cair 12 Mei di BRI. Info: balas JADWAL"
    sent = services.outbox.send(contact_id, notice, "sms")
    assert sent.provider == "kannel" and sent.provider_sid
    received = gateway.phones.wait_for(phone, count=2)[1]
    assert received.text == notice and received.coding == "text"
    _wait_for_status(e2e_db, sent.id, MessageStatus.DELIVERED, gateway)


def test_text_beyond_gsm7_goes_out_as_ucs2(
    gateway: KannelGateway, kannel_app: Flask, phone: str, e2e_db: Database
) -> None:
    gateway.phones.text(phone, "halo")
    gateway.phones.wait_for(phone)
    contact_id = _messages(e2e_db, phone)[0].contact_id
    services: Services = kannel_app.extensions["bansos"]
    staff_reply = "Baik Bu, kami cek dulu 🙏"
    sent = services.outbox.send(contact_id, staff_reply, "sms")
    received = gateway.phones.wait_for(phone, count=2)[1]
    assert (received.text, received.coding) == (staff_reply, "ucs-2")
    _wait_for_status(e2e_db, sent.id, MessageStatus.DELIVERED, gateway)


def test_disbursement_notice_reaches_the_phone_and_its_delivery_report_reaches_us(
    gateway: KannelGateway, kannel_config: KannelTestConfig, tmp_path: Path
) -> None:
    """The notice outbox of its own database, so no demo household is notified."""
    with migrated_database("sqlite", tmp_path) as db:
        port = free_port()
        settings = notice_settings(
            db,
            sms_transport="kannel",
            kannel_sendsms_url=kannel_config.sendsms_url,
            kannel_username=kannel_config.sendsms_username,
            kannel_password=kannel_config.sendsms_password,
            kannel_sms_from=SHORT_CODE,
            kannel_callback_url=f"http://127.0.0.1:{port}",
            kannel_webhook_secret=kannel_config.webhook_secret,
        )
        phone = new_number()
        add_disbursement(db, add_recipient(db, phone=phone), day_after(2))
        with _serving(create_app(asdict(settings)), port):
            NoticePlanner(db, settings, clock=lambda: T0).plan()
            report = Dispatcher(db, make_transport(settings), settings, clock=lambda: T0).run()
            assert report.as_dict().get("sent") == 1, report.as_dict()
            [received] = gateway.phones.wait_for(phone)
            assert received.sender == SHORT_CODE and is_gsm7(received.text)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                with db.session() as session:
                    notice = session.scalars(select(Notice)).one()
                    if notice.status == NoticeStatus.DELIVERED:
                        break
                time.sleep(0.2)
            assert notice.status == NoticeStatus.DELIVERED, gateway.log_tail()
            assert notice.body == received.text
