"""The supervisors' summary: one short message listing the clusters new to each.

Each active supervisor with a phone number (set on the staff account) gets, at most
once a day, the clusters of their region (a regional supervisor: clusters whose
reports are all routed inside it; a national one: all) that they may see by the
dashboard's rule (never one whose reports name them), and that they were not told
about in the last period. The clusters are found once a run for all supervisors.

A summary goes only in the notice sending hours (NOTICE_SEND_FROM/UNTIL) of the
supervisor's zone; a run outside them leaves it to the next run inside them (the job
runs hourly). Each supervisor is on their own: a message that cannot be handed to the
outbox is logged, leaves its clusters unannounced for the next run, and does not
stop the others. A cluster is recorded as announced (one row per supervisor and
cluster, unique) only once its message is in the outbox, which then owns delivery.

The message goes like every message the app sends on its own, through
bot/channels/later.py (WhatsApp window, template or SMS, STOP honoured), as a
`notice`; the supervisor's number is a contact like any other.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from bot.channels.later import LaterMessage, LaterSender
from bot.channels.window import NOTICE
from bot.conversation.models import Channel, Contact, utcnow
from bot.db import Database
from bot.handoff.staff_users import StaffDirectory, StaffIdentity
from bot.notices.pacing import SendingWindow
from bot.reports.signal_models import SignalAnnouncement
from bot.reports.signals import Cluster, ClusterRun, SignalService
from bot.rules.phone import mask_phone
from bot.rules.regions import zone_for_province

log = logging.getLogger(__name__)

# Lines beyond these go unlisted ("dan 3 lainnya"): an SMS stays within 3 segments.
MAX_LISTED = 2
# A summary a day at most: the job runs hourly so a new cluster is told within the
# supervisor's sending hours, but clusters found after today's summary wait for
# tomorrow's (23 hours, so it keeps about the same hour).
SUMMARY_GAP = timedelta(hours=23)


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
    return all(supervisor.covers(code) for code in cluster.routed_to)


def zone_of(supervisor: StaffIdentity) -> str:
    """The time zone of a supervisor's province; a national one's is WIB's."""
    return zone_for_province(supervisor.region[:2] if supervisor.region else None).key


class SignalAlerts:
    def __init__(
        self,
        db: Database,
        signals: SignalService,
        directory: StaffDirectory,
        sender: LaterSender,
        window: SendingWindow,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.signals = signals
        self.directory = directory
        self.sender = sender
        self.window = window
        self.clock = clock

    def send_new(self) -> int:
        """Tell every supervisor with a phone, in their sending hours, about the clusters new
        to them; returns messages sent."""
        now = self.clock()
        found: ClusterRun | None = None
        sent = 0
        for supervisor, phone in self.directory.supervisors_with_phone():
            if not self.window.is_open(now, zone_of(supervisor)):
                continue
            if found is None:
                found = self.signals.find_clusters()
            new = self._new_to(supervisor, [c for c in found.for_viewer(supervisor) if in_region(supervisor, c)], now)
            if not new:
                continue
            try:
                self._send(phone, summary_text(new))
            except Exception:
                log.exception("signal summary to %s failed; the next run tries again", supervisor.username)
                continue
            self._record(supervisor, new, now)
            log.info("signal summary of %d clusters to %s (%s)", len(new), supervisor.username, mask_phone(phone))
            sent += 1
        return sent

    def _new_to(self, supervisor: StaffIdentity, clusters: list[Cluster], now: datetime) -> list[Cluster]:
        """The clusters not announced to this supervisor within the period; none while
        their last summary is less than a day old."""
        quiet_since = now - timedelta(days=self.signals.settings.period_days)
        with self.db.session() as session:
            last = session.scalar(
                select(func.max(SignalAnnouncement.announced_at)).where(
                    SignalAnnouncement.staff_user_id == supervisor.id
                )
            )
            if last is not None and _aware(last) > now - SUMMARY_GAP:
                return []
            told = set(session.scalars(
                select(SignalAnnouncement.cluster_hash).where(
                    SignalAnnouncement.staff_user_id == supervisor.id,
                    SignalAnnouncement.announced_at >= quiet_since,
                )
            ))
        return [c for c in clusters if c.hash not in told]

    def _record(self, supervisor: StaffIdentity, clusters: list[Cluster], now: datetime) -> None:
        """Mark these clusters announced now: a new row, or the old one of a cluster back after a quiet period."""
        hashes = {c.hash for c in clusters}
        with self.db.session() as session:
            earlier = {
                row.cluster_hash: row
                for row in session.scalars(select(SignalAnnouncement).where(
                    SignalAnnouncement.staff_user_id == supervisor.id,
                    SignalAnnouncement.cluster_hash.in_(hashes),
                ))
            }
            for cluster_hash in hashes:
                row = earlier.get(cluster_hash)
                if row is None:
                    session.add(SignalAnnouncement(staff_user_id=supervisor.id, cluster_hash=cluster_hash, announced_at=now))
                else:
                    row.announced_at = now

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


def _aware(moment: datetime) -> datetime:
    """SQLite gives stored UTC times back without their zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
