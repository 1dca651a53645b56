"""Inbound messages: store first, answer once, and replay the same answer on retries.

An answer Rasa gives within RASA_REPLY_BUDGET goes back in the webhook's response;
a later one, or one for a message queued behind its sender's earlier message or a
busy process, goes out through the provider's API (bot/conversation/followup.py).
So does a WhatsApp answer with buttons to tap (bot/channels/buttons.py), which TwiML
cannot carry: the webhook then answers at once with nothing, and the whole turn
follows through the API, in order.

Every provider adapter (Twilio webhook, Kannel) turns its request into an
`InboundMessage` and calls `Conversations.handle`; none of them sees the database.
"""
from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from bot import metrics
from bot.channels.buttons import ButtonContents
from bot.channels.outbox import Outbox, Template
from bot.conversation import replies
from bot.conversation.arrival import Answered, ArrivalStatements, Arrived
from bot.conversation.turns import Claim, Turns, TurnPolicy
from bot.config import Settings
from bot.db import Database
from bot.handoff.service import (
    REQUEST_HUMAN_PAYLOAD,
    Escalations,
    OpenHandoff,
    attach_inbound,
    escalation_reason,
    open_handoff,
)
from bot.handoff.models import HandoffReason
from bot.conversation.limits import InboundPolicy, Verdict, check_inbound, verdict_for
from bot.conversation.choices import Reply, choices_of, with_choices_of
from bot.conversation.keywords import free_text_input, keyword_for, keyword_payload
from bot.conversation.models import Channel, Direction, Message, MessageStatus, utcnow
from bot.rules.phone import Address, parse_address
from bot.conversation.rasa_client import RasaClient, RasaUnavailable
from bot.rules.smstext import format_for_channel
from bot.conversation.subscriptions import set_opted_out
from bot.media.intake import record_media

log = logging.getLogger(__name__)

_CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_REPLAY_POLL_SECONDS = 0.1
# Replies that could not be stored are tried again in the background, waiting twice as
# long each time, for this long: well inside a turn's shortest lease (30 s,
# bot/conversation/turns.py) less the reply budget, so a brief outage ends with the
# replies stored before an answer worker may take the turn over.
_STORE_FIRST_RETRY_SECONDS = 0.5
_STORE_GIVE_UP_SECONDS = 20.0
# Twilio waits 15 s for a webhook; the in-form check (2 s), the claim and the stores
# need the rest.
_MAX_REPLY_BUDGET = 10.0
# Longest tapped title kept (Twilio's titles show 20 to 24 characters).
_TAPPED_TITLE_MAX = 200
# How long an answer sent by the API waits for the held messages it follows to go first.
_HELD_FIRST_SECONDS = 10.0
# STOP/BERHENTI and MULAI must work even when Rasa is down.
_SUBSCRIPTION_PAYLOADS = (keyword_for("opt_out").payload, keyword_for("opt_in").payload)


# A turn's answer: the texts, the message's new status, and whether Rasa failed it.
# A status of None: the answer is not for the webhook's response (it goes by the API).
_Outcome = tuple[list[str], "str | None", bool]
_BY_API: _Outcome = ([], None, False)


class _Handover:
    """Hands one turn's outcome to the webhook waiting for it, or, once it stopped
    waiting, back to the thread that ran it, which then sends it itself: exactly one
    of the two ever has it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._outcome: _Outcome | None = None
        self._abandoned = False

    def give(self, outcome: _Outcome) -> bool:
        """Offer the outcome to the webhook; False when it gave up waiting."""
        with self._lock:
            if self._abandoned:
                return False
            self._outcome = outcome
            self._ready.set()
            return True

    def wait(self, budget: float) -> _Outcome | None:
        """The outcome if it came within `budget` seconds; None hands it to the thread."""
        self._ready.wait(budget)
        with self._lock:
            if self._outcome is None:
                self._abandoned = True
            return self._outcome


class _Slot:
    """One of this process's RASA_CALLS_PER_PROCESS slots, taken (if free) as a webhook
    starts, so that the unit of work storing the message can claim its turn too.

    Released once: by the webhook at its end, unless it handed the slot to the thread
    running the turn, which then releases it when Rasa has answered.
    """

    def __init__(self, slots: threading.BoundedSemaphore | None) -> None:
        self._slots = slots
        self.taken = slots is not None and slots.acquire(blocking=False)
        self.held = self.taken
        self.handed = False

    def release(self) -> None:
        if self.held and self._slots is not None:
            self.held = False
            self._slots.release()


_NO_SLOT = _Slot(None)


class InvalidInbound(ValueError):
    """A provider's request lacks what makes it a message (an id, a sender): a 400."""


@dataclass(frozen=True)
class InboundMessage:
    """A message as any provider delivers it, in the core's own terms."""

    provider: str
    provider_sid: str
    sender: str
    body: str
    media: list[dict[str, str]] = field(default_factory=list)
    # A tapped button or list item's title; `body` is then its payload.
    tapped_title: str = ""


@dataclass(frozen=True)
class InboundResult:
    replies: list[str]
    duplicate: bool = False


@dataclass(frozen=True)
class _Stored:
    message_id: int
    contact_id: int
    conversation_key: str
    channel: str
    provider: str
    # Set while a handoff is open: the message is staff's, and Rasa's only for keywords
    # until an officer claims the chat.
    handoff: OpenHandoff | None
    # Whether the sender is within the inbound rate limit (bot/conversation/limits.py).
    verdict: Verdict
    # The webhook's Rasa slot, and the turn it claimed with it when storing the message.
    slot: _Slot = _NO_SLOT
    claim: Claim | None = None
    # Something waits held for the sender's WhatsApp window (bot/channels/later.py).
    held: bool = False
    # The background release of what was held for this sender (Outbox.release_held).
    released: Future[None] | None = None


# How `_answer` puts a turn to Rasa: within the webhook's budget, or for an answer worker.
_Ask = Callable[[_Stored, str], tuple[list[str], "str | None"]]


class Conversations:
    """Runs one inbound message through storage, the assistant, and reply storage.

    Escalation happens here, before Rasa: PETUGAS, distress and abusive words open
    a handoff, and while one is open the message goes to staff. Until an officer
    claims the chat, keywords and the menu are still answered and free text is told
    once when an officer will reply, so nobody waits days in silence; once an officer
    holds it, the bot is silent. STOP and MULAI always work, because a citizen must
    always be able to stop messages.
    """

    def __init__(
        self,
        db: Database,
        rasa: RasaClient,
        settings: Settings,
        escalations: Escalations,
        outbox: Outbox,
        buttons: ButtonContents | None = None,
    ) -> None:
        self.db = db
        self.rasa = rasa
        self.settings = settings
        self.escalations = escalations
        self.outbox = outbox
        # WhatsApp's buttons and lists (Twilio contents); None sends choices as text.
        self.buttons = buttons
        self.inbound_policy = InboundPolicy.from_settings(settings)
        if not 0 < settings.rasa_reply_budget <= _MAX_REPLY_BUDGET:
            raise ValueError(
                f"RASA_REPLY_BUDGET must be above 0 and at most {_MAX_REPLY_BUDGET:g} s: Twilio "
                "gives a webhook 15 s, and the form check and the database need the rest"
            )
        self.turns = Turns(db, TurnPolicy.from_settings(settings))
        self.arrival = ArrivalStatements(self.turns.policy, self.inbound_policy, db)
        # RASA_CALLS_PER_PROCESS turns at Rasa at once from this process; a message
        # that finds no free slot waits in the queue rather than piling onto Rasa.
        self._slots = threading.BoundedSemaphore(settings.rasa_calls_per_process)
        self._pool: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    def handle(self, inbound: InboundMessage) -> InboundResult:
        address = parse_address(inbound.sender, self.settings.default_region)
        body = _CONTROL_CHARS_RE.sub("", inbound.body)[: self.settings.max_inbound_chars]
        slot = _Slot(self._slots)
        try:
            return self._handle(inbound, address, body, slot)
        finally:
            if not slot.handed:
                slot.release()

    def _handle(self, inbound: InboundMessage, address: Address, body: str, slot: _Slot) -> InboundResult:
        started = time.monotonic()
        try:
            stored = self._store_inbound(inbound, address, body, slot)
            if stored is None or stored.claim is None:
                # No turn of this webhook's will reach Rasa: the slot is another's now,
                # not held while a replay waits or a queued message is handed on.
                slot.release()
            if stored is None:
                metrics.count_inbound(address.channel, metrics.DUPLICATE)
                return InboundResult(self._replay(inbound), duplicate=True)
        except OperationalError as exc:
            # Nothing could be stored, so nothing may be processed: ask for a resend.
            log.error("database unavailable, inbound message not stored: %s", exc.__class__.__name__)
            metrics.count_inbound(address.channel, metrics.STORAGE_DOWN)
            return InboundResult([format_for_channel(replies.STORAGE_DOWN, address.channel)])
        subscription = keyword_payload(body.strip()) in _SUBSCRIPTION_PAYLOADS
        if stored.channel == Channel.WHATSAPP and stored.held and not subscription:
            # The message opened WhatsApp's window: what waited for it goes now, in the
            # background, while Rasa works on the answer.
            stored = replace(stored, released=self.outbox.soon(self.outbox.release_held, stored.contact_id))
        answer, status = self._answer(stored, body.strip(), bool(inbound.media), self._ask_within_budget)
        if stored.channel == Channel.WHATSAPP and subscription:
            # After `_answer`: a STOP holds it back for good, a MULAI lets it go.
            self.outbox.soon(self.outbox.release_held, stored.contact_id)
        if status is None:
            # Queued, or Rasa is slow: the answer follows through the provider's API.
            metrics.count_inbound(stored.channel, metrics.QUEUED)
            return InboundResult([])
        texts = [format_for_channel(text, stored.channel) for text in answer]
        try:
            self._store_replies(stored, texts, status)
        except OperationalError as exc:
            log.error("replies to message %d not stored, retrying: %s", stored.message_id, exc.__class__.__name__)
            threading.Thread(target=self._store_replies_later, args=(stored, texts, status), daemon=True).start()
        metrics.count_inbound(stored.channel, status, started)
        return InboundResult(texts)

    def answer_stored(self, message_id: int, earlier: str) -> tuple[list[str], str]:
        """Answer a waiting message, claimed by the caller, by the same rules as `handle`.

        The answer workers (bot/conversation/followup.py) call it for messages left for
        later; they send the texts themselves. `earlier` is the state the message was
        claimed from: one that had gone to Rasa may have run there already.
        """
        with self.db.session() as session:
            message = session.get_one(Message, message_id)
            contact = message.contact
            stored = _Stored(
                message.id,
                contact.id,
                contact.conversation_key,
                message.channel,
                message.provider,
                open_handoff(session, contact.id),
                check_inbound(session, contact.id, message.id, message.created_at, self.inbound_policy),
            )
            text, has_media = message.body.strip(), bool(message.media)
        # The rules that need no Rasa (STOP, MULAI, handoffs, escalation, the flood limit)
        # come first, as in `handle`: they must work while Rasa is down.
        ask = functools.partial(self._ask_claimed, earlier=earlier)
        answer, status = self._answer(stored, text, has_media, ask)
        texts = [with_choices_of(format_for_channel(reply, stored.channel), reply) for reply in answer]
        return texts, status or MessageStatus.NEEDS_FOLLOWUP

    def send_reply(self, contact_id: int, text: str, channel: str, in_reply_to_id: int | None = None) -> Message:
        """Send one answer through the outbox; on WhatsApp its choices as buttons to tap.

        Should Twilio refuse the content message, the same text goes again as plain
        text: it holds the numbered choices, which the citizen can type. A content
        message whose send timed out is not sent again unless Twilio's own list shows
        it never took it (the outbox asks).
        """
        template = self._buttons_for(text, channel)
        sent = self.outbox.send(contact_id, text, channel, in_reply_to_id, buttons=template)
        if template is not None and sent.status == MessageStatus.FAILED:
            log.warning("buttons for message %s failed (%s); sent as text", in_reply_to_id, sent.error_code)
            if self.buttons is not None:
                self.buttons.refused(template.content_sid, sent.error_code)
            sent = self.outbox.send(contact_id, text, channel, in_reply_to_id)
        return sent

    def _buttons_for(self, text: str, channel: str) -> Template | None:
        """The content that shows `text`'s choices to tap; None when it goes as text alone
        (SMS, no choices, too many to show, or the contents are not at Twilio)."""
        if channel != Channel.WHATSAPP or self.buttons is None or not choices_of(text):
            return None
        return self.buttons.template_for(format_for_channel(text, channel), choices_of(text))

    def _answer(self, stored: _Stored, text: str, has_media: bool, ask: _Ask) -> tuple[list[str], str | None]:
        keyword = keyword_payload(text) if text else None
        payload = keyword or (free_text_input(text) if text else "")
        if payload in _SUBSCRIPTION_PAYLOADS:
            opted_out = payload == _SUBSCRIPTION_PAYLOADS[0]
            return [set_opted_out(self.db, stored.conversation_key, opted_out)], MessageStatus.ANSWERED
        if stored.handoff is not None:
            held = self._answer_held(stored, stored.handoff, text, payload, keyword is not None)
            if held is not None:
                return held
        if not text:
            reply = replies.MEDIA_WITHOUT_TEXT if has_media else replies.EMPTY_MESSAGE
            return [reply], MessageStatus.ANSWERED
        reason = HandoffReason.REQUESTED if payload == REQUEST_HUMAN_PAYLOAD else escalation_reason(text)
        if reason is not None:
            return [self.escalations.escalate(stored.contact_id, reason).notice], MessageStatus.ANSWERED
        if not stored.verdict.allowed:
            return list(stored.verdict.replies), MessageStatus.RATE_LIMITED
        return ask(stored, payload)

    def _answer_held(
        self, stored: _Stored, handoff: OpenHandoff, text: str, payload: str, is_keyword: bool
    ) -> tuple[list[str], str] | None:
        """The answer while a handoff is open; None lets the message go on to the assistant.

        Staff read every such message in the dashboard. Asking for a person again
        repeats when they answer; distress moves the chat up the inbox. Until an
        officer claims the chat, keywords go to the assistant, and so do the answers
        to a form a keyword started.
        """
        if payload == REQUEST_HUMAN_PAYLOAD:
            return [self.escalations.notice_for_open(handoff.id)], MessageStatus.WITH_STAFF
        urgent = escalation_reason(text) if text else None
        if urgent is not None:
            notice = self.escalations.escalate(stored.contact_id, urgent).notice
            return ([] if handoff.claimed else [notice]), MessageStatus.WITH_STAFF
        if handoff.claimed:
            return [], MessageStatus.WITH_STAFF
        if is_keyword or (handoff.bot_answered_last and self.rasa.in_form(stored.conversation_key)):
            return None
        if handoff.waiting_notice_given:
            return [], MessageStatus.WITH_STAFF
        return [self.escalations.waiting_notice(handoff.id)], MessageStatus.WITH_STAFF

    def _ask_within_budget(self, stored: _Stored, payload: str) -> tuple[list[str], str | None]:
        """Rasa's answer if it comes within RASA_REPLY_BUDGET; else it follows by the API.

        The turn runs in the Rasa slot the webhook took, under the claim it made when it
        stored the message. Without one (no slot was free, or the sender has an older
        message waiting) the message stays queued for the answer workers
        (bot/conversation/followup.py). When Rasa is slower than the budget, the
        webhook answers at once with nothing, well inside Twilio's 15 s, and the slot's
        thread sends the answer when it comes. A status of None means exactly that:
        the answer is not in this response, and nothing is stored for it here.
        """
        if stored.claim is None:
            why = "behind an earlier message of its sender" if stored.slot.taken else "no free Rasa slot in this process"
            log.info("message %d queued: %s", stored.message_id, why)
            self._leave_for_workers(stored)
            return [], None
        handover = _Handover()
        stored.slot.handed = True
        try:
            self._executor().submit(self._run_turn, stored, payload, stored.claim, handover)
        except BaseException:
            stored.slot.release()
            raise
        outcome = handover.wait(self.settings.rasa_reply_budget)
        if outcome is None:
            log.info("message %d: Rasa slower than the reply budget; the answer follows", stored.message_id)
            return [], None
        texts, status, _ = outcome
        return texts, status

    def _leave_for_workers(self, stored: _Stored) -> None:
        """Hand the message to the answer workers now; if the database is away, they
        still find it `received` once a dead request's lease has passed."""
        try:
            self.turns.leave_for_workers(stored.message_id)
        except OperationalError as exc:
            log.warning("message %d left received, database away: %s", stored.message_id, exc.__class__.__name__)

    def _run_turn(self, stored: _Stored, payload: str, claim: Claim, handover: "_Handover") -> None:
        """One Rasa turn in a slot: handed to the waiting webhook, or sent when it gave up."""
        try:
            try:
                outcome: _Outcome = (*self._ask_now(stored, payload), False)
            except RasaUnavailable as exc:
                log.warning("message %d kept for follow-up: %s", stored.message_id, exc)
                apology = [] if exc.maybe_ran else [replies.SERVICE_DOWN]
                outcome = (apology, MessageStatus.NEEDS_FOLLOWUP, True)
            if self._offers_buttons(stored, outcome):
                # TwiML cannot carry buttons: the webhook answers Twilio at once with
                # nothing, and this thread sends the whole turn by the API, in order.
                handover.give(_BY_API)
                self._send_late(stored, claim, outcome)
            elif not handover.give(outcome):
                self._send_late(stored, claim, outcome)
        except Exception:  # noqa: BLE001 - a slot thread must log, never die silently
            log.exception("message %d: the Rasa turn failed", stored.message_id)
            # The webhook stops waiting; the turn stays claimed, and once its lease runs
            # out an answer worker asks Rasa's tracker and answers it.
            handover.give(([], MessageStatus.AT_RASA, True))
        finally:
            stored.slot.release()

    def _offers_buttons(self, stored: _Stored, outcome: "_Outcome") -> bool:
        """Whether the turn's answer has buttons to show, which only the API can send."""
        texts, _, failed = outcome
        return not failed and any(self._buttons_for(text, stored.channel) for text in texts)

    def _send_late(self, stored: _Stored, claim: Claim, outcome: "_Outcome") -> None:
        """Send through the provider's API an answer the webhook no longer waited for, or
        one with buttons, which its response could not carry.

        A turn that failed late sends no apology: nobody is told the service is busy;
        the answer workers try again.
        """
        texts, status, failed = outcome
        if failed:
            status = MessageStatus.NEEDS_FOLLOWUP
        if not self.turns.settle(claim, status):
            log.warning("late answer to message %d overran its claim; not sent", stored.message_id)
            return
        if failed:
            return
        if stored.released is not None:
            # What was held predates this message: it goes first, unless Twilio is slow.
            wait([stored.released], _HELD_FIRST_SECONDS)
        for text in texts:
            formatted = with_choices_of(format_for_channel(text, stored.channel), text)
            self.send_reply(stored.contact_id, formatted, stored.channel, stored.message_id)
        metrics.count_late_answer(stored.channel, claim.claimed_at)

    def _ask_now(self, stored: _Stored, payload: str) -> tuple[list[str], str]:
        """Rasa's answer to a turn this process has claimed; raises RasaUnavailable."""
        bot_replies = self.rasa.send(
            stored.conversation_key,
            payload,
            # The actions read a message's media (report evidence) by its id; the
            # follow-up finds the turn in Rasa's tracker by it.
            {"channel": stored.channel, "message_id": stored.message_id},
        )
        texts = [Reply(r.text, r.choices) for r in bot_replies if r.text]
        return self._joined(texts, stored.channel), MessageStatus.ANSWERED

    def _ask_claimed(self, stored: _Stored, payload: str, earlier: str) -> tuple[list[str], str]:
        """The answer worker's way to Rasa: the turn is claimed, and nobody waits on a webhook.

        `earlier` is the state the message was claimed from: one that had gone to Rasa
        may have run there already, so Rasa's tracker is asked first.
        """
        try:
            if earlier in (MessageStatus.AT_RASA, MessageStatus.NEEDS_FOLLOWUP):
                ran = self.rasa.replies_to(stored.conversation_key, stored.message_id)
                if ran is not None:
                    # Rasa ran this turn already: running it again would repeat its effects
                    # (a form moved on twice, a second report). Its answer never reached
                    # the citizen: the request apologised (time-out) or died before answering.
                    log.info("message %d: Rasa had answered this turn; its answer sent, not run again",
                             stored.message_id)
                    return self._joined(ran, stored.channel), MessageStatus.ANSWERED
            return self._ask_now(stored, payload)
        except RasaUnavailable as exc:
            log.warning("message %d still without an answer: %s", stored.message_id, exc)
            return [], MessageStatus.NEEDS_FOLLOWUP

    def _executor(self) -> ThreadPoolExecutor:
        """This process's Rasa slots; made on first use, after gunicorn has forked."""
        with self._executor_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.rasa_calls_per_process, thread_name_prefix="rasa-turn")
            return self._pool

    @staticmethod
    def _joined(texts: list[str], channel: str) -> list[str]:
        """One SMS instead of several: each costs the user a segment or more."""
        return texts if channel == Channel.WHATSAPP else ["\n".join(texts)]

    def _store_inbound(self, inbound: InboundMessage, address: Address, body: str, slot: _Slot) -> _Stored | None:
        """Store the message, and claim its turn when `slot` is held; None when this
        provider id was stored before (a replay).

        A message that then needs no Rasa (STOP, a handoff, the rate limit) is settled
        by its replies like any other; should the process die first, the claim's lease
        runs out and an answer worker answers it by the same rules, STOP without Rasa.
        The statements are bot/conversation/arrival.py's: this runs for every message.
        """
        values = {
            "direction": Direction.INBOUND,
            "channel": address.channel,
            "provider": inbound.provider,
            "provider_sid": inbound.provider_sid,
            "body": body,
            "media": inbound.media,
            "tapped_title": _CONTROL_CHARS_RE.sub("", inbound.tapped_title)[:_TAPPED_TITLE_MAX] or None,
        }
        for attempt in range(3):
            try:
                # Attachments are recorded in the message's own transaction, below.
                arrived = None if inbound.media else self.arrival.store_at_once(
                    self.db, address, values, slot.held, utcnow()
                )
                if arrived is not None:
                    return self._stored(arrived, inbound, address, slot)
                # On SQLite the transaction takes the write lock as it begins, so the
                # messages' times follow the order they are stored in and the flood
                # count is exact.
                with self.db.transaction() as connection:
                    now = utcnow()
                    contact_id, conversation_key, at = self._touch_contact(connection, address, now)
                    message_id, claimed, facts = self.arrival.store(
                        connection, {"contact_id": contact_id, **values}, slot.held, now, at
                    )
                    handoff = None
                    if inbound.media or facts.handoff_open:
                        with Session(bind=connection) as session:
                            record_media(session, message_id, inbound.media, now)
                            handoff = attach_inbound(session, contact_id, now) if facts.handoff_open else None
                            session.flush()
                    arrived = Arrived(contact_id, conversation_key, at, message_id, claimed, facts)
                    return self._stored(arrived, inbound, address, slot, handoff)
            except IntegrityError:
                if self._find_inbound_id(inbound) is not None:
                    return None
                # Another request created the same contact at the same moment: retry.
            except DBAPIError as exc:
                if not exc.connection_invalidated or attempt == 2:
                    raise
                # A pooled connection the database had cut (bot/db.py pings only idle
                # ones): nothing was stored, and the pool opens fresh ones.
                log.warning("database connection lost; storing the message again")
        raise RuntimeError("could not store inbound message")

    def _stored(
        self, arrived: Arrived, inbound: InboundMessage, address: Address, slot: _Slot, handoff: OpenHandoff | None = None
    ) -> _Stored:
        """The stored message as the rest of the turn needs it."""
        message_id = arrived.message_id
        return _Stored(
            message_id,
            arrived.contact_id,
            arrived.conversation_key,
            address.channel,
            inbound.provider,
            handoff,
            verdict_for(arrived.facts.passed, arrived.facts.refused, self.inbound_policy),
            slot,
            Claim(message_id, arrived.at, MessageStatus.RECEIVED) if arrived.claimed else None,
            held=arrived.facts.held,
        )

    def _touch_contact(self, connection: Connection, address: Address, now: datetime) -> tuple[int, str, datetime]:
        """The sender's contact id, conversation key and the database's clock (this
        host's on SQLite), seen now; the contact is created on a first message.

        The update also locks the sender's row until the message is stored (and its
        turn claimed), as every host's claims do.
        """
        found = self.arrival.touch(connection, address, now)
        return found if found is not None else self.arrival.first_contact(connection, address, now)

    def _find_inbound_id(self, inbound: InboundMessage) -> int | None:
        with self.db.session() as session:
            return session.scalar(
                select(Message.id).where(
                    Message.provider == inbound.provider,
                    Message.provider_sid == inbound.provider_sid,
                )
            )

    def _store_replies_later(self, stored: _Stored, texts: list[str], status: str) -> None:
        """Store replies the citizen already has, once the database is back.

        Until then the message keeps its `at_rasa` claim, so no answer worker runs the
        turn through Rasa again; only if the database stays away past the claim's lease
        (or this process dies) does a worker send Rasa's answer from its tracker, which
        may then reach the citizen a second time.
        """
        wait, deadline = _STORE_FIRST_RETRY_SECONDS, time.monotonic() + _STORE_GIVE_UP_SECONDS
        while time.monotonic() + wait < deadline:
            time.sleep(wait)
            try:
                self._store_replies(stored, texts, status)
                log.info("replies to message %d stored on a later attempt", stored.message_id)
                return
            except OperationalError:
                wait *= 2
        log.error("replies to message %d not stored; an answer worker settles it", stored.message_id)

    def _store_replies(self, stored: _Stored, texts: list[str], status: str) -> None:
        """The replies and the message's new status, in one unit of work that reads nothing:
        this runs for every message, and each statement costs the web process CPU."""
        answered = Answered(stored.message_id, stored.contact_id, stored.channel, stored.provider)
        self.arrival.store_replies(self.db, answered, texts, status)

    def _replay(self, inbound: InboundMessage) -> list[str]:
        """The replies already given to this message, waiting briefly if still in progress."""
        deadline = time.monotonic() + min(self.settings.replay_wait_seconds, self.settings.rasa_reply_budget)
        while True:
            with self.db.session() as session:
                original = session.scalar(
                    select(Message).where(
                        Message.provider == inbound.provider,
                        Message.provider_sid == inbound.provider_sid,
                    )
                )
                if original is None:
                    return []
                if original.status not in MessageStatus.IN_PROGRESS or time.monotonic() >= deadline:
                    # Only what went out inside a webhook response: an answer sent later
                    # through the API reached the citizen already.
                    return list(
                        session.scalars(
                            select(Message.body)
                            .where(Message.in_reply_to_id == original.id, Message.status == MessageStatus.REPLIED)
                            .order_by(Message.id)
                        )
                    )
            time.sleep(_REPLAY_POLL_SECONDS)
