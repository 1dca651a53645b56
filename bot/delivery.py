"""Delivery status reports from providers, mapped onto our message lifecycle."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from bot.db import Database
from bot.models import Contact, Message, MessageStatus, utcnow

log = logging.getLogger(__name__)

# Twilio's MessageStatus values → ours. `accepted`/`scheduled` are Twilio-side queueing.
TWILIO_STATUSES: dict[str, str] = {
    "accepted": MessageStatus.QUEUED,
    "scheduled": MessageStatus.QUEUED,
    "queued": MessageStatus.QUEUED,
    "sending": MessageStatus.SENDING,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}

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

# Provider error codes we act on.
ERROR_OPTED_OUT = "21610"


@dataclass(frozen=True)
class StatusReport:
    provider: str
    provider_sid: str
    status: str
    error_code: str | None = None


class DeliveryTracker:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, report: StatusReport) -> bool:
        """Apply a status report; False when no message of ours has that id."""
        with self.db.session() as session:
            message = session.scalar(
                select(Message).where(
                    Message.provider == report.provider,
                    Message.provider_sid == report.provider_sid,
                )
            )
            if message is None:
                log.info("status for unknown %s message %s", report.provider, report.provider_sid)
                return False
            if _PROGRESS.get(report.status, 0) >= _PROGRESS.get(message.status, 0):
                message.status = report.status
            if report.error_code:
                message.error_code = report.error_code
            if report.error_code == ERROR_OPTED_OUT:
                contact = session.get_one(Contact, message.contact_id)
                if not contact.opted_out:
                    contact.opted_out = True
                    contact.opted_out_at = utcnow()
            return True
