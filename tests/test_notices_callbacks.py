"""Notices end to end through the signed Twilio webhooks: status callbacks and STOP/MULAI.

The app under test serves the real webhooks on the same SQLite database the planner
and the dispatcher use; the dispatcher sends to the local fake Twilio API.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.db import Database
from bot.notices.dispatcher import Dispatcher
from bot.channels.twilio import TwilioTransport
from bot.conversation.models import Channel, Contact
from bot.notices.ops import ResultGroup, results
from bot.notices.planning import NoticePlanner
from bot.notices.models import Notice, NoticeAttempt, NoticeStatus
from bot.registry.models import Recipient
from tools.fake_twilio import FakeTwilioApi
from tools.http_stub import StubServer
from tools.notices import CONTENT_SID, T0, add_disbursement, add_recipient, day_after, notice_settings
from tests.support.twilio import TwilioSigner, sms_form

STATUS = "/webhooks/twilio/status"
MESSAGES = "/webhooks/twilio/messages"


@pytest.fixture
def server() -> Iterator[StubServer]:
    with FakeTwilioApi(now=lambda: T0).serve() as stub:
        yield stub


def _run(db: Database, server: StubServer, **overrides: Any) -> None:
    settings = notice_settings(db, server.url, **overrides)
    NoticePlanner(db, settings, clock=lambda: T0).plan()
    Dispatcher(db, TwilioTransport(settings), settings, clock=lambda: T0).run()


def _notice(db: Database) -> Notice:
    with db.session() as session:
        return session.scalars(select(Notice)).one()


def _callback(client: FlaskClient, signer: TwilioSigner, sid: str, status: str, code: str | None = None) -> None:
    form = {"MessageSid": sid, "MessageStatus": status, **({"ErrorCode": code} if code else {})}
    assert signer.post(client, STATUS, form).status_code == 204


def test_delivery_reports_update_the_notice(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, server: StubServer
) -> None:
    add_disbursement(sqlite_db, add_recipient(sqlite_db), day_after(2))
    _run(sqlite_db, server)
    sid = _notice(sqlite_db).provider_sid or ""
    _callback(client, signer, sid, "sent")
    assert _notice(sqlite_db).status == NoticeStatus.SENT
    _callback(client, signer, sid, "delivered")
    _callback(client, signer, sid, "sent")  # late and out of order: no step back
    notice = _notice(sqlite_db)
    assert (notice.status, notice.provider_status) == (NoticeStatus.DELIVERED, "delivered")
    assert results(sqlite_db).total[ResultGroup.DELIVERED] == 1


def test_undelivered_to_a_dead_number_flags_the_recipient(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, server: StubServer
) -> None:
    recipient = add_recipient(sqlite_db)
    add_disbursement(sqlite_db, recipient, day_after(2))
    _run(sqlite_db, server)
    _callback(client, signer, _notice(sqlite_db).provider_sid or "", "undelivered", "30005")
    notice = _notice(sqlite_db)
    assert (notice.status, notice.error_code) == (NoticeStatus.UNDELIVERED, "30005")
    assert notice.reason == "unknown or inactive number"
    with sqlite_db.session() as session:
        assert session.get_one(Recipient, recipient).flagged_phone_reason == "unknown or inactive number"
    assert results(sqlite_db).total[ResultGroup.FAILED] == 1


def test_unreachable_handset_is_tried_again_later(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, server: StubServer
) -> None:
    add_disbursement(sqlite_db, add_recipient(sqlite_db), day_after(2))
    _run(sqlite_db, server)
    first_sid = _notice(sqlite_db).provider_sid or ""
    _callback(client, signer, first_sid, "undelivered", "30003")
    notice = _notice(sqlite_db)
    assert notice.status == NoticeStatus.PENDING
    assert notice.not_before > datetime.now(timezone.utc) + timedelta(seconds=50)
    assert notice.reason == "retrying: handset unreachable or switched off"
    _run(sqlite_db, server)
    notice = _notice(sqlite_db)
    assert notice.status == NoticeStatus.SENT and notice.provider_sid != first_sid
    # News about the first attempt, arriving late, stays with that attempt.
    _callback(client, signer, first_sid, "delivered")
    assert _notice(sqlite_db).status == NoticeStatus.SENT
    with sqlite_db.session() as session:
        first = session.scalars(select(NoticeAttempt).where(NoticeAttempt.provider_sid == first_sid)).one()
        assert first.provider_status == "delivered"


def test_whatsapp_failing_later_falls_back_to_sms(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, server: StubServer
) -> None:
    add_disbursement(sqlite_db, add_recipient(sqlite_db, smartphone=True), day_after(2))
    _run(sqlite_db, server, twilio_notice_content_sid=CONTENT_SID)
    notice = _notice(sqlite_db)
    assert notice.channel == Channel.WHATSAPP
    _callback(client, signer, notice.provider_sid or "", "failed", "63016")
    notice = _notice(sqlite_db)
    assert (notice.status, notice.channel) == (NoticeStatus.PENDING, Channel.SMS)
    _run(sqlite_db, server, twilio_notice_content_sid=CONTENT_SID)
    notice = _notice(sqlite_db)
    assert (notice.status, notice.channel, notice.attempts) == (NoticeStatus.SENT, Channel.SMS, 2)


def test_stop_and_mulai_through_the_webhook(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, server: StubServer
) -> None:
    recipient = add_recipient(sqlite_db)
    add_disbursement(sqlite_db, recipient, day_after(2))
    add_disbursement(sqlite_db, recipient, day_after(3), program="BPNT")
    with sqlite_db.session() as session:
        phone = session.get_one(Recipient, recipient).phone or ""
    settings = notice_settings(sqlite_db, server.url)
    planner = NoticePlanner(sqlite_db, settings, clock=lambda: T0)
    dispatcher = Dispatcher(sqlite_db, TwilioTransport(settings), settings, clock=lambda: T0)
    planner.plan()

    stopped = signer.post(client, MESSAGES, sms_form(phone, "STOP"))
    assert b"tidak akan menerima pemberitahuan" in stopped.data
    assert dispatcher.run().cancelled == 2  # planned before STOP, not sent after it

    add_disbursement(sqlite_db, recipient, day_after(2), program="BLT")
    assert planner.plan().skipped == {"opted out": 1}

    started = signer.post(client, MESSAGES, sms_form(phone, "MULAI"))
    assert b"kembali menerima" in started.data
    assert planner.plan().total == 1
    assert dispatcher.run().sent == 1
    with sqlite_db.session() as session:
        assert not session.scalars(select(Contact).where(Contact.address == phone)).one().opted_out


def test_unsubscribed_callback_opts_the_contact_out(
    client: FlaskClient, signer: TwilioSigner, sqlite_db: Database, server: StubServer
) -> None:
    recipient = add_recipient(sqlite_db)
    add_disbursement(sqlite_db, recipient, day_after(2))
    _run(sqlite_db, server)
    _callback(client, signer, _notice(sqlite_db).provider_sid or "", "failed", "21610")
    with sqlite_db.session() as session:
        phone = session.get_one(Recipient, recipient).phone
        assert session.scalars(select(Contact).where(Contact.address == phone)).one().opted_out
    assert _notice(sqlite_db).status == NoticeStatus.FAILED
