"""Benchmark disbursement notices: plan and dispatch 100,000 against a local fake Twilio API.

1. Seeds 100,000 households, each with a payment in two days (WIB, WITA and WIT
   provinces; 30% with a smartphone, so WhatsApp templates go out too).
2. Plans them (planning rate), then dispatches them with the rate limit lifted
   (dispatch rate), through the real twilio client, to the fake Twilio API running in
   a process of its own (tools/fake_twilio.py). Checks that each of the
   100,000 phones got exactly one message. Prints the peak memory (RSS) of this
   process, which does the planning and the sending.
3. Sends a further campaign with a limit of N per second and shows, from the times
   the fake API received each message, that the achieved rate stays at N.
4. Dispatcher processes (`python -m bot.notices.dispatch`), one and then two, in the
   same run: with the limit lifted (msg/s and the ×2/×1 ratio), limited to N/s
   shared through Redis (REDIS_URL, default redis://127.0.0.1:6379/0; the busiest
   one-second window of arrival times at the fake API must hold at most N), and two
   with one killed (SIGKILL) a third into the campaign (numbers messaged twice or
   never, and the time until the survivor has finished). CPU seconds per 1,000
   messages are each process's own, from the kernel's accounting.

A fresh SQLite database, and a fresh PostgreSQL schema too when TEST_DATABASE_URL is
set. Steps 1-3 fix the clock inside everyone's sending hours; the processes of
step 4 use real time with sending hours of 00:00-24:00, so no run depends on the
time of day.

    .venv/bin/python scripts/bench_notices.py [--notices 100000] [--rate 50] [--seconds 10]
        [--process-notices 10000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import resource
import signal
import socketserver
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time as clock_time, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.notices.dispatcher import Dispatcher  # noqa: E402
from bot.channels.twilio import TwilioTransport  # noqa: E402
from bot.notices.models import Notice, NoticeStatus  # noqa: E402
from bot.notices.ops import set_paused  # noqa: E402
from bot.notices.planning import NoticePlanner  # noqa: E402
from bot.registry.models import Disbursement, Recipient  # noqa: E402
from tools.databases import fresh_database_url, postgres_base_url  # noqa: E402
from tools.fake_twilio import FakeTwilioApi  # noqa: E402
from tools.notices import CONTENT_SID, busiest_second, notice_settings, settings_env  # noqa: E402

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
PROVINCES = ("32", "35", "73", "51", "81", "94")
# 03:00 UTC: 10:00 WIB, 11:00 WITA, 12:00 WIT.
NOW = datetime.combine(datetime.now(timezone.utc).date(), clock_time(3, 0), tzinfo=timezone.utc)


def _serve_fake(ready: Any, stop: Any, results: Any) -> None:
    """The fake Twilio API, in its own process so its CPU and memory are not measured."""
    # Python's servers queue 5 connections by default; concurrent senders then lose
    # SYNs and wait a second for the retransmit, which would measure the fake, not us.
    socketserver.TCPServer.request_queue_size = 128
    api = FakeTwilioApi()
    with api.serve() as server:
        ready.put(server.url)
        stop.wait()
        results.put((Counter(m["to"] for m in api.sent), api.arrivals))


class FakeApiProcess:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.ready, self.results = context.Queue(), context.Queue()
        self.stop = context.Event()
        self.process = context.Process(
            target=_serve_fake, args=(self.ready, self.stop, self.results), daemon=True
        )

    def __enter__(self) -> "FakeApiProcess":
        self.process.start()
        self.url = self.ready.get(timeout=30)
        return self

    def finish(self) -> tuple[Counter[str], list[float]]:
        """Stop the server; what it received: messages per number, arrival times."""
        self.stop.set()
        received = self.results.get(timeout=120)
        self.process.join(timeout=30)
        return received

    def __exit__(self, *exc: object) -> None:
        if self.process.is_alive():
            self.process.kill()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def seed(db: Database, count: int, first: int, scheduled: date) -> None:
    """`count` households with one payment each, bulk-inserted (the import has its own bench)."""
    chunk = 5000
    for start in range(first, first + count, chunk):
        stop = min(start + chunk, first + count)
        recipients = [
            {
                "nik": f"{PROVINCES[i % len(PROVINCES)]}{i:014d}",
                "name": "Siti Wulandari",
                "birth_date": date(1988, 3, 15),
                "phone": f"+62812{i:08d}",
                "province_code": PROVINCES[i % len(PROVINCES)],
                "has_smartphone": i % 10 < 3,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for i in range(start, stop)
        ]
        with db.session() as session:
            ids = session.scalars(insert(Recipient).returning(Recipient.id), recipients).all()
            session.execute(
                insert(Disbursement),
                [
                    {
                        "recipient_id": recipient_id,
                        "program_code": "BPNT",
                        "period": "Tahap 4 2026",
                        "amount": 600_000,
                        "channel": "BRI",
                        "scheduled_date": scheduled,
                        "status": "dijadwalkan",
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for recipient_id in ids
                ],
            )


def bench_unlimited(db: Database, count: int, workers: int) -> None:
    with FakeApiProcess() as fake:
        settings = notice_settings(
            db, fake.url, twilio_notice_content_sid=CONTENT_SID, notice_workers=workers
        )
        started = time.perf_counter()
        seed(db, count, 0, NOW.date() + timedelta(days=2))
        print(f"  seeded {count:,} households in {time.perf_counter() - started:.1f} s")

        report = NoticePlanner(db, settings, clock=lambda: NOW).plan()
        print(
            f"  planning: {report.total:,} notices in {report.seconds:.1f} s = "
            f"{report.total / report.seconds:,.0f} notices/s; peak RSS {peak_rss_mb():,.0f} MB"
        )

        dispatcher = Dispatcher(db, TwilioTransport(settings), settings, clock=lambda: NOW)
        started = time.perf_counter()
        sent = dispatcher.run()
        seconds = time.perf_counter() - started
        print(
            f"  dispatch (no rate limit, {workers} workers): {sent.sent:,} sent in "
            f"{seconds:.1f} s = {sent.sent / seconds:,.0f} notices/s; "
            f"peak RSS {peak_rss_mb():,.0f} MB"
        )
        per_number, _ = fake.finish()
    twice = sum(1 for n in per_number.values() if n > 1)
    print(
        f"  fake API received {sum(per_number.values()):,} messages for {len(per_number):,} "
        f"numbers; numbers messaged more than once: {twice}"
    )


class TimedTransport(TwilioTransport):
    """Notes when each request leaves, to show the pacing on our side of the network."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.departures: list[float] = []

    def send(self, *args: Any, **kwargs: Any) -> Any:
        self.departures.append(time.monotonic())
        return super().send(*args, **kwargs)


def _rate(times: list[float]) -> float:
    return (len(times) - 1) / (max(times) - min(times))


def bench_limited(db: Database, count: int, rate: float, seconds: float) -> None:
    notices = int(rate * seconds)
    with FakeApiProcess() as fake:
        settings = notice_settings(db, fake.url, notice_sms_rate=rate, notice_workers=8)
        seed(db, notices, count, NOW.date() + timedelta(days=2))
        NoticePlanner(db, settings, clock=lambda: NOW).plan()
        transport = TimedTransport(settings)
        dispatcher = Dispatcher(db, transport, settings, clock=lambda: NOW)
        started = time.perf_counter()
        sent = dispatcher.run().sent
        elapsed = time.perf_counter() - started
        _, arrivals = fake.finish()
    print(
        f"  limited to {rate:g}/s, 8 workers: {sent} sent in {elapsed:.1f} s; "
        f"requests left at {_rate(transport.departures):.2f}/s, at most "
        f"{busiest_second(transport.departures)} in any second; arrived at "
        f"{_rate(arrivals):.2f}/s, at most {busiest_second(arrivals)} in any second"
    )


class DispatchProcess:
    """One `python -m bot.notices.dispatch`, logging to a file; CPU time read at exit."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.log = log
        env = {
            **os.environ,
            **settings_env(settings),
            "PYTHONPATH": str(ROOT),
            "ENV_FILE": os.devnull,
        }
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.notices.dispatch"],
                cwd=log.parent,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.cpu = 0.0

    def started(self) -> bool:
        return "dispatcher started" in self.log.read_text()

    def end(self, how: int = signal.SIGTERM) -> int | None:
        """Stop it; how many notices it says it sent (None when killed: it cannot say)."""
        self.proc.send_signal(how)
        _, _, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = -how
        self.cpu = usage.ru_utime + usage.ru_stime
        found = re.search(r"sent (\d+) notices in all", self.log.read_text())
        return int(found.group(1)) if found else None


@dataclass
class Campaign:
    """What one run of dispatcher processes did."""

    dispatchers: int
    notices: int
    seconds: float  # from resuming until the last notice was settled
    per_number: Counter[str]
    arrivals: list[float]
    sent_by: list[int | None]
    cpu: list[float]

    @property
    def rate(self) -> float:
        """Messages a second while sending (first to last arrival at the fake API)."""
        return _rate(self.arrivals)

    def cpu_per_1000(self) -> str:
        return ", ".join(
            f"{cpu:.2f} s in all (killed)" if sent is None
            else f"{1000 * cpu / sent:.2f}" if sent else f"{cpu:.2f} s, sent none"
            for cpu, sent in zip(self.cpu, self.sent_by)
        )


def _open_notices(db: Database) -> int:
    with db.session() as session:
        statuses = Notice.status.in_(NoticeStatus.OPEN)
        return session.scalar(select(func.count()).select_from(Notice).where(statuses)) or 0


def _sent_notices(db: Database) -> int:
    with db.session() as session:
        sent = Notice.status == NoticeStatus.SENT
        return session.scalar(select(func.count()).select_from(Notice).where(sent)) or 0


def _wait_until(condition: Any, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("benchmark: dispatchers did not finish in time")
        time.sleep(0.05)


def run_campaign(
    db: Database,
    workdir: Path,
    count: int,
    first: int,
    dispatchers: int,
    kill_after: float | None = None,
    **overrides: Any,
) -> Campaign:
    """Plan `count` notices while paused, start the processes, resume, wait until done.

    `kill_after`: SIGKILL the first process once that share of the notices is sent.
    """
    with FakeApiProcess() as fake:
        settings = notice_settings(
            db,
            fake.url,
            notice_send_from="00:00",
            notice_send_until="24:00",
            notice_dispatch_interval_seconds=0.5,
            twilio_sms_from=f"+62811{uuid.uuid4().int % 10**8:08d}",  # a sender of its own
            **overrides,
        )
        set_paused(db, True, "bench")
        seed(db, count, first, datetime.now(timezone.utc).date() + timedelta(days=2))
        NoticePlanner(db, settings).plan()
        processes = [
            DispatchProcess(settings, workdir / f"dispatch-{first}-{i}.log")
            for i in range(dispatchers)
        ]
        _wait_until(lambda: all(p.started() for p in processes), 60)
        set_paused(db, False, "bench")
        started = time.monotonic()
        sent_by: list[int | None] = [None] * dispatchers
        if kill_after is not None:
            # the first process, once it has sent some and the campaign is that far on
            _wait_until(lambda: "dispatched notices" in processes[0].log.read_text())
            _wait_until(lambda: _sent_notices(db) >= kill_after * count)
            processes[0].end(signal.SIGKILL)
        _wait_until(lambda: _open_notices(db) == 0)
        seconds = time.monotonic() - started
        for i, process in enumerate(processes):
            if process.proc.returncode is None:
                sent_by[i] = process.end()
        per_number, arrivals = fake.finish()
    return Campaign(
        dispatchers, count, seconds, per_number, arrivals, sent_by, [p.cpu for p in processes]
    )


def _redis_reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def bench_processes(db: Database, workdir: Path, start: int, count: int, rate: float, seconds: float) -> None:
    """Dispatcher processes ×1 and ×2: unlimited, limited through Redis, one killed."""
    unlimited = {}
    for n in (1, 2):
        unlimited[n] = run_campaign(db, workdir, count, start, n, notice_workers=4)
        start += count
        run = unlimited[n]
        print(
            f"  dispatchers ×{n}, no rate limit: {count:,} settled in {run.seconds:.1f} s, "
            f"{run.rate:,.0f} msg/s while sending; CPU s per 1,000 messages per process: {run.cpu_per_1000()}; "
            f"numbers messaged twice: {sum(1 for c in run.per_number.values() if c > 1)}",
            flush=True,
        )
    print(f"  ×2/×1 (no rate limit): {unlimited[2].rate / unlimited[1].rate:.2f}")

    if not _redis_reachable():
        print(f"  limited runs skipped: Redis not reachable at {REDIS_URL} (set REDIS_URL)")
    else:
        limited = {}
        notices = int(rate * seconds)
        for n in (1, 2):
            limited[n] = run_campaign(
                db, workdir, notices, start, n, notice_workers=8,
                notice_sms_rate=rate, redis_url=REDIS_URL,
            )
            start += notices
            run = limited[n]
            print(
                f"  dispatchers ×{n}, limited to {rate:g}/s shared through Redis: {notices:,} "
                f"settled in {run.seconds:.1f} s, {run.rate:.2f} msg/s while sending; at most {busiest_second(run.arrivals)} in any one-second window; "
                f"CPU s per 1,000 per process: {run.cpu_per_1000()}",
                flush=True,
            )
        print(f"  ×2/×1 (limited): {limited[2].rate / limited[1].rate:.2f}")

    killed = run_campaign(
        db, workdir, count, start, 2, kill_after=1 / 3,
        notice_workers=4, twilio_http_timeout=2.0, notice_stale_seconds=5.0,
    )
    expected = {f"+62812{i:08d}" for i in range(start, start + count)}
    phones = {to.removeprefix("whatsapp:") for to in killed.per_number}
    print(
        f"  dispatchers ×2, one killed (SIGKILL) a third of the way, NOTICE_STALE_SECONDS=5: "
        f"{count:,} settled in {killed.seconds:.1f} s; messaged twice: "
        f"{sum(1 for c in killed.per_number.values() if c > 1)}, never: {len(expected - phones)}; "
        f"the survivor sent {killed.sent_by[1]:,}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=50.0, help="the limited run's rate (/s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="the limited run's length")
    parser.add_argument(
        "--process-notices", type=int, default=10_000, help="notices per dispatcher-process run"
    )
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if postgres_base_url() else [])
    with tempfile.TemporaryDirectory(prefix="bansos-bench-") as tmp:
        for backend in backends:
            with fresh_database_url(backend, Path(tmp)) as url:
                db = Database(url)
                try:
                    db.upgrade()
                    print(f"{backend}:", flush=True)
                    bench_unlimited(db, args.notices, args.workers)
                    bench_limited(db, args.notices, args.rate, args.seconds)
                    first = args.notices + int(args.rate * args.seconds)
                    bench_processes(
                        db, Path(tmp), first, args.process_notices, args.rate, args.seconds
                    )
                finally:
                    db.dispose()


if __name__ == "__main__":
    main()
