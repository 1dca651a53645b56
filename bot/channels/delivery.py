"""Delivery status reports from providers, mapped onto our message lifecycle.

Also what a provider's error code means for us (its table lives with the provider,
bot/channels/twilio.py): try again later, give up (and why), or "we cannot tell
whether it left". Status callbacks and the notice dispatcher both ask here, so a code
means the same thing whether it comes back at once from the API or later in a callback. Permanent failures act beyond the
message: 21610 opts the contact out, a number that cannot receive SMS is flagged on
the recipient for data cleaning.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot import metrics
from bot.db import Database
from bot.channels.outbox import NETWORK_ERROR
from bot.channels.twilio import ERROR_OPTED_OUT, PERMANENT_ERRORS, TRANSIENT_ERRORS
from bot.conversation.models import Channel, Contact, Message, MessageStatus, utcnow
from bot.notices.models import Notice, NoticeAttempt, NoticeStatus
from bot.notices.pacing import RetryPolicy
from bot.registry.models import Recipient

log = logging.getLogger(__name__)

# How far along a message is; a late callback never moves it backwards.
_PROGRESS: dict[str, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.READ: 5,
}

# Our notice status for each message status a provider reports.
NOTICE_STATUSES: dict[str, str] = {
    MessageStatus.QUEUED: NoticeStatus.SENT,
    MessageStatus.SENDING: NoticeStatus.SENT,
    MessageStatus.SENT: NoticeStatus.SENT,
    MessageStatus.DELIVERED: NoticeStatus.DELIVERED,
    MessageStatus.READ: NoticeStatus.DELIVERED,
    MessageStatus.UNDELIVERED: NoticeStatus.UNDELIVERED,
    MessageStatus.FAILED: NoticeStatus.FAILED,
}


class FailureKind:
    TRANSIENT = "transient"  # try again after a backoff
    PERMANENT = "permanent"  # give up and record why
    UNKNOWN = "unknown"  # no answer: the message may or may not have left


@dataclass(frozen=True)
class Failure:
    kind: str
    reason: str
    bad_number: bool = False
    opted_out: bool = False

    @property
    def ends_all_channels(self) -> bool:
        """A bad number or an opt-out fails SMS as surely as WhatsApp: no fallback."""
        return self.bad_number or self.opted_out


def classify_failure(error_code: str | None, http_status: int | None = None) -> Failure:
    """What a provider's error means for us; unknown client errors are given up on."""
    code = (error_code or "").strip()
    if code == NETWORK_ERROR:
        return Failure(FailureKind.UNKNOWN, "provider did not answer")
    if code in PERMANENT_ERRORS:
        reason, bad_number = PERMANENT_ERRORS[code]
        return Failure(FailureKind.PERMANENT, reason, bad_number, code == ERROR_OPTED_OUT)
    if code in TRANSIENT_ERRORS:
        return Failure(FailureKind.TRANSIENT, TRANSIENT_ERRORS[code])
    if http_status is not None and (http_status == 429 or http_status >= 500):
        return Failure(FailureKind.TRANSIENT, f"provider error HTTP {http_status}")
    if http_status is not None and 400 <= http_status < 500:
        return Failure(FailureKind.PERMANENT, f"provider refused: error {code or http_status}")
    return Failure(FailureKind.TRANSIENT, f"delivery error {code or 'without a code'}")


def record_permanent_failure(
    session: Session, address: str, failure: Failure, now: datetime
) -> None:
    """Act on a permanent failure beyond the message: opt the contact out, flag the number."""
    if failure.opted_out:
        contact = session.scalar(select(Contact).where(Contact.address == address))
        if contact is None:
            contact = Contact(address=address, is_phone=True)
            session.add(contact)
        if not contact.opted_out:
            contact.opted_out = True
            contact.opted_out_at = now
    if failure.bad_number:
        session.execute(
            update(Recipient)
            .where(Recipient.phone == address)
            .values(
                flagged_phone=address, flagged_phone_reason=failure.reason, flagged_phone_at=now
            )
        )
        log.info("flagged a recipient phone for data cleaning: %s", failure.reason)


@dataclass(frozen=True)
class StatusReport:
    provider: str
    provider_sid: str
    status: str
    error_code: str | None = None


class DeliveryTracker:
    def __init__(
        self,
        db: Database,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        fall_back: Callable[[int], object] | None = None,
    ) -> None:
        self.db = db
        self.retry = retry or RetryPolicy()
        self.clock = clock
        # Given a failed message's id, sends it another way if it has one
        # (bot/channels/later.py: a 63016 reported after the send was accepted),
        # off the callback's request thread (LaterSender.fall_back_soon).
        self.fall_back = fall_back

    def record(self, report: StatusReport) -> bool:
        """Apply a status report; False when no message or notice of ours has that id."""
        metrics.count_provider_error(report.provider, report.error_code)
        known, message_id = self._record(report)
        # After the commit: the fallback reads the failure, decides and sends on its own.
        failed = report.status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED)
        if failed and message_id is not None and self.fall_back is not None:
            self.fall_back(message_id)
        return known

    def _record(self, report: StatusReport) -> tuple[bool, int | None]:
        """(known, the id of our message it is about, if a message rather than a notice)."""
        with self.db.session() as session:
            message = session.scalar(
                select(Message).where(
                    Message.provider == report.provider,
                    Message.provider_sid == report.provider_sid,
                )
            )
            if message is None:
                if self._record_notice(session, report):
                    return True, None
                log.info("status for unknown %s message %s", report.provider, report.provider_sid)
                return False, None
            if _PROGRESS.get(report.status, 0) >= _PROGRESS.get(message.status, 0):
                message.status = report.status
            if report.error_code:
                message.error_code = report.error_code
            if report.error_code == ERROR_OPTED_OUT:
                contact = session.get_one(Contact, message.contact_id)
                if not contact.opted_out:
                    contact.opted_out = True
                    contact.opted_out_at = utcnow()
            return True, message.id

    def _record_notice(self, session: Session, report: StatusReport) -> bool:
        attempt = session.scalar(
            select(NoticeAttempt).where(
                NoticeAttempt.provider == report.provider,
                NoticeAttempt.provider_sid == report.provider_sid,
            )
        )
        if attempt is None:
            return False
        if _PROGRESS.get(report.status, 0) >= _PROGRESS.get(attempt.provider_status or "", 0):
            attempt.provider_status = report.status
        attempt.error_code = report.error_code or attempt.error_code
        notice = session.get_one(Notice, attempt.notice_id)
        # News of an earlier attempt, or of a notice already being tried again, only
        # goes on the attempt: the notice follows its newest hand-over alone.
        if notice.provider_sid != report.provider_sid or notice.status in NoticeStatus.OPEN:
            return True
        if _PROGRESS.get(report.status, 0) < _PROGRESS.get(notice.provider_status or "", 0):
            return True  # late news: a delivered notice does not become failed
        if report.status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED):
            self._notice_failed(session, notice, report)
        else:
            notice.provider_status = report.status
            metrics.count_notice_move(notice.channel, notice.status, NOTICE_STATUSES.get(report.status, notice.status))
            notice.status = NOTICE_STATUSES.get(report.status, notice.status)
        return True

    def _notice_failed(self, session: Session, notice: Notice, report: StatusReport) -> None:
        """A notice the provider took but could not deliver: fall back, retry or give up."""
        now = self.clock()
        failure = classify_failure(report.error_code)
        notice.provider_status = report.status
        notice.error_code = report.error_code
        if notice.channel == Channel.WHATSAPP and not failure.ends_all_channels:
            notice.channel = Channel.SMS
            notice.status = NoticeStatus.PENDING
            notice.not_before = now
            notice.reason = f"WhatsApp error {report.error_code or report.status}: SMS instead"
        elif failure.kind == FailureKind.TRANSIENT and not self.retry.gives_up(notice.attempts):
            notice.status = NoticeStatus.PENDING
            notice.not_before = now + self.retry.delay(notice.attempts)
            notice.reason = f"retrying: {failure.reason}"
        else:
            metrics.count_notice_move(notice.channel, notice.status, NOTICE_STATUSES[report.status])
            notice.status = NOTICE_STATUSES[report.status]
            notice.reason = failure.reason
            record_permanent_failure(session, notice.to_address, failure, now)
