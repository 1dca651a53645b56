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

A fresh SQLite database, and a fresh PostgreSQL schema too when TEST_DATABASE_URL is
set. The clock is fixed inside everyone's sending hours so the run does not depend
on the time of day.

    .venv/bin/python scripts/bench_notices.py [--notices 100000] [--rate 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import socketserver
import sys
import tempfile
import time
from collections import Counter
from datetime import date, datetime, time as clock_time, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.notices.dispatcher import Dispatcher  # noqa: E402
from bot.channels.twilio import TwilioTransport  # noqa: E402
from bot.notices.planning import NoticePlanner  # noqa: E402
from bot.registry.models import Disbursement, Recipient  # noqa: E402
from tools.databases import fresh_database_url, postgres_base_url  # noqa: E402
from tools.fake_twilio import FakeTwilioApi  # noqa: E402
from tools.notices import CONTENT_SID, notice_settings  # noqa: E402

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


def _busiest_second(times: list[float]) -> int:
    """The most events in any one-second window."""
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


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
        f"{_busiest_second(transport.departures)} in any second; arrived at "
        f"{_rate(arrivals):.2f}/s, at most {_busiest_second(arrivals)} in any second"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=50.0, help="the limited run's rate (/s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="the limited run's length")
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
                finally:
                    db.dispose()


if __name__ == "__main__":
    main()
