"""When a notice may go out: the per-sender rate, the sending window, retry backoff.

Each rule takes its clock from the caller, so tests drive them with a fake clock
instead of sleeping, and the dispatcher, the planner and the status callbacks all
ask the same functions.

- Rate: Twilio queues what we send faster than a sender's throughput (an
  alphanumeric sender defaults to 10 messages/s) and drops what stays queued for
  hours, so we pace on our side. `TokenBucket` hands out one send slot every
  1/rate seconds (plus 1% headroom) and never two closer together, however many
  threads of one process ask. Several dispatcher processes share one sender's rate
  through Redis instead (bot/notices/shared_pacing.py); both are a `Pacer`.
- Sending window: notices reach people in the daytime of their own zone (WIB,
  WITA, WIT), 08:00-20:00 by default, never at night.
- Backoff: a transient failure waits base, 2×base, 4×base… (capped) before the
  next attempt, so a struggling provider or an unreachable handset is not hammered.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time as clock_time, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.rules.regions import PROVINCES


# Slots are this much wider than 1/rate: a thread woken a few milliseconds late then
# still cannot put rate + 1 sends into one second (1% of a second is 10 ms of slack).
HEADROOM = 0.01


def never() -> bool:
    """The default `should_stop`: nothing asks the caller to give up waiting."""
    return False


class Pacer(Protocol):
    """Hands out one sender's send slots; the dispatcher waits on one before each send."""

    def acquire(self, should_stop: Callable[[], bool] = never) -> bool:
        """Wait for a slot of our own: True when it has come, False when `should_stop`
        said to give up first (no slot is used then)."""
        ...


class TokenBucket:
    """Hands out send slots at most `rate` per second; `rate` of 0 or less: no limit.

    The bucket holds a single token (a GCRA pacer): slots follow a fixed schedule
    (1 + HEADROOM)/rate apart, so no second ever holds more than `rate` of them, an
    idle spell saves nothing up, and many threads asking at once each get a slot of
    their own. A slot is reserved under a lock and waited for outside it.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = (1.0 + HEADROOM) / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_free = float("-inf")
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next free slot; the seconds to wait before using it (0: now)."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_free)
            self._next_free = slot + self.interval
            return slot - now

    def acquire(self, should_stop: Callable[[], bool] = never) -> bool:
        """Wait for a slot of our own; always True, since only time stands in the way.

        `should_stop` is not asked: the wait is bounded by the slots already handed
        out, a few seconds of sending at most.
        """
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return True


def _parse_clock(text: str) -> clock_time:
    hours, _, minutes = text.strip().partition(":")
    if int(hours) == 24 and int(minutes or 0) == 0:
        return clock_time.max
    return clock_time(int(hours), int(minutes or 0))


ZONES: tuple[str, ...] = tuple(sorted({province.tz for province in PROVINCES.values()}))


@dataclass(frozen=True)
class SendingWindow:
    """The local hours notices may be sent, the same clock times in every zone."""

    start: clock_time = clock_time(8, 0)
    end: clock_time = clock_time(20, 0)

    @classmethod
    def parse(cls, start: str, end: str) -> "SendingWindow":
        """From "HH:MM" texts; "24:00" is the end of the day."""
        window = cls(_parse_clock(start), _parse_clock(end))
        if window.start >= window.end:
            raise ValueError(f"sending window {start}-{end} must start before it ends")
        return window

    def is_open(self, at: datetime, zone: str) -> bool:
        local = at.astimezone(ZoneInfo(zone)).time()
        return self.start <= local < self.end

    def next_open(self, at: datetime, zone: str) -> datetime:
        """`at` itself when the window is open in `zone`, else the next opening (UTC)."""
        if self.is_open(at, zone):
            return at
        tz = ZoneInfo(zone)
        local = at.astimezone(tz)
        day = local.date() if local.time() < self.start else local.date() + timedelta(days=1)
        return self.opening(day, zone)

    def opening(self, day: date, zone: str) -> datetime:
        """When the window opens on a local calendar day, in UTC."""
        return datetime.combine(day, self.start, tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)

    def open_zones(self, at: datetime, zones: Iterable[str] = ZONES) -> list[str]:
        """The zones where it is sending time at `at`."""
        return [zone for zone in zones if self.is_open(at, zone)]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transiently failing notice is tried again."""

    max_attempts: int = 5
    base_seconds: float = 60.0
    max_seconds: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetryPolicy":
        return cls(
            settings.notice_max_attempts,
            settings.notice_retry_base_seconds,
            settings.notice_retry_max_seconds,
        )

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: base × 2^(attempts-1), capped."""
        seconds = self.base_seconds * 2 ** max(attempts - 1, 0)
        return timedelta(seconds=min(seconds, self.max_seconds))

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
