"""A busy assistant queues, never refuses: late answers go out through the API, once, in order.

Rasa is the scripted stand-in (tools/fake_rasa.py) so that it can be made slower than
the webhook's budget on demand; Twilio's REST API is the local fake.
"""
from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text, update

from app import create_app
from bot.config import Settings
from bot.conversation.answerer import AnswerPool
from bot.conversation.arrival import ArrivalStatements
from bot.conversation.followup import retry_followups
from bot.conversation.limits import InboundPolicy
from bot.conversation.models import Contact, Direction, Message, MessageStatus
from bot.conversation.turns import DEFAULT_POLICY, Turns
from bot import db as db_module
from bot.db import Database
from bot.handoff.models import Handoff, HandoffReason
from bot.rules.phone import parse_address
from bot.services import Services, build_services
from tools.databases import migrated_database, postgres_base_url
from tools.fake_rasa import FakeRasa
from tools.fake_twilio import FakeTwilioApi
from tests.support.twilio import SERVICE_NUMBER, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioSigner, sms_form
from tests.support.rasa import listening

MESSAGES = "/webhooks/twilio/messages"
PHONE = "+6281234567890"
OTHER_PHONE = "+6285700001111"
BUDGET = 0.3


def settings_for(db: Database, rasa_url: str, twilio_api: FakeTwilioApi, **overrides: Any) -> dict[str, Any]:
    return {
        "database_url": db.url,
        "rasa_url": rasa_url,
        "rasa_timeout": 5.0,
        "rasa_reply_budget": BUDGET,
        "twilio_account_sid": TEST_ACCOUNT_SID,
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "twilio_api_base": twilio_api.url,  # type: ignore[attr-defined]
        "twilio_sms_from": SERVICE_NUMBER,
        "twilio_whatsapp_from": SERVICE_NUMBER,
        "public_base_url": "",
        **overrides,
    }


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    with listening(FakeRasa(replies=[{"text": "Jadwal PKH: 27/11."}])) as fake:
        yield fake


@pytest.fixture
def client(db: Database, rasa: FakeRasa, twilio_api: FakeTwilioApi) -> FlaskClient:
    return create_app(settings_for(db, rasa.url, twilio_api)).test_client()  # type: ignore[attr-defined]


@pytest.fixture
def services(db: Database, rasa: FakeRasa, twilio_api: FakeTwilioApi) -> Iterator[Services]:
    """The answer workers' services, as `python -m bot.conversation.answerer` builds them."""
    built = build_services(Settings().with_overrides(settings_for(db, rasa.url, twilio_api)))  # type: ignore[attr-defined]
    yield built
    built.db.dispose()


def post(client: FlaskClient, signer: TwilioSigner, body: str, phone: str = PHONE) -> tuple[list[str], float, str]:
    """The TwiML texts, the seconds the webhook took, and the message's sid."""
    form = sms_form(phone, body)
    started = time.monotonic()
    response = signer.post(client, MESSAGES, form)
    took = time.monotonic() - started
    assert response.status_code == 200, response.data
    return [(m.text or "") for m in ET.fromstring(response.data).iter("Message")], took, form["MessageSid"]


def inbound(db: Database, sid: str) -> Message:
    with db.session() as session:
        return session.scalars(select(Message).where(Message.provider_sid == sid)).one()


def wait_until(condition: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_rasa_slower_than_the_budget_answers_at_once_and_the_answer_follows_by_the_api_once(
    db: Database, client: FlaskClient, signer: TwilioSigner, rasa: FakeRasa, twilio_api: FakeTwilioApi,
    services: Services,
) -> None:
    rasa.delay = 1.0
    texts, took, sid = post(client, signer, "JADWAL")
    assert texts == [], "no apology: the service is busy, not down"
    assert took < 0.9, f"the webhook waited {took:.2f} s, past its budget"
    wait_until(lambda: len(twilio_api.sent) == 1)
    assert [(m["to"], m["body"]) for m in twilio_api.sent] == [(PHONE, "Jadwal PKH: 27/11.")]
    message = inbound(db, sid)
    assert message.status == MessageStatus.ANSWERED

    def replies() -> list[Message]:
        with db.session() as session:
            return list(session.scalars(select(Message).where(Message.in_reply_to_id == message.id)))

    # The fake API has the message as soon as it is posted; the outbox records Twilio's
    # sid when the API's answer is back.
    wait_until(lambda: [bool(reply.provider_sid) for reply in replies()] == [True])
    [reply] = replies()
    assert (reply.direction, reply.status) == (Direction.OUTBOUND, MessageStatus.QUEUED)
    form = sms_form(PHONE, "JADWAL")
    form["MessageSid"] = sid
    replayed = signer.post(client, MESSAGES, form)
    assert [m.text for m in ET.fromstring(replayed.data).iter("Message")] == [], "a replay must not repeat it"
    assert len(rasa.received) == 1 and len(twilio_api.sent) == 1
    assert retry_followups(services, now=message.created_at + DEFAULT_POLICY.lease * 2) == 0
    assert len(rasa.received) == 1 and len(twilio_api.sent) == 1


def test_a_second_message_waits_for_the_first_and_both_answers_go_out_in_order(
    db: Database, client: FlaskClient, signer: TwilioSigner, rasa: FakeRasa, twilio_api: FakeTwilioApi,
    services: Services,
) -> None:
    rasa.delay = 1.0
    _, _, first = post(client, signer, "JADWAL")
    rasa.delay = 0
    texts, _, second = post(client, signer, "MENU")
    assert texts == [], "the second turn must not overtake the first"
    assert [r["message"] for r in rasa.received] == ["/ask_disbursement_schedule"]
    assert inbound(db, second).status == MessageStatus.WAITING
    assert Turns(db).due() == [], "not due while the first is at Rasa"
    wait_until(lambda: inbound(db, first).status == MessageStatus.ANSWERED)
    assert retry_followups(services) == 1
    assert [r["message"] for r in rasa.received] == ["/ask_disbursement_schedule", "/help"]
    with db.session() as session:
        answered = session.scalars(
            select(Message.in_reply_to_id).where(Message.direction == Direction.OUTBOUND).order_by(Message.id)
        ).all()
    assert answered == [inbound(db, first).id, inbound(db, second).id]
    assert [m["to"] for m in twilio_api.sent] == [PHONE, PHONE]


def test_a_process_with_no_free_rasa_slot_queues_the_message_instead_of_piling_onto_rasa(
    db: Database, rasa: FakeRasa, twilio_api: FakeTwilioApi, signer: TwilioSigner, services: Services
) -> None:
    client = create_app(settings_for(db, rasa.url, twilio_api, rasa_calls_per_process=1)).test_client()  # type: ignore[attr-defined]
    # Long enough that the first turn still holds the slot when the second message
    # comes, however slowly a loaded machine posts it.
    rasa.delay = 3.0
    post(client, signer, "JADWAL")
    texts, took, queued = post(client, signer, "JADWAL", phone=OTHER_PHONE)
    assert texts == [] and took < 0.9
    assert len(rasa.received) == 1, "the queued message did not reach Rasa"
    assert inbound(db, queued).status == MessageStatus.WAITING
    rasa.delay = 0
    wait_until(lambda: retry_followups(services) >= 1 and inbound(db, queued).status == MessageStatus.ANSWERED)
    wait_until(lambda: len(twilio_api.sent) == 2)
    assert sorted(m["to"] for m in twilio_api.sent) == sorted([PHONE, OTHER_PHONE])


def test_the_answer_pool_drains_a_backlog_once_each_and_in_order_per_sender(
    db: Database, rasa: FakeRasa, twilio_api: FakeTwilioApi, signer: TwilioSigner, services: Services
) -> None:
    """Forty messages from eight phones queued behind a busy process, answered by two pools.

    Whatever the process answered itself once its one slot was free again (a slow
    machine posts slowly) came back in the webhook's TwiML; the rest through the API.
    """
    client = create_app(settings_for(db, rasa.url, twilio_api, rasa_calls_per_process=1)).test_client()  # type: ignore[attr-defined]
    rasa.delay = 0.5
    post(client, signer, "halo", phone="+6281100000000")
    rasa.delay = 0.02
    phones = [f"+62812000000{i:02d}" for i in range(8)]
    in_twiml = sum(
        bool(post(client, signer, f"pesan {turn}", phone=phone)[0]) for turn in range(5) for phone in phones
    )
    stopping = threading.Event()
    second = build_services(services.settings)
    pools = [threading.Thread(target=AnswerPool(s, 4).run, args=(stopping,)) for s in (services, second)]
    for pool in pools:
        pool.start()
    try:
        wait_until(lambda: len(twilio_api.sent) + in_twiml == 41, timeout=60)
    finally:
        stopping.set()
        for pool in pools:
            pool.join()
        second.db.dispose()
    asked = [(r["sender"], r["message"]) for r in rasa.received]
    assert len(asked) == len(set(asked)) == 41, "every message reached Rasa exactly once"
    for key in {sender for sender, _ in asked}:
        order = [message for sender, message in asked if sender == key]
        assert order == sorted(order), f"turns of one sender out of order: {order}"
    assert len(twilio_api.sent) + in_twiml == 41, "no answer went out twice"


def test_a_claim_is_exclusive_until_it_is_settled_or_its_lease_runs_out(db: Database) -> None:
    with db.session() as session:
        contact = Contact(address=PHONE)
        session.add(contact)
        session.flush()
        first, second = (
            Message(contact_id=contact.id, direction=Direction.INBOUND, channel="sms", provider="twilio",
                    provider_sid=f"SM{n}", body="halo", status=MessageStatus.RECEIVED)
            for n in (1, 2)
        )
        session.add_all([first, second])
    turns = Turns(db)
    assert turns.claim(second.id) is None, "the older message goes first"
    claim = turns.claim(first.id)
    assert claim is not None and claim.earlier_status == MessageStatus.RECEIVED
    assert turns.claim(first.id) is None, "a live claim is not taken twice"
    later = claim.claimed_at + DEFAULT_POLICY.lease + timedelta(seconds=1)
    taken_over = turns.claim(first.id, now=later)
    assert taken_over is not None and taken_over.earlier_status == MessageStatus.AT_RASA
    assert not turns.settle(claim, MessageStatus.ANSWERED), "the overtaken claim changes nothing"
    assert turns.settle(taken_over, MessageStatus.ANSWERED, now=later)
    assert turns.claim(second.id, now=later) is not None


class _HourFast(datetime):
    """This host's clock, an hour ahead of the database's."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return datetime.now(tz) + timedelta(hours=1)


@pytest.fixture
def postgres_db(tmp_path: Path) -> Iterator[Database]:
    """PostgreSQL alone: SQLite is one host, whose clock is the database's."""
    if not postgres_base_url():
        pytest.skip("PostgreSQL variant: set TEST_DATABASE_URL to run it")
    with migrated_database("postgresql", tmp_path) as database:
        yield database


def _message_from_phone(db: Database, status: str) -> int:
    """An inbound message from PHONE, a new contact, in `status`; its id."""
    with db.session() as session:
        contact = Contact(address=PHONE)
        session.add(contact)
        session.flush()
        message = Message(contact_id=contact.id, direction=Direction.INBOUND, channel="sms", provider="twilio",
                          provider_sid="SM1", body="halo", status=status)
        session.add(message)
        session.flush()
        return message.id


def test_claims_are_stamped_with_the_database_clock(postgres_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose clock is an hour fast must not take over another host's live claim."""
    db = postgres_db
    message_id = _message_from_phone(db, MessageStatus.RECEIVED)
    turns = Turns(db)
    assert turns.claim(message_id) is not None
    monkeypatch.setattr(db_module, "datetime", _HourFast)
    assert turns.claim(message_id) is None
    assert turns.due() == []


def test_a_webhook_storing_a_message_holds_its_sender_back_from_the_answer_workers(postgres_db: Database) -> None:
    """The webhook claims its turn without a `FOR UPDATE` of its own: the update of the
    sender's contact row, in the unit of work that stores the message, is the lock that
    every host's claims respect until the message is stored (and its turn claimed)."""
    db = postgres_db
    older = _message_from_phone(db, MessageStatus.WAITING)
    turns = Turns(db)
    arrival = ArrivalStatements(turns.policy, InboundPolicy(30, timedelta(minutes=1)), db)
    with db.transaction() as storing:
        assert arrival.touch(storing, parse_address(PHONE, "ID"), datetime.now(timezone.utc))
        assert turns.claim(older, wait=False) is None, "an answer worker skips the sender meanwhile"
    assert turns.claim(older, wait=False) is not None


def test_a_message_stored_while_another_of_its_sender_held_the_row_sees_that_claim(postgres_db: Database) -> None:
    """Two webhooks of one sender at once on PostgreSQL: the second waits for the first's
    lock on the sender's row, and its statement, begun after, sees the turn the first
    claimed and committed meanwhile, so only one turn of the sender goes to Rasa."""
    db = postgres_db
    _message_from_phone(db, MessageStatus.ANSWERED)
    arrival = ArrivalStatements(DEFAULT_POLICY, InboundPolicy(30, timedelta(minutes=1)), db)
    address = parse_address(PHONE, "ID")

    def store(connection: Any, sid: str) -> bool:
        now = datetime.now(timezone.utc)
        found = arrival.touch(connection, address, now)
        assert found is not None
        contact_id, _, at = found
        values = {"contact_id": contact_id, "direction": Direction.INBOUND, "channel": "sms", "provider": "twilio",
                  "provider_sid": sid, "body": "halo", "media": [], "tapped_title": None}
        return arrival.store(connection, values, True, now, at)[1]

    second: list[bool] = []
    with db.transaction() as first:
        assert store(first, "SM-first"), "the first message takes the turn"
        waiting = threading.Thread(target=lambda: second.append(_store_in_own_transaction(db, store)))
        waiting.start()
        time.sleep(0.5)
        assert not second, "the second waits for the sender's row"
    waiting.join(10)
    assert second == [False], "the second saw the first's claim and was not claimed"


def _store_in_own_transaction(db: Database, store: Any) -> bool:
    with db.transaction() as connection:
        return store(connection, "SM-second")


def _inbound_values(sid: str) -> dict[str, Any]:
    return {"direction": Direction.INBOUND, "channel": "sms", "provider": "twilio", "provider_sid": sid,
            "body": "halo", "media": [], "tapped_title": None}


def _sids(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(Message.provider_sid).order_by(Message.id)))


def _wait_for_lock_waiters(db: Database, count: int) -> None:
    """Until `count` sessions of this test's database wait for a lock."""
    def waiting() -> bool:
        with db.autocommit() as connection:
            return connection.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )) >= count
    wait_until(waiting, timeout=10)


def _one_statement_behind_a_transaction(db: Database, arrival: ArrivalStatements, find: Any) -> Any:
    """What `store_at_once` gives for PHONE's "SM-second" while a transaction holds the
    sender's row: the row `find` (touch, or first_contact) gave it, and "SM-first"
    stored there with its turn claimed."""
    address = parse_address(PHONE, "ID")
    now = datetime.now(timezone.utc)
    second: list[Any] = []
    with db.transaction() as first:
        contact_id, _, at = find(first, address, now)
        assert arrival.store(first, {"contact_id": contact_id, **_inbound_values("SM-first")}, True, now, at)[1]
        waiting = threading.Thread(
            target=lambda: second.append(arrival.store_at_once(db, address, _inbound_values("SM-second"), True, now))
        )
        waiting.start()
        _wait_for_lock_waiters(db, 1)
    waiting.join(10)
    assert len(second) == 1, "the one statement ended once the transaction did"
    return second[0]


def test_a_known_senders_message_is_stored_and_claimed_in_one_statement(postgres_db: Database) -> None:
    """The webhook's usual case: one statement stores the message, claims its turn on
    the database's clock, and reads the rules' facts; a sender without a row, and one
    with a handoff open, are left to the two-statement form, with nothing stored."""
    db = postgres_db
    _message_from_phone(db, MessageStatus.ANSWERED)
    arrival = ArrivalStatements(DEFAULT_POLICY, InboundPolicy(30, timedelta(minutes=1)), db)
    now = datetime.now(timezone.utc)
    arrived = arrival.store_at_once(db, parse_address(PHONE, "ID"), _inbound_values("SM-one"), True, now)
    assert arrived is not None and arrived.claimed
    assert (arrived.facts.passed, arrived.facts.refused) == (1, 0), "the sender's earlier message counts"
    stored = inbound(db, "SM-one")
    assert (stored.id, stored.status, stored.updated_at) == (arrived.message_id, MessageStatus.AT_RASA, arrived.at)
    assert abs(arrived.at - now) < timedelta(seconds=5)

    again = arrival.store_at_once(db, parse_address(PHONE, "ID"), _inbound_values("SM-two"), True, now)
    assert again is not None and not again.claimed, "the first message's turn is at Rasa"
    first = arrival.store_at_once(db, parse_address(OTHER_PHONE, "ID"), _inbound_values("SM-new"), True, now)
    assert first is not None and first.claimed and first.contact_id != arrived.contact_id, "a first message"
    with db.session() as session:
        assert session.get_one(Contact, first.contact_id).address == OTHER_PHONE

    with db.session() as session:
        session.add(Handoff(contact_id=arrived.contact_id, reason=HandoffReason.REQUESTED, channel="sms"))
    assert arrival.store_at_once(db, parse_address(PHONE, "ID"), _inbound_values("SM-staff"), True, now) is None
    assert _sids(db) == ["SM1", "SM-one", "SM-two", "SM-new"]


def test_one_statement_meeting_a_first_message_creating_its_senders_row_stores_nothing(
    postgres_db: Database,
) -> None:
    """Two first messages of a new sender at once: the second waits for the first's new
    row, then neither creates another nor stores on a snapshot without it."""
    db = postgres_db
    arrival = ArrivalStatements(DEFAULT_POLICY, InboundPolicy(30, timedelta(minutes=1)), db)
    assert _one_statement_behind_a_transaction(db, arrival, arrival.first_contact) is None
    assert _sids(db) == ["SM-first"]
    with db.session() as session:
        assert session.scalars(select(Contact.address)).all() == [PHONE]


def test_one_statement_waiting_on_a_webhooks_claim_stores_nothing_and_leaves_it_to_the_lock(
    postgres_db: Database,
) -> None:
    """A second message of the sender, stored while the first one's transaction held the
    sender's row: the one statement began before that claim committed, cannot see it,
    and so stores nothing; the two statements then see it."""
    db = postgres_db
    _message_from_phone(db, MessageStatus.ANSWERED)
    arrival = ArrivalStatements(DEFAULT_POLICY, InboundPolicy(30, timedelta(minutes=1)), db)
    assert _one_statement_behind_a_transaction(db, arrival, arrival.touch) is None
    assert _sids(db) == ["SM1", "SM-first"]


def test_one_statement_waiting_on_an_answer_workers_claim_stores_nothing(postgres_db: Database) -> None:
    """An answer worker claims a failing message of the sender (past the 5 minutes in
    which it holds later ones back) while a webhook's one statement waits for the row:
    the webhook's snapshot still shows that message unclaimed, so only the row the
    claim rewrote keeps two turns of the sender from Rasa at once."""
    db = postgres_db
    failing = _message_from_phone(db, MessageStatus.NEEDS_FOLLOWUP)
    with db.session() as session:
        long_ago = datetime.now(timezone.utc) - timedelta(minutes=6)
        session.execute(update(Message).where(Message.id == failing).values(created_at=long_ago, updated_at=long_ago))
    arrival = ArrivalStatements(DEFAULT_POLICY, InboundPolicy(30, timedelta(minutes=1)), db)
    turns = Turns(db)
    claims: list[Any] = []
    stores: list[Any] = []
    with db.transaction() as holder:
        holder.execute(select(Contact.id).where(Contact.address == PHONE).with_for_update())
        claiming = threading.Thread(target=lambda: claims.append(turns.claim(failing)))
        claiming.start()
        _wait_for_lock_waiters(db, 1)
        storing = threading.Thread(target=lambda: stores.append(arrival.store_at_once(
            db, parse_address(PHONE, "ID"), _inbound_values("SM-later"), True, datetime.now(timezone.utc)
        )))
        storing.start()
        _wait_for_lock_waiters(db, 2)
    claiming.join(10)
    storing.join(10)
    assert claims and claims[0] is not None, "the answer worker took the failing message's turn"
    assert stores == [None], "the webhook stored nothing on a snapshot that missed that claim"
    assert _sids(db) == ["SM1"]
