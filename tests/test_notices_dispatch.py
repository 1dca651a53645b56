"""Sending notices through the real twilio client against the local fake Twilio API.

Retries, permanent failures, WhatsApp-to-SMS fallback, opt-outs, sending hours, the
rate limit, pause and resume, and what happens to rows a crash leaves behind.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.config import Settings
from bot.db import Database
from bot.notices.dispatcher import ClaimedNotice, Dispatcher
from bot.channels.outbox import SendResult, Template
from bot.channels.twilio import TwilioTransport
from bot.conversation.models import Channel, Contact
from bot.notices.ops import ResultGroup, results, set_paused
from bot.notices.planning import NoticePlanner
from bot.notices.models import AttemptStatus, Notice, NoticeAttempt, NoticeStatus
from bot.registry.models import Disbursement, DisbursementStatus, Recipient
from bot.conversation.subscriptions import set_opted_out
from tools.fake_twilio import FakeTwilioApi
from tools.http_stub import StubServer
from tools.notices import (
    CONTENT_SID,
    T0,
    add_disbursement,
    add_households,
    add_recipient,
    day_after,
    notice_settings,
)


class Clock:
    """The dispatcher's wall clock, moved by the test."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Rig:
    db: Database
    api: FakeTwilioApi
    server: StubServer
    clock: Clock

    def settings(self, **overrides: Any) -> Settings:
        return notice_settings(self.db, self.server.url, **overrides)

    def plan(self, **overrides: Any) -> None:
        NoticePlanner(self.db, self.settings(**overrides), clock=self.clock).plan()

    def dispatcher(self, **overrides: Any) -> Dispatcher:
        settings = self.settings(**overrides)
        return Dispatcher(self.db, TwilioTransport(settings), settings, clock=self.clock)

    def notices(self) -> list[Notice]:
        with self.db.session() as session:
            return list(session.scalars(select(Notice).order_by(Notice.id)))

    def phone_of(self, recipient_id: int) -> str:
        with self.db.session() as session:
            return session.get_one(Recipient, recipient_id).phone or ""


@pytest.fixture(scope="module")
def fake_api() -> Iterator[tuple[FakeTwilioApi, StubServer]]:
    """One fake API server for the module (stopping one takes half a second)."""
    api = FakeTwilioApi()
    with api.serve() as server:
        yield api, server


@pytest.fixture
def rig(db: Database, fake_api: tuple[FakeTwilioApi, StubServer]) -> Rig:
    api, server = fake_api
    clock = Clock()
    for recorded in (api.sent, api.arrivals, api.failures, api.transient):
        recorded.clear()
    api.now = clock
    return Rig(db, api, server, clock)


def test_sends_each_due_notice_once_and_records_the_sid(rig: Rig) -> None:
    phones = add_households(rig.db, 12, day_after(2))
    rig.plan()
    report = rig.dispatcher(notice_workers=4).run()
    assert report.sent == 12
    assert Counter(m["to"] for m in rig.api.sent) == Counter(phones)
    sids = {m["to"]: m["sid"] for m in rig.api.sent}
    for notice in rig.notices():
        assert notice.status == NoticeStatus.SENT
        assert notice.provider_sid == sids[notice.to_address]
        assert notice.provider_status == "queued"
        assert [a.status for a in _attempts(rig.db, notice.id)] == [AttemptStatus.ACCEPTED]
    assert rig.api.sent[0]["from"] == "+6281100000000"
    assert rig.api.sent[0]["body"].startswith("Bansos S*** W********: PKH Tahap 4 2026")
    assert rig.dispatcher().run().sent == 0


def _attempts(db: Database, notice_id: int) -> list[NoticeAttempt]:
    with db.session() as session:
        return list(
            session.scalars(
                select(NoticeAttempt).where(NoticeAttempt.notice_id == notice_id).order_by(NoticeAttempt.id)
            )
        )


@pytest.mark.parametrize("failure", [(500, 20500), (503, 20503), (429, 20429), (400, 30003)])
def test_transient_failures_are_retried_after_a_backoff(rig: Rig, failure: tuple[int, int]) -> None:
    [phone] = add_households(rig.db, 1, day_after(2))
    rig.api.transient[phone] = [failure, failure]
    rig.plan()
    dispatcher = rig.dispatcher()
    assert dispatcher.run().retrying == 1
    [notice] = rig.notices()
    assert (notice.status, notice.attempts) == (NoticeStatus.PENDING, 1)
    assert notice.not_before == T0 + timedelta(seconds=60)
    assert notice.reason and notice.reason.startswith("retrying")
    assert dispatcher.run().sent == 0  # not before its time
    rig.clock.advance(seconds=61)
    assert dispatcher.run().retrying == 1
    assert rig.notices()[0].not_before == rig.clock.at + timedelta(seconds=120)
    rig.clock.advance(seconds=121)
    assert dispatcher.run().sent == 1
    [notice] = rig.notices()
    assert (notice.status, notice.attempts) == (NoticeStatus.SENT, 3)
    assert len(rig.api.sent) == 1


def test_gives_up_after_the_last_attempt_and_says_why(rig: Rig) -> None:
    [phone] = add_households(rig.db, 1, day_after(2))
    rig.api.failures[phone] = (429, 20429)
    rig.plan()
    dispatcher = rig.dispatcher(notice_max_attempts=3)
    for _ in range(3):
        dispatcher.run()
        rig.clock.advance(hours=1)
    [notice] = rig.notices()
    assert notice.status == NoticeStatus.FAILED
    assert notice.reason == "gave up after 3 attempts: too many requests"
    assert notice.error_code == "20429"
    assert dispatcher.run().sent == 0


@pytest.mark.parametrize(
    "code, reason",
    [
        (21211, "invalid phone number"),
        (21614, "not a mobile number"),
        (30005, "unknown or inactive number"),
        (30006, "landline or unreachable carrier"),
    ],
)
def test_bad_numbers_fail_for_good_and_are_flagged(rig: Rig, code: int, reason: str) -> None:
    recipient = add_recipient(rig.db)
    add_disbursement(rig.db, recipient, day_after(2))
    add_disbursement(rig.db, recipient, day_after(2), program="BPNT")
    rig.api.failures[rig.phone_of(recipient)] = (400, code)
    rig.plan()
    report = rig.dispatcher(notice_workers=1).run()
    first, second = rig.notices()
    assert (first.status, first.reason, first.error_code) == (NoticeStatus.FAILED, reason, str(code))
    # The second notice to the same number is not even tried once the number is flagged.
    assert (second.status, second.reason) == (NoticeStatus.CANCELLED, "number flagged for data cleaning")
    assert (report.failed, report.cancelled) == (1, 1)
    with rig.db.session() as session:
        flagged = session.get_one(Recipient, recipient)
        assert (flagged.flagged_phone, flagged.flagged_phone_reason) == (flagged.phone, reason)


def test_unsubscribed_at_the_provider_opts_the_contact_out(rig: Rig) -> None:
    [phone] = add_households(rig.db, 1, day_after(2))
    rig.api.failures[phone] = (400, 21610)
    rig.plan()
    rig.dispatcher().run()
    [notice] = rig.notices()
    assert notice.status == NoticeStatus.FAILED
    assert notice.reason and notice.reason.startswith("unsubscribed")
    with rig.db.session() as session:
        assert session.scalars(select(Contact).where(Contact.address == phone)).one().opted_out
        assert session.scalars(select(Recipient).where(Recipient.phone == phone)).one().flagged_phone is None


def test_whatsapp_template_for_smartphone_users(rig: Rig) -> None:
    recipient = add_recipient(rig.db, smartphone=True)
    add_disbursement(rig.db, recipient, day_after(2))
    rig.plan(twilio_notice_content_sid=CONTENT_SID)
    assert rig.dispatcher(twilio_notice_content_sid=CONTENT_SID).run().sent == 1
    [message] = rig.api.sent
    assert message["to"] == f"whatsapp:{rig.phone_of(recipient)}"
    assert message["from"] == "whatsapp:+6281100000001"
    assert message["content_sid"] == CONTENT_SID
    variables = json.loads(message["content_variables"])
    assert variables["1"] == "S*** W********"
    assert message["body"] == "\n".join(variables.values())  # as the fake renders it
    assert rig.notices()[0].channel == Channel.WHATSAPP


def test_whatsapp_failure_falls_back_to_sms_at_once(rig: Rig) -> None:
    recipient = add_recipient(rig.db, smartphone=True)
    add_disbursement(rig.db, recipient, day_after(2))
    phone = rig.phone_of(recipient)
    rig.api.failures[f"whatsapp:{phone}"] = (400, 63016)
    rig.plan(twilio_notice_content_sid=CONTENT_SID)
    report = rig.dispatcher(twilio_notice_content_sid=CONTENT_SID).run()
    assert (report.fell_back, report.sent) == (1, 1)
    [message] = rig.api.sent
    assert message["to"] == phone and message["body"].startswith("Bansos")
    [notice] = rig.notices()
    assert (notice.status, notice.channel, notice.attempts) == (NoticeStatus.SENT, Channel.SMS, 2)
    assert notice.reason == "WhatsApp error 63016: SMS instead"
    assert [(a.channel, a.status) for a in _attempts(rig.db, notice.id)] == [
        (Channel.WHATSAPP, AttemptStatus.REFUSED),
        (Channel.SMS, AttemptStatus.ACCEPTED),
    ]


def test_whatsapp_without_a_template_goes_by_sms(rig: Rig) -> None:
    add_disbursement(rig.db, add_recipient(rig.db, smartphone=True), day_after(2))
    rig.plan(twilio_notice_content_sid=CONTENT_SID)  # planned as WhatsApp...
    rig.dispatcher(twilio_notice_content_sid="").run()  # ...but the template is gone
    [message] = rig.api.sent
    assert not message["to"].startswith("whatsapp:")
    assert rig.notices()[0].channel == Channel.SMS


def test_opted_out_after_planning_gets_nothing(rig: Rig) -> None:
    recipient = add_recipient(rig.db)
    add_disbursement(rig.db, recipient, day_after(2))
    rig.plan()
    with rig.db.session() as session:
        contact = Contact(address=rig.phone_of(recipient))
        session.add(contact)
        session.flush()
        key = contact.conversation_key
    set_opted_out(rig.db, key, True)
    assert rig.dispatcher().run().cancelled == 1
    assert rig.api.sent == []
    assert (rig.notices()[0].status, rig.notices()[0].reason) == (NoticeStatus.CANCELLED, "opted out")


def test_a_corrected_phone_gets_the_notice_instead_of_the_old_one(rig: Rig) -> None:
    recipient = add_recipient(rig.db)
    add_disbursement(rig.db, recipient, day_after(2))
    rig.plan()
    with rig.db.session() as session:
        session.get_one(Recipient, recipient).phone = "+6285799990000"
    rig.dispatcher().run()
    assert [m["to"] for m in rig.api.sent] == ["+6285799990000"]


def test_out_of_date_reminder_is_cancelled(rig: Rig) -> None:
    disbursement = add_disbursement(rig.db, add_recipient(rig.db), day_after(2))
    rig.plan()
    with rig.db.session() as session:
        session.get_one(Disbursement, disbursement).status = DisbursementStatus.DITUNDA
    rig.dispatcher().run()
    rig.plan()
    rig.dispatcher().run()
    assert [(n.kind, n.status) for n in rig.notices()] == [
        ("reminder", NoticeStatus.CANCELLED),
        ("postponed", NoticeStatus.SENT),
    ]
    assert "ditunda" in rig.api.sent[0]["body"]


def test_sending_hours_are_local_to_each_recipient(rig: Rig) -> None:
    rig.clock.at = datetime(2026, 12, 7, 12, 30, tzinfo=timezone.utc)  # 19:30 WIB, 21:30 WIT
    java = add_households(rig.db, 2, day_after(2), provinces=("32",))
    papua = add_households(rig.db, 2, day_after(2), provinces=("94",))
    rig.plan()
    rig.dispatcher().run()
    assert sorted(m["to"] for m in rig.api.sent) == sorted(java)
    rig.clock.at = datetime(2026, 12, 7, 22, 59, tzinfo=timezone.utc)  # 07:59 WIT
    assert rig.dispatcher().run().sent == 0
    rig.clock.advance(minutes=1)  # 08:00 WIT, still 06:00 WIB
    assert rig.dispatcher().run().sent == 2
    assert sorted(m["to"] for m in rig.api.sent[2:]) == sorted(papua)


class PacedClock:
    """A monotonic clock for the token bucket, moved only by the dispatcher's sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class RecordingTransport:
    """Notes the (fake) moment of each send, then hands it to the real transport."""

    def __init__(self, inner: TwilioTransport, clock: PacedClock) -> None:
        self.inner, self.clock, self.name = inner, clock, inner.name
        self.sent_at: list[float] = []

    def send(self, to: str, body: str, channel: str, template: Template | None = None) -> SendResult:
        self.sent_at.append(self.clock.now)
        return self.inner.send(to, body, channel, template)

    def sent_to(self, *args: Any) -> Any:
        return self.inner.sent_to(*args)


def test_a_send_delayed_past_the_window_waits_for_the_morning(rig: Rig) -> None:
    rig.clock.at = datetime(2026, 12, 7, 12, 59, 59, 500_000, tzinfo=timezone.utc)  # 19:59:59.5 WIB
    first, second = add_households(rig.db, 2, day_after(2), provinces=("32",))
    rig.plan()
    settings = rig.settings(notice_sms_rate=1.0, notice_workers=1, notice_stale_seconds=600)
    paced = PacedClock()

    def sleep(seconds: float) -> None:  # waiting for the rate limit takes wall time too
        paced.sleep(seconds)
        rig.clock.advance(seconds=seconds)

    dispatcher = Dispatcher(
        rig.db, TwilioTransport(settings), settings, clock=rig.clock, monotonic=paced, sleep=sleep
    )
    report = dispatcher.run()
    assert (report.sent, report.deferred) == (1, 1)
    assert [m["to"] for m in rig.api.sent] == [first]
    sent, deferred = rig.notices()
    assert (deferred.status, deferred.attempts) == (NoticeStatus.PENDING, 0)
    assert deferred.not_before == datetime(2026, 12, 8, 1, 0, tzinfo=timezone.utc)
    assert [a.status for a in _attempts(rig.db, deferred.id)] == [AttemptStatus.NOT_SENT]


def test_rate_limit_per_sender_never_exceeded(rig: Rig) -> None:
    add_households(rig.db, 30, day_after(2))
    rig.plan()
    # The paced clock leaps with every wait, faster than claims are refreshed in real
    # time: a long stale period keeps the claim guard out of this test of the pacing.
    settings = rig.settings(notice_sms_rate=5.0, notice_workers=1, notice_stale_seconds=600)
    paced = PacedClock()
    transport = RecordingTransport(TwilioTransport(settings), paced)
    dispatcher = Dispatcher(
        rig.db, transport, settings, clock=rig.clock, monotonic=paced, sleep=paced.sleep
    )
    assert dispatcher.run().sent == 30
    gaps = [b - a for a, b in zip(transport.sent_at, transport.sent_at[1:])]
    assert min(gaps) == pytest.approx(0.202)  # 1/5 s and 1% headroom
    assert transport.sent_at[-1] == pytest.approx(29 * 0.202)


def test_pause_and_resume(rig: Rig) -> None:
    add_households(rig.db, 3, day_after(2))
    rig.plan()
    set_paused(rig.db, True, "test")
    assert rig.dispatcher().run().sent == 0
    set_paused(rig.db, False, "test")
    campaign = rig.notices()[0].campaign_id
    set_paused(rig.db, True, "test", campaign)
    assert rig.dispatcher().run().sent == 0
    assert results(rig.db).total[ResultGroup.PENDING] == 3
    set_paused(rig.db, False, "test", campaign)
    assert rig.dispatcher().run().sent == 3
    assert not set_paused(rig.db, True, "test", campaign + 1)


# --- rows a crash leaves behind -----------------------------------------------------------
# Their age is judged by the database's clock, not the dispatcher's (which the tests
# set days ahead of it, to T0): time passing is the rows' stamps moving back.


def _crash_in(rig: Rig, status: str, minutes_ago: float) -> Notice:
    """Leave the only notice as a dead dispatcher would have left it."""
    [notice] = rig.notices()
    then = rig.db.now() - timedelta(minutes=minutes_ago)
    with rig.db.session() as session:
        session.execute(
            update(Notice)
            .where(Notice.id == notice.id)
            .values(status=status, claim_token="dead", claimed_at=then)
        )
        if status == NoticeStatus.SENDING:
            session.add(
                NoticeAttempt(
                    notice_id=notice.id,
                    channel=Channel.SMS,
                    claim_token="dead",
                    provider="twilio",
                    started_at=then,
                )
            )
    return notice


def _age(rig: Rig, seconds: float) -> None:
    """Let `seconds` pass on the database's clock for the rows in flight."""
    with rig.db.session() as session:
        for notice in session.scalars(select(Notice).where(Notice.status.in_(NoticeStatus.OPEN))):
            notice.claimed_at = notice.claimed_at and notice.claimed_at - timedelta(seconds=seconds)


def test_crash_after_claiming_sends_once_the_claim_is_stale(rig: Rig) -> None:
    add_households(rig.db, 1, day_after(2))
    rig.plan()
    _crash_in(rig, NoticeStatus.CLAIMED, minutes_ago=0)
    assert rig.dispatcher().run().sent == 0  # maybe still alive: leave it alone
    settings = rig.settings()
    an_hour_ahead = Dispatcher(
        rig.db, TwilioTransport(settings), settings, clock=lambda: rig.db.now() + timedelta(hours=1)
    )
    assert an_hour_ahead.reconcile().released == 0  # a host clock running ahead changes nothing
    _age(rig, seconds=10)
    report = rig.dispatcher().run()
    assert (report.released, report.sent) == (1, 1)
    assert len(rig.api.sent) == 1


def test_crash_after_the_provider_accepted_is_recovered_not_resent(rig: Rig) -> None:
    [phone] = add_households(rig.db, 1, day_after(2))
    rig.plan()
    notice = _crash_in(rig, NoticeStatus.SENDING, minutes_ago=1)
    # The message reached Twilio; its answer died with the dispatcher.
    TwilioTransport(rig.settings()).send(phone, notice.body, Channel.SMS)
    report = rig.dispatcher().run()
    assert (report.recovered, report.sent) == (1, 0)
    assert len(rig.api.sent) == 1
    [notice] = rig.notices()
    assert (notice.status, notice.provider_sid) == (NoticeStatus.SENT, rig.api.sent[0]["sid"])
    assert _attempts(rig.db, notice.id)[0].provider_sid == rig.api.sent[0]["sid"]


def test_crash_before_the_request_left_is_sent_after_checking(rig: Rig) -> None:
    add_households(rig.db, 1, day_after(2))
    rig.plan()
    _crash_in(rig, NoticeStatus.SENDING, minutes_ago=1)
    report = rig.dispatcher().run()
    assert (report.resent, report.sent) == (1, 1)
    [notice] = rig.notices()
    assert (notice.status, notice.attempts) == (NoticeStatus.SENT, 1)
    assert [a.status for a in _attempts(rig.db, notice.id)] == [
        AttemptStatus.NOT_SENT,
        AttemptStatus.ACCEPTED,
    ]


def test_an_older_message_to_the_same_number_is_not_taken_for_ours(rig: Rig) -> None:
    [phone] = add_households(rig.db, 1, day_after(2))
    rig.plan()
    notice = _crash_in(rig, NoticeStatus.SENDING, minutes_ago=1)
    TwilioTransport(rig.settings()).send(phone, "Balasan lain dari petugas", Channel.SMS)
    assert rig.dispatcher().run().resent == 1
    assert [m["body"] for m in rig.api.sent] == ["Balasan lain dari petugas", notice.body]


def test_no_answer_from_the_provider_is_checked_before_sending_again(rig: Rig) -> None:
    add_households(rig.db, 1, day_after(2))
    rig.plan()
    down = rig.dispatcher(twilio_api_base="http://127.0.0.1:9", twilio_http_timeout=1.0)
    assert down.run().unanswered == 1
    [notice] = rig.notices()
    assert notice.status == NoticeStatus.SENDING
    assert rig.dispatcher().run().sent == 0  # not stale yet: its sender may still hear back
    _age(rig, seconds=10)
    report = rig.dispatcher().run()
    assert (report.resent, report.sent) == (1, 1)
    assert len(rig.api.sent) == 1


def test_a_stalled_dispatcher_whose_rows_were_taken_over_sends_none_of_them(rig: Rig) -> None:
    """Its refresh finds none of its rows still `sending` under its token: its workers stop."""
    add_households(rig.db, 1, day_after(2))
    rig.plan()
    stalled = rig.dispatcher()
    _crash_in(rig, NoticeStatus.SENDING, minutes_ago=1)
    [notice] = rig.notices()
    token = notice.claim_token
    assert token
    stalled._stamp({token}, stalled.monotonic())
    report = rig.dispatcher().run()  # another dispatcher takes the stale row over and sends it
    assert report.resent == 1 and len(rig.api.sent) == 1
    stalled._refresh_claims({token})
    claimed = ClaimedNotice.of(notice, token)
    assert stalled._too_late(claimed), "a send for a row that is no longer ours must not start"
