"""The supervisors' daily summary: one short message listing the clusters new to each.

Each active supervisor with a phone number (set on the staff account) gets, at most
once a run, the clusters of their region (a regional supervisor: clusters whose
reports are all routed inside it; a national one: all) that they may see by the
dashboard's rule (never one a sensitive report behind it names them in), and that
they were not told about in the last period. Each announced cluster is recorded
before the message goes, so a crash or a second run never repeats one.

The message goes like every message the app sends on its own, through
bot/channels/later.py (WhatsApp window, template or SMS, STOP honoured), as a
`notice`; the supervisor's number is a contact like any other.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.channels.later import LaterMessage, LaterSender
from bot.channels.window import NOTICE
from bot.conversation.models import Channel, Contact, utcnow
from bot.db import Database
from bot.handoff.staff_users import StaffDirectory, StaffIdentity
from bot.reports.signal_models import SignalAnnouncement
from bot.reports.signals import Cluster, SignalService
from bot.rules.phone import mask_phone

log = logging.getLogger(__name__)

# Lines beyond these go unlisted ("dan 3 lainnya"): an SMS stays within 3 segments.
MAX_LISTED = 2


def summary_text(clusters: list[Cluster]) -> str:
    """The message: how many, the first few in a line each, where to read the rest."""
    listed = "; ".join(cluster.summary for cluster in clusters[:MAX_LISTED])
    more = len(clusters) - MAX_LISTED
    rest = f"; dan {more} lainnya" if more > 0 else ""
    return (
        f"Sinyal Asisten Bansos: {len(clusters)} klaster aduan baru di wilayah Bapak/Ibu. "
        f"{listed}{rest}. Rincian dan alasannya ada di dasbor, menu Sinyal."
    )


def in_region(supervisor: StaffIdentity, cluster: Cluster) -> bool:
    """A regional supervisor's clusters are those whose every report is routed inside their region."""
    if supervisor.region is None:
        return True
    return all(code is not None and code.startswith(supervisor.region) for code in cluster.routed_to)


class SignalAlerts:
    def __init__(
        self,
        db: Database,
        signals: SignalService,
        directory: StaffDirectory,
        sender: LaterSender,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.signals = signals
        self.directory = directory
        self.sender = sender
        self.clock = clock

    def send_new(self) -> int:
        """Tell every supervisor with a phone about the clusters new to them; returns messages sent."""
        sent = 0
        for supervisor, phone in self.directory.supervisors_with_phone():
            clusters = [c for c in self.signals.visible_clusters(supervisor) if in_region(supervisor, c)]
            new = self._claim_new(supervisor, clusters)
            if not new:
                continue
            self._send(phone, summary_text(new))
            log.info("signal summary of %d clusters to %s (%s)", len(new), supervisor.username, mask_phone(phone))
            sent += 1
        return sent

    def _claim_new(self, supervisor: StaffIdentity, clusters: list[Cluster]) -> list[Cluster]:
        """Record and return the clusters not announced to this supervisor within the period."""
        now = self.clock()
        quiet_since = now - timedelta(days=self.signals.settings.period_days)
        with self.db.session() as session:
            told = set(session.scalars(
                select(SignalAnnouncement.cluster_hash).where(
                    SignalAnnouncement.staff_user_id == supervisor.id,
                    SignalAnnouncement.announced_at >= quiet_since,
                )
            ))
            new = [c for c in clusters if c.hash not in told]
            session.add_all(
                SignalAnnouncement(staff_user_id=supervisor.id, cluster_hash=c.hash, announced_at=now) for c in new
            )
        return new

    def _send(self, phone: str, text: str) -> None:
        """The one place a summary leaves: the supervisor's number as a contact, through the later path."""
        with self.db.session() as session:
            contact = session.scalar(select(Contact).where(Contact.address == phone))
            if contact is None:
                contact = Contact(address=phone, last_channel=Channel.SMS)
                session.add(contact)
                session.flush()
            contact_id = contact.id
        self.sender.send(contact_id, LaterMessage(NOTICE, text))
