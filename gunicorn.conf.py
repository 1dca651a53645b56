"""gunicorn settings for the web app, as the Procfile and the benchmark run it.

gunicorn reads `./gunicorn.conf.py` by default, so any `gunicorn 'app:create_app()'`
started in the project folder (a systemd unit, a container) gets these settings too.

The access log names the path, never the query string or the referrer: Kannel's
callbacks carry the sender's number in `from=` and, in get-url mode, the whole message
in `text=` (citizens send NIKs), and a staff page's referrer can carry a search. Every
line gunicorn writes, its error log's request URIs included, then loses any query
string and has NIKs masked (bot/rules/logmask.py); LOG_FORMAT=json makes them JSON lines.

With PROMETHEUS_MULTIPROC_DIR set, the workers count into that folder and /metrics adds
them up (bot/metrics.py): the master empties it at its start when nothing else on the
host still counts there, and drops each worker's live gauges when it exits.
"""
from bot import metrics
from bot.config import load_settings

workers = 2
# Up to RASA_CALLS_PER_PROCESS of these wait on Rasa, each for up to RASA_REPLY_BUDGET;
# the others store a burst's messages and queue them for the answer workers at once.
threads = 4
timeout = 30
accesslog = "-"
# Remote address, time, method, path without query, status, bytes, duration in ms.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
logger_class = "bot.rules.logmask.MaskedGunicornLogger"


def on_starting(server):  # type: ignore[no-untyped-def]
    """Refuse Rasa slots that could hold every request thread.

    With as many slots as threads, a burst finds every thread waiting on a slow Rasa,
    and Twilio's requests wait in gunicorn's backlog past its 15 s (measured: 96 % of a
    burst's webhooks, before this check). Then empty the metrics folder if every
    process that counted there has stopped (bot/metrics.py `clean_at_start`).
    """
    calls = load_settings().rasa_calls_per_process
    if calls >= server.cfg.threads:
        raise RuntimeError(
            f"RASA_CALLS_PER_PROCESS ({calls}) must be below gunicorn's threads per worker "
            f"({server.cfg.threads}), so that some threads always take new messages"
        )
    metrics.clean_at_start()


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    metrics.mark_process_dead(worker.pid)

