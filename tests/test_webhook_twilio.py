"""The Twilio webhooks from a caller's point of view: every contract case and bad input.

Rasa is a scripted local HTTP stand-in here so its failures (down, slow, silent) can be
produced on demand; tests/e2e/ runs the same path against the real Rasa server.
"""
from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from bot.conversation import replies
from bot.db import Database
from bot.conversation.models import Contact, Direction, Message, MessageStatus
from bot.rules.smstext import is_gsm7, segment_count
from tools.fake_rasa import FakeRasa
from tests.support.twilio import TwilioSigner, sms_form, whatsapp_form

MESSAGES = "/webhooks/twilio/messages"
STATUS = "/webhooks/twilio/status"
PHONE = "+6281234567890"


def replies_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/xml"
    return [(m.text or "") for m in ET.fromstring(response.data).iter("Message")]


def count(db: Database, *where: Any) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Message).where(*where)) or 0


def stored_inbound(db: Database, sid: str) -> Message:
    with db.session() as session:
        return session.scalars(select(Message).where(Message.provider_sid == sid)).one()


@pytest.fixture
def app(app_config: dict[str, Any], rasa: FakeRasa) -> Flask:
    return create_app({**app_config, "rasa_url": rasa.url})  # type: ignore[attr-defined]


def test_sms_is_stored_answered_and_replied_with_twiml(client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa) -> None:
    form = sms_form(PHONE, "halo")
    assert replies_of(signer.post(client, MESSAGES, form)) == ["Halo, ada yang bisa dibantu?"]
    inbound = stored_inbound(sqlite_db, form["MessageSid"])
    assert (inbound.direction, inbound.channel, inbound.body) == (Direction.INBOUND, "sms", "halo")
    assert inbound.status == MessageStatus.ANSWERED
    assert count(sqlite_db, Message.in_reply_to_id == inbound.id) == 1
    assert rasa.received[0]["message"] == "halo"
    assert rasa.received[0]["metadata"] == {"channel": "sms", "message_id": inbound.id}
    assert PHONE not in rasa.received[0]["sender"], "Rasa must not see phone numbers"


@pytest.mark.parametrize(
    "sender, channel",
    [
        ("+6281234567890", "sms"),
        ("081234567890", "sms"),
        ("6281234567890", "sms"),
        ("+62 812-3456-7890", "sms"),
        ("whatsapp:+6281234567890", "whatsapp"),
    ],
)
def test_every_indonesian_form_of_a_number_is_one_contact(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa, sender: str, channel: str
) -> None:
    signer.post(client, MESSAGES, sms_form("+6281234567890", "pertama"))
    form = sms_form(sender, "kedua")
    replies_of(signer.post(client, MESSAGES, form))
    with sqlite_db.session() as session:
        contacts = session.scalars(select(Contact)).all()
        assert [c.address for c in contacts] == ["+6281234567890"]
    assert stored_inbound(sqlite_db, form["MessageSid"]).channel == channel
    assert rasa.received[0]["sender"] == rasa.received[1]["sender"]


def test_whatsapp_id_that_is_not_a_phone_number_gets_an_answer(client: FlaskClient, signer: TwilioSigner, sqlite_db: Database) -> None:
    form = sms_form("whatsapp:bsuid.ID.0a1b2c3d4e5f", "halo")
    assert replies_of(signer.post(client, MESSAGES, form)) == ["Halo, ada yang bisa dibantu?"]
    with sqlite_db.session() as session:
        contact = session.scalars(select(Contact)).one()
        assert contact.is_phone is False


@pytest.mark.parametrize(
    "case, headers_for",
    [
        ("no signature", lambda signer, form: {}),
        ("empty signature", lambda signer, form: {"X-Twilio-Signature": ""}),
        ("garbage signature", lambda signer, form: {"X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl"}),
        ("signed for another URL", lambda signer, form: signer.headers("http://localhost/other", form)),
        ("signed with another token", lambda signer, form: TwilioSigner("wrong-token").headers("http://localhost" + MESSAGES, form)),
        ("body changed after signing", lambda signer, form: signer.headers("http://localhost" + MESSAGES, {**form, "Body": "asli"})),
    ],
)
def test_bad_signature_is_refused_and_nothing_stored(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa, case: str, headers_for: Any
) -> None:
    form = sms_form(PHONE, "halo")
    response = client.post(MESSAGES, data=form, headers=headers_for(signer, form))
    assert response.status_code == 403, case
    assert count(sqlite_db) == 0
    assert rasa.received == []


def test_without_an_auth_token_every_request_is_refused(app_config: dict[str, Any], signer: TwilioSigner, sqlite_db: Database) -> None:
    client = create_app({**app_config, "twilio_auth_token": ""}).test_client()
    assert signer.post(client, MESSAGES, sms_form(PHONE, "halo")).status_code == 403
    assert count(sqlite_db) == 0


def test_public_base_url_is_the_url_that_is_signed(app_config: dict[str, Any], signer: TwilioSigner, rasa: FakeRasa) -> None:
    public = "https://bansos.example.go.id"
    client = create_app({**app_config, "rasa_url": rasa.url, "public_base_url": public}).test_client()  # type: ignore[attr-defined]
    form = sms_form(PHONE, "halo")
    assert signer.post(client, MESSAGES, form).status_code == 403
    assert replies_of(signer.post(client, MESSAGES, form, base=public))


@pytest.mark.parametrize("missing", ["MessageSid", "From"])
def test_missing_required_field_is_a_bad_request(client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, missing: str) -> None:
    form = sms_form(PHONE, "halo")
    del form[missing]
    assert signer.post(client, MESSAGES, form).status_code == 400
    assert count(sqlite_db) == 0


def test_replayed_message_sid_gets_the_same_reply_and_is_processed_once(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa
) -> None:
    form = sms_form(PHONE, "halo")
    first = replies_of(signer.post(client, MESSAGES, form))
    rasa.replies = [{"text": "jawaban lain"}]
    second = replies_of(signer.post(client, MESSAGES, form))
    assert first == second == ["Halo, ada yang bisa dibantu?"]
    assert len(rasa.received) == 1
    assert count(sqlite_db, Message.direction == Direction.INBOUND) == 1
    assert count(sqlite_db, Message.direction == Direction.OUTBOUND) == 1


def test_several_whatsapp_replies_are_kept_in_order_and_replayed_in_order(
    app_config: dict[str, Any], db: Database, signer: TwilioSigner, rasa: FakeRasa
) -> None:
    """Rasa's several answers to one WhatsApp message reach the citizen in Rasa's order,
    are stored in it, and a replay of the webhook gets them again in the same order."""
    client = create_app({**app_config, "database_url": db.url, "rasa_url": rasa.url}).test_client()  # type: ignore[attr-defined]
    rasa.replies = [{"text": "Satu"}, {"text": "Dua"}, {"text": "Tiga"}]
    form = whatsapp_form(PHONE, "halo")
    assert replies_of(signer.post(client, MESSAGES, form)) == ["Satu", "Dua", "Tiga"]
    rasa.replies = [{"text": "lain"}]
    assert replies_of(signer.post(client, MESSAGES, form)) == ["Satu", "Dua", "Tiga"]
    with db.session() as session:
        asked = session.scalars(select(Message).where(Message.provider_sid == form["MessageSid"])).one()
        stored = session.scalars(select(Message.body).where(Message.in_reply_to_id == asked.id).order_by(Message.id)).all()
        assert (asked.status, stored) == (MessageStatus.ANSWERED, ["Satu", "Dua", "Tiga"])
    assert len(rasa.received) == 1


def test_two_identical_requests_at_once_are_processed_once(app: Flask, signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa) -> None:
    rasa.delay = 0.5
    form = sms_form(PHONE, "halo")
    results: list[list[str]] = []
    barrier = threading.Barrier(2)

    def post() -> None:
        barrier.wait()
        results.append(replies_of(signer.post(app.test_client(), MESSAGES, form)))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [["Halo, ada yang bisa dibantu?"]] * 2
    assert len(rasa.received) == 1
    assert count(sqlite_db, Message.direction == Direction.INBOUND) == 1


@pytest.mark.parametrize(
    "rasa_setup",
    [
        pytest.param({"url": "http://127.0.0.1:9"}, id="connection refused"),
        pytest.param({"replies": []}, id="empty answer"),
    ],
)
def test_rasa_down_gets_an_apology_and_the_message_is_kept_for_follow_up(
    app_config: dict[str, Any], signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa, rasa_setup: dict[str, Any]
) -> None:
    rasa.delay = rasa_setup.get("delay", 0.0)
    rasa.replies = rasa_setup.get("replies", rasa.replies)
    url = rasa_setup.get("url", rasa.url)  # type: ignore[attr-defined]
    client = create_app({**app_config, "rasa_url": url, "rasa_timeout": 1.0}).test_client()
    form = sms_form(PHONE, "cek bansos")
    assert replies_of(signer.post(client, MESSAGES, form)) == [replies.SERVICE_DOWN]
    inbound = stored_inbound(sqlite_db, form["MessageSid"])
    assert inbound.status == MessageStatus.NEEDS_FOLLOWUP
    assert inbound.body == "cek bansos"


def test_rasa_timing_out_is_busy_not_down_no_apology_and_the_message_is_kept_for_follow_up(
    app_config: dict[str, Any], signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa
) -> None:
    rasa.delay = 3.0
    client = create_app({**app_config, "rasa_url": rasa.url, "rasa_timeout": 1.0}).test_client()  # type: ignore[attr-defined]
    form = sms_form(PHONE, "cek bansos")
    assert replies_of(signer.post(client, MESSAGES, form)) == []
    inbound = stored_inbound(sqlite_db, form["MessageSid"])
    assert inbound.status == MessageStatus.NEEDS_FOLLOWUP
    assert count(sqlite_db, Message.in_reply_to_id == inbound.id) == 0


def test_database_down_gets_a_clear_answer_not_an_error(app_config: dict[str, Any], signer: TwilioSigner, rasa: FakeRasa) -> None:
    client = create_app({**app_config, "database_url": "postgresql://nobody@127.0.0.1:1/none"}).test_client()
    assert replies_of(signer.post(client, MESSAGES, sms_form(PHONE, "halo"))) == [replies.STORAGE_DOWN]
    assert rasa.received == [], "nothing may be processed that was not stored"


@pytest.mark.parametrize(
    "body, media, expected",
    [
        ("", [], replies.EMPTY_MESSAGE),
        ("   \n ", [], replies.EMPTY_MESSAGE),
        ("", [("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "image/jpeg")], replies.MEDIA_WITHOUT_TEXT),
    ],
)
def test_empty_message_or_media_without_text_gets_guidance_without_rasa(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa, body: str, media: list[tuple[str, str]], expected: str
) -> None:
    form = whatsapp_form(PHONE, body, media)
    assert replies_of(signer.post(client, MESSAGES, form)) == [expected]
    assert rasa.received == []
    inbound = stored_inbound(sqlite_db, form["MessageSid"])
    assert [m["content_type"] for m in inbound.media] == [ct for _, ct in media]


def test_huge_message_is_bounded_but_answered(client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, rasa: FakeRasa) -> None:
    form = sms_form(PHONE, "tolong " * 3000)
    assert replies_of(signer.post(client, MESSAGES, form))
    assert len(stored_inbound(sqlite_db, form["MessageSid"]).body) == 1600
    assert len(rasa.received[0]["message"]) <= 1600


def test_oversized_request_body_is_refused(client: FlaskClient, signer: TwilioSigner, sqlite_db: Database) -> None:
    form = sms_form(PHONE, "x" * 70_000)
    assert signer.post(client, MESSAGES, form).status_code == 413
    assert count(sqlite_db) == 0


@pytest.mark.parametrize(
    "text, payload",
    [
        ("MENU", "/help"),
        ("menu", "/help"),
        ("CEK 3201014501900003", '/check_status{"nik": "3201014501900003"}'),
        ("cek 3201 0145 0190 0003", '/check_status{"nik": "3201014501900003"}'),
        ("CEK 12345", '/check_status{"nik": "12345"}'),
        ("CEK", "/check_status"),
        ("JADWAL", "/ask_disbursement_schedule"),
        ("RIWAYAT", "/ask_disbursement_history"),
        ("USUL", "/submit_usul"),
        ("SANGGAH", "/submit_sanggah"),
        ("ADU", "/file_complaint"),
        (
            "ADU Siti Aminah 3201014501900003 Desa Cibinong dana belum cair",
            '/file_complaint{"report_text": "Siti Aminah 3201014501900003 Desa Cibinong dana belum cair"}',
        ),
        (
            "usul#Budi#3578031208850002#Kp Sukamaju#lansia tinggal sendiri",
            '/submit_usul{"report_text": "Budi#3578031208850002#Kp Sukamaju#lansia tinggal sendiri"}',
        ),
        ('SANGGAH: dia "PNS"\n{kaya}', '/submit_sanggah{"report_text": "dia \\"PNS\\"\\n{kaya}"}'),
        ("ADU-20261123-K7QX", '/check_ticket{"ticket_ref": "ADU-20261123-K7QX"}'),
        ("TIKET ADU-20261123-K7QX", '/check_ticket{"ticket_ref": "ADU-20261123-K7QX"}'),
        ("tiket adu20261123k7qx", '/check_ticket{"ticket_ref": "ADU-20261123-K7QX"}'),
        ("BATAL", "/cancel"),
        ("cek bansos saya", "cek bansos saya"),
        ("stop kirim sms dong", "stop kirim sms dong"),
        ("MENUU", "MENUU"),
        ("🙏🙏", "🙏🙏"),
        ('/help{"x": 1}', 'help{"x": 1}'),
    ],
)
def test_keywords_reach_rasa_as_intents_and_other_text_as_text(
    client: FlaskClient, signer: TwilioSigner, rasa: FakeRasa, text: str, payload: str
) -> None:
    replies_of(signer.post(client, MESSAGES, sms_form(PHONE, text)))
    assert rasa.received[0]["message"] == payload


@pytest.mark.parametrize(
    "keywords, opted_out, reply",
    [
        (["STOP"], True, "MULAI"),
        (["berhenti"], True, "MULAI"),
        (["STOP", "MULAI"], False, "STOP"),
        (["MULAI"], False, "STOP"),
    ],
)
def test_stop_and_mulai_work_even_with_rasa_down(
    app_config: dict[str, Any], signer: TwilioSigner, sqlite_db: Database, keywords: list[str], opted_out: bool, reply: str
) -> None:
    client = create_app({**app_config, "rasa_url": "http://127.0.0.1:9"}).test_client()
    for keyword in keywords:
        answer = replies_of(signer.post(client, MESSAGES, sms_form(PHONE, keyword)))
    assert reply in answer[0]
    with sqlite_db.session() as session:
        assert session.scalars(select(Contact.opted_out)).one() is opted_out


FORGED = '/check_status{"nik":"3201014501900003"}'


@pytest.mark.parametrize(
    "text",
    [
        FORGED,
        f"/\n{FORGED}",
        f"\t{FORGED}",
        f"\u00a0{FORGED}",
        f"\r\n/{FORGED}",
        f" / \u00a0/\t{FORGED}",
        f"\u2028\u3000{FORGED}",
    ],
    ids=["slash", "slash-newline-slash", "tab", "no-break-space", "crlf-slash", "mixed-run", "unicode-spaces"],
)
def test_citizen_text_that_looks_like_an_intent_payload_is_not_trusted(client: FlaskClient, signer: TwilioSigner, rasa: FakeRasa, text: str) -> None:
    replies_of(signer.post(client, MESSAGES, sms_form(PHONE, text)))
    # Rasa strips the text (str.strip) and then reads a leading "/" as an intent payload.
    assert not rasa.received[0]["message"].strip().startswith("/")


def test_sms_reply_is_gsm7_one_message_at_most_three_segments(client: FlaskClient, signer: TwilioSigner, rasa: FakeRasa) -> None:
    rasa.replies = [{"text": "*Halo* Bapak/Ibu 🙏 “selamat datang”"}, {"text": "Layanan " * 100}]
    sms = replies_of(signer.post(client, MESSAGES, sms_form(PHONE, "halo")))
    assert len(sms) == 1
    assert is_gsm7(sms[0]) and segment_count(sms[0]) <= 3
    assert sms[0].startswith('Halo Bapak/Ibu "selamat datang"')


def test_whatsapp_reply_keeps_formatting_and_separate_messages(client: FlaskClient, signer: TwilioSigner, rasa: FakeRasa) -> None:
    rasa.replies = [{"text": "*Halo* Bapak/Ibu 🙏"}, {"text": "Ketik MENU"}]
    assert replies_of(signer.post(client, MESSAGES, whatsapp_form(PHONE, "halo"))) == ["*Halo* Bapak/Ibu 🙏", "Ketik MENU"]


def test_healthz_is_always_ok(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_sends_rasa_its_api_token(app_config: dict[str, Any]) -> None:
    guarded = FakeRasa(token="rasa-api-token")
    with guarded.serve() as server:
        with_token = create_app({**app_config, "rasa_url": server.url, "rasa_token": "rasa-api-token"})
        without = create_app({**app_config, "rasa_url": server.url})
        assert with_token.test_client().get("/readyz").status_code == 200
        assert without.test_client().get("/readyz").get_json()["checks"]["rasa"] == "down"


def test_readyz_reports_each_dependency(app_config: dict[str, Any], client: FlaskClient) -> None:
    assert client.get("/readyz").status_code == 200
    down = create_app({**app_config, "rasa_url": "http://127.0.0.1:9"}).test_client().get("/readyz")
    assert down.status_code == 503
    assert down.get_json()["checks"] == {"database": "ok", "rasa": "down"}


def _outbound(db: Database, sid: str) -> int:
    with db.session() as session:
        contact = Contact(address=PHONE)
        session.add(contact)
        session.flush()
        session.add(Message(contact_id=contact.id, direction=Direction.OUTBOUND, channel="sms", provider="twilio", provider_sid=sid, body="x", status=MessageStatus.QUEUED))
        return contact.id


@pytest.mark.parametrize(
    "callbacks, final_status, error_code, opted_out",
    [
        ([("sent", None), ("delivered", None)], MessageStatus.DELIVERED, None, False),
        ([("delivered", None), ("sent", None)], MessageStatus.DELIVERED, None, False),
        ([("undelivered", "30003")], MessageStatus.UNDELIVERED, "30003", False),
        ([("failed", "21610")], MessageStatus.FAILED, "21610", True),
        ([("read", None)], MessageStatus.READ, None, False),
        ([("sent", None), ("no-such-status", None)], MessageStatus.SENT, None, False),
    ],
)
def test_status_callbacks_update_the_stored_message(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, callbacks: list[tuple[str, str | None]], final_status: str, error_code: str | None, opted_out: bool
) -> None:
    contact_id = _outbound(sqlite_db, "SMout1")
    for status, code in callbacks:
        form = {"MessageSid": "SMout1", "MessageStatus": status, **({"ErrorCode": code} if code else {})}
        assert signer.post(client, STATUS, form).status_code == 204
    with sqlite_db.session() as session:
        message = session.scalars(select(Message).where(Message.provider_sid == "SMout1")).one()
        assert (message.status, message.error_code) == (final_status, error_code)
        assert session.get_one(Contact, contact_id).opted_out is opted_out


def test_status_callback_needs_signature_and_fields(client: FlaskClient, signer: TwilioSigner, sqlite_db: Database) -> None:
    _outbound(sqlite_db, "SMout2")
    assert client.post(STATUS, data={"MessageSid": "SMout2", "MessageStatus": "failed"}).status_code == 403
    assert signer.post(client, STATUS, {"MessageSid": "SMout2"}).status_code == 400
    assert signer.post(client, STATUS, {"MessageSid": "SMunknown", "MessageStatus": "sent"}).status_code == 204
    with sqlite_db.session() as session:
        assert session.scalars(select(Message.status).where(Message.provider_sid == "SMout2")).one() == MessageStatus.QUEUED
