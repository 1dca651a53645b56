"""The rate limit, the sending window per zone and retry backoff, on injected clocks."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

import pytest

from bot.notices.pacing import RetryPolicy, SendingWindow, TokenBucket
from bot.rules.regions import zone_for_province

WIB, WITA, WIT = "Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_token_bucket_spaces_sends_at_the_rate_with_headroom() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock, clock.sleep)
    sent_at = []
    for _ in range(50):
        bucket.acquire()
        sent_at.append(clock.now)
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:])]
    assert min(gaps) == pytest.approx(0.101)  # 1/10 s, plus 1% headroom
    assert 49 / (sent_at[-1] - sent_at[0]) == pytest.approx(10 / 1.01)


def test_token_bucket_never_bursts_after_idling() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, clock, clock.sleep)
    bucket.acquire()
    clock.now += 60  # a long idle spell saves up nothing
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.202, 0.404])


@pytest.mark.parametrize("late", [0.0, 0.005, 0.009])
def test_no_second_holds_more_than_the_rate_even_with_late_wake_ups(late: float) -> None:
    clock = FakeClock()
    rate = 50
    bucket = TokenBucket(rate, clock, lambda seconds: None)
    # Each send happens at its slot, or up to `late` seconds after it (a busy OS).
    sent = [clock.now + bucket.reserve() + (late if i % 2 else 0.0) for i in range(500)]
    for first in sent:
        assert sum(first <= t < first + 1 for t in sent) <= rate


def test_reservations_from_many_threads_get_distinct_slots() -> None:
    clock = FakeClock()
    bucket = TokenBucket(20, clock, lambda seconds: None)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(25):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([i * 0.0505 for i in range(200)])


def test_rate_zero_lifts_the_limit() -> None:
    bucket = TokenBucket(0, FakeClock(), lambda seconds: pytest.fail("slept"))
    assert [bucket.reserve() for _ in range(1000)] == [0.0] * 1000


# 12:30 UTC is 19:30 WIB, 20:30 WITA, 21:30 WIT.
EVENING = datetime(2026, 12, 7, 12, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "at, zone, is_open",
    [
        (EVENING, WIB, True),
        (EVENING, WITA, False),
        (EVENING, WIT, False),
        # 23:30 UTC the day before is 06:30 WIB, 07:30 WITA, 08:30 WIT.
        (datetime(2026, 12, 6, 23, 30, tzinfo=timezone.utc), WIB, False),
        (datetime(2026, 12, 6, 23, 30, tzinfo=timezone.utc), WITA, False),
        (datetime(2026, 12, 6, 23, 30, tzinfo=timezone.utc), WIT, True),
        # The window is [08:00, 20:00): 08:00 opens it, 20:00 closes it.
        (datetime(2026, 12, 7, 1, 0, tzinfo=timezone.utc), WIB, True),
        (datetime(2026, 12, 7, 13, 0, tzinfo=timezone.utc), WIB, False),
        (datetime(2026, 12, 7, 11, 59, tzinfo=timezone.utc), WITA, True),
        (datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc), WITA, False),
    ],
)
def test_sending_window_per_zone(at: datetime, zone: str, is_open: bool) -> None:
    assert SendingWindow().is_open(at, zone) is is_open


@pytest.mark.parametrize(
    "zone, opens_utc",
    [
        (WIB, datetime(2026, 12, 8, 1, 0, tzinfo=timezone.utc)),  # 08:00 WIB tomorrow
        (WITA, datetime(2026, 12, 8, 0, 0, tzinfo=timezone.utc)),
        (WIT, datetime(2026, 12, 7, 23, 0, tzinfo=timezone.utc)),
    ],
)
def test_next_opening_after_the_evening(zone: str, opens_utc: datetime) -> None:
    late = datetime(2026, 12, 7, 14, 0, tzinfo=timezone.utc)  # 21:00 WIB, 22:00 WITA, 23:00 WIT
    assert SendingWindow().next_open(late, zone) == opens_utc


def test_next_opening_before_dawn_is_the_same_day() -> None:
    early = datetime(2026, 12, 7, 20, 0, tzinfo=timezone.utc)  # 03:00 WIB on the 8th
    assert SendingWindow().next_open(early, WIB) == datetime(2026, 12, 8, 1, 0, tzinfo=timezone.utc)


def test_open_zones_and_province_zones() -> None:
    assert SendingWindow().open_zones(EVENING) == [WIB]
    assert zone_for_province("32").key == WIB
    assert zone_for_province("51").key == WITA
    assert zone_for_province("94").key == WIT


def test_window_parsing() -> None:
    window = SendingWindow.parse("07:30", "24:00")
    assert window.is_open(datetime(2026, 12, 7, 16, 59, tzinfo=timezone.utc), WIB)  # 23:59 WIB
    assert window.opening(date(2026, 12, 7), WIT) == datetime(2026, 12, 6, 22, 30, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        SendingWindow.parse("20:00", "08:00")


def test_retry_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=60, max_seconds=300)
    assert [policy.delay(n) for n in range(1, 6)] == [
        timedelta(seconds=s) for s in (60, 120, 240, 300, 300)
    ]
    assert not policy.gives_up(4)
    assert policy.gives_up(5)
