"""The events an operator counts: one counter or histogram each, counted where they happen.

Every process counts its own events (prometheus_client). Under gunicorn, and beside
it on one host, the processes share them through prometheus_client's multiprocess
mode: with `PROMETHEUS_MULTIPROC_DIR` in the environment, each process writes its
counts to files there and a scrape adds them up (bot/scrape.py). The library picks
its mode when it is first imported, so the variable belongs in the environment a
process starts with, never only in `.env`.

Labels are few and fixed: channel, outcome, provider, error code, kind. Anything else a
caller passes becomes "other", so no phone number, NIK or message text can ever turn
into a label, and a provider's odd error code cannot grow the series without end.

Queue depths and handoff ages are not counted here: they are read from the database
at each scrape (bot/scrape.py), so every host reports the same truth.
"""
from __future__ import annotations

import collections
import os
import re
import time
from collections.abc import Iterable
from datetime import datetime, timezone

from prometheus_client import Counter, Histogram, multiprocess, values

from bot.conversation.models import Channel, MessageStatus
from bot.notices.models import NoticeStatus

# Whether this process counts into PROMETHEUS_MULTIPROC_DIR: decided by prometheus_client
# when it was imported, from the environment the process started with.
MULTIPROCESS = values.ValueClass is not values.MutexValue

OTHER = "other"
_CHANNELS = frozenset({Channel.SMS, Channel.WHATSAPP})
# Our transports' names (bot/channels/): short lower-case words.
_PROVIDER = re.compile(r"[a-z]{1,16}")
# Twilio's and Kannel's codes are short numbers; "network" is ours (bot/channels/outbox.py).
_ERROR_CODE = re.compile(r"[0-9]{1,6}|network")
# The webhook's outcomes that are no status a message is settled in.
QUEUED, DUPLICATE, STORAGE_DOWN = "queued", "duplicate", "storage_down"
# What became of an inbound message, from the status it was settled in (or the above).
_OUTCOMES = {
    MessageStatus.ANSWERED: "answered",
    MessageStatus.NEEDS_FOLLOWUP: "rasa_failed",
    MessageStatus.AT_RASA: "turn_failed",
    MessageStatus.WITH_STAFF: "with_staff",
    MessageStatus.RATE_LIMITED: "rate_limited",
    QUEUED: QUEUED,
    DUPLICATE: DUPLICATE,
    STORAGE_DOWN: STORAGE_DOWN,
}
_RASA_ERROR_KINDS = frozenset({"unreachable", "timeout", "http_error", "bad_answer", "no_answer"})
_NOTICE_OUTCOMES = frozenset(
    {NoticeStatus.SENT, NoticeStatus.DELIVERED, NoticeStatus.UNDELIVERED, NoticeStatus.FAILED}
)
# prometheus_client's file names in PROMETHEUS_MULTIPROC_DIR end in the writer's process id.
_FILE_PID = re.compile(r"_([0-9]+)\.db$")

INBOUND = Counter(
    "bansos_inbound_messages",
    "Inbound messages by channel and what the webhook did with them",
    ["channel", "outcome"],
)
FOLLOWUPS = Counter(
    "bansos_followups",
    "Waiting messages the answer workers settled, by channel and outcome",
    ["channel", "outcome"],
)
ANSWER_SECONDS = Histogram(
    "bansos_answer_seconds",
    "Seconds from a message's arrival to its answer: in the webhook response, "
    "late from the webhook's own turn, or from an answer worker",
    ["channel", "path"],
    buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 900, 3600),
)
RASA_ERRORS = Counter("bansos_rasa_errors", "Rasa turns that failed, by kind", ["kind"])
NOTICES = Counter(
    "bansos_notices",
    "Disbursement notices by channel and what became of them (sent, delivered, undelivered, failed)",
    ["channel", "outcome"],
)
PROVIDER_ERRORS = Counter(
    "bansos_provider_errors",
    "Error codes the messaging providers answered or reported, by provider",
    ["provider", "error_code"],
)


def _channel(channel: str) -> str:
    return channel if channel in _CHANNELS else OTHER


def _seconds_since(moment: datetime) -> float:
    """Seconds from `moment` (aware, as every datetime column reads back) to now, never negative."""
    return max((datetime.now(timezone.utc) - moment).total_seconds(), 0.0)


def count_inbound(channel: str, outcome: str, started: float | None = None) -> None:
    """One inbound message's outcome at the webhook; `started` (time.monotonic) times an answer."""
    INBOUND.labels(_channel(channel), _OUTCOMES.get(outcome, OTHER)).inc()
    if started is not None and outcome == MessageStatus.ANSWERED:
        ANSWER_SECONDS.labels(_channel(channel), "webhook").observe(time.monotonic() - started)


def count_late_answer(channel: str, claimed_at: datetime) -> None:
    """An answer the webhook's own turn sent through the API after the reply budget."""
    ANSWER_SECONDS.labels(_channel(channel), "late").observe(_seconds_since(claimed_at))


def count_followup(channel: str, status: str, received_at: datetime) -> None:
    """A waiting message an answer worker settled; an answered one is timed from its arrival."""
    FOLLOWUPS.labels(_channel(channel), _OUTCOMES.get(status, OTHER)).inc()
    if status == MessageStatus.ANSWERED:
        ANSWER_SECONDS.labels(_channel(channel), "worker").observe(_seconds_since(received_at))


def count_rasa_error(kind: str) -> None:
    """A Rasa turn that failed: `unreachable`, `timeout`, `http_error`, `bad_answer`, or
    `no_answer` when Rasa answered with no message (bot/conversation/rasa_client.py)."""
    RASA_ERRORS.labels(kind if kind in _RASA_ERROR_KINDS else OTHER).inc()


def count_notices(channel: str, outcome: str, amount: int = 1) -> None:
    if amount > 0:
        NOTICES.labels(_channel(channel), outcome if outcome in _NOTICE_OUTCOMES else OTHER).inc(amount)


def count_notices_sent(channels: Iterable[str]) -> None:
    """Notices a provider accepted, one channel each."""
    for channel, amount in collections.Counter(channels).items():
        count_notices(channel, NoticeStatus.SENT, amount)


def count_notice_move(channel: str, before: str, after: str) -> None:
    """A notice's status change: counted once, when it reaches an outcome it did not have."""
    if after != before and after in _NOTICE_OUTCOMES:
        count_notices(channel, after)


def count_provider_error(provider: str | None, error_code: str | None) -> None:
    """A provider's error code, from its API's answer or a status callback; none: nothing."""
    if not error_code:
        return
    code = error_code.strip()
    PROVIDER_ERRORS.labels(
        provider if provider and _PROVIDER.fullmatch(provider) else OTHER,
        code if _ERROR_CODE.fullmatch(code) else OTHER,
    ).inc()


def ensure_multiprocess_dir() -> None:
    """Create PROMETHEUS_MULTIPROC_DIR if missing: counting into a missing folder raises."""
    if MULTIPROCESS:
        os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def clean_at_start() -> list[str]:
    """Empty PROMETHEUS_MULTIPROC_DIR when none of its writers still runs; the files removed.

    prometheus_client wants the folder cleaned when a deployment starts, and that is
    when every process that wrote there has stopped. When one still runs (only gunicorn
    was restarted, the dispatchers kept going), nothing is removed: dropping the dead
    processes' counts alone would make a total fall while others still add to it, which
    Prometheus reads as a reset and a burst. Each file is named after the process id that
    writes it (`counter_1234.db`); a file appearing while this runs is not touched.
    """
    if not MULTIPROCESS:
        return []
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    files = {name: int(found.group(1)) for name in sorted(os.listdir(folder)) if (found := _FILE_PID.search(name))}
    if any(_running(pid) for pid in set(files.values())):
        return []
    for name in files:
        os.remove(os.path.join(folder, name))
    return list(files)


def mark_process_dead(pid: int) -> None:
    """What gunicorn's child_exit hook calls: drop a dead worker's live gauges."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


ensure_multiprocess_dir()
