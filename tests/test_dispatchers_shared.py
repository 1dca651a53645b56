"""Several dispatchers at once: one rate per sender shared through Redis, and
`python -m bot.notices.dispatch` processes that send each notice exactly once, also
when one of them is killed mid-campaign, while the scheduler only plans.

The Redis tests skip, saying why, when Redis is not reachable (TEST_REDIS_URL,
default redis://127.0.0.1:6379/0); every key they use is new, so parallel runs and
other users of that Redis do not meet. The process tests run on SQLite and, with
TEST_DATABASE_URL, on PostgreSQL.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select

from bot.channels.twilio import TwilioTransport
from bot.config import Settings
from bot.db import Database
from bot.notices.dispatcher import Dispatcher
from bot.notices.models import Notice, NoticeStatus
from bot.notices.planning import NoticePlanner
from bot.notices.shared_pacing import RedisPacer, Slot
from tools.fake_twilio import FakeTwilioApi
from tools.notices import add_households, busiest_second, notice_settings, settings_env

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL} ({exc.__class__.__name__}): set TEST_REDIS_URL")
    finally:
        client.close()
    return REDIS_URL


def _fresh_key() -> str:
    return f"bansos:test:{uuid.uuid4().hex}"


# --- the shared rate: a GCRA in Redis ---------------------------------------------------


def test_redis_gcra_never_gives_more_than_rate_slots_in_any_second(redis_url: str) -> None:
    """Two clients (as two processes would have) reserving at once, as fast as they can."""
    rate, per_client = 50, 75
    key = _fresh_key()
    slots: list[Slot] = []
    lock = threading.Lock()
    start = threading.Barrier(2)

    def reserve_all() -> None:
        pacer = RedisPacer(redis.Redis.from_url(redis_url), key, rate)
        start.wait()
        for _ in range(per_client):
            slot = pacer.reserve()
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=reserve_all) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times = sorted(slot.at for slot in slots)
    assert len(set(times)) == 2 * per_client  # every reservation got a slot of its own
    assert min(b - a for a, b in zip(times, times[1:])) == 21_000  # 1/50 s plus 5% headroom
    assert busiest_second([at / 1_000_000 for at in times]) == rate - 2  # 48 × 21 ms fit in a second, not 49
    assert times[-1] - times[0] == 149 * 21_000  # handed out back to back: nothing lost


def test_redis_gcra_saves_nothing_up_while_idle(redis_url: str) -> None:
    pacer = RedisPacer(redis.Redis.from_url(redis_url), _fresh_key(), 10)
    pacer.reserve()
    time.sleep(0.3)  # three slots' worth of idling
    waits = [pacer.reserve().wait for _ in range(3)]
    assert waits == pytest.approx([0.0, 0.105, 0.21], abs=0.04)  # a busy machine may stall a call


def test_acquire_waits_for_the_slot_on_redis_time(redis_url: str) -> None:
    slept: list[float] = []
    pacer = RedisPacer(redis.Redis.from_url(redis_url), _fresh_key(), 5, sleep=slept.append)
    assert all(pacer.acquire() for _ in range(3))
    assert slept == pytest.approx([0.21, 0.42], abs=0.04)  # a busy machine may stall a call


def test_redis_unreachable_pauses_instead_of_sending_or_crashing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slept: list[float] = []
    asked = iter([False] * 6 + [True])
    down = redis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    pacer = RedisPacer(down, _fresh_key(), 10, sleep=slept.append)
    assert pacer.acquire(should_stop=lambda: next(asked)) is False  # no slot, no exception
    assert slept == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]  # backing off, capped
    outage = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(outage) == 1


def test_sending_resumes_when_redis_answers_again(redis_url: str) -> None:
    slept: list[float] = []
    pacer = RedisPacer(redis.Redis.from_url(redis_url), _fresh_key(), 10, sleep=slept.append)
    script = pacer._script
    failures = iter([RedisConnectionError("down"), RedisConnectionError("down")])

    def flaky(**kwargs: Any) -> Any:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return script(**kwargs)

    pacer._script = flaky  # type: ignore[assignment]
    assert pacer.acquire() is True
    assert slept == [0.1, 0.2]  # two retries, then a slot free at once


# --- dispatchers sharing the rate ----------------------------------------------------------


def _settings(db: Database, api_url: str, **overrides: Any) -> Settings:
    """Real time (processes have no fake clock): send around the clock; a sender of the
    test's own, so parallel tests do not share its rate.

    The stale period must exceed the longest stall of a live dispatcher (a row is
    then taken over while its send may still go out): short for speed, yet a few
    seconds, since a loaded test machine stalls processes for a second or more.
    """
    values: dict[str, Any] = {
        "notice_send_from": "00:00",
        "notice_send_until": "24:00",
        "notice_workers": 4,
        "twilio_http_timeout": 1.0,
        "notice_stale_seconds": 4.0,
        "notice_dispatch_interval_seconds": 0.3,
        "twilio_sms_from": f"+62811{uuid.uuid4().int % 10**8:08d}",
    }
    values.update(overrides)
    return notice_settings(db, api_url, **values)


def _plan(db: Database, settings: Settings, households: int) -> list[str]:
    phones = add_households(db, households, datetime.now(timezone.utc).date() + timedelta(days=2))
    assert NoticePlanner(db, settings).plan().total == households
    return phones


def _open_notices(db: Database) -> int:
    with db.session() as session:
        return session.scalar(
            select(func.count()).select_from(Notice).where(Notice.status.in_(NoticeStatus.OPEN))
        ) or 0


def _assert_each_sent_exactly_once(db: Database, api: FakeTwilioApi, phones: list[str]) -> None:
    counts = Counter(message["to"] for message in api.sent)
    assert counts == Counter(phones), {to: n for to, n in counts.items() if n != 1}
    with db.session() as session:
        stored = session.scalars(select(Notice)).all()
    assert {n.status for n in stored} == {NoticeStatus.SENT}
    assert {n.to_address: n.provider_sid for n in stored} == {m["to"]: m["sid"] for m in api.sent}


def test_two_dispatchers_share_one_rate_through_redis(db: Database, redis_url: str) -> None:
    """Both busy for about 1.5 s at a shared 20/s: some 30 sends between them, not 60."""
    api = FakeTwilioApi()
    with api.serve() as server:
        settings = _settings(
            db, server.url, notice_sms_rate=20.0, redis_url=redis_url
        )
        _plan(db, settings, 200)
        dispatchers = [Dispatcher(db, TwilioTransport(settings), settings) for _ in range(2)]
        stop = threading.Event()
        sent: list[int] = []
        threads = [
            threading.Thread(target=lambda d=d: sent.append(d.run(should_stop=stop.is_set).sent))
            for d in dispatchers
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join()
    assert min(sent) > 0, sent  # both sent...
    # ...within one rate (slots taken before the stop are still used, so count to the last)
    span = max(api.arrivals) - min(api.arrivals)
    assert sum(sent) <= span * 20 / 1.05 + 2, (sent, span)
    counts = Counter(message["to"] for message in api.sent)
    assert len(api.sent) == sum(sent) and max(counts.values()) == 1
    with db.session() as session:
        statuses = Counter(session.scalars(select(Notice.status)))
    assert statuses == {NoticeStatus.SENT: sum(sent), NoticeStatus.PENDING: 200 - sum(sent)}


# --- dispatcher processes --------------------------------------------------------------------


class DispatchProcess:
    """`python -m bot.notices.dispatch` with the test's settings, logging to a file."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.log = log
        env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(ROOT)}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.notices.dispatch"],
                cwd=log.parent,  # away from the project's .env
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def started(self) -> bool:
        return "dispatcher started" in self.log.read_text()

    def stop(self) -> int:
        """SIGTERM, then how many notices it says it sent."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0, self.log.read_text()
        found = re.search(r"sent (\d+) notices in all", self.log.read_text())
        assert found, self.log.read_text()
        return int(found.group(1))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def processes() -> Iterator[list[DispatchProcess]]:
    started: list[DispatchProcess] = []
    yield started
    for process in started:
        process.kill()


def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _two_idle_dispatchers(
    settings: Settings, tmp_path: Path, processes: list[DispatchProcess]
) -> tuple[DispatchProcess, DispatchProcess]:
    """Both running and polling, so the campaign planned next finds both."""
    processes.extend(DispatchProcess(settings, tmp_path / f"dispatch-{i}.log") for i in (1, 2))
    _wait_for(lambda: all(p.started() for p in processes), 30)
    return processes[0], processes[1]


def test_two_dispatch_processes_send_each_notice_exactly_once(
    db: Database, tmp_path: Path, processes: list[DispatchProcess]
) -> None:
    api = FakeTwilioApi()
    with api.serve() as server:
        settings = _settings(db, server.url, notice_sms_rate=0.0)
        first, second = _two_idle_dispatchers(settings, tmp_path, processes)
        phones = _plan(db, settings, 800)
        _wait_for(lambda: _open_notices(db) == 0, 60)
        sent = [first.stop(), second.stop()]
    assert sum(sent) == 800 and min(sent) > 0, sent
    _assert_each_sent_exactly_once(db, api, phones)


def test_one_of_two_dispatch_processes_killed_mid_campaign(
    db: Database, tmp_path: Path, processes: list[DispatchProcess]
) -> None:
    accepted = 0
    lock = threading.Lock()

    def kill_the_first_on_the_150th(_message: dict[str, Any]) -> None:
        # Twilio has accepted this message; if the first sent it, it dies before hearing so.
        nonlocal accepted
        with lock:
            accepted += 1
            if accepted == 150:
                processes[0].proc.send_signal(signal.SIGKILL)

    api = FakeTwilioApi(on_create=kill_the_first_on_the_150th)
    with api.serve() as server:
        settings = _settings(db, server.url, notice_sms_rate=0.0)
        first, second = _two_idle_dispatchers(settings, tmp_path, processes)
        phones = _plan(db, settings, 800)
        assert first.proc.wait(timeout=60) == -signal.SIGKILL
        assert len(api.sent) < 800  # it died mid-campaign
        _wait_for(lambda: _open_notices(db) == 0, 60)  # the other took over what it left
        assert second.stop() > 0
    _assert_each_sent_exactly_once(db, api, phones)


def test_a_planning_only_scheduler_sends_nothing_and_a_dispatcher_sends_it(
    db: Database, tmp_path: Path, processes: list[DispatchProcess]
) -> None:
    api = FakeTwilioApi()
    with api.serve() as server:
        settings = _settings(db, server.url)
        phones = add_households(db, 5, datetime.now(timezone.utc).date() + timedelta(days=2))
        env = {
            **os.environ,
            **settings_env(settings),
            "PYTHONPATH": str(ROOT),
            "SCHEDULER_DISPATCHES": "0",
            "NOTICE_PLAN_INTERVAL": "1",
            "NOTICE_LEASE_SECONDS": "3",
        }
        log = tmp_path / "scheduler.log"
        with log.open("wb") as out:
            scheduler = subprocess.Popen(
                [sys.executable, "-m", "bot.notices.scheduler"],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for(lambda: "planning only" in log.read_text(), 30)
            _wait_for(lambda: _open_notices(db) == 5, 30)
            time.sleep(1.5)  # a dispatching scheduler would have sent them by now
            assert api.sent == []
            processes.append(DispatchProcess(settings, tmp_path / "dispatch.log"))
            _wait_for(lambda: _open_notices(db) == 0, 30)
            assert processes[0].stop() == 5
        finally:
            scheduler.send_signal(signal.SIGTERM)
            assert scheduler.wait(timeout=30) == 0, log.read_text()
    _assert_each_sent_exactly_once(db, api, phones)
