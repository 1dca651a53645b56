"""The per-sender inbound limit: counted from stored messages over a sliding window."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.conversation import replies
from bot.config import Settings
from bot.db import Database
from bot.conversation.limits import InboundPolicy, Verdict, check_inbound
from bot.conversation.models import Contact, Direction, Message, MessageStatus
from bot.rules.smstext import is_gsm7, segment_count

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
POLICY = InboundPolicy(max_messages=3, window=timedelta(seconds=60))


def contact(db: Database, address: str = "+6281234567890") -> int:
    with db.session() as session:
        row = Contact(address=address)
        session.add(row)
        session.flush()
        return row.id


def inbound(
    db: Database, contact_id: int, seconds_ago: float = 0, status: str = MessageStatus.ANSWERED,
    direction: str = Direction.INBOUND,
) -> int:
    with db.session() as session:
        row = Message(
            contact_id=contact_id, direction=direction, channel="sms", provider="twilio",
            body="halo", status=status, created_at=NOW - timedelta(seconds=seconds_ago),
        )
        session.add(row)
        session.flush()
        return row.id


def verdict_for_new(db: Database, contact_id: int) -> Verdict:
    """Store a message now and judge it, in one unit of work as the core does."""
    with db.session() as session:
        message = Message(
            contact_id=contact_id, direction=Direction.INBOUND, channel="sms", provider="twilio",
            body="halo", status=MessageStatus.RECEIVED, created_at=NOW,
        )
        session.add(message)
        session.flush()
        return check_inbound(session, contact_id, message.id, NOW, POLICY)


def test_messages_up_to_the_limit_are_allowed(db: Database) -> None:
    sender = contact(db)
    for _ in range(POLICY.max_messages):
        verdict = verdict_for_new(db, sender)
        assert verdict.allowed and verdict.replies == ()


def test_beyond_the_limit_one_notice_then_silence(db: Database) -> None:
    sender = contact(db)
    for seconds_ago in (30, 20, 10):
        inbound(db, sender, seconds_ago)
    first = verdict_for_new(db, sender)
    assert not first.allowed
    assert first.replies == (replies.TOO_MANY_MESSAGES,)
    inbound(db, sender, 1, status=MessageStatus.RATE_LIMITED)
    second = verdict_for_new(db, sender)
    assert (second.allowed, second.replies) == (False, ())


def test_the_notice_text_is_one_gsm7_segment() -> None:
    assert is_gsm7(replies.TOO_MANY_MESSAGES)
    assert segment_count(replies.TOO_MANY_MESSAGES) == 1


def test_the_window_slides(db: Database) -> None:
    sender = contact(db)
    for seconds_ago in (90, 75, 61, 30):
        inbound(db, sender, seconds_ago)
    assert verdict_for_new(db, sender).allowed, "only one message is inside the last minute"


def test_refused_messages_do_not_count_so_a_flood_is_slowed_not_shut_out(db: Database) -> None:
    sender = contact(db)
    for seconds_ago in (59, 58):
        inbound(db, sender, seconds_ago)
    for seconds_ago in range(50, 0, -1):
        inbound(db, sender, seconds_ago, status=MessageStatus.RATE_LIMITED)
    assert verdict_for_new(db, sender).allowed


def test_one_sender_flooding_does_not_limit_another(db: Database) -> None:
    flooder, neighbour = contact(db), contact(db, "+6285700001111")
    for seconds_ago in range(10):
        inbound(db, flooder, seconds_ago)
    assert not verdict_for_new(db, flooder).allowed
    assert verdict_for_new(db, neighbour).allowed


def test_messages_after_the_judged_one_do_not_count(db: Database) -> None:
    """A follow-up judges an old message by the messages around it, not by today's."""
    sender = contact(db)
    for seconds_ago in range(-10, 0):
        inbound(db, sender, seconds_ago)
    assert verdict_for_new(db, sender).allowed


def test_only_inbound_messages_count(db: Database) -> None:
    sender = contact(db)
    for seconds_ago in range(10):
        inbound(db, sender, seconds_ago, status=MessageStatus.SENT, direction=Direction.OUTBOUND)
    assert verdict_for_new(db, sender).allowed


@pytest.mark.parametrize("status", [MessageStatus.RECEIVED, MessageStatus.NEEDS_FOLLOWUP, MessageStatus.WITH_STAFF])
def test_messages_in_any_other_state_count(db: Database, status: str) -> None:
    sender = contact(db)
    for seconds_ago in (3, 2, 1):
        inbound(db, sender, seconds_ago, status=status)
    assert not verdict_for_new(db, sender).allowed


@pytest.mark.parametrize("limit, window", [(0, 60.0), (-1, 60.0), (5, 0.0)])
def test_a_limit_that_would_silence_everyone_is_refused_at_start(limit: int, window: float) -> None:
    settings = Settings(secret_key="x", inbound_max_messages=limit, inbound_window_seconds=window)
    with pytest.raises(ValueError, match="INBOUND_MAX_MESSAGES"):
        InboundPolicy.from_settings(settings)


def test_the_policy_comes_from_the_settings() -> None:
    policy = InboundPolicy.from_settings(Settings(secret_key="x", inbound_max_messages=12, inbound_window_seconds=30))
    assert policy == InboundPolicy(12, timedelta(seconds=30))
