"""A notice dispatcher process: `python -m bot.notices.dispatch` (the `dispatch:` Procfile line).

Sending scales out where planning does not: run as many of these as the provider's
throughput and the database allow, on one host or several, and set
SCHEDULER_DISPATCHES=0 so the scheduler only plans (planning and its lease stay
single, bot/notices/scheduler.py). Every copy runs the same `Dispatcher`
(bot/notices/dispatcher.py): rows are claimed with SKIP LOCKED, so two copies never
pick the same notice, and what a killed copy left `claimed` or `sending` is
reconciled by the others once it is stale by the database's clock. With REDIS_URL
all copies take their send slots from one schedule per sender in Redis
(bot/notices/shared_pacing.py); without it each copy paces itself to the full rate,
so run one only.

A run lasts at most NOTICE_DISPATCH_INTERVAL seconds, so even during a long campaign
stale rows are looked for that often; after a run that found nothing to do the
process waits one interval. SIGTERM or SIGINT: no new send starts, sends in flight
finish and are recorded, unsent rows go back to `pending`, and the process exits 0.
"""
from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.exc import SQLAlchemyError

from bot.channels.outbox import Transport
from bot.channels.routing import make_transport
from bot.config import Settings, load_settings
from bot.db import Database
from bot.notices.dispatcher import Dispatcher, DispatchReport
from bot.process import stop_on_signals
from bot.rules.logmask import configure_logging

log = logging.getLogger(__name__)


def serve(settings: Settings, stopping: threading.Event) -> DispatchReport:
    """Send what is due until `stopping` is set; what every run did, added up."""
    if settings.redis_url:
        log.info("dispatcher started; the rate per sender is shared through Redis")
    else:
        log.warning("dispatcher started without REDIS_URL: it paces itself alone; run no other copy")
    db = Database.from_settings(settings)
    transport = make_transport(settings)
    totals = DispatchReport()
    try:
        while not stopping.is_set():
            report = run_once(db, transport, settings, stopping)
            counts = report.as_dict()
            for name, count in counts.items():
                totals.add(name, count)
            if not any(counts.values()):
                stopping.wait(settings.notice_dispatch_interval_seconds)
    finally:
        db.dispose()
    return totals


def run_once(
    db: Database, transport: Transport, settings: Settings, stopping: threading.Event
) -> DispatchReport:
    """One run of at most an interval; a database error is logged and waited out."""
    # A new Dispatcher per run, as in the scheduler: what it learns in a run (numbers
    # refused for good) is not carried into the next, where the register may differ.
    dispatcher = Dispatcher(db, transport, settings)
    try:
        report = dispatcher.run(
            should_stop=stopping.is_set,
            deadline=time.monotonic() + settings.notice_dispatch_interval_seconds,
        )
    except SQLAlchemyError as exc:
        log.warning("dispatcher: database error %s; trying again", exc.__class__.__name__)
        return DispatchReport()
    counts = {name: count for name, count in report.as_dict().items() if count}
    if counts:
        log.info("dispatched notices: %s", counts)
    return report


def main() -> None:
    configure_logging()
    stopping = stop_on_signals("stopping after the sends in flight")
    totals = serve(load_settings(), stopping)
    log.info("dispatcher stopped; sent %d notices in all: %s", totals.sent, totals.as_dict())


if __name__ == "__main__":
    main()
