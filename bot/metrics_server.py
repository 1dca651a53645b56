"""`python -m bot.metrics_server`: /metrics on a bind of its own (METRICS_BIND), no token.

For an operator who keeps the figures off the public listener altogether: run one
per host beside gunicorn, with the same PROMETHEUS_MULTIPROC_DIR as the host's other
processes, on an address only Prometheus reaches ("10.0.0.5:9464", or "127.0.0.1:9464"
behind a tunnel). It serves what /metrics serves (bot/scrape.py), with
prometheus_client's own small HTTP server.
"""
from __future__ import annotations

import logging

from prometheus_client import start_http_server

from bot import metrics
from bot.config import load_settings
from bot.db import Database
from bot.process import stop_on_signals
from bot.rules.logmask import configure_logging
from bot.scrape import build_registry

log = logging.getLogger(__name__)


def parse_bind(bind: str) -> tuple[str, int]:
    """("host", port) from METRICS_BIND's "host:port" (or ":port", meaning 127.0.0.1)."""
    host, _, port = bind.strip().rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SystemExit(f"METRICS_BIND must be host:port, such as 127.0.0.1:9464 (got {bind!r})")
    return host.strip("[]") or "127.0.0.1", int(port)


def main() -> None:
    configure_logging()
    settings = load_settings()
    if not settings.metrics_bind:
        raise SystemExit("METRICS_BIND is not set: say where to serve the metrics, such as 127.0.0.1:9464")
    host, port = parse_bind(settings.metrics_bind)
    if not metrics.MULTIPROCESS:
        log.warning("PROMETHEUS_MULTIPROC_DIR is not set: only the queue depths are served, no counts")
    metrics.clean_at_start()
    server, thread = start_http_server(port, host, build_registry(Database.from_settings(settings)))
    log.info("metrics on http://%s:%d/metrics", host, port)
    stop_on_signals("stopping the metrics server").wait()
    server.shutdown()
    thread.join()


if __name__ == "__main__":
    main()
