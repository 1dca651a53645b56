"""The follow-up job: answer, once Rasa is back, the messages it could not answer in time.

The webhook apologises and marks a message `needs_followup` when Rasa is down, too
slow or silent; the webhook response is long gone by the time Rasa is back, so the
answer goes out through the outbox (stored, then sent). The scheduler calls
`retry_followups` every minute.

A message can also be left `received` or `at_rasa`: stored, then the process
answering it died (killed, out of memory, a deploy). Twilio's retry of it finds the
stored row and waits for an answer that never comes, so the job picks these up too,
once they are older than any live request can be (`stale_after`, far beyond Twilio's
15 s and gunicorn's worker timeout), and runs them through the whole conversation
rules (STOP, handoff, escalation, Rasa), which is what the dead request would have
done. A message that reached Rasa (`at_rasa`, or `needs_followup` after a time-out)
is looked up in Rasa's tracker first: a turn Rasa already answered is never run
again; its answer, which the citizen did not get (an apology went out, or the request
died), is sent instead. Replies that merely could not be stored are stored by the
request itself once the database is back (bot/conversation/inbound.py), well before then.

Exactly once, with any number of job runs at the same time: a run claims a message
with a conditional UPDATE that moves its `updated_at` past the retry cut-off, and only
the run whose UPDATE changed the row goes on; it then marks the message answered under
the same condition before sending, so a run that overran its claim never sends. A run
that dies after claiming leaves the message to be claimed again after `retry_after`.
The outbox stores each answer before sending it, so a crash while sending leaves a
visible `queued` row rather than a second message, and a provider's refusal (Twilio
answering 429 or 500) stays recorded on that row; the job never sends it again.

Not followed up: messages older than `max_age` (WhatsApp refuses free text a day after
the citizen's last message, and a day-old answer is better asked again), messages of
an opted-out contact, and messages superseded by a newer message of the same sender
that was answered: the conversation has moved on, and an old turn replayed into
Rasa's tracker would land in the middle of whatever the citizen is doing now. All of
them stay stored as they are.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased

from bot.db import Database
from bot.conversation.models import Contact, Direction, Message, MessageStatus, utcnow
from bot.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowupPolicy:
    """When a message is due for (another) follow-up attempt."""

    # Between two attempts at one message; also how long a claim lasts, so it must
    # exceed one attempt (Rasa's timeout plus the sends).
    retry_after: timedelta = timedelta(seconds=60)
    # A `received` message this old belongs to a request that died.
    stale_after: timedelta = timedelta(seconds=120)
    max_age: timedelta = timedelta(hours=24)
    batch: int = 100


DEFAULT_POLICY = FollowupPolicy()
# A newer inbound message in one of these states means the conversation moved on.
_ANSWERED_STATES = (MessageStatus.ANSWERED, MessageStatus.WITH_STAFF)


def due_followups(db: Database, now: datetime, policy: FollowupPolicy = DEFAULT_POLICY) -> list[int]:
    """Ids of the inbound messages due for a follow-up attempt, oldest first."""
    newer = aliased(Message)
    superseded = exists().where(
        newer.contact_id == Message.contact_id,
        newer.direction == Direction.INBOUND,
        newer.id > Message.id,
        newer.status.in_(_ANSWERED_STATES),
    )
    query = (
        select(Message.id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(
            Message.direction == Direction.INBOUND,
            or_(
                Message.status == MessageStatus.NEEDS_FOLLOWUP,
                and_(
                    Message.status.in_(MessageStatus.IN_PROGRESS),
                    Message.created_at < now - policy.stale_after,
                ),
            ),
            Message.updated_at < now - policy.retry_after,
            Message.created_at > now - policy.max_age,
            Contact.opted_out.is_(False),
            ~superseded,
        )
        .order_by(Message.created_at, Message.id)
        .limit(policy.batch)
    )
    with db.session() as session:
        return list(session.scalars(query))


def _claim(db: Database, message_id: int, now: datetime, policy: FollowupPolicy) -> bool:
    """Take a message for this run; False when another run has it (or it was answered)."""
    with db.session() as session:
        result = session.execute(
            update(Message)
            .where(
                Message.id == message_id,
                Message.status.in_((MessageStatus.NEEDS_FOLLOWUP, *MessageStatus.IN_PROGRESS)),
                Message.updated_at < now - policy.retry_after,
            )
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def _settle(db: Database, message_id: int, claimed_at: datetime, status: str) -> bool:
    """Record the outcome of an attempt, only if the claim is still this run's."""
    with db.session() as session:
        result = session.execute(
            update(Message)
            .where(Message.id == message_id, Message.updated_at == claimed_at)
            # The attempt's time, so the next attempt waits `retry_after` from it.
            .values(status=status, updated_at=claimed_at)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def _recipient(db: Database, message_id: int) -> tuple[int, str]:
    """The contact and channel a message came from, where its answer goes."""
    with db.session() as session:
        contact_id, channel = session.execute(
            select(Message.contact_id, Message.channel).where(Message.id == message_id)
        ).one()
        return contact_id, channel


def _attempt(services: Services, message_id: int, now: datetime, policy: FollowupPolicy) -> str | None:
    """One follow-up attempt at one message: the status it ended in, None if not ours."""
    if not _claim(services.db, message_id, now, policy):
        return None
    texts, status = services.conversations.answer_stored(message_id)
    if not _settle(services.db, message_id, now, status):
        log.warning("follow-up of message %d overran its claim; not sent", message_id)
        return None
    if status == MessageStatus.NEEDS_FOLLOWUP:
        return status
    contact_id, channel = _recipient(services.db, message_id)
    for text in texts:
        sent = services.outbox.send(contact_id, text, channel)
        if sent.status == MessageStatus.FAILED:
            log.warning("follow-up of message %d not delivered: %s", message_id, sent.error_code)
    log.info("follow-up of message %d: %s, %d message(s) sent", message_id, status, len(texts))
    return status


def retry_followups(
    services: Services, now: datetime | None = None, policy: FollowupPolicy = DEFAULT_POLICY
) -> int:
    """Follow up the messages that are due; returns how many were settled (answered,
    handed to staff or refused as a flood).

    Stops at the first message the assistant still cannot answer: the rest would
    only wait for the same timeout one after another, and the next run tries again.
    """
    now = now or utcnow()
    settled = 0
    for message_id in due_followups(services.db, now, policy):
        status = _attempt(services, message_id, now, policy)
        if status == MessageStatus.NEEDS_FOLLOWUP:
            log.info("follow-up stopped at message %d: the assistant is still unavailable", message_id)
            break
        if status is not None:
            settled += 1
    return settled
