"""Per-sender inbound rate limit: a flood from one number is slowed, nobody else is.

Counted from the messages table itself over a sliding window: every inbound message
is stored before anything else happens, so the table already is the per-sender log,
and the count holds across gunicorn workers, hosts and restarts without state of its
own. Messages beyond the limit stay stored (nothing is lost) with status
`rate_limited`, but never reach Rasa, the expensive part; the sender is told once per
window to slow down, and further messages in that window get no answer at all, so a
flood cannot turn into a flood of replies (each SMS reply costs money).

Only messages that went through count towards the limit, not the refused ones: a
sender who keeps flooding gets `max_messages` answers per window, slowed rather than
shut out. The conversation core applies the verdict just before Rasa: STOP and
MULAI, messages to staff during a handoff, and escalations (PETUGAS, distress) are
never limited, so a citizen can always stop messages or reach a person.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.conversation import replies
from bot.config import Settings
from bot.conversation.models import Direction, Message, MessageStatus


@dataclass(frozen=True)
class InboundPolicy:
    """How many messages one sender may have answered per sliding window.

    Set by INBOUND_MAX_MESSAGES and INBOUND_WINDOW_SECONDS (bot/config.py). Their
    default, thirty a minute, is one message every two seconds for a whole minute:
    more than a fast person answering a report form on WhatsApp ("1", "ya", a name,
    a NIK) sends, and far less than a script or a stuck phone.
    """

    max_messages: int
    window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> "InboundPolicy":
        """The policy INBOUND_MAX_MESSAGES and INBOUND_WINDOW_SECONDS ask for.

        A limit below one message, or a window of no time, would silence every
        citizen (or nobody) without saying so: refused at start instead.
        """
        if settings.inbound_max_messages < 1 or settings.inbound_window_seconds <= 0:
            raise ValueError("INBOUND_MAX_MESSAGES must be at least 1 and INBOUND_WINDOW_SECONDS above 0")
        return cls(settings.inbound_max_messages, timedelta(seconds=settings.inbound_window_seconds))


@dataclass(frozen=True)
class Verdict:
    """Whether a stored message may go on to the assistant, and what to reply if not."""

    allowed: bool
    # When refused: the slow-down notice, or nothing once it went out in this window.
    replies: tuple[str, ...] = ()


ALLOWED = Verdict(True)


def check_inbound(
    session: Session,
    contact_id: int,
    message_id: int,
    now: datetime,
    policy: InboundPolicy,
) -> Verdict:
    """The verdict on a message of `contact_id` stored at `now`.

    Call it in the unit of work that stores the message: no transaction of its own
    (on SQLite each one takes the write lock), and on SQLite the count is then exact
    even under concurrent requests, since writers take turns. Counts the sender's
    other inbound messages of the last `policy.window`: the ones let through, and the
    ones refused (whether the slow-down notice went out already).
    """
    limited = Message.status == MessageStatus.RATE_LIMITED
    passed, refused = session.execute(
        select(
            func.count(case((~limited, 1))),
            func.count(case((limited, 1))),
        ).where(
            Message.contact_id == contact_id,
            Message.direction == Direction.INBOUND,
            Message.created_at > now - policy.window,
            Message.created_at <= now,
            Message.id != message_id,
        )
    ).one()
    return verdict_for(passed, refused, policy)


def verdict_for(passed: int, refused: int, policy: InboundPolicy) -> Verdict:
    """The verdict on a message when, within its window, `passed` of the sender's other
    messages went through and `refused` were refused (counted as `check_inbound` does, or
    by the statement storing the message, bot/conversation/arrival.py)."""
    if passed < policy.max_messages:
        return ALLOWED
    return Verdict(False, () if refused else (replies.TOO_MANY_MESSAGES,))
