"""One Rasa turn at a time per conversation, in the order the citizen wrote.

Several web hosts, each with several workers, and the answer workers all hand
messages to Rasa. Rasa Open Source cannot serialise one conversation across replicas,
so we do, in the database every host already shares: before a message goes to Rasa,
its sender's contact row is locked (`SELECT … FOR UPDATE`, or the webhook's update of
it; on SQLite the transaction holds the write lock) and the message is claimed only when

- it is the sender's oldest message not yet settled (younger than a day), so a
  sender's turns reach Rasa in the order they were written, and
- no other message of the sender is at Rasa under a live claim.

The claim moves the message to `at_rasa` stamped with the database's clock, so hosts
with drifting clocks agree on when a claim is stale: a claim older than `lease`
belongs to a process that died, and the turn may be claimed again (the follow-up then
asks Rasa's tracker whether the turn ran, bot/conversation/inbound.py). Settling a
claim is conditional on the claim's stamp, so a process that overran its lease
changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from bot.config import Settings
from bot.conversation.models import Contact, Direction, Message, MessageStatus
from bot.db import Database

# Inbound states of a message that still waits for its answer.
UNSETTLED = (*MessageStatus.IN_PROGRESS, MessageStatus.WAITING, MessageStatus.NEEDS_FOLLOWUP)


@dataclass(frozen=True)
class TurnPolicy:
    """When a waiting message is due, and how long a claim on one lasts."""

    # A claim older than this belongs to a process that died. It must exceed one turn
    # (Rasa's timeout) and the sends after it.
    lease: timedelta = timedelta(seconds=30)
    # Between two attempts at a message Rasa could not answer.
    retry_after: timedelta = timedelta(seconds=15)
    # A message Rasa keeps failing stops holding its sender's later messages back after
    # this long: one poison message must not silence a citizen for a day.
    blocks_for: timedelta = timedelta(minutes=5)
    # Older messages are not answered any more: WhatsApp refuses free text a day after
    # the citizen's last message, and a day-old answer is better asked again.
    max_age: timedelta = timedelta(hours=24)
    batch: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> "TurnPolicy":
        """A lease of twice Rasa's timeout plus the sends, never under the default."""
        lease = max(cls.lease, timedelta(seconds=2 * settings.rasa_timeout + 10))
        return cls(lease=lease)

    def blocking(self, message: Any, at: datetime) -> ColumnElement[bool]:
        """Whether `message` (a row of the messages table, or an alias of it) holds its
        sender's later messages back at `at`."""
        return self.blocking_since(message, at - self.max_age, at - self.blocks_for)

    @staticmethod
    def blocking_since(message: Any, oldest: Any, failing_since: Any) -> ColumnElement[bool]:
        """`blocking` with its cut-offs given: `at - max_age` and `at - blocks_for`, as
        values or as bound parameters of a statement built once (bot/conversation/arrival.py)."""
        return and_(
            message.status.in_(UNSETTLED),
            message.created_at > oldest,
            or_(message.status != MessageStatus.NEEDS_FOLLOWUP, message.created_at > failing_since),
        )

    @staticmethod
    def live_claim_since(message: Any, claimed_after: Any) -> ColumnElement[bool]:
        """Whether `message` is at Rasa under a claim made after `claimed_after` (`at -
        lease`): a live one, whose turn no other may overtake."""
        return and_(message.status == MessageStatus.AT_RASA, message.updated_at > claimed_after)


DEFAULT_POLICY = TurnPolicy()


@dataclass(frozen=True)
class Claim:
    """A turn this process holds: settle it with `Turns.settle`."""

    message_id: int
    claimed_at: datetime
    # The state it was claimed from: a turn that was at Rasa before may have run there.
    earlier_status: str


class Turns:
    """Claims and settles Rasa turns, and finds the ones waiting for an answer worker."""

    def __init__(self, db: Database, policy: TurnPolicy = DEFAULT_POLICY) -> None:
        self.db = db
        self.policy = policy
        self._due = self._due_statement()

    def claim(self, message_id: int, *, wait: bool = True, now: datetime | None = None) -> Claim | None:
        """Take the message's turn; None when it is not this message's turn yet, or taken.

        `wait=False` skips a sender whose row another host has locked at this moment
        (an answer worker has other senders to serve). `now` stands in for the
        database's clock in tests. (The webhook claims in the statement storing the
        message instead, bot/conversation/arrival.py.)
        """
        policy = self.policy
        with self.db.session() as session:
            contact_id = session.scalar(select(Message.contact_id).where(Message.id == message_id))
            if contact_id is None:
                return None
            locked = session.scalar(
                select(Contact.id).where(Contact.id == contact_id).with_for_update(skip_locked=not wait)
            )
            if locked is None:
                return None
            status, updated_at = session.execute(
                select(Message.status, Message.updated_at).where(Message.id == message_id)
            ).one()
            at = now or self.db.now(session)
            if status not in UNSETTLED or not self._free(session, contact_id, message_id, at):
                return None
            if status == MessageStatus.AT_RASA and updated_at > at - policy.lease:
                return None
            if status == MessageStatus.NEEDS_FOLLOWUP and updated_at > at - policy.retry_after:
                return None
            session.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(status=MessageStatus.AT_RASA, updated_at=at)
                .execution_options(synchronize_session=False)
            )
            # A new version of the sender's row, though nothing in it changes: a webhook
            # storing in one statement, begun before this claim committed, then finds
            # the row changed and looks again (bot/conversation/arrival.py).
            session.execute(
                update(Contact).where(Contact.id == contact_id).values(id=Contact.id)
                .execution_options(synchronize_session=False)
            )
            return Claim(message_id, at, status)

    def _free(self, session: Session, contact_id: int, message_id: int, at: datetime) -> bool:
        """Whether no older message of the sender waits, and no other is at Rasa now."""
        policy = self.policy
        other = session.scalar(
            select(Message.id)
            .where(
                Message.contact_id == contact_id,
                Message.direction == Direction.INBOUND,
                Message.id != message_id,
                Message.created_at > at - policy.max_age,
                or_(
                    and_(Message.id < message_id, policy.blocking(Message, at)),
                    policy.live_claim_since(Message, at - policy.lease),
                ),
            )
            .limit(1)
        )
        return other is None

    def settle(self, claim: Claim, status: str, now: datetime | None = None) -> bool:
        """Record the turn's outcome, only while the claim is still this process's.

        A turn left for a later attempt is stamped now, so the next attempt waits
        `retry_after` from it.
        """
        with self.db.session() as session:
            at = now or self.db.now(session)
            stamp = at if status == MessageStatus.NEEDS_FOLLOWUP else claim.claimed_at
            result = session.execute(
                update(Message)
                .where(
                    Message.id == claim.message_id,
                    Message.status == MessageStatus.AT_RASA,
                    Message.updated_at == claim.claimed_at,
                )
                .values(status=status, updated_at=stamp)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

    def leave_for_workers(self, message_id: int) -> None:
        """Mark a message the webhook did not put to Rasa as the answer workers' now,
        rather than after a dead request's lease."""
        with self.db.session() as session:
            session.execute(
                update(Message)
                .where(Message.id == message_id, Message.status == MessageStatus.RECEIVED)
                .values(status=MessageStatus.WAITING, updated_at=self.db.now(session))
                .execution_options(synchronize_session=False)
            )

    def due(self, now: datetime | None = None) -> list[int]:
        """Ids of the messages an answer worker may take now, oldest first.

        Only each sender's oldest waiting message: the next one waits for it. A
        message waits here when the webhook left it for later (its sender had an
        older one waiting, or the process had no free Rasa slot), when Rasa could not
        answer it, and when the process answering it died.

        Every answer worker asks this about once a second even when nothing waits, so
        the statement is built once, and runs on an autocommit connection: one round
        trip besides the database's clock.
        """
        policy = self.policy
        with self.db.autocommit() as connection:
            at = now or self.db.now(connection)
            return list(connection.scalars(self._due, {
                "oldest": at - policy.max_age,
                "failing_since": at - policy.blocks_for,
                "left_before": at - policy.lease,
                "retry_before": at - policy.retry_after,
            }))

    def _due_statement(self) -> Any:
        policy = self.policy
        older = aliased(Message)
        left_before = bindparam("left_before")
        blocked = exists().where(
            older.contact_id == Message.contact_id,
            older.direction == Direction.INBOUND,
            older.id < Message.id,
            policy.blocking_since(older, bindparam("oldest"), bindparam("failing_since")),
        )
        return (
            select(Message.id)
            .where(
                Message.direction == Direction.INBOUND,
                or_(
                    Message.status == MessageStatus.WAITING,
                    # Still `received` this long after: the request storing it died.
                    and_(Message.status == MessageStatus.RECEIVED, Message.created_at < left_before),
                    and_(Message.status == MessageStatus.NEEDS_FOLLOWUP, Message.updated_at < bindparam("retry_before")),
                    and_(Message.status == MessageStatus.AT_RASA, Message.updated_at < left_before),
                ),
                Message.created_at > bindparam("oldest"),
                ~blocked,
            )
            .order_by(Message.created_at, Message.id)
            .limit(policy.batch)
        )
