"""The answer workers: `python -m bot.conversation.answerer` (the `answers:` Procfile line).

A burst beyond what Rasa answers within the webhook's budget is queued, not refused:
the webhook leaves the message stored and answers Twilio at once, and these workers
answer it through the provider's API (bot/conversation/followup.py), in order per
sender, as fast as the Rasa replicas allow. ANSWER_WORKERS threads per process (by
default four per replica, so that every replica always has a turn waiting while
another is in flight); run one such process per host, or more, on any host: each
message is claimed in the database, so none is answered twice however many run.

One thread lists what is due and hands each message to a free worker thread; a
message still in a worker's hands is not handed out again. When nothing is due the
lister sleeps a little, so an idle service costs one small query a second.
"""
from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from bot.config import load_settings
from bot.conversation.followup import answer_waiting, retry_followups
from bot.conversation.turns import Turns, TurnPolicy
from bot.process import stop_on_signals
from bot.rules.logmask import configure_logging
from bot.services import Services, build_services

log = logging.getLogger(__name__)

# Seconds between looks at the queue when nothing was due, and when workers are busy.
IDLE_SECONDS = 1.0
BUSY_SECONDS = 0.05


class AnswerPool:
    """Hands the due messages to `threads` worker threads until told to stop."""

    def __init__(self, services: Services, threads: int) -> None:
        self.services = services
        self.threads = threads
        self.turns = Turns(services.db, TurnPolicy.from_settings(services.settings))
        self._in_hand: set[int] = set()
        self._lock = threading.Lock()

    def run(self, stopping: threading.Event) -> None:
        with ThreadPoolExecutor(self.threads, thread_name_prefix="answer") as workers:
            while not stopping.is_set():
                handed = self._hand_out(workers)
                stopping.wait(BUSY_SECONDS if handed or self._busy() else IDLE_SECONDS)

    def _busy(self) -> bool:
        with self._lock:
            return len(self._in_hand) >= self.threads

    def _hand_out(self, workers: ThreadPoolExecutor) -> int:
        """Give each free worker a due message; how many were handed out."""
        with self._lock:
            free = self.threads - len(self._in_hand)
        if free <= 0:
            return 0
        try:
            due = self.turns.due()
        except Exception:  # noqa: BLE001 - the database may be away for a while; try again
            log.exception("could not list the waiting messages")
            return 0
        handed = 0
        for message_id in due:
            if handed == free:
                break
            with self._lock:
                if message_id in self._in_hand:
                    continue
                self._in_hand.add(message_id)
            workers.submit(self._answer, message_id).add_done_callback(self._done(message_id))
            handed += 1
        return handed

    def _answer(self, message_id: int) -> None:
        try:
            answer_waiting(self.services, self.turns, message_id)
        except Exception:  # noqa: BLE001 - one message's failure must not stop the pool
            log.exception("answering message %d failed", message_id)

    def _done(self, message_id: int) -> Callable[[Future[None]], None]:
        def release(_: Future[None]) -> None:
            with self._lock:
                self._in_hand.discard(message_id)

        return release


def main() -> None:
    parser = argparse.ArgumentParser(description="Answer the inbound messages left for later.")
    parser.add_argument(
        "--once", action="store_true", help="answer what is due now, one after another, then exit"
    )
    args = parser.parse_args()
    configure_logging()
    settings = load_settings()
    settings.require_secret_key()
    services = build_services(settings)
    if args.once:
        log.info("answered %d waiting message(s)", retry_followups(services))
        return
    stopping = stop_on_signals("finishing the answers in hand")
    threads = settings.answer_threads
    log.info("answer workers: %d threads for %d Rasa replica(s)", threads, len(settings.rasa_replicas))
    AnswerPool(services, threads).run(stopping)


if __name__ == "__main__":
    main()
