"""One send rate per sender, shared by every dispatcher process through Redis.

Twilio's throughput is a property of the sender (a number, an alphanumeric ID, a
WhatsApp sender), not of our process: two dispatchers each pacing themselves to
NOTICE_SMS_RATE would send twice that. With REDIS_URL set, each sender's schedule
lives in Redis and every dispatcher takes its slots from it; without it the
in-process `TokenBucket` paces one host (bot/notices/pacing.py). Both are a `Pacer`.

The schedule is a GCRA with the TokenBucket's semantics: slots a fixed interval
apart, never two closer, so no one-second window holds more than `rate` of them,
and idle time saves nothing up. The interval is (1 + SHARED_HEADROOM)/rate, wider
than the in-process (1 + HEADROOM)/rate: a slot's wait reaches each process over
the network and its send leaves from another process, and on a busy host those
delays differ by tens of milliseconds from one send to the next; 5% of a second
absorbs that where the in-process 1% (10 ms) measurably did not (the benchmark saw
52-54 arrivals in one second at 50/s). One Lua script reads the next free slot, takes the
later of it and now, and moves the schedule on by one interval, atomically, so two
processes asking at once get distinct slots. "Now" is Redis's own `TIME`: the hosts'
clocks never enter it, only the wait (a duration) travels back to the caller.

When Redis cannot be reached (down, failing over, a timeout) nothing is sent without
a slot: `acquire` logs once, retries with a backoff of up to RETRY_MAX_SECONDS, and
gives up only when its caller's `should_stop` says so (the dispatcher's stop signal,
or the point past which the claimed notice must not be sent any more, after which
it goes back to `pending`). Sending pauses; the rate is never exceeded and the
process does not crash. A request that timed out may have taken a slot: that slot
goes unused, which errs on the slow side. One case does exceed it briefly: a Redis
that restarts *empty* forgets slots already handed out, so for the few seconds of
waits in flight the new schedule can overlap the old one (run Redis with
persistence or a replica to avoid it).
"""
from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from redis.exceptions import RedisError

from bot.channels import kannel
from bot.channels.outbox import Transport, provider_for
from bot.config import Settings
from bot.conversation.models import Channel
from bot.notices.pacing import Pacer, TokenBucket, never

log = logging.getLogger(__name__)

KEY_PREFIX = "bansos:notice-rate:"
SHARED_HEADROOM = 0.05
REDIS_TIMEOUT_SECONDS = 2.0
RETRY_FIRST_SECONDS = 0.1
RETRY_MAX_SECONDS = 2.0

# KEYS[1]: the sender's next free slot, in microseconds on Redis's clock.
# ARGV[1]: the slot interval in microseconds. Returns {slot, now}.
# The key expires a second after its slot has passed: a missing key means "free now".
# Numbers stay below 2^53 (microseconds since 1970), exact in Lua's doubles.
GCRA_LUA = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local next_free = tonumber(redis.call('GET', KEYS[1])) or now
local slot = math.max(now, next_free)
local after = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', after),
           'PX', math.ceil((after - now) / 1000) + 1000)
return {string.format('%.0f', slot), string.format('%.0f', now)}
"""


@dataclass(frozen=True)
class Slot:
    """A reserved send slot and when it was reserved, in microseconds on Redis's clock."""

    at: int
    now: int

    @property
    def wait(self) -> float:
        """Seconds from the reservation until the slot."""
        return (self.at - self.now) / 1_000_000


class RedisPacer:
    """A sender's send slots, at most `rate` per second across every process sharing
    `key`; `rate` of 0 or less: no limit (and no Redis call)."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        rate: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key = key
        self.interval_us = math.ceil((1.0 + SHARED_HEADROOM) / rate * 1_000_000) if rate > 0 else 0
        self._script = client.register_script(GCRA_LUA)
        self._sleep = sleep
        self._down = False
        self._down_lock = threading.Lock()

    def reserve(self) -> Slot:
        """Take the next free slot; raises RedisError when Redis does not answer."""
        at, now = self._script(keys=[self.key], args=[self.interval_us])
        return Slot(int(at), int(now))

    def acquire(self, should_stop: Callable[[], bool] = never) -> bool:
        """Wait for a slot of our own; False if `should_stop` ends a Redis outage's wait."""
        if not self.interval_us:
            return True
        pause = RETRY_FIRST_SECONDS
        while not should_stop():
            try:
                slot = self.reserve()
            except RedisError as exc:
                self._note_outage(exc)
                self._sleep(pause)
                pause = min(2 * pause, RETRY_MAX_SECONDS)
                continue
            self._note_recovery()
            if slot.wait > 0:
                self._sleep(slot.wait)
            return True
        return False

    def _note_outage(self, exc: RedisError) -> None:
        """Log the start of an outage once, not once per thread and retry."""
        with self._down_lock:
            if self._down:
                return
            self._down = True
        log.warning(
            "shared rate limit %s: Redis unreachable (%s); sending paused until it answers",
            self.key,
            exc.__class__.__name__,
        )

    def _note_recovery(self) -> None:
        with self._down_lock:
            if not self._down:
                return
            self._down = False
        log.info("shared rate limit %s: Redis answers again; sending resumes", self.key)


@functools.cache
def redis_client(url: str) -> redis.Redis:
    """One client (a thread-safe connection pool) per URL and process, reused by every
    dispatcher run; short timeouts so an outage is noticed and waited out, not hung on."""
    return redis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


def sender_of(settings: Settings, provider: str, channel: str) -> str:
    """Who Twilio (or the SMS gateway) paces us as: the sender a message goes out from."""
    if channel == Channel.WHATSAPP:
        return f"{provider}:whatsapp:{settings.twilio_whatsapp_from}"
    if provider == kannel.PROVIDER:
        return f"kannel:sms:{settings.kannel_sms_from or settings.kannel_smsc}"
    sender = settings.twilio_messaging_service_sid or settings.twilio_sms_from
    return f"{provider}:sms:{sender}"


def pacers_for(
    settings: Settings,
    transport: Transport,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Pacer]:
    """A pacer per channel: shared through Redis when REDIS_URL is set, else in-process."""
    rates = {Channel.SMS: settings.notice_sms_rate, Channel.WHATSAPP: settings.notice_whatsapp_rate}
    if not settings.redis_url:
        return {channel: TokenBucket(rate, monotonic, sleep) for channel, rate in rates.items()}
    client = redis_client(settings.redis_url)
    return {
        channel: RedisPacer(
            client,
            KEY_PREFIX + sender_of(settings, provider_for(transport, channel), channel),
            rate,
            sleep,
        )
        for channel, rate in rates.items()
    }
