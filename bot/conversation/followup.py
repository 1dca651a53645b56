"""Answering the messages the webhook left for later, through the outbox, once each.

The webhook answers within Twilio's time when it can (bot/conversation/inbound.py).
A message waits for an answer worker (bot/conversation/answerer.py) instead when

- its sender had an older message still waiting (turns go to Rasa in order),
- the web process had no free Rasa slot (a burst: queued, not refused),
- Rasa could not answer it (down, or timed out: `needs_followup`), or
- the process answering it died (left `received` or `at_rasa` past its lease).

The webhook response is long gone by then, so the answer goes out through the
provider's API. Each message is claimed first (bot/conversation/turns.py: one turn
per sender at a time, in order, with a lease on the database's clock) and runs
through the whole conversation rules (STOP, handoff, escalation, Rasa), which is what
its request would have done. A message that reached Rasa before (`at_rasa`, or
`needs_followup` after a time-out) is looked up in Rasa's tracker first: a turn Rasa
already answered is never run again; its answer is sent instead.

Exactly once, with any number of workers on any number of hosts: only the claim's
holder goes on, and it settles the message (conditional on its claim) before sending,
so a worker that overran its lease sends nothing. The outbox stores each answer
before sending it, so a crash while sending leaves a visible `queued` row rather than
a second message, and a provider's refusal (Twilio answering 429 or 500) stays
recorded on that row; the message is never answered twice.

Not answered: messages older than `max_age`; they stay stored as they are. A message
of a contact who sent STOP since is answered by the same rules, and the outbox keeps
the answer unsent, so the queue moves on.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from bot import metrics
from bot.conversation.models import Message, MessageStatus
from bot.conversation.turns import Turns, TurnPolicy
from bot.services import Services

log = logging.getLogger(__name__)


def answer_waiting(services: Services, turns: Turns, message_id: int, now: datetime | None = None) -> str | None:
    """Claim, answer and send one waiting message: the status it ended in, None if not ours."""
    claim = turns.claim(message_id, wait=False, now=now)
    if claim is None:
        return None
    texts, status = services.conversations.answer_stored(message_id, claim.earlier_status)
    if not turns.settle(claim, status, now=now):
        log.warning("answer to message %d overran its claim; not sent", message_id)
        return None
    with services.db.session() as session:
        contact_id, channel, received_at = session.execute(
            select(Message.contact_id, Message.channel, Message.created_at).where(Message.id == message_id)
        ).one()
    metrics.count_followup(channel, status, received_at)
    if status == MessageStatus.NEEDS_FOLLOWUP:
        return status
    for text in texts:
        sent = services.conversations.send_reply(contact_id, text, channel, in_reply_to_id=message_id)
        if sent.status == MessageStatus.FAILED:
            log.warning("answer to message %d not delivered: %s", message_id, sent.error_code)
    log.info("answer to message %d: %s, %d message(s) sent", message_id, status, len(texts))
    return status


def retry_followups(services: Services, now: datetime | None = None, policy: TurnPolicy | None = None) -> int:
    """Answer, one after another, what is due now; returns how many were settled.

    The answer workers run this step from a pool; this one pass is
    `python -m bot.conversation.answerer --once`, for an operator with no workers running. Stops at the first message the assistant still
    cannot answer: the rest would only wait for the same timeout one after another.
    """
    turns = Turns(services.db, policy or TurnPolicy.from_settings(services.settings))
    settled = 0
    for message_id in turns.due(now):
        status = answer_waiting(services, turns, message_id, now)
        if status == MessageStatus.NEEDS_FOLLOWUP:
            log.info("follow-up stopped at message %d: the assistant is still unavailable", message_id)
            break
        if status is not None:
            settled += 1
    return settled
