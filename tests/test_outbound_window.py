"""Messages sent later reach WhatsApp users: through the signed webhooks, the dashboard,
the real twilio client and the local fake Twilio API, on SQLite and PostgreSQL.

A WhatsApp citizen's last message opens a 24-hour window for free text; after it the
app sends an approved template or SMS, and falls back once when WhatsApp refuses.
"""
from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from bot.conversation.models import Contact, Direction, Message, MessageStatus
from bot.db import Database
from bot.handoff.models import Handoff
from bot.reports.models import ComplaintCategory, ReportKind
from bot.reports.service import ReportDraft
from tools.fake_twilio import FakeTwilioApi
from tests.support.staff import make_staff, post_form, signed_in
from tests.support.twilio import (
    SERVICE_NUMBER,
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    TwilioSigner,
    whatsapp_form,
)

PHONE = "+6281234567890"
WA_ID = "wa-id-3f9a77"
REPORT_SID = "HX" + "a" * 32
STAFF_SID = "HX" + "b" * 32
SIGNER = TwilioSigner(TEST_AUTH_TOKEN)


def make_app(db: Database, fake: FakeTwilioApi, **settings: Any) -> Flask:
    return create_app({
        "database_url": db.url,
        "rasa_url": "http://127.0.0.1:9",
        "rasa_timeout": 2.0,
        "replay_wait_seconds": 2.0,
        "public_base_url": "",
        "twilio_account_sid": TEST_ACCOUNT_SID,
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "twilio_sms_from": SERVICE_NUMBER,
        "twilio_whatsapp_from": SERVICE_NUMBER,
        "twilio_api_base": fake.url,  # type: ignore[attr-defined]
        "twilio_http_timeout": 5.0,
        **settings,
    })


@pytest.fixture
def app(db: Database, twilio_api: FakeTwilioApi) -> Flask:
    return make_app(db, twilio_api, twilio_report_status_content_sid=REPORT_SID, twilio_staff_reply_content_sid=STAFF_SID)


def citizen_writes(app: Flask, text: str, sender: str = PHONE) -> None:
    response = SIGNER.post(app.test_client(), "/webhooks/twilio/messages", whatsapp_form(sender, text))
    assert response.status_code == 200
    settled(app)


def status_callback(app: Flask, sid: str, status: str, error_code: str) -> None:
    form = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": error_code, "AccountSid": TEST_ACCOUNT_SID}
    assert SIGNER.post(app.test_client(), "/webhooks/twilio/status", form).status_code == 204
    settled(app)


def settled(app: Flask) -> None:
    """Wait for what the requests left to the background (held messages, fallbacks)."""
    assert app.extensions["bansos"].outbox.wait_idle(30)


def contact_id(db: Database, address: str = PHONE) -> int:
    with db.session() as session:
        return session.scalars(select(Contact.id).where(Contact.address == address)).one()


def age_everything(db: Database, by: timedelta) -> None:
    """Move every stored message back in time, as if the citizen had written `by` ago."""
    with db.session() as session:
        for message in session.scalars(select(Message)):
            message.created_at -= by


def file_report(app: Flask, db: Database, address: str = PHONE) -> str:
    draft = ReportDraft(
        kind=ReportKind.PENGADUAN,
        reporter_contact_id=contact_id(db, address),
        category=ComplaintCategory.DANA_BELUM_DITERIMA,
        description="Dana bulan ini belum masuk ke rekening",
        province_code="73",
    )
    return app.extensions["bansos"].reports.create(draft).reference


def change_status_in_dashboard(app: Flask, reference: str, status: str = "diverifikasi", note: str = "Sedang dicek ke bank") -> None:
    if "sri" not in [p.username for p in app.extensions["bansos"].staff.directory.active_staff()]:
        make_staff(app, "sri", role="supervisor")
    client = signed_in(app, "sri")
    page = f"/staff/reports/{reference}"
    assert post_form(client, page, f"{page}/status", {"status": status, "note": note}).status_code == 302


def outbound(db: Database) -> list[Message]:
    with db.session() as session:
        return list(session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND).order_by(Message.id)))


def sent_by_api(fake: FakeTwilioApi) -> list[tuple[str, str | None]]:
    """(to, content SID) of every message the fake Twilio accepted."""
    return [(m["to"], m["content_sid"]) for m in fake.sent]


# ---- the test: a report status change 25 hours later ---------------------------


def test_a_status_change_25_hours_after_the_last_message_goes_as_the_template(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    citizen_writes(app, "saya mau lapor dana belum masuk")
    reference = file_report(app, db)
    age_everything(db, timedelta(hours=25))
    twilio_api.sent.clear()
    change_status_in_dashboard(app, reference)
    assert sent_by_api(twilio_api) == [(f"whatsapp:{PHONE}", REPORT_SID)]
    variables = json.loads(twilio_api.sent[0]["content_variables"])
    assert variables == {"reference": reference, "kind": "pengaduan", "status": "sudah diperiksa (diverifikasi) petugas"}
    notice = outbound(db)[-1]
    assert (notice.channel, notice.template_sid, notice.status) == ("whatsapp", REPORT_SID, MessageStatus.QUEUED)
    assert "Sedang dicek ke bank" in notice.body, "our copy keeps the full notice, for an SMS fallback"


def test_a_status_change_25_hours_later_goes_by_sms_when_the_template_fails(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    citizen_writes(app, "saya mau lapor dana belum masuk")
    reference = file_report(app, db)
    age_everything(db, timedelta(hours=25))
    twilio_api.sent.clear()
    twilio_api.failures[f"whatsapp:{PHONE}"] = (400, 63024)
    change_status_in_dashboard(app, reference)
    assert sent_by_api(twilio_api) == [(PHONE, None)]
    assert reference in twilio_api.sent[0]["body"] and "Sedang dicek ke bank" in twilio_api.sent[0]["body"]
    template, sms = outbound(db)[-2:]
    assert (template.template_sid, template.status, template.error_code) == (REPORT_SID, MessageStatus.FAILED, "63024")
    assert (sms.channel, sms.fallback_of_id, sms.body.isascii()) == ("sms", template.id, True)


def test_a_template_failing_later_in_a_status_callback_falls_back_to_sms_once(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    citizen_writes(app, "halo")
    reference = file_report(app, db)
    age_everything(db, timedelta(hours=30))
    twilio_api.sent.clear()
    change_status_in_dashboard(app, reference)
    [template] = twilio_api.sent
    status_callback(app, template["sid"], "failed", "63049")
    status_callback(app, template["sid"], "undelivered", "63049")
    assert sent_by_api(twilio_api) == [(f"whatsapp:{PHONE}", REPORT_SID), (PHONE, None)], "one fallback, never two"
    assert outbound(db)[-1].fallback_of_id == outbound(db)[-2].id


def test_inside_the_window_a_status_change_goes_as_free_text(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    citizen_writes(app, "halo")
    reference = file_report(app, db)
    age_everything(db, timedelta(hours=23))
    twilio_api.sent.clear()
    change_status_in_dashboard(app, reference)
    assert sent_by_api(twilio_api) == [(f"whatsapp:{PHONE}", None)]
    assert reference in twilio_api.sent[0]["body"] and "Sedang dicek ke bank" in twilio_api.sent[0]["body"]


# ---- 63016: Twilio says the window has closed ------------------------------------------


def test_an_immediate_63016_on_free_text_sends_the_template_instead(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    citizen_writes(app, "halo")
    reference = file_report(app, db)
    twilio_api.sent.clear()
    twilio_api.transient[f"whatsapp:{PHONE}"] = [(400, 63016)]
    change_status_in_dashboard(app, reference)
    assert sent_by_api(twilio_api) == [(f"whatsapp:{PHONE}", REPORT_SID)]
    refused, template = outbound(db)[-2:]
    assert (refused.error_code, template.fallback_of_id) == ("63016", refused.id)


def test_a_63016_without_a_template_goes_by_sms_at_once_and_from_a_callback(db: Database, twilio_api: FakeTwilioApi) -> None:
    app = make_app(db, twilio_api)
    citizen_writes(app, "halo")
    first, second = file_report(app, db), None
    twilio_api.sent.clear()
    twilio_api.transient[f"whatsapp:{PHONE}"] = [(400, 63016)]
    change_status_in_dashboard(app, first)
    assert sent_by_api(twilio_api) == [(PHONE, None)]
    second = app.extensions["bansos"].reports.create(ReportDraft(
        kind=ReportKind.PENGADUAN, reporter_contact_id=contact_id(db), category=ComplaintCategory.DATA_SALAH,
        description="Nama saya salah tulis di kartu", province_code="73",
    )).reference
    twilio_api.sent.clear()
    change_status_in_dashboard(app, second)
    [free_text] = twilio_api.sent
    assert free_text["to"] == f"whatsapp:{PHONE}"
    status_callback(app, free_text["sid"], "failed", "63016")
    assert sent_by_api(twilio_api) == [(f"whatsapp:{PHONE}", None), (PHONE, None)]
    assert second in twilio_api.sent[1]["body"]


def test_no_fallback_for_a_citizen_who_sent_stop_meanwhile(db: Database, twilio_api: FakeTwilioApi) -> None:
    app = make_app(db, twilio_api)
    citizen_writes(app, "halo")
    reference = file_report(app, db)
    twilio_api.sent.clear()
    change_status_in_dashboard(app, reference)
    [free_text] = twilio_api.sent
    citizen_writes(app, "STOP")
    status_callback(app, free_text["sid"], "failed", "63016")
    assert sent_by_api(twilio_api) == [(f"whatsapp:{PHONE}", None)]


def test_no_sms_fallback_to_a_whatsapp_business_id(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    citizen_writes(app, "halo", sender=WA_ID)
    reference = file_report(app, db, WA_ID)
    age_everything(db, timedelta(days=2))
    twilio_api.sent.clear()
    twilio_api.failures[f"whatsapp:{WA_ID}"] = (400, 63024)
    change_status_in_dashboard(app, reference)
    assert twilio_api.sent == []
    assert [m.status for m in outbound(db)][-1] == MessageStatus.FAILED


# ---- staff replies and the dashboard ---------------------------------------------------


def escalate(app: Flask, db: Database, sender: str = PHONE) -> str:
    citizen_writes(app, "PETUGAS", sender)
    with db.session() as session:
        handoff_id = session.scalars(select(Handoff.id).order_by(Handoff.id.desc())).first()
    return f"/staff/chats/{handoff_id}"


def reply_note(client: FlaskClient, page: str) -> str:
    html = client.get(page).get_data(as_text=True)
    start = html.index('id="reply-route">') + len('id="reply-route">')
    return html[start : html.index("</p>", start)]


def test_the_chat_page_shows_which_way_a_reply_will_go(db: Database, twilio_api: FakeTwilioApi) -> None:
    app = make_app(db, twilio_api, twilio_staff_reply_content_sid=STAFF_SID)
    page = escalate(app, db)
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    assert reply_note(client, page) == "Dikirim lewat WhatsApp (dalam 24 jam)."
    age_everything(db, timedelta(hours=25))
    assert "lewat SMS ke +62812****7890" in reply_note(client, page)
    business = escalate(app, db, WA_ID)
    age_everything(db, timedelta(hours=25))
    assert "WhatsApp template" in reply_note(client, business)
    without_template = make_app(db, twilio_api)
    assert reply_note(signed_in(without_template, "andi"), business).startswith("Balasan tidak bisa dikirim:")


def test_a_staff_reply_to_a_business_id_waits_behind_the_template_until_the_citizen_writes(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    page = escalate(app, db, WA_ID)
    age_everything(db, timedelta(hours=25))
    twilio_api.sent.clear()
    make_staff(app, "andi", full_name="Andi Wijaya")
    client = signed_in(app, "andi")
    post_form(client, page, f"{page}/reply", {"body": "Selamat siang Bu, data Ibu sudah kami cek."})
    assert sent_by_api(twilio_api) == [(f"whatsapp:{WA_ID}", STAFF_SID)]
    assert "menunggu warga membalas" in client.get(page).get_data(as_text=True)
    citizen_writes(app, "OK", WA_ID)
    assert sent_by_api(twilio_api)[-1] == (f"whatsapp:{WA_ID}", None)
    assert twilio_api.sent[-1]["body"] == "Selamat siang Bu, data Ibu sudah kami cek."
    assert MessageStatus.HELD not in [m.status for m in outbound(db)]
    html = client.get(page).get_data(as_text=True)
    assert "menunggu warga membalas" not in html and "Petugas Andi Wijaya" in html


def test_a_staff_reply_falling_back_in_a_callback_keeps_its_author(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    page = escalate(app, db)
    twilio_api.sent.clear()
    make_staff(app, "andi", full_name="Andi Wijaya")
    client = signed_in(app, "andi")
    post_form(client, page, f"{page}/reply", {"body": "Halo Bu, saya Andi."})
    [free_text] = twilio_api.sent
    status_callback(app, free_text["sid"], "undelivered", "63016")
    assert sent_by_api(twilio_api) == [(f"whatsapp:{PHONE}", None), (PHONE, None)]
    html = client.get(page).get_data(as_text=True)
    assert html.count("Petugas Andi Wijaya") == 2 and "dikirim lewat SMS" in html


def test_a_held_staff_reply_is_not_sent_when_the_citizen_answers_stop(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    page = escalate(app, db, WA_ID)
    age_everything(db, timedelta(hours=25))
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    post_form(client, page, f"{page}/reply", {"body": "Selamat siang Bu."})
    twilio_api.sent.clear()
    citizen_writes(app, "STOP", WA_ID)
    assert twilio_api.sent == []
    assert "tidak dikirim: warga sudah STOP" in client.get(page).get_data(as_text=True)


# ---- held replies: claimed once, sent off the webhook's thread -------------------------


def hold_staff_replies(app: Flask, db: Database, *texts: str) -> int:
    """Staff replies to a WhatsApp business id 25 hours after its last message: held."""
    page = escalate(app, db, WA_ID)
    age_everything(db, timedelta(hours=25))
    if "andi" not in [p.username for p in app.extensions["bansos"].staff.directory.active_staff()]:
        make_staff(app, "andi")
    client = signed_in(app, "andi")
    for text in texts:
        assert post_form(client, page, f"{page}/reply", {"body": text}).status_code == 302
    assert [m.status for m in outbound(db)].count(MessageStatus.HELD) == len(texts)
    return contact_id(db, WA_ID)


def free_texts_to(fake: FakeTwilioApi, to: str) -> list[str]:
    return [m["body"] for m in fake.sent if m["to"] == to and m["content_sid"] is None]


def test_two_releases_at_once_send_each_held_reply_once(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    replies = ["Data Ibu sudah kami cek.", "Dana masuk minggu depan.", "Terima kasih, Bu."]
    held_for = hold_staff_replies(app, db, *replies)
    outbox = app.extensions["bansos"].outbox
    # Twilio takes a moment per message: both releases are under way together.
    twilio_api.on_create = lambda message: time.sleep(0.3)
    start = threading.Barrier(2)

    def release() -> None:
        start.wait()
        outbox.release_held(held_for)

    threads = [threading.Thread(target=release) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    outbox.release_held(held_for)
    assert free_texts_to(twilio_api, f"whatsapp:{WA_ID}") == replies, "each once, in order"
    assert MessageStatus.HELD not in [m.status for m in outbound(db)]


def test_held_replies_go_after_the_webhook_answered_each_once_and_in_order(db: Database, twilio_api: FakeTwilioApi) -> None:
    app = make_app(db, twilio_api, twilio_staff_reply_content_sid=STAFF_SID, twilio_http_timeout=10.0)
    hold_staff_replies(app, db, "Balasan pertama.", "Balasan kedua.")
    twilio_api.on_create = lambda message: time.sleep(6)
    started = time.monotonic()
    response = SIGNER.post(app.test_client(), "/webhooks/twilio/messages", whatsapp_form(WA_ID, "OK"))
    assert response.status_code == 200
    assert time.monotonic() - started < 4, "Twilio waits 15 s; two held messages at 6 s each must not hold the answer"
    settled(app)
    assert free_texts_to(twilio_api, f"whatsapp:{WA_ID}") == ["Balasan pertama.", "Balasan kedua."]
    assert MessageStatus.HELD not in [m.status for m in outbound(db)]


def test_a_failed_status_callback_answers_before_the_fallback_is_sent(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    citizen_writes(app, "halo")
    reference = file_report(app, db)
    age_everything(db, timedelta(hours=30))
    twilio_api.sent.clear()
    change_status_in_dashboard(app, reference)
    [template] = twilio_api.sent
    twilio_api.on_create = lambda message: time.sleep(3)
    form = {"MessageSid": template["sid"], "MessageStatus": "failed", "ErrorCode": "63049", "AccountSid": TEST_ACCOUNT_SID}
    started = time.monotonic()
    assert SIGNER.post(app.test_client(), "/webhooks/twilio/status", form).status_code == 204
    assert time.monotonic() - started < 2, "the SMS fallback is sent off the callback's request thread"
    settled(app)
    assert sent_by_api(twilio_api) == [(f"whatsapp:{PHONE}", REPORT_SID), (PHONE, None)]


# ---- an announcing template that fails --------------------------------------------------


def test_a_held_reply_fails_with_its_announcing_template(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    page = escalate(app, db, WA_ID)
    age_everything(db, timedelta(hours=25))
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    post_form(client, page, f"{page}/reply", {"body": "Selamat siang Bu."})
    [announcement] = [m for m in twilio_api.sent if m["content_sid"] == STAFF_SID]
    status_callback(app, announcement["sid"], "undelivered", "63049")
    held = [m for m in outbound(db) if m.body == "Selamat siang Bu."]
    assert [(m.status, m.error_code) for m in held] == [(MessageStatus.FAILED, "63049")]
    html = client.get(page).get_data(as_text=True)
    assert "menunggu warga membalas" not in html and html.count("gagal (63049)") == 2
    twilio_api.sent.clear()
    citizen_writes(app, "halo", WA_ID)
    assert free_texts_to(twilio_api, f"whatsapp:{WA_ID}") == [], "not sent weeks later"


def test_a_held_reply_fails_when_its_template_is_refused_at_once(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    page = escalate(app, db, WA_ID)
    age_everything(db, timedelta(hours=25))
    make_staff(app, "andi")
    twilio_api.failures[f"whatsapp:{WA_ID}"] = (400, 63024)
    post_form(signed_in(app, "andi"), page, f"{page}/reply", {"body": "Selamat siang Bu."})
    held = [m for m in outbound(db) if m.body == "Selamat siang Bu."]
    assert [(m.status, m.error_code) for m in held] == [(MessageStatus.FAILED, "63024")]


# ---- a long staff reply that may end as SMS ---------------------------------------------

LONG_REPLY = "Bu, data Ibu sudah kami periksa bersama pendamping desa dan dinas sosial. " * 8


def test_a_reply_too_long_for_sms_is_refused_even_inside_the_window_when_sms_may_follow(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    page = escalate(app, db)
    twilio_api.sent.clear()
    make_staff(app, "andi")
    client = signed_in(app, "andi")
    response = post_form(client, page, f"{page}/reply", {"body": LONG_REPLY})
    assert response.status_code == 302
    html = client.get(page).get_data(as_text=True)
    assert "Balasan terlalu panjang untuk SMS (bila WhatsApp menolak, balasan dikirim lewat SMS)" in html
    assert twilio_api.sent == [] and LONG_REPLY.strip() not in [m.body for m in outbound(db)]


def test_a_long_reply_to_a_whatsapp_id_that_takes_no_sms_goes_whole(app: Flask, db: Database, twilio_api: FakeTwilioApi) -> None:
    page = escalate(app, db, WA_ID)
    twilio_api.sent.clear()
    make_staff(app, "andi")
    post_form(signed_in(app, "andi"), page, f"{page}/reply", {"body": LONG_REPLY})
    assert free_texts_to(twilio_api, f"whatsapp:{WA_ID}") == [LONG_REPLY.strip()]


# ---- Twilio takes a message but answers too late ----------------------------------------


def test_a_template_twilio_took_but_answered_too_late_for_is_not_sent_again_by_sms(db: Database, twilio_api: FakeTwilioApi) -> None:
    app = make_app(db, twilio_api, twilio_report_status_content_sid=REPORT_SID, twilio_http_timeout=1.0)
    citizen_writes(app, "halo")
    reference = file_report(app, db)
    age_everything(db, timedelta(hours=25))
    twilio_api.sent.clear()
    twilio_api.on_create = lambda message: time.sleep(2)
    change_status_in_dashboard(app, reference)
    assert sent_by_api(twilio_api) == [(f"whatsapp:{PHONE}", REPORT_SID)], "no SMS after a time-out"
    notice = outbound(db)[-1]
    assert (notice.template_sid, notice.status, notice.provider_sid) == (REPORT_SID, MessageStatus.QUEUED, twilio_api.sent[0]["sid"])
