"""What a Prometheus scrape returns: the events counted on this host, and the queues.

Counters come from bot/metrics.py: this process's own, or, in multiprocess mode,
those of every process writing to PROMETHEUS_MULTIPROC_DIR on this host (gunicorn's
workers, and the answer workers, dispatchers and scheduler when they share the
folder). Queue depths and handoff ages are read from the database at each scrape with
a few COUNT queries on indexed columns, so each host reports the same figures and no
process has to keep them; Prometheus keeps the history.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from bot import metrics
from bot.conversation.models import Direction, Message, MessageStatus
from bot.db import Database
from bot.handoff.models import Handoff, HandoffStatus
from bot.notices.models import Notice, NoticeStatus

log = logging.getLogger(__name__)

# Inbound messages an answer worker has still to settle (bot/conversation/followup.py).
FOLLOWUP_STATES = (
    MessageStatus.RECEIVED,
    MessageStatus.WAITING,
    MessageStatus.AT_RASA,
    MessageStatus.NEEDS_FOLLOWUP,
)
# Outbound messages not yet handed over, or handed over and not yet reported on.
OUTBOX_STATES = (MessageStatus.QUEUED, MessageStatus.SENDING)


class DepthCollector(Collector):
    """Queue depths and handoff waits, from the database, at scrape time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("bansos_depths_up", "Whether the database answered the queue-depth queries")
        try:
            families = self._read()
        except SQLAlchemyError as exc:
            log.warning("queue depths not read: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[GaugeMetricFamily]:
        followups = GaugeMetricFamily(
            "bansos_followups_waiting", "Inbound messages waiting for an answer, by state", labels=["state"]
        )
        oldest_followup = GaugeMetricFamily(
            "bansos_followup_oldest_seconds", "Age of the oldest inbound message waiting for an answer"
        )
        outbox = GaugeMetricFamily(
            "bansos_outbox_messages", "Outbound messages and notices not yet settled, by outbox and state",
            labels=["outbox", "state"],
        )
        handoffs = GaugeMetricFamily("bansos_handoffs_open", "Open handoffs by status", labels=["status"])
        waiting = GaugeMetricFamily(
            "bansos_handoffs_waiting", "Open handoffs whose citizen waits for a person's reply"
        )
        oldest_wait = GaugeMetricFamily(
            "bansos_handoff_oldest_wait_seconds", "How long the longest-waiting citizen has waited for a person"
        )
        with self.db.session() as session:
            now = self.db.now(session)
            inbound = dict.fromkeys(FOLLOWUP_STATES, 0)
            oldest = None
            for status, count, first in session.execute(
                select(Message.status, func.count(), func.min(Message.created_at))
                .where(Message.status.in_(FOLLOWUP_STATES), Message.direction == Direction.INBOUND)
                .group_by(Message.status)
            ):
                inbound[status] = count
                oldest = first if oldest is None else min(oldest, first)
            outbound = dict.fromkeys(OUTBOX_STATES, 0) | dict(
                session.execute(
                    select(Message.status, func.count())
                    .where(Message.status.in_(OUTBOX_STATES), Message.direction == Direction.OUTBOUND)
                    .group_by(Message.status)
                ).tuples().all()
            )
            notices = dict.fromkeys(NoticeStatus.OPEN, 0) | dict(
                session.execute(
                    select(Notice.status, func.count())
                    .where(Notice.status.in_(NoticeStatus.OPEN))
                    .group_by(Notice.status)
                ).tuples().all()
            )
            open_handoffs = dict.fromkeys(HandoffStatus.OPEN, 0) | dict(
                session.execute(
                    select(Handoff.status, func.count())
                    .where(Handoff.status.in_(HandoffStatus.OPEN))
                    .group_by(Handoff.status)
                ).tuples().all()
            )
            waiting_count, waiting_since = session.execute(
                select(func.count(), func.min(Handoff.waiting_since)).where(
                    Handoff.status.in_(HandoffStatus.OPEN), Handoff.waiting_since.is_not(None)
                )
            ).one()
        for state, count in inbound.items():
            followups.add_metric([state], count)
        oldest_followup.add_metric([], _age(now, oldest))
        for state, count in outbound.items():
            outbox.add_metric(["messages", state], count)
        for state, count in notices.items():
            outbox.add_metric(["notices", state], count)
        for status, count in open_handoffs.items():
            handoffs.add_metric([status], count)
        waiting.add_metric([], waiting_count)
        oldest_wait.add_metric([], _age(now, waiting_since))
        return [followups, oldest_followup, outbox, handoffs, waiting, oldest_wait]


def _age(now: datetime, since: datetime | None) -> float:
    """Seconds since `since` by the database's clock; 0 when nothing waits."""
    return 0.0 if since is None else max((now - since).total_seconds(), 0.0)


def build_registry(db: Database) -> CollectorRegistry:
    """Every metric this host reports, each read when a scrape asks for it."""
    registry = CollectorRegistry()
    if metrics.MULTIPROCESS:
        MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    registry.register(DepthCollector(db))
    return registry


def scrape(db: Database) -> bytes:
    """The text exposition format of every metric this host reports."""
    return generate_latest(build_registry(db))
