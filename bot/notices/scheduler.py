"""The notice scheduler process: `python -m bot.notices.scheduler` (the `scheduler:` Procfile line).

APScheduler 3 runs two jobs, kept in its SQLAlchemy job store in our database (table
`apscheduler_jobs`), so a restart keeps their schedule and catches up on a missed run:

- `plan_notices` every NOTICE_PLAN_INTERVAL seconds (default 600): writes due notices
  into the outbox (bot/notices/planning.py);
- `fetch_media` every minute: citizens' photos and PDFs whose fetch or deletion at
  Twilio failed, or was never started (bot/media/intake.py);
- `summarise_signals` every SIGNAL_SUMMARY_INTERVAL seconds (default an hour): the
  supervisors' summary of new complaint clusters, each sent once and only in the
  notice sending hours of the supervisor's zone (bot/reports/signal_alerts.py);
- `dispatch_notices` every NOTICE_DISPATCH_INTERVAL seconds (default 15): sends what is
  due (bot/notices/dispatcher.py) for at most one interval, then yields to the next run.
  With SCHEDULER_DISPATCHES=0 the job is not scheduled (and removed from the store):
  separate dispatcher processes send instead (`python -m bot.notices.dispatch`).

Inbound messages left for later are the answer workers' (bot/conversation/answerer.py),
a process of their own that scales with the Rasa replicas; the `retry_followups` job
that did this here once a minute is removed from a store that still has it.

Both are `coalesce=True` and `max_instances=1`: runs missed while the process was down
or busy collapse into one, never a burst. `misfire_grace_time` is deliberate, not the
default 1 s (which would silently skip a run delayed by a slow start): a run may start
up to one interval late. Missing a run loses nothing either way, since both jobs pick
up whatever is due when they next run.

APScheduler 3 supports one scheduler per job store, and planning is done once. So
only the holder of the `notices` lease (a row in `scheduler_leases`: holder,
expires_at) starts its scheduler. The holder renews the lease every third of
NOTICE_LEASE_SECONDS; a second copy started by mistake waits, and takes over within
one lease period if the first dies. A holder that fails to renew stops its jobs at
once, before anyone else can take over.

Copies may run on different hosts whose clocks disagree, so the lease is judged by
one clock, the database's (`Database.now`): `expires_at` is written and compared
with it. The holder itself counts its lease down on its monotonic clock from just
before it asked, so it stops acting no later than the database lets anyone else in.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.channels.routing import make_transport
from bot.config import Settings, load_settings
from bot.db import Database
from bot.notices.dispatcher import Dispatcher
from bot.rules.logmask import configure_logging
from bot.conversation.models import utcnow
from bot.media.intake import FETCH_INTERVAL_SECONDS
from bot.notices.planning import NoticePlanner
from bot.notices.pacing import SendingWindow
from bot.notices.models import CampaignSource, SchedulerLease
from bot.process import stop_on_signals
from bot.reports.signal_alerts import SignalAlerts
from bot.services import Services, build_services

log = logging.getLogger(__name__)

LEASE_NAME = "notices"
DISPATCH_JOB = "dispatch_notices"
JOB_TABLE = "apscheduler_jobs"
# Stored by earlier versions; the answer workers do its work now.
RETIRED_FOLLOWUP_JOB = "retry_followups"


def new_holder_id() -> str:
    """Who holds the lease, readable by an operator: host, process id and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """A time-limited right to act, stored in the database all processes share."""

    def __init__(
        self,
        db: Database,
        holder: str,
        seconds: float,
        name: str = LEASE_NAME,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.holder = holder
        self.duration = timedelta(seconds=seconds)
        self.name = name
        self.monotonic = monotonic
        self._valid_until: float | None = None

    def acquire(self) -> bool:
        """Take the lease if it is free, expired or already ours; renews it when ours."""
        asked = self.monotonic()
        with self.db.session() as session:
            now = self.db.now(session)
            if session.get(SchedulerLease, self.name) is None:
                try:
                    with session.begin_nested():
                        session.add(
                            SchedulerLease(
                                name=self.name, holder=self.holder, acquired_at=now, expires_at=now
                            )
                        )
                except IntegrityError:
                    pass  # another process created it first; the update below decides
            taken = session.execute(
                update(SchedulerLease)
                .where(
                    SchedulerLease.name == self.name,
                    (SchedulerLease.holder == self.holder) | (SchedulerLease.expires_at <= now),
                )
                .values(holder=self.holder, expires_at=now + self.duration)
                .execution_options(synchronize_session=False)
            ).rowcount
        self._valid_until = asked + self.duration.total_seconds() if taken == 1 else None
        return taken == 1

    def renew(self) -> bool:
        """Extend our lease; False (and no longer held) if someone else has it now."""
        return self.acquire() if self._valid_until is not None else False

    def held(self) -> bool:
        """Whether we may still act, by our own clock, without asking the database."""
        return self._valid_until is not None and self.monotonic() < self._valid_until

    def release(self) -> None:
        """Let a waiting copy take over at once instead of after the lease expires."""
        if self._valid_until is None:
            return
        self._valid_until = None
        with self.db.session() as session:
            session.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == self.name, SchedulerLease.holder == self.holder)
                .values(expires_at=self.db.now(session))
                .execution_options(synchronize_session=False)
            )

    def current(self) -> SchedulerLease | None:
        """The lease row as stored (for operators)."""
        with self.db.session() as session:
            return session.scalar(select(SchedulerLease).where(SchedulerLease.name == self.name))


@contextmanager
def renewed(lease: Lease) -> Iterator[threading.Event]:
    """Keep a lease we hold renewed while the block runs; the event is set if it is lost.

    For work outside the scheduler (an operator's `bansos notices run`); the lease is
    released at the end so the scheduler can take over at once.
    """
    lost = threading.Event()
    done = threading.Event()
    every = lease.duration.total_seconds() / 3

    def keep() -> None:
        while not done.wait(every):
            if not _try(lease.renew, default=lease.held()):
                log.warning("lost the scheduler lease")
                lost.set()
                return

    thread = threading.Thread(target=keep, name="lease", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        done.set()
        thread.join()
        lease.release()


@dataclass
class _Runtime:
    """What the jobs need; APScheduler stores jobs by reference, so they find it here."""

    db: Database
    settings: Settings
    lease: Lease
    stopping: threading.Event
    services: Services


_runtime: _Runtime | None = None


def _active_runtime() -> _Runtime | None:
    runtime = _runtime
    if runtime is None or runtime.stopping.is_set() or not runtime.lease.held():
        return None
    return runtime


def plan_notices() -> None:
    """The `plan_notices` job."""
    runtime = _active_runtime()
    if runtime is None:
        return
    report = NoticePlanner(runtime.db, runtime.settings).plan(CampaignSource.SCHEDULER)
    log.log(
        logging.INFO if report.total else logging.DEBUG,
        "planned %d notices %s; not planned %s",
        report.total,
        dict(report.planned),
        dict(report.skipped),
    )


def dispatch_notices() -> None:
    """The `dispatch_notices` job: send for most of one interval, then let the next run go."""
    runtime = _active_runtime()
    if runtime is None:
        return
    settings = runtime.settings
    dispatcher = Dispatcher(runtime.db, make_transport(settings), settings)
    report = dispatcher.run(
        should_stop=lambda: _active_runtime() is None,
        deadline=time.monotonic() + 0.75 * settings.notice_dispatch_interval_seconds,
    )
    counts = {name: count for name, count in report.as_dict().items() if count}
    if counts:
        log.info("dispatched notices: %s", counts)


def fetch_media() -> None:
    """The `fetch_media` job: citizens' attachments still due (bot/media/intake.py)."""
    runtime = _active_runtime()
    if runtime is None:
        return
    worked = runtime.services.media.run_due()
    if worked:
        log.info("worked %d media item(s)", worked)


def summarise_signals() -> None:
    """The `summarise_signals` job: tell supervisors about clusters new to them (bot/reports/signal_alerts.py)."""
    runtime = _active_runtime()
    if runtime is None:
        return
    services, settings = runtime.services, runtime.settings
    window = SendingWindow.parse(settings.notice_send_from, settings.notice_send_until)
    sent = SignalAlerts(runtime.db, services.signals, services.staff.directory, services.later, window).send_new()
    log.log(logging.INFO if sent else logging.DEBUG, "signal summaries sent: %d", sent)


def build_scheduler(db: Database, settings: Settings) -> BackgroundScheduler:
    """A scheduler on the database job store, with its jobs added once and kept after.

    The dispatch job is left out (and dropped from the store) when dispatcher
    processes send instead (SCHEDULER_DISPATCHES=0).
    """
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=db.engine, tablename=JOB_TABLE)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone="UTC",
    )
    scheduler.start(paused=True)
    jobs = {
        "plan_notices": (plan_notices, settings.notice_plan_interval_seconds),
        DISPATCH_JOB: (dispatch_notices, settings.notice_dispatch_interval_seconds),
        "summarise_signals": (summarise_signals, settings.signal_summary_interval_seconds),
        "fetch_media": (fetch_media, FETCH_INTERVAL_SECONDS),
    }
    _drop_job(scheduler, RETIRED_FOLLOWUP_JOB)
    if not settings.scheduler_dispatches:
        del jobs[DISPATCH_JOB]
        _drop_job(scheduler, DISPATCH_JOB)
    for job_id, (func, seconds) in jobs.items():
        reference = f"{__name__}:{func.__name__}"
        try:
            job = scheduler.get_job(job_id)
        except LookupError:
            # Stored under a module that has moved (bot.scheduler before bot.notices):
            # the row cannot be loaded, so it is replaced.
            log.info("job %s was stored under an old module name; adding it again", job_id)
            scheduler.remove_job(job_id)
            job = None
        if job is None:
            scheduler.add_job(
                reference,
                "interval",
                seconds=seconds,
                id=job_id,
                misfire_grace_time=max(1, int(seconds)),
                next_run_time=utcnow(),
            )
        elif job.trigger.interval != timedelta(seconds=seconds):
            scheduler.reschedule_job(job_id, trigger="interval", seconds=seconds)
            scheduler.modify_job(job_id, misfire_grace_time=max(1, int(seconds)))
    return scheduler


def _drop_job(scheduler: BackgroundScheduler, job_id: str) -> None:
    """Remove a job from the store if it is there."""
    try:
        scheduler.remove_job(job_id)
    except JobLookupError:
        pass


def serve(settings: Settings, stopping: threading.Event, holder: str | None = None) -> None:
    """Wait for the lease, run the jobs while holding it, and give it up on stop."""
    global _runtime
    services = build_services(settings)
    db = services.db
    lease = Lease(db, holder or new_holder_id(), settings.notice_lease_seconds)
    _runtime = _Runtime(db, settings, lease, stopping, services)
    renew_every = settings.notice_lease_seconds / 3
    waiting_logged = False
    try:
        while not stopping.is_set():
            if not _try(lease.acquire, default=False):
                if not waiting_logged:
                    _log_waiting(lease)
                    waiting_logged = True
                stopping.wait(renew_every)
                continue
            waiting_logged = False
            log.info(
                "scheduler %s holds the lease; starting jobs (%s)",
                lease.holder,
                "planning and sending" if settings.scheduler_dispatches else "planning only",
            )
            scheduler = build_scheduler(db, settings)
            scheduler.resume()
            try:
                while not stopping.wait(renew_every):
                    if not _try(lease.renew, default=lease.held()):
                        log.warning("lost the scheduler lease; stopping jobs")
                        break
            finally:
                scheduler.shutdown(wait=True)
    finally:
        lease.release()
        db.dispose()
        _runtime = None


def _log_waiting(lease: Lease) -> None:
    try:
        current = lease.current()
    except SQLAlchemyError:
        current = None
    log.info(
        "another scheduler holds the lease (%s until %s); waiting",
        current.holder if current else "?",
        current.expires_at if current else "?",
    )


def _try(step: Callable[[], bool], default: bool) -> bool:
    """A lease step that survives the database being briefly away."""
    try:
        return step()
    except SQLAlchemyError as exc:
        log.warning("scheduler lease: database error %s", exc.__class__.__name__)
        return default


def main() -> None:
    configure_logging()
    # Every job run is logged at INFO (4 a minute); our jobs log what they did instead.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    serve(load_settings(), stop_on_signals("stopping after the current send"))


if __name__ == "__main__":
    # Jobs are stored by reference to `bot.notices.scheduler`; run that module's main, not this
    # `__main__` copy, so the jobs find the runtime it sets up.
    from bot.notices import scheduler

    scheduler.main()
