"""The outbound messaging port: one Outbox every message goes out through, and the
Transport each provider implements (bot/channels/twilio.py, kannel.py, sandbox.py).

Callers never send directly: `Outbox.send` stores the message as `queued` first, then
hands it to the transport and records what the provider said, so a crash between the
two leaves a visible queued row instead of a silent loss. It is also where STOP is
honoured for everything it sends (staff replies, the hand-back notice, follow-up
answers, report status notices): a contact who opted out gets nothing, whoever the
caller. Answers inside a webhook response (TwiML, e.g. the reply to STOP or MULAI
itself) do not pass through here.

Messages the app sends on its own, not as answers, come through bot/channels/later.py,
which knows WhatsApp's 24-hour window and chooses free text, a template or SMS.

Disbursement notices have an outbox of their own (bot/notices/dispatcher.py) and use two more
things from a transport: WhatsApp templates (a `Template`, sent by content SID, since
WhatsApp refuses free text outside the 24-hour window: error 63016), and `sent_to`,
which asks the provider what it accepted for a number, so a send whose answer was
lost in a crash can be recognised instead of repeated.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import case, select, update

from bot import metrics
from bot.db import Database
from bot.conversation.models import Contact, Direction, Message, MessageStatus, utcnow
from bot.rules.phone import mask_phone

log = logging.getLogger(__name__)


# SendResult.error_code when the provider could not be reached, or did not answer.
# On a stored message whose status is still `queued`, it means "unknown": the provider
# could not be asked afterwards whether it took the message (`Outbox._hand_over`).
NETWORK_ERROR = "network"
# Threads per process for sends that must not hold a request (`Outbox.soon`).
BACKGROUND_THREADS = 2
# How far before a send the provider's list is searched for it: clocks differ.
_CLOCK_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class SendResult:
    provider: str
    sid: str | None
    status: str
    error_code: str | None = None
    http_status: int | None = None


@dataclass(frozen=True)
class Template:
    """An approved WhatsApp template: its content SID and the values of its variables."""

    content_sid: str
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SentMessage:
    """A message the provider holds for a number, as its message list shows it."""

    sid: str
    body: str
    status: str
    created_at: datetime | None


@dataclass(frozen=True)
class LaterFacts:
    """How a message the app sends on its own goes, as bot/channels/later.py chose it."""

    kind: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    template: Template | None = None
    fallback_of_id: int | None = None
    # Stored, not sent: an announcing template went, the text waits for the citizen.
    hold: bool = False


class ProviderUnreachable(Exception):
    """The provider could not be asked; the question stays open."""


class Transport(Protocol):
    name: str

    def send(
        self, to: str, body: str, channel: str, template: Template | None = None
    ) -> SendResult:
        """Hand one message to the provider; never raises for provider errors.

        With a template (WhatsApp), the provider renders it and `body` is only our copy.
        """

    def sent_to(self, to: str, channel: str, since: datetime) -> list[SentMessage]:
        """Messages the provider accepted for `to` on `channel` since `since`.

        Raises ProviderUnreachable when the provider cannot be asked.
        """


def provider_for(transport: Transport, channel: str) -> str:
    """The provider that will report on a message sent on `channel` (status callbacks
    carry its name): a transport that routes channels to several providers
    (bot/channels/routing.py) names the one behind it."""
    route = getattr(transport, "provider_for", None)
    return route(channel) if route is not None else transport.name


class Outbox:
    """Stores, then sends, messages that are not answers inside a webhook response."""

    def __init__(self, db: Database, transport: Transport, templates: Mapping[str, str] | None = None) -> None:
        self.db = db
        self.transport = transport
        # The approved WhatsApp template of each kind of later message, by kind name:
        # configuration of this provider, applied by bot/channels/later.py.
        self.templates = dict(templates or {})
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[Future[None]] = set()
        self._pool_lock = threading.Lock()

    def soon(self, work: Callable[..., object], *args: object) -> Future[None]:
        """Run `work(*args)` on this process's background threads, for sends that must not
        hold a request: Twilio waits 15 s for a webhook's answer, and each send may take
        TWILIO_HTTP_TIMEOUT. A failure is logged; the rows say what was sent."""
        with self._pool_lock:
            if self._pool is None:
                # Made on first use, after gunicorn has forked.
                self._pool = ThreadPoolExecutor(BACKGROUND_THREADS, thread_name_prefix="outbox")
            future = self._pool.submit(_logged, work, *args)
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the background work submitted so far is done; False on time-out."""
        with self._pool_lock:
            pending = list(self._pending)
        return not wait(pending, timeout).not_done

    def _forget(self, future: Future[None]) -> None:
        with self._pool_lock:
            self._pending.discard(future)

    def send(
        self,
        contact_id: int,
        body: str,
        channel: str,
        in_reply_to_id: int | None = None,
        later: LaterFacts | None = None,
        buttons: Template | None = None,
    ) -> Message:
        """Store the message, then send it, unless the contact has sent STOP.

        To an opted-out contact the message is stored as `opted_out` and never reaches
        the transport: the record shows what would have been said, the citizen's phone
        shows nothing. Callers read the outcome from the returned message's status.
        Messages the app sends on its own carry `later` (bot/channels/later.py decides
        it): a held message is stored and sent only by `release_held`. A second fallback
        for the same message raises IntegrityError before anything is sent.
        An answer that offers choices on WhatsApp goes as `buttons`, the content
        that shows them (bot/channels/buttons.py); `body` is its text.
        """
        later = later or LaterFacts()
        with self.db.session() as session:
            contact = session.get_one(Contact, contact_id)
            message = Message(
                contact_id=contact.id,
                direction=Direction.OUTBOUND,
                channel=channel,
                provider=provider_for(self.transport, channel),
                body=body,
                in_reply_to_id=in_reply_to_id,
                status=(
                    MessageStatus.OPTED_OUT
                    if contact.opted_out
                    else MessageStatus.HELD if later.hold else MessageStatus.QUEUED
                ),
                later_kind=later.kind,
                template_sid=later.template.content_sid if later.template else None,
                template_variables=dict(later.variables) if later.kind else None,
                fallback_of_id=later.fallback_of_id,
            )
            session.add(message)
            to = contact.address
        if message.status == MessageStatus.OPTED_OUT:
            log.info("message %d to %s not sent: the contact sent STOP", message.id, mask_phone(to))
            return message
        if message.status == MessageStatus.HELD:
            return message
        return self._hand_over(message.id, to, body, channel, later.template or buttons)

    def release_held(self, contact_id: int) -> list[Message]:
        """Send what was held for this contact, oldest first: they have just written,
        WhatsApp's window is open.

        One statement claims every held row of the contact, so of two requests that
        release at once (two messages in a row, two threads or hosts) only one sends
        them, and a message already sent is never sent again. To a contact who sent
        STOP they are claimed as `opted_out` instead. Every WhatsApp message asks, and
        almost always nothing is held: that case is the one statement.
        """
        opted_out = select(Contact.opted_out).where(Contact.id == contact_id).scalar_subquery()
        with self.db.session() as session:
            claimed = session.scalars(
                update(Message)
                .where(Message.contact_id == contact_id, Message.status == MessageStatus.HELD)
                .values(status=case((opted_out, MessageStatus.OPTED_OUT), else_=MessageStatus.QUEUED))
                .returning(Message.id)
                .execution_options(synchronize_session=False)
            ).all()
            if not claimed:
                return []
            contact = session.get_one(Contact, contact_id)
            to = contact.address
            rows = session.scalars(select(Message).where(Message.id.in_(claimed)).order_by(Message.id)).all()
        if rows[0].status == MessageStatus.OPTED_OUT:
            log.info("%d held messages to %s not sent: the contact sent STOP", len(rows), mask_phone(to))
            return list(rows)
        return [self._hand_over(row.id, to, row.body, row.channel, None) for row in rows]

    def _hand_over(
        self, message_id: int, to: str, body: str, channel: str, template: Template | None
    ) -> Message:
        since = utcnow() - _CLOCK_SKEW
        if template is None:
            result = self.transport.send(to, body, channel)
        else:
            result = self.transport.send(to, body, channel, template)
        metrics.count_provider_error(result.provider, result.error_code)
        if result.error_code == NETWORK_ERROR:
            result = self._taken_after_all(result, to, body, channel, template, since)
        with self.db.session() as session:
            stored = session.get_one(Message, message_id)
            stored.provider_sid = result.sid
            stored.status = result.status
            stored.error_code = result.error_code
        return stored

    def _taken_after_all(
        self, result: SendResult, to: str, body: str, channel: str, template: Template | None, since: datetime
    ) -> SendResult:
        """The outcome of a send that got no answer (a time-out may come after the provider
        took it), from the provider's own list of what it accepted for `to`.

        Found: accepted. Not found: failed, so a caller may send it another way. The
        provider cannot be asked: `queued` with NETWORK_ERROR, unknown, and nobody
        sends it again (a second copy is worse than a late look at the row).
        """
        try:
            listed = self.transport.sent_to(to, channel, since)
        except ProviderUnreachable as exc:
            log.warning("send to %s unconfirmed, provider cannot be asked: %s", mask_phone(to), exc)
            return SendResult(result.provider, None, MessageStatus.QUEUED, NETWORK_ERROR)
        with self.db.session() as session:
            known = set(
                session.scalars(
                    select(Message.provider_sid).where(
                        Message.provider == result.provider,
                        Message.provider_sid.in_([found.sid for found in listed]),
                    )
                )
            )
        ours = [found for found in listed if found.sid not in known and _shows(found, body, template)]
        if not ours:
            return result
        taken = min(ours, key=lambda found: found.created_at or since)
        log.info("send to %s timed out but the provider had taken it: not sent again", mask_phone(to))
        return SendResult(result.provider, taken.sid, MessageStatus.QUEUED)


def _shows(found: SentMessage, body: str, template: Template | None) -> bool:
    """Whether a message the provider holds is the one we sent: our text, or, for a
    content message, one the provider rendered from our values (a provider that keeps
    no rendered body shows none)."""
    if not found.body or found.body.strip() == body.strip():
        return True
    values = [value for value in (template.variables.values() if template else ()) if value]
    return bool(values) and all(value in found.body for value in values)


def _logged(work: Callable[..., object], *args: object) -> None:
    try:
        work(*args)
    except Exception:  # noqa: BLE001 - a background send must log, never die silently
        log.exception("background send failed")
