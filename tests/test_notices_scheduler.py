"""The scheduler process: the lease that lets one copy act, and the persisted job store."""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.db import Database
from bot.notices.models import Notice, NoticeStatus, SchedulerLease
from bot.conversation import models
from bot.notices.scheduler import Lease, build_scheduler, renewed
from tools.fake_twilio import FakeTwilioApi
from tools.notices import add_households, notice_settings, settings_env

ROOT = Path(__file__).resolve().parents[1]


class Monotonic:
    """The holder's own monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


def _let_pass(db: Database, seconds: float) -> None:
    """Time passing on the database's clock: the stored expiry moves back instead."""
    with db.session() as session:
        for lease in session.scalars(select(SchedulerLease)):
            lease.expires_at -= timedelta(seconds=seconds)


def test_one_holder_at_a_time_and_takeover_after_expiry(db: Database) -> None:
    mono = Monotonic()
    first = Lease(db, "first", 30, monotonic=mono)
    second = Lease(db, "second", 30, monotonic=mono)
    assert first.acquire() and first.held()
    assert not second.acquire() and not second.held()
    _let_pass(db, 20)
    mono.at += 20
    assert first.renew()
    _let_pass(db, 20)
    mono.at += 20
    assert not second.acquire()  # renewed at +20 s: good until +50 s
    _let_pass(db, 11)
    mono.at += 11
    assert not first.held()  # it knows by its own clock
    assert second.acquire()
    assert not first.renew()
    second.release()
    assert first.acquire()
    assert first.current() is not None and first.current().holder == "first"  # type: ignore[union-attr]


@pytest.mark.parametrize("skew", [timedelta(hours=1), -timedelta(hours=1)])
def test_the_lease_is_judged_by_the_database_clock_not_the_hosts(
    db: Database, monkeypatch: pytest.MonkeyPatch, skew: timedelta
) -> None:
    first = Lease(db, "first", 30)
    assert first.acquire()

    class SkewedClock(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return datetime.now(tz) + skew

    # A second host whose clock (`utcnow`, wherever it is called) is an hour off:
    # the lease is still the first's...
    monkeypatch.setattr(models, "datetime", SkewedClock)
    assert abs(models.utcnow() - datetime.now(timezone.utc) - skew) < timedelta(seconds=1)
    second = Lease(db, "second", 30)
    assert not second.acquire()
    assert first.held() and first.renew()
    # ...and it expires 30 s from now by the database's clock, whatever the host's says.
    lease = first.current()
    assert lease is not None
    assert abs((lease.expires_at - db.now()).total_seconds() - 30) < 5


def test_renewed_keeps_the_lease_and_releases_it(db: Database) -> None:
    # Renewal every 0.5 s leaves a whole second of slack for a loaded CI machine.
    lease = Lease(db, "cli", 1.5)
    other = Lease(db, "scheduler", 1.5)
    assert lease.acquire()
    with renewed(lease) as lost:
        time.sleep(2.0)  # longer than the lease: only renewal keeps it
        assert not other.acquire()
        assert not lost.is_set()
    assert other.acquire()


def test_jobs_are_stored_in_the_database_and_kept_across_restarts(db: Database) -> None:
    settings = notice_settings(db, notice_plan_interval_seconds=600, notice_dispatch_interval_seconds=15)
    scheduler = build_scheduler(db, settings)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"plan_notices", "dispatch_notices", "summarise_signals", "fetch_media"}
    assert jobs["summarise_signals"].trigger.interval == timedelta(hours=1)
    assert jobs["plan_notices"].misfire_grace_time == 600
    assert jobs["dispatch_notices"].misfire_grace_time == 15
    assert all(job.coalesce and job.max_instances == 1 for job in jobs.values())
    assert jobs["plan_notices"].func_ref == "bot.notices.scheduler:plan_notices"
    planned = scheduler.get_job("plan_notices").next_run_time
    later = planned + timedelta(minutes=7)
    scheduler.modify_job("plan_notices", next_run_time=later)
    scheduler.shutdown(wait=False)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM apscheduler_jobs")).scalar() == len(jobs)

    restarted = build_scheduler(db, settings)  # a restart keeps the stored schedule
    assert restarted.get_job("plan_notices").next_run_time == later
    restarted.shutdown(wait=False)

    faster = notice_settings(db, notice_plan_interval_seconds=60, notice_dispatch_interval_seconds=15)
    reconfigured = build_scheduler(db, faster)
    assert reconfigured.get_job("plan_notices").trigger.interval == timedelta(seconds=60)
    assert reconfigured.get_job("plan_notices").misfire_grace_time == 60
    reconfigured.shutdown(wait=False)


def test_without_scheduler_dispatches_the_dispatch_job_is_not_run(db: Database) -> None:
    """Separate dispatcher processes send: the stored dispatch job goes, the others stay."""
    build_scheduler(db, notice_settings(db)).shutdown(wait=False)
    planning_only = build_scheduler(db, notice_settings(db, scheduler_dispatches=False))
    assert {job.id for job in planning_only.get_jobs()} == {"plan_notices", "summarise_signals", "fetch_media"}
    planning_only.shutdown(wait=False)
    with db.engine.connect() as conn:
        stored = set(conn.scalars(text("SELECT id FROM apscheduler_jobs")))
    assert stored == {"plan_notices", "summarise_signals", "fetch_media"}


def test_the_follow_up_job_of_earlier_versions_leaves_the_store(db: Database) -> None:
    """Inbound messages left for later are the answer workers' now, not a job here."""
    scheduler = build_scheduler(db, notice_settings(db))
    scheduler.add_job("bot.notices.scheduler:plan_notices", "interval", seconds=60, id="retry_followups")
    scheduler.shutdown(wait=False)
    restarted = build_scheduler(db, notice_settings(db))
    assert "retry_followups" not in {job.id for job in restarted.get_jobs()}
    restarted.shutdown(wait=False)


def test_a_job_stored_under_the_old_module_name_is_replaced(db: Database) -> None:
    """Before bot/ was split by concern the jobs were stored as `bot.scheduler:…`."""
    settings = notice_settings(db)
    build_scheduler(db, settings).shutdown(wait=False)
    with db.engine.begin() as conn:
        for job_id, state in conn.execute(text("SELECT id, job_state FROM apscheduler_jobs")).all():
            old = pickle.loads(state)
            old["func"] = old["func"].replace("bot.notices.scheduler", "bot.old_scheduler_module")
            conn.execute(
                text("UPDATE apscheduler_jobs SET job_state = :state WHERE id = :id"),
                {"state": pickle.dumps(old), "id": job_id},
            )
    restarted = build_scheduler(db, settings)
    assert {job.func_ref for job in restarted.get_jobs()} == {
        "bot.notices.scheduler:plan_notices", "bot.notices.scheduler:dispatch_notices",
        "bot.notices.scheduler:summarise_signals", "bot.notices.scheduler:fetch_media",
    }
    restarted.shutdown(wait=False)


def _start(settings_vars: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings_vars, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.notices.scheduler"],
            cwd=log.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_for(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_two_scheduler_processes_one_acts_the_other_takes_over(db: Database, tmp_path: Path) -> None:
    api = FakeTwilioApi()
    with api.serve() as server:
        settings = notice_settings(
            db,
            server.url,
            notice_send_from="00:00",
            notice_send_until="24:00",
            twilio_http_timeout=0.5,
            notice_stale_seconds=1.0,
        )
        env = settings_env(settings) | {
            "NOTICE_PLAN_INTERVAL": "1",
            "NOTICE_DISPATCH_INTERVAL": "1",
            "NOTICE_LEASE_SECONDS": "3",
        }
        soon = datetime.now(timezone.utc).date() + timedelta(days=2)
        phones = add_households(db, 5, soon)
        first = _start(env, tmp_path / "first.log")
        _wait_for(lambda: _holder(db) is not None, 15)
        second_log = tmp_path / "second.log"
        second = _start(env, second_log)
        _wait_for(lambda: len(api.sent) == 5, 15)
        _wait_for(lambda: "another scheduler holds the lease" in second_log.read_text(), 15)
        holder = _holder(db)
        time.sleep(1.0)
        assert _holder(db) == holder  # the lease stays with the first copy

        first.send_signal(signal.SIGTERM)
        first.wait(timeout=15)
        _wait_for(lambda: _holder(db) not in (None, holder), 10)  # released: taken at once
        more = add_households(db, 3, soon)
        _wait_for(lambda: len(api.sent) == 8, 15)
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=15)

    assert Counter(m["to"] for m in api.sent) == Counter(phones + more)
    with db.session() as session:
        assert set(session.scalars(select(Notice.status))) == {NoticeStatus.SENT}
    assert first.returncode == 0 and second.returncode == 0


def _holder(db: Database) -> str | None:
    with db.session() as session:
        lease = session.get(SchedulerLease, "notices")
        if lease is None or lease.expires_at <= datetime.now(timezone.utc):
            return None
        return lease.holder
