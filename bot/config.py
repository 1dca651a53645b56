"""Settings read from the environment, in one place.

Every process (web app, action server, scheduler, CLI) builds its settings here so a
deployment is configured by environment variables alone. A `.env` file (`ENV_FILE`, else
the working directory's) only fills in what the environment leaves unset: an operator's
exported `DATABASE_URL` always wins, and an empty line in `.env` never blanks anything.
"""
from __future__ import annotations

import functools
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "instance" / "bansos.db"
log = logging.getLogger(__name__)
# Development only: lets a process start without SECRET_KEY, on a throwaway key.
DEVELOPMENT_FLAG = "BANSOS_DEVELOPMENT"
_TRUE = ("1", "true", "yes", "on")


class InsecureSettings(RuntimeError):
    """A setting would make the service unsafe to run; the message says which and why."""


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    """Runtime configuration; see the README's configuration table."""

    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    rasa_url: str = "http://127.0.0.1:5005"
    # Several single-worker Rasa replicas (RASA_URLS, comma-separated): each conversation
    # is pinned to one of them (bot/conversation/rasa_client.py). Empty: RASA_URL alone.
    rasa_urls: tuple[str, ...] = ()
    # The longest one turn may take at Rasa before it counts as failed.
    rasa_timeout: float = 10.0
    # Twilio waits 15 s for a webhook answer: past this budget the webhook answers at once
    # and the reply follows through the provider's API (bot/conversation/inbound.py).
    rasa_reply_budget: float = 4.0
    # Rasa turns one app process runs at once; past it a message waits in the queue. It
    # must stay below gunicorn's threads per worker: each turn holds a request thread
    # for up to the reply budget, and the threads left over take a burst into the queue
    # in milliseconds (gunicorn.conf.py refuses to start otherwise).
    rasa_calls_per_process: int = 2
    # Threads of one answer worker process (`python -m bot.conversation.answerer`);
    # 0: four per Rasa replica.
    answer_workers: int = 0
    # Redis, for what several hosts must share (the notice rate limit, Rasa's tracker
    # store). Empty: one host, no Redis.
    redis_url: str = ""
    # Rasa's tracker store (scripts/run_rasa.py): a redis:// URL (conversations survive
    # a Rasa restart and move between replicas); empty keeps them in Rasa's memory.
    rasa_tracker_store_url: str = ""
    # A conversation nobody touched for this long is dropped from the tracker store.
    rasa_tracker_expiry_seconds: int = 7 * 24 * 3600
    # Connections per process to PostgreSQL: hosts × processes × (pool + overflow) must
    # stay under max_connections (or go through PgBouncer; see the README).
    db_pool_size: int = 5
    db_max_overflow: int = 5
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_sms_from: str = ""
    twilio_whatsapp_from: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_base: str = ""
    twilio_http_timeout: float = 10.0
    # Citizens' media (bot/media/): where our copies live, the largest file kept, and
    # the longest one download may take (each connect and read also has TWILIO_HTTP_TIMEOUT).
    # MEDIA_STORE: "local" (the folder MEDIA_DIR: one host, or a volume every host
    # shares) or "database" (the application's database: several hosts).
    media_store: str = "local"
    media_dir: str = str(PROJECT_ROOT / "instance" / "media")
    media_max_bytes: int = 5 * 1024 * 1024
    media_fetch_timeout: float = 30.0
    public_base_url: str = ""
    # Rasa's HTTP API (trackers, model) is served only with this token (`rasa run --auth-token`).
    rasa_token: str = ""
    # Signs staff session cookies and keys the NIK look-up counter: no default (require_secret_key).
    secret_key: str = ""
    development: bool = False
    # Reverse proxies in front of the app whose X-Forwarded-* headers are believed (werkzeug's ProxyFix).
    trusted_proxy_hops: int = 0
    # Per-sender inbound limit (bot/conversation/limits.py): a person answering a form never meets it.
    inbound_max_messages: int = 30
    inbound_window_seconds: float = 60.0
    default_region: str = "ID"
    max_inbound_chars: int = 1600
    # A replayed MessageSid whose first delivery is still being processed waits this
    # long for the stored reply before answering without one.
    replay_wait_seconds: float = 12.0
    # Disbursement notices (see bot/notices/planning.py and bot/notices/dispatcher.py).
    twilio_notice_content_sid: str = ""
    # Approved WhatsApp templates for messages sent outside the 24-hour window
    # (bot/channels/later.py); without one such a message goes by SMS.
    twilio_report_status_content_sid: str = ""
    twilio_staff_reply_content_sid: str = ""
    twilio_hand_back_content_sid: str = ""
    twilio_later_notice_content_sid: str = ""
    notice_days_before: int = 3
    # Outcome notices only for disbursements scheduled at most this many days ago, so
    # the first import of a year of history does not message everyone about old payments.
    notice_outcome_lookback_days: int = 7
    notice_send_from: str = "08:00"
    notice_send_until: str = "20:00"
    # Per sender; an alphanumeric SMS sender defaults to 10/s at Twilio. 0 lifts the limit.
    notice_sms_rate: float = 10.0
    notice_whatsapp_rate: float = 10.0
    notice_workers: int = 4
    notice_max_attempts: int = 5
    notice_retry_base_seconds: float = 60.0
    notice_retry_max_seconds: float = 3600.0
    # A claim or an in-flight send older than this belongs to a dead dispatcher; it must
    # exceed the HTTP timeout so a live send is never taken for a dead one.
    notice_stale_seconds: float = 120.0
    notice_sms_price: float = 0.40
    notice_whatsapp_price: float = 0.025
    notice_price_currency: str = "USD"
    notice_plan_interval_seconds: float = 600.0
    notice_dispatch_interval_seconds: float = 15.0
    notice_lease_seconds: float = 30.0
    # Off when separate dispatcher processes send (`python -m bot.notices.dispatch`): the
    # scheduler then only plans.
    scheduler_dispatches: bool = True
    # Which provider carries SMS: "kannel", "twilio" or "sandbox"; empty means Twilio
    # when its credentials are set, else the sandbox. WhatsApp always goes to Twilio.
    sms_transport: str = ""
    # Kannel's smsbox sendsms interface (bot/channels/kannel.py) and the URL Kannel calls us back on.
    kannel_sendsms_url: str = "http://127.0.0.1:13013/cgi-bin/sendsms"
    kannel_username: str = ""
    kannel_password: str = ""
    kannel_sms_from: str = ""
    # The "Sinyal" page and the supervisors' daily summary (bot/reports/signal_stats.py).
    signal_period_days: int = 30
    signal_baseline_days: int = 84
    signal_min_count: int = 3
    signal_alpha: float = 0.01
    signal_named_min: int = 3
    # The summary job runs hourly so one waiting outside sending hours goes at their start.
    signal_summary_interval_seconds: float = 3600.0
    kannel_smsc: str = ""
    kannel_callback_url: str = "http://127.0.0.1:8000"
    # Kannel signs nothing: its callbacks carry this secret (HTTP Basic) and must come
    # from an allowed address.
    kannel_webhook_secret: str = ""
    kannel_allowed_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    kannel_http_timeout: float = 10.0
    # Prometheus's /metrics on the public listener answers only `Authorization: Bearer
    # <METRICS_TOKEN>`; empty: 404 there. METRICS_BIND ("host:port") is where
    # `python -m bot.metrics_server` serves it without a token, off the public listener.
    # (PROMETHEUS_MULTIPROC_DIR is read by prometheus_client itself: bot/metrics.py.)
    metrics_token: str = ""
    metrics_bind: str = ""
    # "text" (one line per record) or "json" (JSON lines); masked either way (bot/rules/logmask.py).
    log_format: str = "text"
    extra: dict[str, Any] = field(default_factory=dict)

    def require_secret_key(self) -> None:
        """Refuse a missing key: a public default would let anyone sign an admin session cookie."""
        if not self.secret_key and not self.development:
            raise InsecureSettings(
                "SECRET_KEY is not set. Set it to a long random value (`make run` writes one "
                f"into .env), or set {DEVELOPMENT_FLAG}=1 on a development machine."
            )

    @property
    def effective_secret_key(self) -> str:
        """The key to sign with: the configured one, or in development this machine's own."""
        return self.secret_key or development_key()

    @property
    def rasa_replicas(self) -> tuple[str, ...]:
        """Every Rasa replica's base URL: RASA_URLS, else RASA_URL alone."""
        return self.rasa_urls or (self.rasa_url,)

    @property
    def answer_threads(self) -> int:
        """Threads of one answer worker: ANSWER_WORKERS, else four per Rasa replica."""
        return self.answer_workers if self.answer_workers > 0 else 4 * len(self.rasa_replicas)

    @property
    def twilio_enabled(self) -> bool:
        """Outbound goes to Twilio only with real credentials; else to the sandbox."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    def with_overrides(self, overrides: dict[str, Any] | None) -> "Settings":
        """Return a copy with the given fields replaced (used by tests and the app factory)."""
        if not overrides:
            return self
        known = {k: v for k, v in overrides.items() if k in self.__dataclass_fields__}
        return replace(self, **known)


DEVELOPMENT_KEY_FILE = PROJECT_ROOT / "instance" / "development-secret-key"


@functools.cache
def development_key() -> str:
    """A random key made once per machine (instance/development-secret-key, mode 600).

    Never a key written in the code, and shared by every process of the checkout, so
    gunicorn's workers and the action server agree on sessions, CSRF and hashes.
    """
    folder = DEVELOPMENT_KEY_FILE.parent
    folder.mkdir(parents=True, exist_ok=True)
    if not DEVELOPMENT_KEY_FILE.exists():
        # Written whole, then linked into place: two processes starting together
        # both end up reading the one that got there first, never a half-written file.
        descriptor, draft = tempfile.mkstemp(dir=folder)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(32))
        try:
            os.link(draft, DEVELOPMENT_KEY_FILE)
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    return DEVELOPMENT_KEY_FILE.read_text().strip()


_reported_shadowed: list[str] = []


def env_file_path() -> Path:
    """The `.env` file every process reads: `ENV_FILE`, else the working directory's."""
    return Path(os.environ.get("ENV_FILE") or Path.cwd() / ".env")


def load_env_file(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Fill unset variables of the environment from `.env`; return what was filled in.

    The real environment wins over the file, and an empty value on either side counts as
    unset: `DATABASE_URL=` in `.env` leaves an exported URL alone, and an exported empty
    variable still takes the file's value. python-dotenv's `override=False` keeps an
    exported value but lets `KEY=` in the file set an unset variable to "", and honcho's
    own `.env` loading overrides the environment outright; hence this one rule.
    """
    file = Path(path) if path is not None else env_file_path()
    if not file.is_file():
        return {}
    values = {key: value for key, value in dotenv_values(file).items() if value}
    filled = {key: value for key, value in values.items() if not os.environ.get(key)}
    shadowed = sorted(key for key in values if os.environ.get(key) not in (None, "", values[key]))
    if shadowed and shadowed != _reported_shadowed:
        # Names only: the values are secrets and URLs with passwords.
        log.info("%s: the environment's value wins for %s", file.name, ", ".join(shadowed))
        _reported_shadowed[:] = shadowed
    os.environ.update(filled)
    return filled


def load_settings(env_file: str | os.PathLike[str] | None = None) -> Settings:
    """Build settings from the environment (and `.env`, if present)."""
    load_env_file(env_file)
    env = os.environ
    return Settings(
        database_url=env.get("DATABASE_URL") or Settings.database_url,
        rasa_url=(env.get("RASA_URL") or Settings.rasa_url).rstrip("/"),
        rasa_urls=tuple(url.strip().rstrip("/") for url in env.get("RASA_URLS", "").split(",") if url.strip()),
        rasa_timeout=_env_float("RASA_TIMEOUT", Settings.rasa_timeout),
        rasa_reply_budget=_env_float("RASA_REPLY_BUDGET", Settings.rasa_reply_budget),
        rasa_calls_per_process=_env_int("RASA_CALLS_PER_PROCESS", Settings.rasa_calls_per_process),
        answer_workers=_env_int("ANSWER_WORKERS", Settings.answer_workers),
        redis_url=env.get("REDIS_URL", ""),
        rasa_tracker_store_url=env.get("RASA_TRACKER_STORE_URL", ""),
        rasa_tracker_expiry_seconds=_env_int("RASA_TRACKER_EXPIRY_SECONDS", Settings.rasa_tracker_expiry_seconds),
        db_pool_size=_env_int("DB_POOL_SIZE", Settings.db_pool_size),
        db_max_overflow=_env_int("DB_MAX_OVERFLOW", Settings.db_max_overflow),
        twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
        twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
        twilio_sms_from=env.get("TWILIO_SMS_FROM", ""),
        twilio_whatsapp_from=env.get("TWILIO_WHATSAPP_FROM", ""),
        twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID", ""),
        twilio_api_base=env.get("TWILIO_API_BASE", "").rstrip("/"),
        twilio_http_timeout=_env_float("TWILIO_HTTP_TIMEOUT", Settings.twilio_http_timeout),
        media_store=env.get("MEDIA_STORE", "").strip().lower() or Settings.media_store,
        media_dir=env.get("MEDIA_DIR") or Settings.media_dir,
        media_max_bytes=_env_int("MEDIA_MAX_BYTES", Settings.media_max_bytes),
        media_fetch_timeout=_env_float("MEDIA_FETCH_TIMEOUT", Settings.media_fetch_timeout),
        public_base_url=env.get("PUBLIC_BASE_URL", "").rstrip("/"),
        rasa_token=env.get("RASA_TOKEN", ""),
        secret_key=env.get("SECRET_KEY", ""),
        development=env.get(DEVELOPMENT_FLAG, "").strip().lower() in _TRUE,
        trusted_proxy_hops=_env_int("TRUSTED_PROXY_HOPS", Settings.trusted_proxy_hops),
        inbound_max_messages=_env_int("INBOUND_MAX_MESSAGES", Settings.inbound_max_messages),
        inbound_window_seconds=_env_float("INBOUND_WINDOW_SECONDS", Settings.inbound_window_seconds),
        max_inbound_chars=_env_int("MAX_INBOUND_CHARS", Settings.max_inbound_chars),
        **_notice_settings(env),
        **_kannel_settings(env),
        metrics_token=env.get("METRICS_TOKEN", ""),
        metrics_bind=env.get("METRICS_BIND", "").strip(),
        log_format=(env.get("LOG_FORMAT") or Settings.log_format).strip().lower(),
        **_signal_settings(),
    )


def _signal_settings() -> dict[str, Any]:
    """The SIGNAL_* variables of the "Sinyal" page and the supervisors' daily summary."""
    ints = {
        "signal_period_days": "SIGNAL_PERIOD_DAYS",
        "signal_baseline_days": "SIGNAL_BASELINE_DAYS",
        "signal_min_count": "SIGNAL_MIN_COUNT",
        "signal_named_min": "SIGNAL_NAMED_MIN",
    }
    floats = {
        "signal_alpha": "SIGNAL_ALPHA",
        "signal_summary_interval_seconds": "SIGNAL_SUMMARY_INTERVAL",
    }
    values: dict[str, Any] = {name: _env_int(var, getattr(Settings, name)) for name, var in ints.items()}
    values |= {name: _env_float(var, getattr(Settings, name)) for name, var in floats.items()}
    for name, var in (ints | floats).items():
        if not values[name] > 0:
            raise ValueError(f"{var} must be greater than 0, not {values[name]}")
    if not values["signal_alpha"] < 1:
        raise ValueError(f"SIGNAL_ALPHA must be below 1, not {values['signal_alpha']}")
    return values


def _notice_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The NOTICE_* variables of the notice scheduler, and the WhatsApp templates."""
    floats = {
        "notice_sms_rate": "NOTICE_SMS_RATE",
        "notice_whatsapp_rate": "NOTICE_WHATSAPP_RATE",
        "notice_retry_base_seconds": "NOTICE_RETRY_BASE_SECONDS",
        "notice_retry_max_seconds": "NOTICE_RETRY_MAX_SECONDS",
        "notice_stale_seconds": "NOTICE_STALE_SECONDS",
        "notice_sms_price": "NOTICE_SMS_PRICE",
        "notice_whatsapp_price": "NOTICE_WHATSAPP_PRICE",
        "notice_plan_interval_seconds": "NOTICE_PLAN_INTERVAL",
        "notice_dispatch_interval_seconds": "NOTICE_DISPATCH_INTERVAL",
        "notice_lease_seconds": "NOTICE_LEASE_SECONDS",
    }
    ints = {
        "notice_days_before": "NOTICE_DAYS_BEFORE",
        "notice_outcome_lookback_days": "NOTICE_OUTCOME_LOOKBACK_DAYS",
        "notice_workers": "NOTICE_WORKERS",
        "notice_max_attempts": "NOTICE_MAX_ATTEMPTS",
    }
    values: dict[str, Any] = {
        name: _env_float(var, getattr(Settings, name)) for name, var in floats.items()
    }
    values |= {name: _env_int(var, getattr(Settings, name)) for name, var in ints.items()}
    values |= {
        "twilio_notice_content_sid": env.get("TWILIO_NOTICE_CONTENT_SID", ""),
        "twilio_report_status_content_sid": env.get("TWILIO_REPORT_STATUS_CONTENT_SID", ""),
        "twilio_staff_reply_content_sid": env.get("TWILIO_STAFF_REPLY_CONTENT_SID", ""),
        "twilio_hand_back_content_sid": env.get("TWILIO_HAND_BACK_CONTENT_SID", ""),
        "twilio_later_notice_content_sid": env.get("TWILIO_LATER_NOTICE_CONTENT_SID", ""),
        "notice_send_from": env.get("NOTICE_SEND_FROM") or Settings.notice_send_from,
        "notice_send_until": env.get("NOTICE_SEND_UNTIL") or Settings.notice_send_until,
        "notice_price_currency": env.get("NOTICE_PRICE_CURRENCY") or Settings.notice_price_currency,
        "scheduler_dispatches": (env.get("SCHEDULER_DISPATCHES") or "1").strip().lower() in _TRUE,
    }
    return values


def _kannel_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """SMS_TRANSPORT and the KANNEL_* variables of the Kannel SMS channel."""
    allowed = env.get("KANNEL_ALLOWED_IPS", "")
    return {
        "sms_transport": env.get("SMS_TRANSPORT", "").strip().lower(),
        "kannel_sendsms_url": env.get("KANNEL_SENDSMS_URL") or Settings.kannel_sendsms_url,
        "kannel_username": env.get("KANNEL_USERNAME", ""),
        "kannel_password": env.get("KANNEL_PASSWORD", ""),
        "kannel_sms_from": env.get("KANNEL_SMS_FROM", ""),
        "kannel_smsc": env.get("KANNEL_SMSC", ""),
        # Kannel usually runs beside the app and calls it directly, not through the proxy.
        "kannel_callback_url": (
            env.get("KANNEL_CALLBACK_URL") or f"http://127.0.0.1:{env.get('APP_PORT') or env.get('PORT') or 8000}"
        ).rstrip("/"),
        "kannel_webhook_secret": env.get("KANNEL_WEBHOOK_SECRET", ""),
        "kannel_allowed_ips": (
            tuple(part.strip() for part in allowed.split(",") if part.strip())
            or Settings.kannel_allowed_ips
        ),
        "kannel_http_timeout": _env_float("KANNEL_HTTP_TIMEOUT", Settings.kannel_http_timeout),
    }
