"""The follow-up job: messages Rasa could not answer are answered once it is back, once."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.db import Database
from bot.conversation.followup import retry_followups
from bot.conversation.turns import DEFAULT_POLICY, Turns
from bot.handoff.models import Handoff
from bot.conversation.models import Channel, Contact, Direction, Message, MessageStatus, utcnow
from bot.services import Services, build_services
from tools.fake_rasa import FakeRasa
from tools.fake_twilio import FakeTwilioApi
from tests.support.twilio import SERVICE_NUMBER, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.support.rasa import listening

PHONE = "+6281234567890"


@dataclass
class CountingRasa(FakeRasa):
    """The scripted Rasa, counting every request that reaches it, failed ones too."""

    attempts: int = 0

    def respond(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.attempts += 1
        return super().respond(method, path, body)


@pytest.fixture
def rasa() -> Iterator[CountingRasa]:
    with listening(CountingRasa(replies=[{"text": "Jadwal PKH: 27/11."}])) as fake:
        yield fake


@pytest.fixture
def services(db: Database, rasa: CountingRasa, twilio_api: FakeTwilioApi) -> Iterator[Services]:
    settings = Settings().with_overrides(
        {
            "database_url": db.url,
            "rasa_url": rasa.url,  # type: ignore[attr-defined]
            "rasa_timeout": 2.0,
            "twilio_account_sid": TEST_ACCOUNT_SID,
            "twilio_auth_token": TEST_AUTH_TOKEN,
            "twilio_api_base": twilio_api.url,  # type: ignore[attr-defined]
            "twilio_sms_from": SERVICE_NUMBER,
            "twilio_whatsapp_from": SERVICE_NUMBER,
            "twilio_http_timeout": 2.0,
        }
    )
    built = build_services(settings)
    yield built
    built.db.dispose()


def stored(
    db: Database,
    age: timedelta,
    status: str = MessageStatus.NEEDS_FOLLOWUP,
    address: str = PHONE,
    channel: str = Channel.SMS,
    body: str = "JADWAL",
) -> int:
    """An inbound message stored `age` ago (and not touched since), from `address`."""
    at = utcnow() - age
    with db.session() as session:
        contact = session.scalar(select(Contact).where(Contact.address == address))
        if contact is None:
            contact = Contact(address=address)
            session.add(contact)
        message = Message(
            contact=contact, direction=Direction.INBOUND, channel=channel, provider="twilio",
            provider_sid=f"SM{utcnow().timestamp()}{address}{body}"[:64], body=body, status=status,
            created_at=at, updated_at=at,
        )
        session.add(message)
        session.flush()
        return message.id


def status_of(db: Database, message_id: int) -> str:
    with db.session() as session:
        return session.get_one(Message, message_id).status


def sent_to(api: FakeTwilioApi) -> list[tuple[str, str]]:
    return [(message["to"], message["body"]) for message in api.sent]


def test_once_rasa_is_back_the_answer_goes_out_through_the_outbox_once(
    db: Database, services: Services, rasa: CountingRasa, twilio_api: FakeTwilioApi
) -> None:
    message_id = stored(db, timedelta(minutes=5))
    assert retry_followups(services) == 1
    assert sent_to(twilio_api) == [(PHONE, "Jadwal PKH: 27/11.")]
    assert status_of(db, message_id) == MessageStatus.ANSWERED
    assert rasa.received[0]["message"] == "/ask_disbursement_schedule", "keywords stay keywords"
    with db.session() as session:
        outbound = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)).one()
        assert (outbound.provider, outbound.status) == ("twilio", MessageStatus.QUEUED)
    assert retry_followups(services, now=utcnow() + timedelta(hours=1)) == 0
    assert len(twilio_api.sent) == 1 and len(rasa.received) == 1


def test_while_rasa_is_still_down_nothing_is_sent_and_the_run_stops_early(
    db: Database, services: Services, rasa: CountingRasa, twilio_api: FakeTwilioApi
) -> None:
    rasa.down = True
    first = stored(db, timedelta(minutes=5))
    second = stored(db, timedelta(minutes=4), address="+6285700001111")
    now = utcnow()
    assert retry_followups(services, now=now) == 0
    assert twilio_api.sent == []
    assert [status_of(db, first), status_of(db, second)] == [MessageStatus.NEEDS_FOLLOWUP] * 2
    assert rasa.attempts == 1
    turns = Turns(db)
    assert turns.due(now + DEFAULT_POLICY.retry_after / 2) == [second], "the first waits before its next try"
    assert turns.due(now + DEFAULT_POLICY.retry_after + timedelta(seconds=1)) == [first, second]
    rasa.down = False
    assert retry_followups(services, now=now + timedelta(minutes=2)) == 2
    assert len(twilio_api.sent) == 2


def test_a_message_left_received_by_a_dead_request_is_answered_a_fresh_one_is_not(
    db: Database, services: Services, twilio_api: FakeTwilioApi
) -> None:
    orphan = stored(db, DEFAULT_POLICY.lease + timedelta(seconds=5), status=MessageStatus.RECEIVED)
    in_flight = stored(db, DEFAULT_POLICY.lease / 2, status=MessageStatus.RECEIVED, address="+6285700001111")
    assert retry_followups(services) == 1
    assert (status_of(db, orphan), status_of(db, in_flight)) == (MessageStatus.ANSWERED, MessageStatus.RECEIVED)
    assert sent_to(twilio_api) == [(PHONE, "Jadwal PKH: 27/11.")]


# A webhook that died left STOP `received`, or `at_rasa` when it had claimed the turn as
# it stored the message: either way STOP works with Rasa down, and Rasa is not asked.
@pytest.mark.parametrize("left", [MessageStatus.RECEIVED, MessageStatus.AT_RASA])
def test_stop_left_behind_by_a_dead_request_still_opts_out_while_rasa_is_down(
    db: Database, services: Services, rasa: CountingRasa, left: str
) -> None:
    rasa.down = True
    stored(db, timedelta(minutes=5), status=left, body="STOP")
    assert retry_followups(services) == 1
    with db.session() as session:
        assert session.scalars(select(Contact.opted_out)).one() is True
    assert rasa.attempts == 0


def _opt_out(db: Database) -> None:
    with db.session() as session:
        session.scalars(select(Contact)).one().opted_out = True


@pytest.mark.parametrize(
    "age, after",
    [
        pytest.param(DEFAULT_POLICY.max_age + timedelta(minutes=1), lambda db: None, id="older than a day"),
    ],
)
def test_messages_not_followed_up_stay_as_they_are(
    db: Database, services: Services, rasa: CountingRasa, twilio_api: FakeTwilioApi, age: timedelta, after: Any
) -> None:
    message_id = stored(db, age)
    after(db)
    assert retry_followups(services) == 0
    assert status_of(db, message_id) == MessageStatus.NEEDS_FOLLOWUP
    assert rasa.received == [] and twilio_api.sent == []


def open_handoff(db: Database, status: str) -> None:
    """The only contact asked for a person since; `status` says whether an officer has it."""
    with db.session() as session:
        contact = session.scalars(select(Contact)).one()
        session.add(Handoff(contact_id=contact.id, reason="requested", channel="sms", status=status))


def test_a_waiting_message_of_a_sender_who_opted_out_since_is_settled_and_nothing_is_sent(
    db: Database, services: Services, rasa: CountingRasa, twilio_api: FakeTwilioApi
) -> None:
    """It must not hold the queue up: the sender's later messages wait behind it."""
    message_id = stored(db, timedelta(minutes=5))
    _opt_out(db)
    later = stored(db, timedelta(minutes=4), status=MessageStatus.WAITING)
    assert retry_followups(services) == 2
    assert (status_of(db, message_id), status_of(db, later)) == (MessageStatus.ANSWERED, MessageStatus.ANSWERED)
    assert twilio_api.sent == [], "the outbox keeps answers to an opted-out contact unsent"


def test_a_message_rasa_keeps_failing_stops_holding_its_senders_later_messages(
    db: Database, services: Services, rasa: CountingRasa, twilio_api: FakeTwilioApi
) -> None:
    poison = stored(db, DEFAULT_POLICY.blocks_for + timedelta(minutes=1))
    later = stored(db, timedelta(minutes=1), status=MessageStatus.WAITING)
    assert Turns(db).due() == [poison, later]
    fresh = stored(db, timedelta(minutes=1), address="+6285700001111")
    behind = stored(db, timedelta(seconds=30), status=MessageStatus.WAITING, address="+6285700001111")
    assert behind not in Turns(db).due() and fresh in Turns(db).due()


def test_a_chat_an_officer_holds_since_stays_with_staff(
    db: Database, services: Services, rasa: CountingRasa, twilio_api: FakeTwilioApi
) -> None:
    message_id = stored(db, timedelta(minutes=5), body="halo, tolong dibantu")
    open_handoff(db, "claimed")
    assert retry_followups(services) == 1
    assert status_of(db, message_id) == MessageStatus.WITH_STAFF
    assert rasa.received == [] and twilio_api.sent == []


def test_a_keyword_kept_for_follow_up_is_answered_while_the_citizen_waits_for_an_officer(
    db: Database, services: Services, rasa: CountingRasa, twilio_api: FakeTwilioApi
) -> None:
    message_id = stored(db, timedelta(minutes=5), body="JADWAL")
    open_handoff(db, "waiting")
    assert retry_followups(services) == 1
    assert status_of(db, message_id) == MessageStatus.ANSWERED
    assert [r["message"] for r in rasa.received] == ["/ask_disbursement_schedule"]
    assert sent_to(twilio_api) == [(PHONE, "Jadwal PKH: 27/11.")]


def test_whatsapp_answers_go_out_as_separate_whatsapp_messages(
    db: Database, services: Services, rasa: CountingRasa, twilio_api: FakeTwilioApi
) -> None:
    rasa.replies = [{"text": "*Jadwal* PKH: 27/11 🙏"}, {"text": "Ketik MENU"}]
    stored(db, timedelta(minutes=5), channel=Channel.WHATSAPP)
    assert retry_followups(services) == 1
    assert sent_to(twilio_api) == [
        (f"whatsapp:{PHONE}", "*Jadwal* PKH: 27/11 🙏"),
        (f"whatsapp:{PHONE}", "Ketik MENU"),
    ]


def test_concurrent_runs_answer_each_message_exactly_once(
    db: Database, services: Services, twilio_api: FakeTwilioApi
) -> None:
    phones = [f"+62812000000{i:02d}" for i in range(8)]
    for phone in phones:
        stored(db, timedelta(minutes=5), address=phone)
    barrier = threading.Barrier(4)
    settled: list[int] = []

    def run() -> None:
        barrier.wait()
        settled.append(retry_followups(services))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(settled) == len(phones)
    assert sorted(to for to, _ in sent_to(twilio_api)) == phones


def test_a_run_that_overran_its_claim_sends_nothing(
    db: Database, services: Services, twilio_api: FakeTwilioApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run slower than `retry_after` loses the message to the next run, which sends."""
    message_id = stored(db, timedelta(minutes=5))
    answer = services.conversations.answer_stored
    later = utcnow() + DEFAULT_POLICY.lease + timedelta(seconds=5)
    overtaken: list[int] = []

    def slow_answer(mid: int, earlier: str) -> tuple[list[str], str]:
        """The first call is overtaken by a whole later run, answering normally."""
        monkeypatch.setattr(services.conversations, "answer_stored", answer)
        overtaken.append(retry_followups(services, now=later))
        return answer(mid, earlier)

    monkeypatch.setattr(services.conversations, "answer_stored", slow_answer)
    assert retry_followups(services) == 0
    assert overtaken == [1]
    assert len(twilio_api.sent) == 1
    assert status_of(db, message_id) == MessageStatus.ANSWERED


def test_the_follow_up_answer_is_sms_safe(db: Database, services: Services, rasa: CountingRasa, twilio_api: FakeTwilioApi) -> None:
    rasa.replies = [{"text": "*Halo* “Bapak” 🙏"}, {"text": "Ketik MENU"}]
    stored(db, timedelta(minutes=5))
    retry_followups(services)
    assert sent_to(twilio_api) == [(PHONE, 'Halo "Bapak"\nKetik MENU')]

