"""What every long-running process of ours (answer workers, dispatchers, scheduler) does on
SIGTERM and SIGINT: finish the work in hand, then stop, so a deploy or Ctrl-C never cuts a
send or a Rasa turn in half."""
from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


def stop_on_signals(finishing: str) -> threading.Event:
    """An event set by SIGTERM or SIGINT; `finishing` says in the log what is still done first."""
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: %s", signum, finishing)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return stopping
